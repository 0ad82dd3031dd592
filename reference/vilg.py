#!/usr/bin/env python3
"""PyTorch reference for the ERNIE-ViLG generator (src/models/vilg/): the same architecture with DENSE
attention under the masks of reference/vilg_masks.py, the same sequence layouts, losses and end-to-end
projection, and the fixture writer for the TypeScript parity test (test/models/vilg.test.ts).

Regenerate with:  /usr/bin/python3 reference/vilg.py
  test/fixtures/vilg/tiny.json                   the `tiny` config (src/models/vilg/config.ts) and the special ids
  test/fixtures/vilg/tiny-preln.safetensors      pre-LN, untied heads: weights (init.<name>), inputs, and for
                                                 attention dense and sparse × t2i / i2t / vqa: logits, loss and
                                                 d loss / d every parameter; plus the end-to-end case (z_emb and
                                                 the gradients of L_t2i + mean((z_emb − target)²)) and the joint loss
  test/fixtures/vilg/tiny-postln-tied.safetensors post-LN with tied heads, sparse attention, t2i and i2t

Layouts (src/models/vilg/batch.ts): text rows are [CLS] t [SEP] [PAD].. (right-padded);
  t2i = [text (source) | [BOI] | z1..zn (target)]  logits at [BOI], z1..z_{n-1} predict z1..zn
  i2t = [z1..zn (source) | text (target)]          logits at text j = 0..T-2 predict text j+1 (ignoring [PAD])
  vqa = [z1..zn | question (source) | answer (target)]
Embeddings: token + position (1-D for text, row + column for the image, none for [BOI] = image row K) + token
type (modality × role). Pre-LN blocks with a final LN, or post-LN (BERT) with an LN on the embeddings.
Attention layer i (1-based) uses layer_kind(i): dense everywhere, or DALL-E's row / column / conv.

Computation is float64 with weights rounded to float32 values, so the float32 TypeScript model loads
exactly these weights. Tensors are stored as F32 (values, gradients) and I32 (ids, labels).
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vilg_masks import build_dense_mask  # noqa: E402  (A's mask reference: the rules stated once more, vectorised)
from vqgan import save_safetensors  # noqa: E402  (the small safetensors writer)

torch.set_default_dtype(torch.float64)
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vilg")

# The TypeScript `tiny` preset.
TINY = {
    "textVocab": 24, "numCodes": 16, "imageGrid": [3, 4], "maxTextLen": 6, "numLayers": 4, "hidden": 16, "heads": 2,
    "mlpRatio": 2, "dropout": 0, "preLN": True, "tieEmbeddings": False, "attention": "sparse", "convKernel": 3,
    "embedDim": 4, "initStd": 0.02,
}
SPECIALS = {"pad": 0, "cls": 2, "sep": 3}  # our WordPiece trainer's ids ([PAD] [UNK] [CLS] [SEP] [MASK])
IGNORE = -100
TOKEN_TYPE = {("text", "source"): 0, ("text", "target"): 1, ("image", "source"): 2, ("image", "target"): 3}


def layer_kind(i, L, mode):
    """DALL-E's schedule, layers 1-based: conv last, column when i % 4 == 2, else row."""
    if mode == "dense":
        return "dense"
    return "conv" if i == L else ("column" if i % 4 == 2 else "row")


# ---------------------------------------------------------------- sequences (batch.ts)

def part_len(p):
    return p["length"] if p["kind"] == "text" else (p["grid"][0] * p["grid"][1] if p["kind"] == "image" else 1)


def segments_of(parts):
    return [{"kind": "text", "length": 1, "role": "target"} if p["kind"] == "boi" else p for p in parts]


def text_labels(text):
    nxt = text[:, 1:]
    return torch.where(nxt == SPECIALS["pad"], torch.full_like(nxt, IGNORE), nxt)


