#!/usr/bin/env python3
"""ERNIE-ViLG decoding in PyTorch (docs/decoding.md), shared by reference/sample_torch.py's fixture and worker:
model loading from safetensors, the three layouts (text → image, image → text, VQA), a full-forward stepper and a
KV-cached stepper over reference/vilg.py's ErnieVilg, the token picker (temperature, top-k, top-p, bans) and the
decoders (codes; greedy and beam-search text; log P(text | image)).

KV cache (spec "KV cache"): per layer a [B, H, S, Dh] key and value buffer of the whole layout. The prefill feeds
the prefix (the source and the first target token: [BOI] or [CLS]) at once, then each step feeds one position.
New query rows use rows [at, at + s) of their layer's dense mask restricted to the keys [0, at + s), all already
cached (targets are causal, sources are fed whole), and padding keys are masked. The per-position embeddings are
vilg.Embeddings' terms summed in its order, so the cached and the full pass see bitwise equal inputs.
Legend: B batch (rows, candidates or live beams), S layout length, s new positions, D hidden, H heads, Dh = D/H,
C classes of the head (K codes or V text ids), T text positions, n = h·w codes.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vilg_masks  # noqa: E402
import vilg  # noqa: E402  (sets the default dtype to float64 on import; the worker resets it to float32)

cached_mask = vilg_masks.install_mask_cache(vilg)  # masks built once per layout (see vilg_masks.py)

# ---------------------------------------------------------------- safetensors reader

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "I64": torch.int64, "I32": torch.int32}


def load_safetensors(path):
    """{name: tensor} of a safetensors file (F64 / F32 / I64 / I32; the safetensors package is not installed here)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    base, out = 8 + n, {}
    for name, e in header.items():
        if e["dtype"] not in _DTYPES:
            raise TypeError(f"{path}: tensor {name} has dtype {e['dtype']}, expected one of {sorted(_DTYPES)}")
        a, b = e["data_offsets"]
        buf = bytearray(raw[base + a:base + b])
        out[name] = torch.frombuffer(buf, dtype=_DTYPES[e["dtype"]]).reshape(e["shape"]) if b > a else torch.zeros(e["shape"], dtype=_DTYPES[e["dtype"]])
    return out


def load_model(c, state, dtype):
    """ErnieVilg(c) in `dtype`, eval mode, weights from a state dict with vilg.py's names (strict)."""
    m = vilg.ErnieVilg(c).to(dtype).eval()
    m.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    return m


# ---------------------------------------------------------------- layouts

class Layout:
    """One decoding problem: the full-length parts, the prefix tokens [B, P0] and validity (ending with the
    first target token), the head read at the last fed position, and the placeholder the full forward puts in
    not-yet-generated target positions (any value: they cannot reach earlier positions)."""

    def __init__(self, parts, prefix, prefix_valid, head, placeholder):
        self.parts = parts
        self.prefix = prefix                                                   # [B, P0] long
        self.prefix_valid = prefix_valid                                       # [B, P0] bool
        self.head = head
        self.placeholder = placeholder
        self.S = sum(vilg.part_len(p) for p in parts)


def text_to_image_layout(c, text):
    """[text T (source) | [BOI] | z1..zn (target)] for text rows [B, T]."""
    B, T = text.shape
    parts = [{"kind": "text", "length": T, "role": "source"}, {"kind": "boi"}, {"kind": "image", "grid": c["imageGrid"], "role": "target"}]
    prefix = torch.cat([text, torch.full((B, 1), c["numCodes"], dtype=torch.long)], 1)       # [B, T + 1]
    valid = torch.cat([text != vilg.SPECIALS["pad"], torch.ones(B, 1, dtype=torch.bool)], 1)  # [B, T + 1]
    return Layout(parts, prefix, valid, "image", 0)


