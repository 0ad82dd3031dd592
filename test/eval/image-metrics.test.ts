// PSNR and SSIM against the reference (reference/ssim.py: skimage's definition, cross-checked with
// pytorch_msssim's), plus the closed-form cases.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gaussianWindow, meanPsnr, meanSsim, mse, psnr, ssim } from '../../src/eval/image-metrics.js';

interface Case { name: string; height: number; width: number; a: string; b: string; ssim: number; psnr: number | null }
const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/metrics/ssim.json', import.meta.url), 'utf8')) as { cases: Case[] };
const img = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));

test('SSIM and PSNR match the reference on every fixture case', () => {
  assert.ok(fixture.cases.length >= 9);
  for (const c of fixture.cases) {
    const a = img(c.a), b = img(c.b);
    const s = ssim(a, b, c.height, c.width);
    assert.ok(Math.abs(s - c.ssim) < 1e-12, `${c.name}: ssim ${s} vs ${c.ssim}`);
    const p = psnr(a, b);
    if (c.psnr === null) assert.equal(p, Infinity, c.name);
    else assert.ok(Math.abs(p - c.psnr) < 1e-10, `${c.name}: psnr ${p} vs ${c.psnr}`);
  }
});

test('closed forms: identical images, constant images, known MSE', () => {
  const a = new Uint8Array(16 * 16 * 3).map((_, i) => (i * 37) % 256);
  assert.equal(ssim(a, a, 16, 16), 1);
  assert.equal(psnr(a, a), Infinity);
  // Constant images: variances vanish, SSIM is the luminance term (2μxμy + C1)/(μx² + μy² + C1).
  const c1 = (0.01 * 255) ** 2;
  const x = new Uint8Array(12 * 12 * 3).fill(100), y = new Uint8Array(12 * 12 * 3).fill(140);
  assert.ok(Math.abs(ssim(x, y, 12, 12) - (2 * 100 * 140 + c1) / (100 ** 2 + 140 ** 2 + c1)) < 1e-12);
  // Every value off by 5: MSE 25, PSNR = 10·log10(255²/25).
  const z = x.map((v) => v + 5);
  assert.equal(mse(x, z), 25);
  assert.ok(Math.abs(psnr(x, z) - 10 * Math.log10(255 * 255 / 25)) < 1e-12);
  // The window: 11 taps, normalised, symmetric, peak at the centre.
  const g = gaussianWindow(1.5);
  assert.equal(g.length, 11);
  assert.ok(Math.abs(g.reduce((s, v) => s + v, 0) - 1) < 1e-15);
  assert.equal(g[0], g[10]);
});

test('batch means, the PSNR cap, and input errors', () => {
  const cs = fixture.cases.filter((c) => c.height === 32 && c.width === 32);
  const as = cs.map((c) => img(c.a)), bs = cs.map((c) => img(c.b));
  const mean = (v: number[]): number => v.reduce((s, x) => s + x, 0) / v.length;
  assert.ok(Math.abs(meanSsim(as, bs, 32, 32) - mean(cs.map((c) => c.ssim))) < 1e-12);
  assert.ok(Math.abs(meanPsnr(as, bs) - mean(cs.map((c) => c.psnr!))) < 1e-10);
  const same = new Uint8Array(11 * 11 * 3).fill(7), other = new Uint8Array(11 * 11 * 3).fill(9);
  assert.equal(meanPsnr([same, same], [same, other]), Infinity);
  assert.ok(Math.abs(meanPsnr([same, same], [same, other], { cap: 60 }) - (60 + psnr(same, other)) / 2) < 1e-12);
  assert.throws(() => ssim(new Uint8Array(10 * 10 * 3), new Uint8Array(10 * 10 * 3), 10, 10), /10×10 are smaller than the 11×11 window/);
  assert.throws(() => ssim(same, same, 11, 12), /not an image of 11×12×3/);
  assert.throws(() => psnr(same, new Uint8Array(3)), /differ in size/);
  assert.throws(() => psnr(new Float32Array(3) as unknown as Uint8Array, new Uint8Array(3)), /must be Uint8Array/);
  assert.throws(() => meanSsim([], [], 11, 11), /non-empty/);
  assert.throws(() => meanPsnr([same], [same], { cap: 0 }), /cap/);
});
