#!/usr/bin/env python3
"""Reference PSNR and SSIM, and the fixtures for test/eval/image-metrics.test.ts.

skimage is not installed here, so this follows skimage.metrics.structural_similarity(im1, im2,
channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
step by step (skimage 0.19-0.22 source): per channel, float64; scipy.ndimage.gaussian_filter with
truncate=3.5, mode='reflect' (half-sample symmetric) for ux, uy, uxx, uyy, uxy; population
(co)variances; C1=(0.01*255)^2, C2=(0.03*255)^2; the SSIM map cropped by (win-1)//2 = 5 on every side
and averaged; then the mean over channels. A second, independent route — pytorch_msssim's
valid (unpadded) conv with the same 11-tap window, in torch float64 — must agree to 1e-12.
PSNR is skimage.metrics.peak_signal_noise_ratio: 10*log10(255^2 / MSE).

Run:  /usr/bin/python3 reference/ssim.py      (writes test/fixtures/metrics/ssim.json)
"""
import base64
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

SIGMA, TRUNCATE, K1, K2, L = 1.5, 3.5, 0.01, 0.03, 255.0


def gaussian_kernel1d(sigma, radius):
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / sigma ** 2 * x ** 2)
    return phi / phi.sum()


def reflect_index(i, n):
    # scipy.ndimage mode 'reflect': d c b a | a b c d | d c b a (edge sample repeated)
    period = 2 * n
    i = i % period
    return i if i < n else period - 1 - i


def gaussian_filter_reflect(img, sigma):
    """scipy.ndimage.gaussian_filter(img, sigma, truncate=3.5, mode='reflect') in float64: axis 0, then axis 1."""
    r = int(TRUNCATE * sigma + 0.5)
    k = gaussian_kernel1d(sigma, r)
    out = img.astype(np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        idx = np.array([[reflect_index(i + j, n) for j in range(-r, r + 1)] for i in range(n)])  # [n, win]
        moved = np.moveaxis(out, axis, 0)  # [n, m]
        res = np.einsum('nkm,k->nm', moved[idx], k)
        out = np.moveaxis(res, 0, axis)
    return out


def ssim_skimage_route(a, b):
    r = int(TRUNCATE * SIGMA + 0.5)
    win = 2 * r + 1
    pad = (win - 1) // 2
    C1, C2 = (K1 * L) ** 2, (K2 * L) ** 2
    vals = []
    for c in range(a.shape[-1]):
        x = a[..., c].astype(np.float64)
        y = b[..., c].astype(np.float64)
        assert min(x.shape) >= win
        f = lambda z: gaussian_filter_reflect(z, SIGMA)
        ux, uy = f(x), f(y)
        uxx, uyy, uxy = f(x * x), f(y * y), f(x * y)
        vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy  # cov_norm = 1.0 (population)
        A1, A2, B1, B2 = 2 * ux * uy + C1, 2 * vxy + C2, ux ** 2 + uy ** 2 + C1, vx + vy + C2
        S = (A1 * A2) / (B1 * B2)
        vals.append(S[pad:-pad, pad:-pad].mean(dtype=np.float64))
    return float(np.mean(vals))


def ssim_torch_valid_route(a, b):
    """pytorch_msssim.ssim(X, Y, data_range=255, win_size=11, win_sigma=1.5, size_average=True)."""
    X = torch.from_numpy(a.astype(np.float64)).permute(2, 0, 1)[None]  # [1, C, H, W]
    Y = torch.from_numpy(b.astype(np.float64)).permute(2, 0, 1)[None]
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(coords ** 2) / (2 * SIGMA ** 2))
    g = g / g.sum()
    C = X.shape[1]
    wh = g.reshape(1, 1, 11, 1).repeat(C, 1, 1, 1)
    ww = g.reshape(1, 1, 1, 11).repeat(C, 1, 1, 1)
    filt = lambda z: F.conv2d(F.conv2d(z, wh, groups=C), ww, groups=C)
    C1, C2 = (K1 * L) ** 2, (K2 * L) ** 2
    mu1, mu2 = filt(X), filt(Y)
    s1, s2, s12 = filt(X * X) - mu1 ** 2, filt(Y * Y) - mu2 ** 2, filt(X * Y) - mu1 * mu2
    cs = (2 * s12 + C2) / (s1 + s2 + C2)
    smap = ((2 * mu1 * mu2 + C1) / (mu1 ** 2 + mu2 ** 2 + C1)) * cs
    return float(smap.flatten(2).mean(-1).mean())


def psnr(a, b):
    err = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if err == 0 else float(10 * np.log10(L ** 2 / err))


def main():
    rng = np.random.RandomState(20261130)
    cases = []

    def add(name, a, b):
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
        b = np.clip(np.round(b), 0, 255).astype(np.uint8)
        s1, s2 = ssim_skimage_route(a, b), ssim_torch_valid_route(a, b)
        assert abs(s1 - s2) < 1e-12, (name, s1, s2)
        p = psnr(a, b)
        cases.append({
            'name': name, 'height': int(a.shape[0]), 'width': int(a.shape[1]),
            'a': base64.b64encode(a.tobytes()).decode(), 'b': base64.b64encode(b.tobytes()).decode(),
            'ssim': s1, 'psnr': None if math.isinf(p) else p,
        })
        print(f'{name:28s} {a.shape}  ssim {s1:.12f}  psnr {p:.6f}  (routes differ by {abs(s1 - s2):.1e})')

    yy, xx = np.mgrid[0:32, 0:32]
    smooth = np.stack([4 * xx + 60, 3 * yy + 40, 2 * (xx + yy) + 20], -1).astype(np.float64)
    add('noise-vs-noise-32', rng.randint(0, 256, (32, 32, 3)), rng.randint(0, 256, (32, 32, 3)))
    add('smooth-plus-noise10-32', smooth, smooth + rng.normal(0, 10, smooth.shape))
    add('smooth-plus-noise3-32', smooth, smooth + rng.normal(0, 3, smooth.shape))
    blocks = np.full((24, 20, 3), 230.0)
    blocks[4:14, 3:12] = [200, 30, 40]
    blocks[10:22, 9:18] = [20, 90, 210]
    shifted = np.roll(blocks, 1, axis=1)
    add('blocks-shifted-24x20', blocks, shifted)
    add('blocks-darker-24x20', blocks, blocks * 0.8)
    add('constant-vs-constant-16', np.full((16, 16, 3), 100.0), np.full((16, 16, 3), 140.0))
    tiny = rng.randint(0, 256, (11, 11, 3)).astype(np.float64)
    add('minimal-11x11', tiny, tiny + rng.normal(0, 20, tiny.shape))
    add('extremes-13x17', np.zeros((13, 17, 3)), rng.randint(0, 2, (13, 17, 3)) * 255)
    img = rng.randint(0, 256, (12, 12, 3))
    add('identical-12', img, img)

    out = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'metrics', 'ssim.json')
    with open(out, 'w') as f:
        json.dump({'generator': 'reference/ssim.py', 'definition': 'skimage structural_similarity(channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False); psnr data_range=255',
                   'cases': cases}, f, indent=1)
        f.write('\n')
    print('wrote', os.path.normpath(out))


if __name__ == '__main__':
    main()
