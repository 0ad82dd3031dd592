#!/usr/bin/env python3
"""PyTorch reference for the VQGAN's adversarial part: taming-transformers' NLayerDiscriminator
(PatchGAN) and nn.BatchNorm2d, writing golden values for the TypeScript tests.

Writes (regenerate with:  /usr/bin/python3 reference/discriminator.py)
  test/fixtures/discriminator/tiny.safetensors       ndf 8, n_layers 2, a [2, 16, 16, 3] input batch
  test/fixtures/discriminator/batchnorm.safetensors  BatchNorm2d train/eval/running statistics

All tensors are float64 (the TS tests check f32 against them at ~1e-4 and may check f64 tighter);
images, activations and their gradients are stored channels-last (NHWC) like our engine, conv weights
in PyTorch's own OIHW layout, num_batches_tracked as I64 as PyTorch saves it.

The safetensors package is not installed here, so a small writer of the format is below.
"""
import json
import os
import struct

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "discriminator")


# ---------------------------------------------------------------- taming-transformers' code

def weights_init(m):
    """taming/modules/discriminator/model.py: conv weights N(0, 0.02) (conv biases keep PyTorch's
    default init), BatchNorm weight N(1, 0.02) and bias 0."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator as in Pix2Pix, as taming writes it (use_actnorm=False)."""

    def __init__(self, input_nc=3, ndf=64, n_layers=3):
        super().__init__()
        norm_layer = nn.BatchNorm2d
        use_bias = False  # BatchNorm has affine parameters, so the convs before it need no bias
        kw = 4
        padw = 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        nf_mult_prev = 1
        for n in range(1, n_layers):  # gradually increase the number of filters
            nf_mult_prev = nf_mult
            nf_mult = min(2 ** n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_mult_prev = nf_mult
        nf_mult = min(2 ** n_layers, 8)
        sequence += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
            norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
        ]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]  # 1-channel prediction map
        self.main = nn.Sequential(*sequence)

    def forward(self, input):
        return self.main(input)


# ---------------------------------------------------------------- safetensors writer

_DT = {torch.float64: ("F64", "<d"), torch.float32: ("F32", "<f"), torch.int64: ("I64", "<q"), torch.int32: ("I32", "<i")}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        code, fmt = _DT[t.dtype]
        vals = t.reshape(-1).tolist()
        blob = struct.pack("<%d%s" % (len(vals), fmt[1]), *vals)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    print(f"wrote {os.path.relpath(path)} ({8 + len(js) + offset} bytes, {len(tensors)} tensors)")


def nhwc(x):  # NCHW -> NHWC
    return x.permute(0, 2, 3, 1).contiguous()


def nchw(x):  # NHWC -> NCHW
    return x.permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------- fixtures

def discriminator_fixture():
    torch.manual_seed(20261201)
    ndf, n_layers, n, size = 8, 2, 2, 16
    d = NLayerDiscriminator(input_nc=3, ndf=ndf, n_layers=n_layers).apply(weights_init)
    out = {f"init.{k}": v.clone() for k, v in d.state_dict().items()}  # taming names, before any forward

    x = torch.rand(n, 3, size, size) * 2 - 1  # images in [-1, 1]
    xg = x.clone().requires_grad_(True)
    d.train()
    logits = d(xg)  # [N, 1, h, w]; updates the BatchNorm running statistics once
    w = torch.randn(logits.shape)
    (logits * w).sum().backward()
    out["input"] = nhwc(x)
    out["logits_train"] = nhwc(logits.detach())
    out["grad_weight"] = nhwc(w)  # W in loss = sum(logits_train * W)
    out["grad.input"] = nhwc(xg.grad)
    for k, p in d.named_parameters():
        out[f"grad.{k}"] = p.grad.clone()
    for k, v in d.state_dict().items():  # running statistics after the train forward
        out[f"after.{k}"] = v.clone()
    d.eval()
    with torch.no_grad():
        out["logits_eval"] = nhwc(d(x))
    keys = list(d.state_dict().keys())
    save_safetensors(os.path.join(OUT_DIR, "tiny.safetensors"), out, {
        "generator": "reference/discriminator.py", "torch": torch.__version__,
        "config": json.dumps({"ndf": ndf, "nLayers": n_layers, "inChannels": 3}), "state_dict_keys": json.dumps(keys),
    })
    print("state_dict keys:", keys)


def batchnorm_fixture():
    torch.manual_seed(20261202)
    out = {}
    for tag, c, shape, momentum, eps in [("a", 6, (3, 4, 5), 0.1, 1e-5), ("b", 4, (2, 3, 3), 0.3, 1e-3)]:
        bn = nn.BatchNorm2d(c, eps=eps, momentum=momentum)
        with torch.no_grad():  # non-trivial parameters and running statistics
            bn.weight.copy_(torch.randn(c) * 0.5 + 1)
            bn.bias.copy_(torch.randn(c) * 0.5)
            bn.running_mean.copy_(torch.randn(c))
            bn.running_var.copy_(torch.rand(c) + 0.5)
        for k, v in bn.state_dict().items():
            out[f"{tag}.init.{k}"] = v.clone()
        n, h, w_ = shape
        x1 = torch.randn(n, c, h, w_) * 2 + 0.7
        x2 = torch.randn(n, c, h, w_) * 0.5 - 0.3
        bn.train()
        xg = x1.clone().requires_grad_(True)
        y = bn(xg)
        gw = torch.randn(y.shape)
        (y * gw).sum().backward()
        out[f"{tag}.x1"] = nhwc(x1)
        out[f"{tag}.y1_train"] = nhwc(y.detach())
        out[f"{tag}.grad_weight"] = nhwc(gw)
        out[f"{tag}.grad.x1"] = nhwc(xg.grad)
        out[f"{tag}.grad.weight"] = bn.weight.grad.clone()
        out[f"{tag}.grad.bias"] = bn.bias.grad.clone()
        for k, v in bn.state_dict().items():
            out[f"{tag}.step1.{k}"] = v.clone()
        with torch.no_grad():
            out[f"{tag}.x2"] = nhwc(x2)
            out[f"{tag}.y2_train"] = nhwc(bn(x2))
        for k, v in bn.state_dict().items():
            out[f"{tag}.step2.{k}"] = v.clone()
        bn.eval()
        with torch.no_grad():
            out[f"{tag}.y1_eval"] = nhwc(bn(x1))  # running statistics after two steps
        out[f"{tag}.config"] = torch.tensor([c, momentum, eps])
    save_safetensors(os.path.join(OUT_DIR, "batchnorm.safetensors"), out, {"generator": "reference/discriminator.py", "torch": torch.__version__})


if __name__ == "__main__":
    os.makedirs(OUT_DIR, exist_ok=True)
    discriminator_fixture()
    batchnorm_fixture()
