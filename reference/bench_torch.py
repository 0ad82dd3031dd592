#!/usr/bin/env python3
"""PyTorch side of `vilg bench engine`: a worker that times one case per request.

Protocol (JSON lines): stdin {"cmd": "setup", "case": {...}} -> {"ok": true}
                       stdin {"cmd": "time", "iters": n}     -> {"ms": [per-iteration ms]}
                       stdin {"cmd": "quit"}
The Node side alternates between our engine and this worker, so both see the same machine state.
PyTorch runs at its best: started with OPENBLAS_CORETYPE=Cooperlake by the caller (Debian's OpenBLAS
does not recognise Sapphire Rapids otherwise), all cores, channels-last convs, native bf16 tensors.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("VILG_TORCH_THREADS", os.cpu_count() or 1)))
torch.manual_seed(0)


def build(case):
    op, shape, dtype = case["op"], case["shape"], case["dtype"]
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    if op == "matmul":
        m, k, n = shape
        a = torch.randn(m, k).to(dt)
        b = torch.randn(k, n).to(dt)
        return lambda: torch.matmul(a, b)
    if op.startswith("conv2d"):
        n, h, w, ci, co, kh = shape  # NHWC problem, 3x3 "same" conv
        x = torch.randn(n, ci, h, w).to(dt).contiguous(memory_format=torch.channels_last)
        wt = torch.randn(co, ci, kh, kh).to(dt).contiguous(memory_format=torch.channels_last)
        pad = kh // 2
        if op == "conv2d_fwd":
            return lambda: F.conv2d(x, wt, None, 1, pad)
        g = torch.randn(n, co, h, w).to(dt).contiguous(memory_format=torch.channels_last)
        mask = [op == "conv2d_bwd_data", op == "conv2d_bwd_weights", False]
        return lambda: torch.ops.aten.convolution_backward(g, x, wt, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, mask)
    if op.startswith("layer_norm"):
        r, c = shape
        x = torch.randn(r, c)
        gamma, beta = torch.randn(c), torch.randn(c)
        if op == "layer_norm_fwd":
            return lambda: torch.ops.aten.native_layer_norm(x, [c], gamma, beta, 1e-5)
        _, mean, rstd = torch.ops.aten.native_layer_norm(x, [c], gamma, beta, 1e-5)
        g = torch.randn(r, c)
        return lambda: torch.ops.aten.native_layer_norm_backward(g, x, [c], mean, rstd, gamma, beta, [True, True, True])
    if op.startswith("softmax"):
        r, c = shape
        x = torch.randn(r, c)
        if op == "softmax_fwd":
            return lambda: torch.softmax(x, -1)
        y = torch.softmax(x, -1)
        g = torch.randn(r, c)
        return lambda: torch.ops.aten._softmax_backward_data(g, y, -1, torch.float32)
    raise ValueError(f"unknown op {op}")


def main():
    fn = None
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        try:
            if req["cmd"] == "setup":
                fn = build(req["case"])
                for _ in range(3):
                    fn()
                out = {"ok": True}
            elif req["cmd"] == "time":
                ms = []
                with torch.no_grad():
                    for _ in range(req.get("warmup", 0)):  # untimed, as on the Node side
                        fn()
                    for _ in range(req["iters"]):
                        t0 = time.perf_counter()
                        fn()
                        ms.append((time.perf_counter() - t0) * 1e3)
                out = {"ms": ms}
            else:
                out = {"error": f"unknown cmd {req['cmd']}"}
        except Exception as e:  # report, never hang the caller
            out = {"error": repr(e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