def batch_t2i(c, text, codes):
    B, T = text.shape
    parts = [{"kind": "text", "length": T, "role": "source"}, {"kind": "boi"}, {"kind": "image", "grid": c["imageGrid"], "role": "target"}]
    flat = codes.reshape(B, -1)
    tokens = torch.cat([text, torch.full((B, 1), c["numCodes"], dtype=torch.long), flat], 1)
    valid = torch.cat([text != SPECIALS["pad"], torch.ones(B, 1 + flat.shape[1], dtype=torch.bool)], 1)
    return dict(parts=parts, tokens=tokens, valid=valid, start=T, labels=flat.clone(), head="image")


def batch_i2t(c, codes, text):
    B, T = text.shape
    flat = codes.reshape(B, -1)
    parts = [{"kind": "image", "grid": c["imageGrid"], "role": "source"}, {"kind": "text", "length": T, "role": "target"}]
    tokens = torch.cat([flat, text], 1)
    valid = torch.cat([torch.ones_like(flat, dtype=torch.bool), text != SPECIALS["pad"]], 1)
    return dict(parts=parts, tokens=tokens, valid=valid, start=flat.shape[1], labels=text_labels(text), head="text")


def batch_vqa(c, codes, question, answer):
    B = codes.shape[0]
    flat = codes.reshape(B, -1)
    Tq, Ta = question.shape[1], answer.shape[1]
    parts = [{"kind": "image", "grid": c["imageGrid"], "role": "source"}, {"kind": "text", "length": Tq, "role": "source"},
             {"kind": "text", "length": Ta, "role": "target"}]
    tokens = torch.cat([flat, question, answer], 1)
    valid = torch.cat([torch.ones_like(flat, dtype=torch.bool), question != SPECIALS["pad"], answer != SPECIALS["pad"]], 1)
    return dict(parts=parts, tokens=tokens, valid=valid, start=flat.shape[1] + Tq, labels=text_labels(answer), head="text")


# ---------------------------------------------------------------- model (embeddings.ts, transformer.ts, model.ts)

class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, (h, w) = c["hidden"], c["imageGrid"]
        self.c = c
        self.text_tokens = nn.Embedding(c["textVocab"], D)
        self.image_tokens = nn.Embedding(c["numCodes"] + 1, D)  # row K = [BOI]
        self.text_pos = nn.Embedding(c["maxTextLen"], D)
        self.image_row = nn.Embedding(h, D)
        self.image_col = nn.Embedding(w, D)
        self.token_type = nn.Embedding(4, D)

    def forward(self, parts, tokens):
        h, w = self.c["imageGrid"]
        out, at = [], 0
        for p in parts:
            n = part_len(p)
            ids = tokens[:, at:at + n]
            if p["kind"] == "text":
                e = self.text_tokens(ids) + self.text_pos.weight[:n] + self.token_type.weight[TOKEN_TYPE[("text", p["role"])]]
            elif p["kind"] == "image":
                r = torch.arange(h * w) // w
                col = torch.arange(h * w) % w
                e = self.image_tokens(ids) + self.image_row(r) + self.image_col(col) + self.token_type.weight[TOKEN_TYPE[("image", p["role"])]]
            else:
                e = self.image_tokens(ids) + self.token_type.weight[TOKEN_TYPE[("image", "target")]]
            out.append(e)
            at += n
        return torch.cat(out, 1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c["hidden"]
        self.H = c["heads"]
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x, mask):  # x [B, S, D], mask bool [B, 1, S, S]
        B, S, D = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.H, D // self.H).permute(2, 0, 3, 1, 4)  # [B, H, S, Dh] each
        att = (q @ k.transpose(-2, -1)) / (D // self.H) ** 0.5
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        att = torch.nan_to_num(att, nan=0.0)  # a query with no key outputs zeros (never happens in these layouts)
        return self.proj((att @ v).transpose(1, 2).reshape(B, S, D))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c["hidden"]
        self.fc = nn.Linear(D, c["mlpRatio"] * D)
        self.proj = nn.Linear(c["mlpRatio"] * D, D)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pre = c["preLN"]
        self.ln_1 = nn.LayerNorm(c["hidden"])
        self.attn = Attention(c)
        self.ln_2 = nn.LayerNorm(c["hidden"])
        self.mlp = Mlp(c)

    def forward(self, x, mask):
        if self.pre:
            x = x + self.attn(self.ln_1(x), mask)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, mask))
        return self.ln_2(x + self.mlp(x))