def image_to_text_layout(c, codes, max_len, specials):
    """[z1..zn (source) | [CLS] t.. (target, max_len positions)] for codes [B, n]."""
    B, n = codes.shape
    parts = [{"kind": "image", "grid": c["imageGrid"], "role": "source"}, {"kind": "text", "length": max_len, "role": "target"}]
    prefix = torch.cat([codes, torch.full((B, 1), specials["cls"], dtype=torch.long)], 1)     # [B, n + 1]
    return Layout(parts, prefix, torch.ones(B, n + 1, dtype=torch.bool), "text", specials["sep"])


def vqa_layout(c, codes, question, max_len, specials):
    """[z1..zn | question Tq (source) | [CLS] a.. (target, max_len positions)] for codes [B, n], question rows [B, Tq]."""
    B, n = codes.shape
    Tq = question.shape[1]
    parts = [{"kind": "image", "grid": c["imageGrid"], "role": "source"}, {"kind": "text", "length": Tq, "role": "source"},
             {"kind": "text", "length": max_len, "role": "target"}]
    prefix = torch.cat([codes, question, torch.full((B, 1), specials["cls"], dtype=torch.long)], 1)  # [B, n + Tq + 1]
    valid = torch.cat([torch.ones(B, n, dtype=torch.bool), question != specials["pad"], torch.ones(B, 1, dtype=torch.bool)], 1)
    return Layout(parts, prefix, valid, "text", specials["sep"])


def layout_key(layout):
    return json.dumps(layout.parts, sort_keys=True)


# ---------------------------------------------------------------- steppers: prefill, then one position per step

class FullStepper:
    """No cache: every call runs vilg's full forward over the whole layout (not-yet-generated positions hold the
    placeholder) and reads the head at the last fed position - the baseline."""

    def __init__(self, model, layout, mode, record=False):
        self.m, self.L, self.mode = model, layout, mode
        B, P0 = layout.prefix.shape
        self.tokens = torch.full((B, layout.S), layout.placeholder, dtype=torch.long)  # [B, S]
        self.tokens[:, :P0] = layout.prefix
        self.valid = torch.ones(B, layout.S, dtype=torch.bool)                          # [B, S]
        self.valid[:, :P0] = layout.prefix_valid
        self.at = P0                                                                    # next position to feed
        self.trace = [] if record else None

    def _logits(self):
        b = {"parts": self.L.parts, "tokens": self.tokens, "valid": self.valid}
        hid = self.m.hidden(b, self.mode)                                               # [B, S, D]
        out = self.m.head(self.L.head, hid[:, self.at - 1])                             # [B, C]
        if self.trace is not None:
            self.trace.append(out.clone())
        return out

    def prefill(self):
        return self._logits()

    def step(self, tok):  # tok [B] long
        self.tokens[:, self.at] = tok
        self.at += 1
        return self._logits()

    def reorder(self, idx):  # idx [B'] long: new row i continues old row idx[i]
        self.tokens = self.tokens.index_select(0, idx)
        self.valid = self.valid.index_select(0, idx)


