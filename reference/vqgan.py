#!/usr/bin/env python3
"""PyTorch reference for the VQGAN image tokenizer: taming-transformers' VQModel (Encoder, Decoder,
VectorQuantizer) written compactly with taming's module names, and the fixture writer for the
TypeScript parity tests.

Writes (regenerate with:  /usr/bin/python3 reference/vqgan.py)
  test/fixtures/vqgan/tiny.safetensors   weights (init.<taming name>), an input batch, outputs
                                         (z, codes, zq, xRec, loss terms) and gradients of
                                         rec_loss + q_loss w.r.t. the input and every parameter
  test/fixtures/vqgan/tiny.json          the config, in the TypeScript model directory's config.json format

Differences from taming, on purpose:
  * the quantizer's loss is the seed's: codebook term + beta * commitment term (taming's
    VectorQuantizer2 with legacy=True puts beta on the codebook term);
  * GroupNorm's group count is a parameter (taming hard-codes 32) so a tiny config can exist.
Everything else (block structure, eps 1e-6, Downsample's (0,1,0,1) pad, Upsample nearest + conv,
up-levels inserted at the front) follows taming/modules/diffusionmodules/model.py.

Computation is float64 with weights and input rounded to float32 values first, so the TypeScript
model (float32) loads exactly the weights used here. Tensors are stored as F32 (values, gradients),
I32 (codes). Images/activations are channels-last (NHWC) like our engine; conv weights stay OIHW.
The `safetensors` package is not installed here, so a small writer of the format is below.
"""
import json
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vqgan")

# The TypeScript `tiny` preset (src/models/vqgan/config.ts), in our config.json format.
TINY = {
    "resolution": 16, "inChannels": 3, "ch": 8, "chMult": [1, 2], "numResBlocks": 1, "attnResolutions": [8],
    "zChannels": 4, "embedDim": 4, "nEmbed": 16, "dropout": 0, "normGroups": 4, "beta": 0.25,
    "quantizer": {
        "l2Normalised": False, "kmeansInit": False, "kmeansBatches": 1, "kmeansIters": 10, "ema": False,
        "emaDecay": 0.99, "emaEps": 1e-5, "deadCodeRestart": False, "deadCodeSteps": 100, "seed": 0,
    },
}


# ---------------------------------------------------------------- taming's architecture

def Normalize(c, groups):
    return nn.GroupNorm(num_groups=groups, num_channels=c, eps=1e-6, affine=True)