class TiedHead(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))


class ErnieVilg(nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c["hidden"]
        self.c = c
        self.embeddings = Embeddings(c)
        if not c["preLN"]:
            self.ln_emb = nn.LayerNorm(D)
        self.layers = nn.ModuleList([Block(c) for _ in range(c["numLayers"])])
        if c["preLN"]:
            self.ln_f = nn.LayerNorm(D)
        tie = c["tieEmbeddings"]
        self.text_head = TiedHead(c["textVocab"]) if tie else nn.Linear(D, c["textVocab"])
        self.image_head = TiedHead(c["numCodes"]) if tie else nn.Linear(D, c["numCodes"])
        self.zemb_proj = nn.Linear(D, c["embedDim"])

    def hidden(self, b, mode):
        c = self.c
        x = self.embeddings(b["parts"], b["tokens"])
        if not c["preLN"]:
            x = self.ln_emb(x)
        segs = segments_of(b["parts"])
        L = c["numLayers"]
        for i, block in enumerate(self.layers, start=1):
            m = build_dense_mask(segs, layer_kind(i, L, mode), c["convKernel"])  # [S, S]
            x = block(x, (m[None] & b["valid"][:, None, :])[:, None])           # [B, 1, S, S]
        return self.ln_f(x) if c["preLN"] else x

    def head(self, which, h):
        if which == "text":
            w = self.embeddings.text_tokens.weight if self.c["tieEmbeddings"] else self.text_head.weight
            return F.linear(h, w, self.text_head.bias)
        w = self.embeddings.image_tokens.weight[: self.c["numCodes"]] if self.c["tieEmbeddings"] else self.image_head.weight
        return F.linear(h, w, self.image_head.bias)

    def forward(self, b, mode):
        hid = self.hidden(b, mode)
        P = b["labels"].shape[1]
        logits = self.head(b["head"], hid[:, b["start"]:b["start"] + P])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["labels"].reshape(-1), ignore_index=IGNORE)
        return logits, loss, hid

    def zemb(self, b, hid):
        at = 0
        for p in b["parts"]:
            if p["kind"] == "image":
                break
            at += part_len(p)
        h, w = self.c["imageGrid"]
        return self.zemb_proj(hid[:, at:at + h * w].reshape(hid.shape[0], h, w, -1))


# ---------------------------------------------------------------- fixtures

def f32(x):
    return x.float().double()