class CachedStepper:
    """KV cache: per layer key / value buffers [B, H, S, Dh]; each call runs the blocks over the new positions only."""

    def __init__(self, model, layout, mode, record=False, mask_cache=None):
        self.m, self.L, self.c = model, layout, model.c
        c = self.c
        B, P0 = layout.prefix.shape
        D, H, S = c["hidden"], c["heads"], layout.S
        self.valid = torch.ones(B, S, dtype=torch.bool)                                 # [B, S]
        self.valid[:, :P0] = layout.prefix_valid
        segs = vilg.segments_of(layout.parts)
        kinds = [vilg.layer_kind(i, c["numLayers"], mode) for i in range(1, c["numLayers"] + 1)]
        self.masks = [cached_mask(segs, k, c["convKernel"]) for k in kinds]            # numLayers × [S, S] bool
        self.plan = embedding_plan(model.embeddings, layout.parts)                      # is_text [S], 3 × [S, D]
        dt = model.embeddings.text_tokens.weight.dtype
        self.k = [torch.zeros(B, H, S, D // H, dtype=dt) for _ in model.layers]         # numLayers × [B, H, S, Dh]
        self.v = [torch.zeros(B, H, S, D // H, dtype=dt) for _ in model.layers]         # numLayers × [B, H, S, Dh]
        self.at = 0
        self.trace = [] if record else None

    def _run(self, tokens):  # tokens [B, s] at positions [at, at + s) → logits of the last one [B, C]
        m, at = self.m, self.at
        s = tokens.shape[1]
        x = embed(m.embeddings, self.plan, tokens, at)                                  # [B, s, D]
        if not self.c["preLN"]:
            x = m.ln_emb(x)
        for i, block in enumerate(m.layers):
            mask = (self.masks[i][at:at + s, :at + s][None] & self.valid[:, None, :at + s])[:, None]  # [B, 1, s, at + s]
            x = block_step(block, x, self.k[i], self.v[i], at, mask)                   # [B, s, D]
        last = x[:, -1]                                                                 # [B, D]
        if self.c["preLN"]:
            last = m.ln_f(last)
        self.at = at + s
        out = m.head(self.L.head, last)                                                 # [B, C]
        if self.trace is not None:
            self.trace.append(out.clone())
        return out

    def prefill(self):
        return self._run(self.L.prefix)

    def step(self, tok):  # tok [B] long
        return self._run(tok[:, None])

    def reorder(self, idx):  # idx [B'] long
        self.valid = self.valid.index_select(0, idx)
        self.k = [t.index_select(0, idx) for t in self.k]
        self.v = [t.index_select(0, idx) for t in self.v]


def embedding_plan(emb, parts):
    """Per layout position: is_text [S] bool and the three terms vilg.Embeddings adds to the token embedding, in
    its order - text: pos, type, 0; image: row, col, type; [BOI]: type, 0, 0 - so ((tok + a) + b) + c is bitwise
    the full pass's sum."""
    h, w = emb.c["imageGrid"]
    D = emb.text_pos.weight.shape[1]
    tt = emb.token_type.weight                                                          # [4, D]
    is_text, a, b, cc = [], [], [], []
    for p in parts:
        n = vilg.part_len(p)
        z = torch.zeros(n, D, dtype=tt.dtype)                                           # [n, D]
        if p["kind"] == "text":
            is_text.append(torch.ones(n, dtype=torch.bool))
            a.append(emb.text_pos.weight[:n])
            b.append(tt[vilg.TOKEN_TYPE[("text", p["role"])]].expand(n, D))
            cc.append(z)
        elif p["kind"] == "image":
            r = torch.arange(h * w) // w                                                # [n]
            col = torch.arange(h * w) % w                                               # [n]
            is_text.append(torch.zeros(n, dtype=torch.bool))
            a.append(emb.image_row(r))
            b.append(emb.image_col(col))
            cc.append(tt[vilg.TOKEN_TYPE[("image", p["role"])]].expand(n, D))
        else:  # [BOI]
            is_text.append(torch.zeros(1, dtype=torch.bool))
            a.append(tt[vilg.TOKEN_TYPE[("image", "target")]][None])
            b.append(z)
            cc.append(z)
    return torch.cat(is_text), torch.cat(a), torch.cat(b), torch.cat(cc)              # [S], [S, D] × 3


def embed(emb, plan, tokens, at):  # tokens [B, s] at positions [at, at + s) → [B, s, D]
    is_text, a, b, c = plan
    s = tokens.shape[1]
    sl = slice(at, at + s)
    V, K1 = emb.text_tokens.weight.shape[0], emb.image_tokens.weight.shape[0]
    tok = torch.where(is_text[sl][None, :, None],
                      F.embedding(tokens.clamp(max=V - 1), emb.text_tokens.weight),
                      F.embedding(tokens.clamp(max=K1 - 1), emb.image_tokens.weight))  # [B, s, D]
    return tok + a[sl] + b[sl] + c[sl]                                                  # [B, s, D]


def attention_step(attn, x, kbuf, vbuf, at, mask):  # x [B, s, D], bufs [B, H, S, Dh], mask [B, 1, s, at + s]
    B, s, D = x.shape
    H = attn.H
    q, k, v = attn.qkv(x).view(B, s, 3, H, D // H).permute(2, 0, 3, 1, 4)              # [B, H, s, Dh] each
    kbuf[:, :, at:at + s] = k
    vbuf[:, :, at:at + s] = v
    K, V = kbuf[:, :, :at + s], vbuf[:, :, :at + s]                                     # [B, H, at + s, Dh]
    att = (q @ K.transpose(-2, -1)) / (D // H) ** 0.5                                   # [B, H, s, at + s]
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    att = torch.nan_to_num(att, nan=0.0)
    return attn.proj((att @ V).transpose(1, 2).reshape(B, s, D))                        # [B, s, D]


def block_step(block, x, kbuf, vbuf, at, mask):  # vilg.Block.forward over the new positions only
    if block.pre:
        x = x + attention_step(block.attn, block.ln_1(x), kbuf, vbuf, at, mask)         # [B, s, D]
        return x + block.mlp(block.ln_2(x))
    x = block.ln_1(x + attention_step(block.attn, x, kbuf, vbuf, at, mask))
    return block.ln_2(x + block.mlp(x))


def stepper(model, layout, mode, kv_cache, record=False):
    return (CachedStepper if kv_cache else FullStepper)(model, layout, mode, record)


# ---------------------------------------------------------------- one logits row → one token

def pick_token(x, temperature, top_k, top_p, u, banned=()):
    """Spec "Text → image": the token drawn from logits x (list of floats) with uniform u in [0, 1): greedy (first
    maximum) when τ = 0 or top-k = 1; else logits/τ, top-k (ties → lower id), nucleus (smallest most-likely prefix
    whose weight reaches p·total), inverse CDF (first kept class whose cumulative weight exceeds u·total), in
    most-likely-first order when top-k/top-p sorted, else id order. Weights exp((x − max)/τ), unnormalised."""
    best = -1
    for i, v in enumerate(x):
        if not math.isfinite(v):
            raise FloatingPointError(f"the model produced a non-finite logit {v} at class {i}")
        if i not in banned and (best < 0 or v > x[best]):
            best = i
    if temperature == 0 or top_k == 1:
        return best
    kept = [i for i in range(len(x)) if i not in banned]
    if (0 < top_k < len(kept)) or top_p < 1:
        kept.sort(key=lambda i: (-x[i], i))
        if top_k > 0:
            kept = kept[:top_k]
    w = [math.exp((x[i] - x[best]) / temperature) for i in kept]
    total = 0.0  # summed left to right, as the cumulative sums below
    for v in w:
        total += v
    if top_p < 1:
        cum, m = 0.0, 0
        while m < len(w) and cum < top_p * total:
            cum += w[m]
            m += 1
        kept, w, total = kept[:m], w[:m], cum
    target, cum = u * total, 0.0
    for i, v in zip(kept, w):
        cum += v
        if target < cum:
            return i
    return kept[-1]


# ---------------------------------------------------------------- decoders (the same code over either stepper)

def decode_codes(st, n, temperature=0.0, top_k=0, top_p=1.0, uniforms=None):
    """Codes [B, n] long: code j is read at position T + j ([BOI], then code j − 1's position)."""
    logits = st.prefill()                                                               # [B, K]
    B = logits.shape[0]
    out = torch.zeros(B, n, dtype=torch.long)                                           # [B, n]
    for j in range(n):
        if temperature == 0 or top_k == 1:
            out[:, j] = logits.argmax(-1)                                               # first maximum
        else:
            rows = logits.tolist()
            out[:, j] = torch.tensor([pick_token(rows[i], temperature, top_k, top_p, float(uniforms[i][j])) for i in range(B)])
        if j + 1 < n:
            logits = st.step(out[:, j])
    return out


def decode_text_greedy(st, max_len, specials):
    """Spec greedy captions: per row (tokens without [SEP], logprob incl. a chosen [SEP]); ≤ max_len − 2 tokens."""
    B = st.L.prefix.shape[0]
    toks, lps, done = [[] for _ in range(B)], [0.0] * B, [False] * B
    logits = st.prefill() if max_len > 2 else None                                      # [B, V]
    for j in range(max_len - 2):
        logp = logits.log_softmax(-1)                                                   # [B, V]
        allowed = logp.clone()
        allowed[:, [specials["pad"], specials["cls"]]] = float("-inf")
        pick = allowed.argmax(-1)                                                       # [B]
        for i in range(B):
            if done[i]:
                continue
            t = int(pick[i])
            lps[i] += float(logp[i, t])
            if t == specials["sep"]:
                done[i] = True
            else:
                toks[i].append(t)
        if all(done) or j + 1 == max_len - 2:
            break
        logits = st.step(pick)
    return [{"tokens": t, "logprob": lp} for t, lp in zip(toks, lps)]


def banned_ngram(tokens, x, n):
    """noRepeatNgram: (last n − 1 tokens) + x already occurs as an n-gram of tokens."""
    if n <= 0 or len(tokens) < n - 1:
        return False
    gram = tuple(tokens[len(tokens) - (n - 1):]) + (x,)
    return any(tuple(tokens[i:i + n]) == gram for i in range(len(tokens) - n + 1))


def decode_text_beam(st, max_len, specials, beams, alpha=1.0, no_repeat=0):
    """Spec beam search over ONE source (the stepper's batch must be 1 at the start) → the best finished
    hypothesis {tokens, logprob (raw score), score (normalised)} and all finished ones in rank order. When the
    step that made maxLen − 2 tokens also brought the finished count to k, the live hypotheses are not added."""
    assert st.L.prefix.shape[0] == 1, "beam search decodes one source at a time"
    k, steps = beams, max_len - 2
    live = [([], 0.0)]                                          # (tokens, score)
    finished = []                                               # (tokens, score, length)
    logits = st.prefill() if steps > 0 else None                # [1, V]
    for step in range(1, steps + 1):
        logp = logits.log_softmax(-1).tolist()                  # [len(live), V]
        cands = []
        for hi, (toks, score) in enumerate(live):
            for x, lp in enumerate(logp[hi]):
                if x in (specials["pad"], specials["cls"]) or banned_ngram(toks, x, no_repeat):
                    continue
                cands.append((score + lp, hi, x))
        cands.sort(key=lambda t: (-t[0], t[1], t[2]))
        new_live, parents = [], []
        for r, (score, hi, x) in enumerate(cands):
            if x == specials["sep"]:
                if r < k:
                    finished.append((live[hi][0], score, len(live[hi][0]) + 1))
                continue
            new_live.append((live[hi][0] + [x], score))
            parents.append(hi)
            if len(new_live) == k:
                break
        live = new_live
        if len(finished) >= k:
            break
        if step == steps:
            finished.extend((t, s, len(t)) for t, s in live)
            break
        st.reorder(torch.tensor(parents, dtype=torch.long))
        logits = st.step(torch.tensor([t[-1] for t, _ in live], dtype=torch.long))
    if not finished:  # max_len 2: no step, the empty text
        finished = [([], 0.0, 0)]
    ranked = sorted(finished, key=lambda f: -f[1] / max(f[2], 1) ** alpha)  # stable: ties keep the finishing order
    res = [{"tokens": t, "logprob": s, "score": s / max(n, 1) ** alpha} for t, s, n in ranked]
    return {**res[0], "finished": res}


def text_loglik(model, mode, codes, text):
    """log P(text | image) per row: Σ over the target tokens t1..tm and [SEP] (not [PAD]) of the i2t forward's
    log-softmax - the rerank score. codes [B, h, w], text [B, T] → [B]."""
    b = vilg.batch_i2t(model.c, codes, text)
    logits, _, _ = model(b, mode)                                                       # [B, T − 1, V]
    labels = b["labels"]                                                                # [B, T − 1]
    keep = labels != vilg.IGNORE
    lp = logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]      # [B, T − 1]
    return (lp * keep).sum(1)                                                           # [B]