def nonlinearity(x):
    return x * torch.sigmoid(x)  # swish


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)  # no asymmetric padding in torch conv: pad by hand

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, dropout, groups):
        super().__init__()
        self.norm1 = Normalize(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = Normalize(cout, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1, 1, 0)
        self.cin, self.cout = cin, cout

    def forward(self, x):
        h = self.conv1(nonlinearity(self.norm1(x)))
        h = self.conv2(self.dropout(nonlinearity(self.norm2(h))))
        if self.cin != self.cout:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = Normalize(c, groups)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        h_ = self.norm(x)
        q, k, v = self.q(h_), self.k(h_), self.v(h_)
        b, c, h, w = q.shape
        q = q.reshape(b, c, h * w).permute(0, 2, 1)  # b, hw, c
        k = k.reshape(b, c, h * w)  # b, c, hw
        w_ = torch.softmax(torch.bmm(q, k) * (int(c) ** (-0.5)), dim=2)  # b, hw(q), hw(k)
        v = v.reshape(b, c, h * w)
        h_ = torch.bmm(v, w_.permute(0, 2, 1)).reshape(b, c, h, w)
        return x + self.proj_out(h_)


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, in_channels, resolution, z_channels, dropout, groups):
        super().__init__()
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        curr_res = resolution
        in_ch_mult = (1,) + tuple(ch_mult)
        self.down = nn.ModuleList()
        for i_level in range(self.num_resolutions):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_in, block_out = ch * in_ch_mult[i_level], ch * ch_mult[i_level]
            for _ in range(num_res_blocks):
                block.append(ResnetBlock(block_in, block_out, dropout, groups))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in, groups))
            down = nn.Module()
            down.block, down.attn = block, attn
            if i_level != self.num_resolutions - 1:
                down.downsample = Downsample(block_in)
                curr_res = curr_res // 2
            self.down.append(down)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout, groups)
        self.mid.attn_1 = AttnBlock(block_in, groups)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout, groups)
        self.norm_out = Normalize(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, 1, 1)  # double_z = False

    def forward(self, x):
        h = self.conv_in(x)
        for i_level in range(self.num_resolutions):
            for i_block in range(self.num_res_blocks):
                h = self.down[i_level].block[i_block](h)
                if len(self.down[i_level].attn) > 0:
                    h = self.down[i_level].attn[i_block](h)
            if i_level != self.num_resolutions - 1:
                h = self.down[i_level].downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(nonlinearity(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch, out_ch, ch_mult, num_res_blocks, attn_resolutions, resolution, z_channels, dropout, groups):
        super().__init__()
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        block_in = ch * ch_mult[self.num_resolutions - 1]
        curr_res = resolution // 2 ** (self.num_resolutions - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, 1, 1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout, groups)
        self.mid.attn_1 = AttnBlock(block_in, groups)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout, groups)
        self.up = nn.ModuleList()
        for i_level in reversed(range(self.num_resolutions)):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_out = ch * ch_mult[i_level]
            for _ in range(num_res_blocks + 1):
                block.append(ResnetBlock(block_in, block_out, dropout, groups))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in, groups))
            up = nn.Module()
            up.block, up.attn = block, attn
            if i_level != 0:
                up.upsample = Upsample(block_in)
                curr_res = curr_res * 2
            self.up.insert(0, up)  # prepend: up.0 is the highest resolution
        self.norm_out = Normalize(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, 1, 1)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for i_level in reversed(range(self.num_resolutions)):
            for i_block in range(self.num_res_blocks + 1):
                h = self.up[i_level].block[i_block](h)
                if len(self.up[i_level].attn) > 0:
                    h = self.up[i_level].attn[i_block](h)
            if i_level != 0:
                h = self.up[i_level].upsample(h)
        return self.conv_out(nonlinearity(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """taming's VectorQuantizer2 (remap=None, sane_index_shape=True) with the seed's beta placement."""

    def __init__(self, n_e, e_dim, beta):
        super().__init__()
        self.n_e, self.e_dim, self.beta = n_e, e_dim, beta
        self.embedding = nn.Embedding(n_e, e_dim)
        self.embedding.weight.data.uniform_(-1.0 / n_e, 1.0 / n_e)

    def forward(self, z):  # z [N, D, h, w]
        z = z.permute(0, 2, 3, 1).contiguous()
        z_flat = z.view(-1, self.e_dim)
        d = (z_flat ** 2).sum(1, keepdim=True) + (self.embedding.weight ** 2).sum(1) - 2 * z_flat @ self.embedding.weight.t()
        idx = torch.argmin(d, dim=1)
        z_q = self.embedding(idx).view(z.shape)
        codebook_loss = torch.mean((z_q - z.detach()) ** 2)  # trains the codebook
        commitment_loss = torch.mean((z_q.detach() - z) ** 2)  # trains the encoder
        loss = codebook_loss + self.beta * commitment_loss  # beta on the COMMITMENT term (seed, VQ-VAE)
        z_q = z + (z_q - z).detach()  # straight-through
        return z_q.permute(0, 3, 1, 2).contiguous(), idx.view(z.shape[:3]), (loss, codebook_loss, commitment_loss), d


class VQModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        common = dict(ch=c["ch"], ch_mult=c["chMult"], num_res_blocks=c["numResBlocks"], attn_resolutions=c["attnResolutions"],
                      resolution=c["resolution"], z_channels=c["zChannels"], dropout=c["dropout"], groups=c["normGroups"])
        self.encoder = Encoder(in_channels=c["inChannels"], **common)
        self.decoder = Decoder(out_ch=c["inChannels"], **common)
        self.quantize = VectorQuantizer(c["nEmbed"], c["embedDim"], c["beta"])
        self.quant_conv = nn.Conv2d(c["zChannels"], c["embedDim"], 1)
        self.post_quant_conv = nn.Conv2d(c["embedDim"], c["zChannels"], 1)

    def encode(self, x):
        z = self.quant_conv(self.encoder(x))
        zq, codes, losses, d = self.quantize(z)
        return z, zq, codes, losses, d

    def decode(self, zq):
        return self.decoder(self.post_quant_conv(zq))


# ---------------------------------------------------------------- safetensors writer

_DT = {torch.float64: ("F64", "d"), torch.float32: ("F32", "f"), torch.int64: ("I64", "q"), torch.int32: ("I32", "i")}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        code, fmt = _DT[t.dtype]
        vals = t.reshape(-1).tolist()
        blob = struct.pack("<%d%s" % (len(vals), fmt), *vals)
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


def nhwc(x):
    return x.permute(0, 2, 3, 1).contiguous()


def f32(x):  # float64 holding exactly float32 values
    return x.float().double()


# ---------------------------------------------------------------- fixture

def min_gap(d):
    """Smallest (second-nearest − nearest) distance over all rows, relative to the largest distance."""
    top2 = torch.topk(d, 2, dim=1, largest=False).values
    return ((top2[:, 1] - top2[:, 0]).min() / d.abs().max()).item()


def tiny_fixture():
    c = TINY
    for seed in range(20261210, 20261210 + 200):
        torch.manual_seed(seed)
        m = VQModel(c)
        with torch.no_grad():
            for name, p in m.named_parameters():
                if "norm" in name:  # randomise GroupNorm's affine so a missing one shows
                    p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
            x = f32(torch.rand(2, c["inChannels"], c["resolution"], c["resolution"]) * 2 - 1)
            for p in m.parameters():
                p.copy_(f32(p))
            # A codebook near actual encoder outputs (taming's ±1/K init would send every vector to
            # one or two codes): distinct codes get used and the parity test sees them all.
            z = m.quant_conv(m.encoder(x)).permute(0, 2, 3, 1).reshape(-1, c["embedDim"])
            pick = torch.randperm(z.shape[0])[: c["nEmbed"]]
            m.quantize.embedding.weight.copy_(f32(z[pick] + 0.05 * z.std() * torch.randn(c["nEmbed"], c["embedDim"])))
            _, _, codes, _, d = m.encode(x)
        gap, used = min_gap(d), codes.unique().numel()
        if gap > 3e-4 and used >= c["nEmbed"] // 2:
            break
    else:
        raise SystemExit("no seed gave well-separated codes")
    print(f"seed {seed}: min relative distance gap {gap:.2e}, {used}/{c['nEmbed']} codes used")

    out = {f"init.{k}": v.clone().float() for k, v in m.state_dict().items()}
    xg = x.clone().requires_grad_(True)
    z, zq, codes, (q_loss, codebook_loss, commitment_loss), _ = m.encode(xg)
    x_rec = m.decode(zq)
    rec_loss = torch.mean((x_rec - xg) ** 2)
    (rec_loss + q_loss).backward()

    out["input"] = nhwc(x).float()
    out["out.z"] = nhwc(z).float()
    out["out.zq"] = nhwc(zq).float()
    out["out.codes"] = codes.int()
    out["out.xRec"] = nhwc(x_rec).float()
    for name, v in [("q_loss", q_loss), ("codebook_loss", codebook_loss), ("commitment_loss", commitment_loss), ("rec_loss", rec_loss)]:
        out[f"out.{name}"] = v.detach().reshape(1).float()
    out["grad.input"] = nhwc(xg.grad).float()
    for name, p in m.named_parameters():
        out[f"grad.{name}"] = p.grad.float()
    keys = list(m.state_dict().keys())
    meta = {"state_dict_keys": json.dumps(keys), "config": json.dumps(c), "seed": str(seed),
            "loss": "grad.* = d(rec_loss + q_loss)/d(.), rec_loss = mean((xRec - x)^2)"}
    os.makedirs(OUT_DIR, exist_ok=True)
    save_safetensors(os.path.join(OUT_DIR, "tiny.safetensors"), out, meta)
    with open(os.path.join(OUT_DIR, "tiny.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    print(f"{sum(p.numel() for p in m.parameters())} parameters, {len(keys)} state-dict keys")


if __name__ == "__main__":
    tiny_fixture()
