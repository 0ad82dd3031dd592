#!/usr/bin/env python3
"""Golden values for every engine op, from PyTorch (Debian's python3-torch, run with /usr/bin/python3).

Writes test/fixtures/golden/ops.json: for each case the inputs, the op's attributes, the outputs and the
gradients of loss = sum(out * W) (W random, stored) with respect to every float input. Computed in
float64, so the TypeScript tests can check both their f64 and f32 paths against it.
Layout conventions follow our engine: images NHWC, conv weights OIHW (PyTorch's own), norms over the
last axis / channels-last. Regenerate with:  /usr/bin/python3 reference/make_fixtures.py
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20261128)
torch.set_default_dtype(torch.float64)
CASES = []


def arr(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32, torch.bool):
        return {"shape": list(t.shape), "dtype": "i32", "data": [int(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "f64", "data": [float(v) for v in t.reshape(-1).tolist()]}


def case(name, op, inputs, fn, attrs=None, grad=True):
    """fn maps the (torch) inputs to an output tensor or a tuple whose first element is differentiable."""
    ins = [x.clone().requires_grad_(grad and x.is_floating_point()) for x in inputs]
    out = fn(*ins)
    outs = list(out) if isinstance(out, tuple) else [out]
    entry = {"name": name, "op": op, "attrs": attrs or {}, "inputs": [arr(x) for x in inputs], "outputs": [arr(o) for o in outs]}
    if grad and outs[0].is_floating_point() and any(x.requires_grad for x in ins):
        w = torch.randn(outs[0].shape)
        (outs[0] * w).sum().backward()
        entry["gradWeight"] = arr(w)
        entry["grads"] = [arr(x.grad) if x.grad is not None else None for x in ins]
    CASES.append(entry)


def nhwc(x):  # NCHW -> NHWC
    return x.permute(0, 2, 3, 1)


def nchw(x):  # NHWC -> NCHW
    return x.permute(0, 3, 1, 2)


r = torch.randn
# ---- matmul
case("matmul", "matmul", [r(3, 4), r(4, 5)], lambda a, b: a @ b)
case("matmul_tA_tB", "matmul", [r(4, 3), r(5, 4)], lambda a, b: a.T @ b.T, {"transA": True, "transB": True})
case("matmul_batched", "matmul", [r(2, 3, 4), r(2, 4, 5)], lambda a, b: a @ b)
case("matmul_broadcast_b", "matmul", [r(2, 3, 4), r(4, 5)], lambda a, b: a @ b)
# ---- elementwise
for op, f in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div)]:
    b = r(3, 1) if op != "div" else r(3, 1).abs() + 0.5
    case(f"{op}_broadcast", op, [r(2, 3, 4), b], f)
pos = r(2, 5).abs() + 0.2
for op, f, x in [("neg", torch.neg, r(2, 5)), ("exp", torch.exp, r(2, 5)), ("log", torch.log, pos), ("sqrt", torch.sqrt, pos),
                 ("rsqrt", torch.rsqrt, pos), ("abs", torch.abs, r(2, 5)), ("tanh", torch.tanh, r(2, 5)),
                 ("sigmoid", torch.sigmoid, r(2, 5)), ("relu", torch.relu, r(2, 5)), ("silu", F.silu, r(2, 5)),
                 ("gelu", lambda t: F.gelu(t), r(2, 5) * 2), ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh"), r(2, 5) * 2)]:
    case(op, op, [x], f)
case("pow_3", "pow", [r(2, 5)], lambda t: t ** 3, {"p": 3})
case("pow_half", "pow", [pos], lambda t: t ** 0.5, {"p": 0.5})
# ---- reductions
x = r(2, 3, 4)
case("sum_axis1_keep", "sum", [x], lambda t: t.sum(1, keepdim=True), {"axes": [1], "keepDims": True})
case("sum_axes02", "sum", [x], lambda t: t.sum((0, 2)), {"axes": [0, 2], "keepDims": False})
case("mean_all", "mean", [x], lambda t: t.mean(), {})
case("max_axis2", "max", [x], lambda t: t.max(2).values, {"axis": 2, "keepDims": False})
case("min_axis0", "min", [x], lambda t: t.min(0).values, {"axis": 0, "keepDims": False})
case("argmax_axis1", "argmax", [x], lambda t: t.argmax(1), {"axis": 1}, grad=False)
case("argmin_axis2", "argmin", [x], lambda t: t.argmin(2), {"axis": 2}, grad=False)
# ---- shape
case("permute", "permute", [x], lambda t: t.permute(2, 0, 1), {"dims": [2, 0, 1]})
case("slice", "slice", [x], lambda t: t[:, 1:3], {"axis": 1, "start": 1, "end": 3})
case("expand", "expand", [r(3, 1)], lambda t: t.expand(2, 3, 4), {"shape": [2, 3, 4]})
case("concat", "concat", [r(2, 3), r(2, 2)], lambda a, b: torch.cat([a, b], 1), {"axis": 1})
case("pad", "pad", [r(2, 3)], lambda t: F.pad(t, (2, 1, 1, 0), value=0.5), {"pads": [[1, 0], [2, 1]], "value": 0.5})
# ---- softmax / norms
case("softmax", "softmax", [r(3, 7) * 3], lambda t: torch.softmax(t, -1))
case("log_softmax", "logSoftmax", [r(3, 7) * 3], lambda t: torch.log_softmax(t, -1))
case("layer_norm", "layerNorm", [r(4, 6) * 2 + 1, r(6), r(6)], lambda t, g, b: F.layer_norm(t, (6,), g, b, 1e-5), {"eps": 1e-5})
gx = r(2, 3, 3, 8)  # NHWC
case("group_norm", "groupNorm", [gx, r(8), r(8)], lambda t, g, b: nhwc(F.group_norm(nchw(t), 4, g, b, 1e-6)), {"groups": 4, "eps": 1e-6})
# ---- embedding
ids = torch.tensor([[1, 3, 3], [0, 4, 1]])
case("embedding", "embedding", [ids, r(5, 4)], lambda i, w: F.embedding(i, w))
# ---- conv (NHWC activations, OIHW weights)
cx = r(2, 5, 5, 3)
case("conv2d_s1_p1_bias", "conv2d", [cx, r(4, 3, 3, 3), r(4)],
     lambda t, w, b: nhwc(F.conv2d(nchw(t), w, b, 1, 1)), {"stride": 1, "padding": 1})
case("conv2d_s2_asym", "conv2d", [r(2, 6, 6, 3), r(4, 3, 3, 3)],
     lambda t, w: nhwc(F.conv2d(F.pad(nchw(t), (0, 1, 0, 1)), w, None, 2, 0)), {"stride": 2, "padding": [0, 0, 1, 1]})
case("conv2d_1x3", "conv2d", [cx, r(2, 3, 1, 3)], lambda t, w: nhwc(F.conv2d(nchw(t), w, None, 1, (0, 1))), {"stride": 1, "padding": [0, 1]})
case("upsample_nearest2x", "upsampleNearest2x", [r(1, 2, 3, 2)], lambda t: nhwc(F.interpolate(nchw(t), scale_factor=2, mode="nearest")))
# ---- losses
logits = r(5, 6)
tg = torch.tensor([0, 5, 2, -100, 3])
case("cross_entropy", "crossEntropy", [logits, tg], lambda l, t: F.cross_entropy(l, t, ignore_index=-100), {"ignoreIndex": -100})
case("cross_entropy_ls", "crossEntropy", [logits, tg], lambda l, t: F.cross_entropy(l, t, ignore_index=-100, label_smoothing=0.1),
     {"ignoreIndex": -100, "labelSmoothing": 0.1})
case("cross_entropy_sum_3d", "crossEntropy", [r(2, 3, 4), torch.tensor([[0, 1, 3], [2, 2, 0]])],
     lambda l, t: F.cross_entropy(l.reshape(-1, 4), t.reshape(-1), reduction="sum"), {"reduction": "sum"})
case("mse", "mseLoss", [r(3, 4), r(3, 4)], lambda a, b: F.mse_loss(a, b))
case("l1", "l1Loss", [r(3, 4), r(3, 4)], lambda a, b: F.l1_loss(a, b))
# ---- select
cond = (r(3, 4) > 0).to(torch.int32)
case("where", "where", [cond, r(3, 4), r(1, 4)], lambda c, a, b: torch.where(c.bool(), a, b))
case("masked_fill", "maskedFill", [r(3, 4), (r(1, 4) > 0).to(torch.int32)], lambda t, m: t.masked_fill(m.bool(), -2.5), {"value": -2.5})
case("topk", "topk", [r(3, 6)], lambda t: tuple(torch.topk(t, 3, -1)), {"k": 3})
# ---- attention (mask: 1 = may attend; causal)
B, H, S, D = 2, 2, 4, 3
q, k, v = r(B, H, S, D), r(B, H, S, D), r(B, H, S, D)
causal = torch.tril(torch.ones(S, S, dtype=torch.int32))


def sdpa(q, k, v, m):
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(m == 0, float("-inf"))
    return torch.softmax(s, -1) @ v


case("attention_causal", "attention", [q, k, v, causal], sdpa)
case("attention_dense", "attention", [q, k, v, torch.ones(S, S, dtype=torch.int32)], sdpa)
# ---- vector quantization
z, cb = r(7, 3), r(5, 3)
case("codebook_argmin", "codebookArgmin", [z, cb], lambda z, c: ((z[:, None, :] - c[None]) ** 2).sum(-1).argmin(1), grad=False)

path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "golden", "ops.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump({"generator": "reference/make_fixtures.py", "torch": torch.__version__, "cases": CASES}, f, separators=(",", ":"))
print(f"wrote {len(CASES)} cases to {os.path.relpath(path)}")
