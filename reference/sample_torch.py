#!/usr/bin/env python3
"""PyTorch side of ERNIE-ViLG generation (issue 6, docs/decoding.md → src/models/vilg/generate.ts): a KV-cached
sampler for reference/vilg.py's ErnieVilg, the same decoders without a cache (one full forward per step, the
baseline), the golden fixture for the TypeScript decoding test, and a JSON-lines worker for the generation benchmark.

Regenerate the fixture with (float64, the tiny config, the pre-LN weights init.<name> of tiny-preln.safetensors):
    /usr/bin/python3 reference/sample_torch.py --fixture
  test/fixtures/vilg/sample.json   for attention 'sparse' and 'dense': the inputs (text rows, codes, question of
                                   tiny-preln.safetensors), greedy t2i codes + row 0's per-step logits [n·K],
                                   t2i codes drawn with τ 1, top-k 5, top-p 0.9 from the stored uniforms [B, n],
                                   captions of the two caption grids CAPTION_CODES (greedy; beam k 3 α 1; beam k 3 α 1
                                   noRepeatNgram 2; maxLen = maxTextLen),
                                   a greedy VQA answer, and log P(text | image) of both (codes, text) pairs
The script asserts that the cached and the uncached decoders pick the same tokens with logits within 1e-9 at
every step, that the full forward reproduces tiny-preln.safetensors' logits, and that the log-likelihood of a
greedy caption that ended at [SEP] equals its greedy logprob.

Worker (JSON lines; the caller starts it with OPENBLAS_CORETYPE=Cooperlake, torch threads = VILG_TORCH_THREADS):
    /usr/bin/python3 reference/sample_torch.py --worker
  stdin {"cmd": "setup", "model_dir": DIR}          DIR/config.json ({"format", "version", "mode", "specials",
                                                    "model": config}) + DIR/model.safetensors, float32
                                                    -> {"ok": true, "params": P, "threads": t}
  stdin {"cmd": "t2i", "text": [[ids]], "n": N, "kv_cache": bool, "reps": R, "warmup": W}
        greedy codes for N candidates of the one prompt (a batch of N)  -> {"ms": [R], "codes": [N·h·w, last rep]}
  stdin {"cmd": "caption", "codes": [h·w], "beams": k, "kv_cache": bool, "max_len": T, "reps": R, "warmup": W}
        beams 1 = greedy, else beam search (α 1, no n-gram ban)      -> {"ms": [R], "tokens": [ids, no [SEP]]}
  stdin {"cmd": "quit"}
Everything runs under torch.no_grad() in float32 (the fixture in float64). Masks depend only on the layout, so
they are built once per layout and cached (a real sampler precomputes them) - for the cached decoder's own
masks and, through a patched vilg.build_dense_mask as in reference/bench_train.py, for the full forwards.

KV cache (spec "KV cache"): per layer a [B, H, S, Dh] key and value buffer of the whole layout. The prefill feeds
the prefix (the source and the first target token: [BOI] or [CLS]) at once, then each step feeds one position.
New query rows use rows [at, at + s) of their layer's dense mask restricted to the keys [0, at + s), all already
cached (targets are causal, sources are fed whole), and padding keys are masked. The per-position embeddings are
vilg.Embeddings' terms summed in its order, so the cached and the full pass see bitwise equal inputs.
Legend: B batch (rows, candidates or live beams), S layout length, s new positions, D hidden, H heads, Dh = D/H,
C classes of the head (K codes or V text ids), T text positions, n = h·w codes.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vilg_masks  # noqa: E402
import vilg  # noqa: E402  (sets the default dtype to float64 on import; the worker resets it to float32)

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vilg")
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


# ---------------------------------------------------------------- fixture

def r9(x):
    """Rounded to 9 significant digits (numbers and nested lists)."""
    if isinstance(x, (list, tuple)):
        return [r9(v) for v in x]
    return float(f"{x:.9g}")


def close(a, b):
    """The same decoder result: equal ids and structure, floats within 1e-9."""
    if torch.is_tensor(a):
        return torch.equal(a, b)
    if isinstance(a, float):
        return abs(a - b) < 1e-9
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return a == b


def both(model, layout, mode, run):
    """Runs a decoder with the cached and the uncached stepper; asserts the same result and logits within 1e-9."""
    cs, fs = CachedStepper(model, layout, mode, record=True), FullStepper(model, layout, mode, record=True)
    a, b = run(cs), run(fs)
    assert len(cs.trace) == len(fs.trace), (len(cs.trace), len(fs.trace))
    diff = max((float((x - y).abs().max()) for x, y in zip(cs.trace, fs.trace)), default=0.0)
    assert diff < 1e-9, f"cached vs uncached logits differ by {diff}"
    assert close(a, b), "cached and uncached decoders disagree"
    both.worst = max(both.worst, diff)
    both.steps += len(cs.trace)
    return a, cs.trace


both.worst, both.steps = 0.0, 0


def greedy_margin(trace, banned=()):
    """Smallest gap between the best and second-best allowed logit over every row of every step (tie risk)."""
    g = float("inf")
    for t in trace:
        x = t.clone()
        if banned:
            x[:, list(banned)] = float("-inf")
        top = x.topk(2, -1).values                                                      # [B, 2]
        g = min(g, float((top[:, 0] - top[:, 1]).min()))
    return g


# Caption grids [2, n] for the tiny weights, picked from seeded random grids so that the cases discriminate: grid 0's
# greedy, beam and beam-with-noRepeatNgram-2 captions all differ (both attentions); grid 1's greedy caption stops
# at [SEP] after one token while its beam search runs to maxLen − 2 tokens without [SEP].
CAPTION_CODES = [[4, 5, 6, 2, 12, 11, 5, 11, 7, 13, 8, 11], [5, 11, 12, 8, 15, 9, 11, 5, 15, 0, 0, 1]]


def fragile_draws(trace, uniforms, temperature, top_k, top_p, eps=1e-5):
    """Draws whose pick changes when u moves by ±eps (a float32 implementation could land on the other side)."""
    bad = 0
    for j, t in enumerate(trace):
        for i, x in enumerate(t.tolist()):
            u = uniforms[i][j]
            picks = {pick_token(x, temperature, top_k, top_p, min(max(u + d, 0.0), 1 - 1e-12)) for d in (-eps, 0.0, eps)}
            bad += len(picks) > 1
    return bad


def fixture_case(m, mode, text, codes, question, sp, uniforms):
    c = m.c
    n = c["imageGrid"][0] * c["imageGrid"][1]
    T = c["maxTextLen"]
    out = {}
    # t2i greedy: codes of both rows, per-step logits of row 0
    lay = text_to_image_layout(c, text)
    g, trace = both(m, lay, mode, lambda st: decode_codes(st, n))
    out["t2i"] = {"greedy": {"codes": g.tolist(), "logitsRow0": r9(torch.cat([t[0] for t in trace]).tolist())}}
    print(f"  {mode} t2i greedy: {g.tolist()}  (min top-2 logit gap {greedy_margin(trace):.3g})")
    smp, trace = both(m, lay, mode, lambda st: decode_codes(st, n, 1.0, 5, 0.9, uniforms))
    out["t2i"]["sampled"] = {"temperature": 1, "topK": 5, "topP": 0.9, "uniforms": uniforms, "codes": smp.tolist()}
    print(f"  {mode} t2i sampled (τ 1, top-k 5, top-p 0.9): {smp.tolist()}  (fragile draws {fragile_draws(trace, uniforms, 1.0, 5, 0.9)})")
    # captions of both caption grids
    banned = (sp["pad"], sp["cls"])
    flat = torch.tensor(CAPTION_CODES, dtype=torch.long)                                # [2, n]
    lay = image_to_text_layout(c, flat, T, sp)
    greedy, trace = both(m, lay, mode, lambda st: decode_text_greedy(st, T, sp))
    cap = {"maxLen": T, "greedy": [{"tokens": r["tokens"], "logprob": r9(r["logprob"])} for r in greedy]}
    print(f"  {mode} captions greedy: {[(r['tokens'], round(r['logprob'], 4)) for r in greedy]}  (gap {greedy_margin(trace, banned):.3g})")
    for key, ngram in (("beam", 0), ("beamNoRepeat", 2)):
        res = []
        for i in range(flat.shape[0]):
            one = image_to_text_layout(c, flat[i:i + 1], T, sp)
            r, _ = both(m, one, mode, lambda st: decode_text_beam(st, T, sp, 3, 1.0, ngram))
            res.append({"tokens": r["tokens"], "logprob": r9(r["logprob"]), "score": r9(r["score"])})
        cap[key] = {"beams": 3, "lengthPenalty": 1, "noRepeatNgram": ngram, "results": res}
        print(f"  {mode} captions {key}: {[(r['tokens'], r['logprob'], r['score']) for r in res]}")
    out["caption"] = cap
    # the greedy beam-1 search is the greedy decoder
    for i in range(flat.shape[0]):
        r = decode_text_beam(CachedStepper(m, image_to_text_layout(c, flat[i:i + 1], T, sp), mode), T, sp, 1)
        assert r["tokens"] == greedy[i]["tokens"] and abs(r["logprob"] - greedy[i]["logprob"]) < 1e-12, (r, greedy[i])
    # VQA greedy on question row 0 with image 0 of the inputs
    lay = vqa_layout(c, codes.reshape(codes.shape[0], -1)[:1], question[:1], T, sp)
    ans, trace = both(m, lay, mode, lambda st: decode_text_greedy(st, T, sp))
    out["vqa"] = {"image": 0, "question": 0, "maxLen": T, "tokens": ans[0]["tokens"], "logprob": r9(ans[0]["logprob"])}
    print(f"  {mode} vqa greedy: {ans[0]['tokens']} logprob {ans[0]['logprob']:.6f}  (gap {greedy_margin(trace, banned):.3g})")
    # rerank: log P(text | image) of the pairs (codes i, text i)
    ll = text_loglik(m, mode, codes, text)
    out["rerank"] = {"pairs": [[0, 0], [1, 1]], "logLikelihood": r9(ll.tolist())}
    print(f"  {mode} rerank log P(text | image): {ll.tolist()}")
    # consistency: a greedy caption that ended at [SEP] scores its greedy logprob under the one-shot forward
    grids = flat.reshape(-1, *c["imageGrid"])                                           # [2, h, w]
    for i, r in enumerate(greedy):
        if len(r["tokens"]) < T - 2:
            rows = vilg.rows([r["tokens"]], T)                                          # [1, T]
            one = float(text_loglik(m, mode, grids[i:i + 1], rows)[0])
            assert abs(one - r["logprob"]) < 1e-9, (one, r["logprob"])
    return out


def fixture():
    torch.set_default_dtype(torch.float64)
    with open(os.path.join(FIXTURE_DIR, "tiny.json")) as f:
        tiny = json.load(f)
    c0, sp = tiny["config"], tiny["specials"]
    st = load_safetensors(os.path.join(FIXTURE_DIR, "tiny-preln.safetensors"))
    state = {k[len("init."):]: v.double() for k, v in st.items() if k.startswith("init.")}
    text, codes, question = st["input.text"].long(), st["input.codes"].long(), st["input.question"].long()
    n = c0["imageGrid"][0] * c0["imageGrid"][1]
    gen = torch.Generator().manual_seed(20261206)
    uniforms = r9(torch.rand(text.shape[0], n, generator=gen, dtype=torch.float64).tolist())  # [B, n], exactly as stored
    doc = {"generator": "reference/sample_torch.py --fixture", "spec": "docs/decoding.md",
           "weights": "tiny-preln.safetensors (init.<name>, float64 compute)", "config": c0, "specials": sp,
           "notes": {"inputs": "text/codes/question: input.* of tiny-preln.safetensors (codes flat [B, h*w]); captionCodes: the caption grids",
                     "t2i": "greedy.codes and sampled.codes [B, n] for inputs.text; logitsRow0 [n*K] = row 0's logits at steps 0..n-1; "
                            "sampled: uniforms[row][step]",
                     "caption": "per captionCodes row, maxLen positions: greedy {tokens, logprob}; beam results {tokens, logprob = raw score, "
                                "score = normalised}",
                     "vqa": "greedy answer for inputs.codes[image] + inputs.question[question]",
                     "rerank": "log P(text | image) for the pairs [codes row, text row] of inputs (i2t forward, targets t1..tm and [SEP])"},
           "inputs": {"text": text.tolist(), "codes": codes.reshape(codes.shape[0], -1).tolist(), "question": question.tolist(),
                      "captionCodes": CAPTION_CODES},
           "cases": {}}
    with torch.no_grad():
        for mode in ("sparse", "dense"):
            c = {**c0, "attention": mode}
            m = load_model(c, state, torch.float64)
            # the loaded model reproduces the parity fixture's logits (stored as F32)
            for d, b in (("t2i", vilg.batch_t2i(c, text, codes)), ("i2t", vilg.batch_i2t(c, codes, text)),
                         ("vqa", vilg.batch_vqa(c, codes, question, st["input.answer"].long()))):
                ref = st[f"out.{mode}.{d}.logits"].double()
                got = m(b, mode)[0]
                assert float((got - ref).abs().max()) < 1e-5, f"{mode} {d}: the model does not reproduce tiny-preln's logits"
            doc["cases"][mode] = fixture_case(m, mode, text, codes, question, sp, uniforms)
    path = os.path.join(FIXTURE_DIR, "sample.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"cached vs uncached: {both.steps} steps, max |Δlogit| {both.worst:.3g}")
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


# ---------------------------------------------------------------- worker

class Worker:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            doc = json.load(f)
        if doc.get("format") != "ernie-vilg-model":
            raise ValueError(f"{model_dir}/config.json: format {doc.get('format')!r}, expected 'ernie-vilg-model'")
        self.c, self.sp = doc["model"], doc["specials"]
        self.mode = self.c["attention"]
        self.m = load_model(self.c, load_safetensors(os.path.join(model_dir, "model.safetensors")), torch.float32)

    def t2i(self, req):
        rows = req["text"]
        N = req["n"]
        if len(rows) != 1:
            raise ValueError(f"t2i: text must hold one row (the prompt), got {len(rows)}")
        if not 1 <= len(rows[0]) <= self.c["maxTextLen"]:
            raise ValueError(f"t2i: the text row has {len(rows[0])} ids, must be 1..maxTextLen {self.c['maxTextLen']}")
        text = torch.tensor(rows, dtype=torch.long).expand(N, -1).contiguous()         # [N, T]
        lay = text_to_image_layout(self.c, text)
        h, w = self.c["imageGrid"]
        return lambda: decode_codes(stepper(self.m, lay, self.mode, req["kv_cache"]), h * w).reshape(-1).tolist()

    def caption(self, req):
        T, k = req.get("max_len", self.c["maxTextLen"]), req.get("beams", 1)
        if not 2 <= T <= self.c["maxTextLen"]:
            raise ValueError(f"caption: max_len {T} must be in [2, maxTextLen {self.c['maxTextLen']}]")
        codes = torch.tensor([req["codes"]], dtype=torch.long)                           # [1, n]
        lay = image_to_text_layout(self.c, codes, T, self.sp)
        if k == 1:
            return lambda: decode_text_greedy(stepper(self.m, lay, self.mode, req["kv_cache"]), T, self.sp)[0]["tokens"]
        return lambda: decode_text_beam(stepper(self.m, lay, self.mode, req["kv_cache"]), T, self.sp, k)["tokens"]


def timed(fn, reps, warmup):
    for _ in range(warmup):  # untimed, as on the Node side
        fn()
    ms, res = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        res = fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms, res


def worker():
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(int(os.environ.get("VILG_TORCH_THREADS", os.cpu_count() or 1)))
    torch.manual_seed(0)
    w = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if req["cmd"] == "quit":
                break
            with torch.no_grad():
                if req["cmd"] == "setup":
                    w = Worker(req["model_dir"])
                    out = {"ok": True, "params": sum(p.numel() for p in w.m.parameters()), "threads": torch.get_num_threads()}
                elif req["cmd"] in ("t2i", "caption"):
                    if w is None:
                        raise RuntimeError(f"{req['cmd']} before setup")
                    fn = w.t2i(req) if req["cmd"] == "t2i" else w.caption(req)
                    ms, res = timed(fn, req.get("reps", 1), req.get("warmup", 0))
                    out = {"ms": ms, ("codes" if req["cmd"] == "t2i" else "tokens"): res}
                else:
                    out = {"error": f"unknown cmd {req['cmd']}"}
        except Exception as e:  # report, never hang the caller
            out = {"error": repr(e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--fixture", action="store_true", help="write test/fixtures/vilg/sample.json")
    g.add_argument("--worker", action="store_true", help="JSON-lines benchmark worker on stdin/stdout")
    a = ap.parse_args()
    if a.fixture:
        torch.set_num_threads(int(os.environ.get("VILG_TORCH_THREADS", 1)))
        fixture()
    else:
        worker()


if __name__ == "__main__":
    main()
