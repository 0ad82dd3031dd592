#!/usr/bin/env python3
"""PyTorch side of `vilg bench train`: a worker that times training steps of reference/vilg.py's ErnieVilg.

One worker per bench row (a fresh process, so its peak RSS belongs to that row alone).
Protocol (JSON lines): stdin {"cmd": "setup", "config": {...}, "precision": "fp32" | "bf16", "mode": "sparse" | "dense",
                              "captions": [[ids]..], "text_len": T, "codes": [flat ids], "warmup": n}
                                                        -> {"ok": true, "params": P, "threads": t}
                       stdin {"cmd": "time", "steps": n, "warmup": w} -> {"ms": [per-step ms]}
                       stdin {"cmd": "peak"}                          -> {"peak_mb": ru_maxrss / 1024}
                       stdin {"cmd": "quit"}
A step is what the TypeScript side times: zero_grad, the joint loss L_t2i + L_i2t on the same pairs (both
layouts built from the text rows and codes), backward, AdamW step.

reference/vilg.py computes in float64 for fixtures; here it runs in float32, and 'bf16' wraps the forward in
torch.autocast('cpu', dtype=torch.bfloat16) (matmuls in bf16, float32 master weights, backward outside
autocast as PyTorch recommends). The reference has no sparse kernel: mode 'sparse' runs DALL-E's row /
column / conv patterns as dense boolean [S, S] masks over full attention, so its cost is that of dense
attention. Masks depend only on the layout, so they are built once and cached (a real training loop would
precompute them too), leaving the step to the model. Started by the caller with OPENBLAS_CORETYPE=Cooperlake.
"""
import json
import math
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vilg_masks  # noqa: E402
import vilg  # noqa: E402  (sets the default dtype to float64 on import; reset below)

torch.set_default_dtype(torch.float32)
torch.set_num_threads(int(os.environ.get("VILG_TORCH_THREADS", os.cpu_count() or 1)))
torch.manual_seed(0)

cached_mask = vilg_masks.install_mask_cache(vilg)  # masks built once per layout (see vilg_masks.py)


class Trainer:
    def __init__(self, req):
        self.c = req["config"]
        self.mode = req["mode"]
        self.bf16 = req["precision"] == "bf16"
        h, w = self.c["imageGrid"]
        B = len(req["captions"])
        self.text = vilg.rows(req["captions"], req["text_len"])                   # [B, T] long
        self.codes = torch.tensor(req["codes"], dtype=torch.long).view(B, h, w)   # [B, h, w]
        self.model = vilg.ErnieVilg(self.c).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.01)

    def step(self):
        m, c = self.model, self.c
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            l_t2i = m(vilg.batch_t2i(c, self.text, self.codes), self.mode)[1]
            l_i2t = m(vilg.batch_i2t(c, self.codes, self.text), self.mode)[1]
            loss = l_t2i + l_i2t
        loss.backward()
        self.opt.step()
        value = loss.item()
        if not math.isfinite(value):  # a broken step must not pass as a fast one
            raise FloatingPointError(f"the loss became {value}")


def main():
    trainer = None
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        try:
            if req["cmd"] == "setup":
                trainer = Trainer(req)
                for _ in range(req.get("warmup", 0)):
                    trainer.step()
                out = {"ok": True, "params": sum(p.numel() for p in trainer.model.parameters()), "threads": torch.get_num_threads()}
            elif req["cmd"] == "time":
                for _ in range(req.get("warmup", 0)):  # untimed, as on the Node side
                    trainer.step()
                ms = []
                for _ in range(req["steps"]):
                    t0 = time.perf_counter()
                    trainer.step()
                    ms.append((time.perf_counter() - t0) * 1e3)
                out = {"ms": ms}
            elif req["cmd"] == "peak":
                out = {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
            else:
                out = {"error": f"unknown cmd {req['cmd']}"}
        except Exception as e:  # report, never hang the caller
            out = {"error": repr(e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
