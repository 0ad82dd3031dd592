#!/usr/bin/env python3
"""ERNIE-ViLG attention masks (UniLM + DALL-E sparse image attention) as dense torch.bool [S, S] masks.

An independent, vectorised re-statement of src/models/vilg/attention-pattern.ts (which builds CSR rows
with loops), so the two can pin each other. Row = query, column = key, True = may attend.
Legend: S sequence length, h×w image grid (raster order), k conv window, (r, c) grid row/column.

Rules (issue 5): UniLM - a source query sees every source key, a target query sees every source key and
the target keys at or before itself. For an image query and keys of its OWN image segment the layer kind
replaces that: target role (causal) row = q in (p-w, p], column = q <= p with (p-q) % w == 0, conv = k×k
window and q <= p; source role row = same row, column = same column, conv = k×k window. 'dense' = UniLM.

Script mode writes test/fixtures/vilg/masks.json (a few layouts × every kind) for the TypeScript test:
    /usr/bin/python3 reference/vilg_masks.py
"""
import functools
import json
import os

import torch


def _positions(segments):
    """Per-token tensors [S]: segment index, is-target, is-image, raster index p, grid row, grid column, width."""
    seg, tgt, img, pos, row, col, wid = [], [], [], [], [], [], []
    for si, s in enumerate(segments):
        if s["kind"] == "text":
            n, (h, w) = s["length"], (1, 1)
        else:
            h, w = s["grid"]
            n = h * w
        p = torch.arange(n)
        seg.append(torch.full((n,), si))
        tgt.append(torch.full((n,), s["role"] == "target"))
        img.append(torch.full((n,), s["kind"] == "image"))
        pos.append(p)
        row.append(p // w)
        col.append(p % w)
        wid.append(torch.full((n,), w))
    cat = lambda xs: torch.cat(xs) if xs else torch.zeros(0, dtype=torch.long)
    return [cat(x) for x in (seg, tgt, img, pos, row, col, wid)]


def build_dense_mask(segments, kind, conv_kernel=3):
    """The mask of one layer kind ('dense' | 'row' | 'column' | 'conv') over the concatenated segments."""
    assert kind in ("dense", "row", "column", "conv"), kind
    assert conv_kernel >= 1 and conv_kernel % 2 == 1, conv_kernel
    seg, tgt, img, pos, row, col, wid = _positions(segments)
    tgt = tgt.bool()
    img = img.bool()
    S = seg.numel()
    idx = torch.arange(S)
    qi, kj = idx[:, None], idx[None, :]
    # UniLM: source keys for everyone; target keys at or before a target query.
    unilm = (~tgt)[None, :] | (tgt[:, None] & tgt[None, :] & (kj <= qi))
    if kind == "dense":
        return unilm
    same_image = (seg[:, None] == seg[None, :]) & img[:, None]
    p, q = pos[:, None], pos[None, :]
    rp, rq, cp, cq, w = row[:, None], row[None, :], col[:, None], col[None, :], wid[:, None]
    causal = q <= p
    half = (conv_kernel - 1) // 2
    window = ((rp - rq).abs() <= half) & ((cp - cq).abs() <= half)
    if kind == "row":
        tgt_rule, src_rule = causal & (p - q < w), rp == rq
    elif kind == "column":
        tgt_rule, src_rule = causal & ((p - q) % w == 0), cp == cq
    else:
        tgt_rule, src_rule = causal & window, window
    image_rule = torch.where(tgt[:, None], tgt_rule, src_rule)
    return torch.where(same_image, image_rule, unilm)


def render(mask):
    return ["".join("#" if v else "." for v in r) for r in mask.tolist()]


LAYOUTS = {
    "t2i": [{"kind": "text", "length": 3, "role": "source"}, {"kind": "image", "grid": [3, 4], "role": "target"}],
    "i2t": [{"kind": "image", "grid": [3, 4], "role": "source"}, {"kind": "text", "length": 3, "role": "target"}],
    "vqa": [{"kind": "image", "grid": [2, 3], "role": "source"}, {"kind": "text", "length": 2, "role": "source"},
            {"kind": "text", "length": 3, "role": "target"}],
    "t2i-wide": [{"kind": "text", "length": 2, "role": "source"}, {"kind": "image", "grid": [4, 5], "role": "target"}],
    "i2t-wide": [{"kind": "image", "grid": [4, 5], "role": "source"}, {"kind": "text", "length": 2, "role": "target"}],
}


def main():
    masks = []
    for name, segs in LAYOUTS.items():
        for kind in ("dense", "row", "column", "conv"):
            k = 5 if name.endswith("-wide") else 3
            m = build_dense_mask(segs, kind, k)
            masks.append({"name": f"{name}/{kind}/k{k}", "segments": segs, "kind": kind, "convKernel": k,
                          "seqLen": m.shape[0], "rows": render(m)})
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vilg", "masks.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"generator": "reference/vilg_masks.py", "masks": masks}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(masks)} masks to {os.path.normpath(out)}")



def install_mask_cache(module):
    """Replaces module.build_dense_mask (reference/vilg.py looks the name up in its own namespace) by a version
    built once per (layout, kind, kernel): masks depend only on the layout, so benchmarks and samplers, like a
    real training loop, precompute them. Returns the cached function."""
    build = module.build_dense_mask

    @functools.lru_cache(maxsize=None)
    def cached(segments_json, kind, conv_kernel):
        return build(json.loads(segments_json), kind, conv_kernel)

    def cached_mask(segments, kind, conv_kernel=3):
        return cached(json.dumps(segments, sort_keys=True), kind, conv_kernel)

    module.build_dense_mask = cached_mask
    return cached_mask

if __name__ == "__main__":
    main()