def randomise(m, gen):
    """Weights large enough that every path matters (the TS init's std 0.02 would hide mistakes in round-off)."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.split(".")[-2].startswith("ln"):
                v = (1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=gen)
            elif name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=gen)
            elif name.startswith("embeddings."):
                v = 0.5 * torch.randn(p.shape, generator=gen)
            else:
                v = torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5
            p.copy_(f32(v))


def rows(caps, T):
    out = torch.full((len(caps), T), SPECIALS["pad"], dtype=torch.long)
    for i, cap in enumerate(caps):
        seq = [SPECIALS["cls"], *cap, SPECIALS["sep"]]
        out[i, :len(seq)] = torch.tensor(seq)
    return out


def inputs(c, gen):
    V, K = c["textVocab"], c["numCodes"]
    word = lambda n: [5 + int(v) for v in torch.randint(0, V - 5, (n,), generator=gen)]  # no specials inside
    text = rows([word(4), word(1)], 6)            # T = 6 = maxTextLen; row 1 padded
    question = rows([word(2), word(3)], 5)        # T_q = 5
    answer = rows([word(1), word(2)], 4)          # T_a = 4
    codes = torch.randint(0, K, (2, *c["imageGrid"]), generator=gen)
    return text, codes, question, answer


def grads(m, loss, out, key):
    m.zero_grad()
    loss.backward()
    for name, p in m.named_parameters():
        out[f"grad.{key}.{name}"] = (p.grad if p.grad is not None else torch.zeros_like(p)).float()


def write(path, m, tensors, c):
    keys = list(m.state_dict().keys())
    meta = {"state_dict_keys": json.dumps(keys), "config": json.dumps(c), "specials": json.dumps(SPECIALS),
            "generator": "reference/vilg.py"}
    save_safetensors(path, tensors, meta)
    print(f"  {sum(p.numel() for p in m.parameters())} parameters, {len(keys)} state-dict keys")


def fixture(c, name, modes, directions, extras):
    gen = torch.Generator().manual_seed(20261128)
    m = ErnieVilg(c)
    randomise(m, gen)
    text, codes, question, answer = inputs(c, gen)
    out = {f"init.{k}": v.float() for k, v in m.state_dict().items()}
    out.update({"input.text": text.int(), "input.codes": codes.int(), "input.question": question.int(), "input.answer": answer.int()})
    builders = {"t2i": lambda: batch_t2i(c, text, codes), "i2t": lambda: batch_i2t(c, codes, text),
                "vqa": lambda: batch_vqa(c, codes, question, answer)}
    for mode in modes:
        for d in directions:
            b = builders[d]()
            logits, loss, _ = m(b, mode)
            out[f"out.{mode}.{d}.logits"] = logits.float()
            out[f"out.{mode}.{d}.loss"] = loss.detach().reshape(1).float()
            out[f"out.{mode}.{d}.labels"] = b["labels"].int()
            grads(m, loss, out, f"{mode}.{d}")
            print(f"  {mode} {d}: loss {loss.item():.6f}, logits {tuple(logits.shape)}")
    if "e2e" in extras:  # end-to-end: the t2i pass's image hidden states → z_emb, with an L2 term against a target
        b = builders["t2i"]()
        target = f32(torch.randn(2, *c["imageGrid"], c["embedDim"], generator=gen))
        logits, loss, hid = m(b, "sparse")
        z = m.zemb(b, hid)
        total = loss + ((z - target) ** 2).mean()
        out["input.e2e.target"] = target.float()
        out["out.sparse.e2e.zemb"] = z.float()
        out["out.sparse.e2e.loss"] = total.detach().reshape(1).float()
        grads(m, total, out, "sparse.e2e")
        print(f"  e2e: loss {total.item():.6f}, z_emb {tuple(z.shape)}")
    if "joint" in extras:  # w_t2i·L_t2i + w_i2t·L_i2t + w_vqa·L_vqa, weights 0.7 / 1.3 / 0.5
        total = sum(w * m(builders[d](), "sparse")[1] for d, w in (("t2i", 0.7), ("i2t", 1.3), ("vqa", 0.5)))
        out["out.sparse.joint.loss"] = total.detach().reshape(1).float()
        grads(m, total, out, "sparse.joint")
        print(f"  joint: loss {total.item():.6f}")
    write(os.path.join(OUT_DIR, f"tiny-{name}.safetensors"), m, out, c)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "tiny.json"), "w") as f:
        json.dump({"config": TINY, "specials": SPECIALS}, f, indent=2)
        f.write("\n")
    print("tiny-preln (pre-LN, untied heads)")
    fixture(TINY, "preln", ("dense", "sparse"), ("t2i", "i2t", "vqa"), ("e2e", "joint"))
    print("tiny-postln-tied (post-LN, tied heads)")
    fixture({**TINY, "preLN": False, "tieEmbeddings": True}, "postln-tied", ("sparse",), ("t2i", "i2t"), ())


if __name__ == "__main__":
    main()
