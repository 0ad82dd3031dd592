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

The decoders themselves (layouts, the full and the KV-cached stepper, the token picker, greedy and beam search)
live in reference/vilg_decode.py.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vilg  # noqa: E402  (sets the default dtype to float64 on import; the worker resets it to float32)
from vilg_decode import (  # noqa: E402  (the decoders; installs the mask cache)
    CachedStepper, FullStepper, decode_codes, decode_text_beam, decode_text_greedy, image_to_text_layout, layout_key,
    load_model, load_safetensors, pick_token, stepper, text_loglik, text_to_image_layout, vqa_layout,
)

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vilg")


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
