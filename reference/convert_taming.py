#!/usr/bin/env python3
"""Converts a taming-transformers VQGAN checkpoint (.ckpt / .pth) into our model directory:
OUT/config.json (src/models/vqgan/config.ts, camelCase) + OUT/model.safetensors (F32, taming's names).

    /usr/bin/python3 reference/convert_taming.py last.ckpt --out runs/taming-f16 [--config model.yaml]
    /usr/bin/python3 reference/convert_taming.py --self-test      # writes test/fixtures/vqgan/taming-converted/

What it keeps: the VQModel's own weights (encoder.*, decoder.*, quantize.*, quant_conv.*, post_quant_conv.*).
What it drops, and lists: the training-only `loss.*` (discriminator, LPIPS) and anything else.
The architecture comes from the taming YAML (model.params.ddconfig, embed_dim, n_embed) when given;
otherwise it is read off the weight shapes, and only `resolution` (which places the attention blocks)
must then be given with --resolution unless the checkpoint has attention at a single level.

Note on β: taming's VectorQuantizer2 with legacy=True put β on the codebook term; our training puts it
on the commitment term (the seed's loss). That only matters when training further; inference is the same.
"""
import argparse
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vqgan import VQModel, TINY, nhwc, save_safetensors  # noqa: E402

KEEP = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")
QUANTIZER_DEFAULTS = {
    "l2Normalised": False, "kmeansInit": False, "kmeansBatches": 1, "kmeansIters": 10, "ema": False,
    "emaDecay": 0.99, "emaEps": 1e-5, "deadCodeRestart": False, "deadCodeSteps": 100, "seed": 0,
}


def state_dict_of(obj):
    """The weights inside whatever torch.load returned (Lightning checkpoint, plain state dict)."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        return obj["state_dict"]
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise SystemExit("convert_taming: the checkpoint holds neither a 'state_dict' nor a plain state dict")


def config_from_yaml(path):
    import yaml  # Debian python3-yaml
    with open(path) as f:
        y = yaml.safe_load(f)
    p = y.get("model", {}).get("params", y)
    dd = p["ddconfig"]
    if dd.get("double_z", False):
        raise SystemExit("convert_taming: ddconfig.double_z is true: that is a KL autoencoder, not a VQGAN")
    return {
        "resolution": dd["resolution"], "inChannels": dd["in_channels"], "ch": dd["ch"], "chMult": list(dd["ch_mult"]),
        "numResBlocks": dd["num_res_blocks"], "attnResolutions": list(dd["attn_resolutions"]), "zChannels": dd["z_channels"],
        "embedDim": p["embed_dim"], "nEmbed": p["n_embed"], "dropout": float(dd.get("dropout", 0.0)), "normGroups": 32,
        "beta": 0.25, "quantizer": dict(QUANTIZER_DEFAULTS),  # taming's VQModel hard-codes beta=0.25
    }


def config_from_weights(sd, resolution):
    """Reads ch, ch_mult, num_res_blocks, attention levels, z_channels, embed_dim, n_embed off the shapes."""
    ch = sd["encoder.conv_in.weight"].shape[0]
    levels = sorted({int(m.group(1)) for k in sd for m in [re.match(r"encoder\.down\.(\d+)\.", k)] if m})
    blocks = sorted({int(m.group(1)) for k in sd for m in [re.match(r"encoder\.down\.0\.block\.(\d+)\.", k)] if m})
    ch_mult = [sd[f"encoder.down.{i}.block.{blocks[-1]}.conv2.weight"].shape[0] // ch for i in levels]
    attn_levels = [i for i in levels if f"encoder.down.{i}.attn.0.q.weight" in sd]
    if resolution is None:
        raise SystemExit("convert_taming: give --resolution (or --config): it fixes where the attention levels sit")
    return {
        "resolution": resolution, "inChannels": sd["encoder.conv_in.weight"].shape[1], "ch": ch, "chMult": ch_mult,
        "numResBlocks": len(blocks), "attnResolutions": [resolution // 2 ** i for i in attn_levels],
        "zChannels": sd["encoder.conv_out.weight"].shape[0], "embedDim": sd["quant_conv.weight"].shape[0],
        "nEmbed": sd["quantize.embedding.weight"].shape[0], "dropout": 0.0, "normGroups": 32, "beta": 0.25,
        "quantizer": dict(QUANTIZER_DEFAULTS),
    }


def convert(sd, config, out):
    kept = {k: v.float() for k, v in sd.items() if k.startswith(KEEP)}
    dropped = sorted(k for k in sd if not k.startswith(KEEP))
    # Build the reference model from the config and load strictly: a wrong config fails here, with names.
    m = VQModel(config)
    missing, unexpected = m.load_state_dict(kept, strict=False)
    if missing or unexpected:
        raise SystemExit(f"convert_taming: weights do not fit the config: missing {missing[:8]}, unexpected {unexpected[:8]}")
    os.makedirs(out, exist_ok=True)
    save_safetensors(os.path.join(out, "model.safetensors"), kept, {"format": "vqgan", "architecture": "taming-transformers VQModel", "converted_from": "taming"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(f"kept {len(kept)} tensors; dropped {len(dropped)}" + (f" ({', '.join(dropped[:4])}{' ...' if len(dropped) > 4 else ''})" if dropped else ""))
    return m


def self_test():
    """A taming-style Lightning checkpoint of the tiny config (with loss.* entries), converted; the
    expected reconstruction of a fixed input is written next to it for the TypeScript test."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vqgan", "taming-converted")
    torch.manual_seed(7)
    src = VQModel(TINY)
    sd = {k: v.detach().clone() for k, v in src.state_dict().items()}
    sd["loss.discriminator.main.0.weight"] = torch.randn(8, 3, 4, 4)
    sd["loss.perceptual_loss.net.slice1.0.weight"] = torch.randn(4, 3, 3, 3)
    ckpt = os.path.join("/tmp", "taming-tiny.ckpt")
    torch.save({"state_dict": sd, "global_step": 1}, ckpt)
    loaded = state_dict_of(torch.load(ckpt, map_location="cpu"))
    config = config_from_weights(loaded, TINY["resolution"])
    config["normGroups"] = TINY["normGroups"]  # the tiny config is not taming's 32 groups
    assert {k: config[k] for k in TINY if k != "quantizer"} == {k: TINY[k] for k in TINY if k != "quantizer"}, config
    m = convert(loaded, config, root)
    m = m.double().eval()
    torch.manual_seed(8)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        _, zq, codes, _, _ = m.encode(x)
        rec = m.decode(zq)
    save_safetensors(os.path.join(root, "expected.safetensors"),
                     {"x": nhwc(x).float(), "codes": codes.int(), "xRec": nhwc(rec).float()})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("--out")
    ap.add_argument("--config", help="taming's model YAML (model.params.ddconfig, embed_dim, n_embed)")
    ap.add_argument("--resolution", type=int, help="training image size, when there is no --config")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if not a.checkpoint or not a.out:
        ap.error("give a checkpoint and --out")
    sd = state_dict_of(torch.load(a.checkpoint, map_location="cpu"))
    config = config_from_yaml(a.config) if a.config else config_from_weights(sd, a.resolution)
    convert(sd, config, a.out)


if __name__ == "__main__":
    main()
