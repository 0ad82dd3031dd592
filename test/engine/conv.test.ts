import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, conv2d, randn, roundToBf16, tensor, upsampleNearest2x, withPrecision, zeros,
  type Conv2dOptions, type Tensor,
} from '../../src/engine/index.js';
import { gradcheck, maxRelErr } from '../helpers/gradcheck.js';

/** Direct-formula conv (bounds checks per tap), independent of the kernel's loop structure. */
function naiveConv(x: Tensor, w: Tensor, bias: Tensor | null, sh: number, sw: number, pads: [number, number, number, number]): number[] {
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [co, , kh, kw] = w.shape as [number, number, number, number];
  const [pt, pl, pb, pr] = pads;
  const oh = Math.floor((h + pt + pb - kh) / sh) + 1, ow = Math.floor((wd + pl + pr - kw) / sw) + 1;
  const out: number[] = [];
  for (let b = 0; b < n; b++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) for (let o = 0; o < co; o++) {
    let s = bias === null ? 0 : bias.data[o]!;
    for (let c = 0; c < ci; c++) for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const iy = oy * sh - pt + ky, ix = ox * sw - pl + kx;
      if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
      s += x.data[((b * h + iy) * wd + ix) * ci + c]! * w.data[((o * ci + c) * kh + ky) * kw + kx]!;
    }
    out.push(s);
  }
  return out;
}

test('conv2d by hand: 2×2 kernel, and asymmetric padding with stride 2 (taming Downsample)', () => {
  const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
  const w = tensor([1, 0, 0, -1], [1, 1, 2, 2]);
  const y = conv2d(x, w, tensor([0.5], [1]));
  assert.deepEqual(y.shape, [1, 2, 2, 1]);
  assert.deepEqual(y.toArray(), [-3.5, -3.5, -3.5, -3.5]); // x[i,j] − x[i+1,j+1] + 0.5

  const x4 = tensor(Array.from({ length: 16 }, (_, i) => i), [1, 4, 4, 1]);
  const ones = tensor(new Array<number>(9).fill(1), [1, 1, 3, 3]);
  const yd = conv2d(x4, ones, null, { stride: 2, padding: [0, 0, 1, 1] });
  assert.deepEqual(yd.shape, [1, 2, 2, 1]);
  assert.deepEqual(yd.toArray(), [45, 39, 66, 50]);
});

test('conv2d matches the direct formula: channels, non-square kernel, mixed strides and padding', () => {
  const g = new Generator(3);
  const x = randn([2, 5, 6, 3], { dtype: 'f64', generator: g });
  const w = randn([4, 3, 3, 2], { dtype: 'f64', generator: g });
  const b = randn([4], { dtype: 'f64', generator: g });
  for (const [stride, padding, pads] of [
    [1, 0, [0, 0, 0, 0]], [[2, 1], [1, 0, 0, 1], [1, 0, 0, 1]], [[1, 2], [2, 1], [2, 1, 2, 1]],
  ] as Array<[Conv2dOptions['stride'], Conv2dOptions['padding'], [number, number, number, number]]>) {
    const y = conv2d(x, w, b, { stride, padding });
    const s = typeof stride === 'number' ? [stride, stride] : stride!;
    assert.ok(maxRelErr(y.toArray(), naiveConv(x, w, b, s[0]!, s[1]!, pads)) < 1e-12);
  }
});

test('conv2d in bf16 precision = fp32 conv of bf16-rounded x and w (bias not rounded)', () => {
  const g = new Generator(5);
  const x = randn([1, 4, 4, 3], { generator: g });
  const w = randn([2, 3, 3, 3], { generator: g });
  const b = tensor([0.123456789, -1.00390625]);
  const y = withPrecision('bf16', () => conv2d(x, w, b, { padding: 1 }));
  const xr = tensor(roundToBf16(x.data as Float32Array), x.shape);
  const wr = tensor(roundToBf16(w.data as Float32Array), w.shape);
  assert.ok(maxRelErr(y.toArray(), conv2d(xr, wr, b, { padding: 1 }).toArray(), 1e-3) < 1e-5);
  assert.ok(maxRelErr(y.toArray(), conv2d(x, w, b, { padding: 1 }).toArray(), 1e-1) > 1e-5, 'rounding must show');
});

const gradCases: Array<[string, number[], number[], boolean, Conv2dOptions]> = [
  ['3×3 stride 1, symmetric padding, bias', [2, 4, 5, 2], [3, 2, 3, 3], true, { padding: 1 }],
  ['3×3 stride 2, asymmetric padding, no bias', [1, 5, 5, 2], [2, 2, 3, 3], false, { stride: 2, padding: [0, 0, 1, 1] }],
  ['2×3 kernel, stride [1, 2], padding [1, 2], bias', [1, 4, 6, 2], [3, 2, 2, 3], true, { stride: [1, 2], padding: [1, 2] }],
  ['1×1 kernel, stride 2, bias', [2, 3, 3, 3], [2, 3, 1, 1], true, { stride: 2 }],
];
for (const [name, xs, ws, withBias, opts] of gradCases) {
  test(`conv2d gradcheck f64: ${name}`, () => {
    const g = new Generator(11);
    const x = randn(xs, { dtype: 'f64', generator: g, requiresGrad: true });
    const w = randn(ws, { dtype: 'f64', generator: g, requiresGrad: true });
    if (withBias) {
      const b = randn([ws[0]!], { dtype: 'f64', generator: g, requiresGrad: true });
      gradcheck((a, c, d) => conv2d(a!, c!, d!, opts), [x, w, b]);
    } else {
      gradcheck((a, c) => conv2d(a!, c!, null, opts), [x, w]);
    }
  });
}

test('conv2d backward computes only the gradients that are needed', () => {
  const g = new Generator(2);
  const x = randn([1, 3, 3, 2], { dtype: 'f64', generator: g });
  const w = randn([2, 2, 3, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((a, c) => conv2d(a!, c!, null, { padding: 1 }), [x, w]);
  assert.equal(x.grad, null);
});

test('conv2d rejects bad inputs with clear errors', () => {
  const x = zeros([1, 4, 4, 2]), w = zeros([3, 2, 3, 3]);
  assert.throws(() => conv2d(zeros([4, 4, 2]), w), /x must be \[N, H, W, CI\]/);
  assert.throws(() => conv2d(x, zeros([3, 2, 3])), /weight must be \[CO, CI, KH, KW\]/);
  assert.throws(() => conv2d(x, zeros([3, 5, 3, 3])), /2 channels but the weight expects 5/);
  assert.throws(() => conv2d(x, w, zeros([2])), /bias must be \[3\]/);
  assert.throws(() => conv2d(x, w, null, { stride: 0 }), /stride must be an integer ≥ 1/);
  assert.throws(() => conv2d(x, w, null, { stride: [1, 1.5] }), /stride must be an integer ≥ 1/);
  assert.throws(() => conv2d(x, w, null, { padding: -1 }), /padding must be integers ≥ 0/);
  assert.throws(() => conv2d(x, w, null, { padding: [0, 0, 3, 0] }), /smaller than the 3×3 kernel/);
  assert.throws(() => conv2d(x, w, null, { padding: [1, 2, 3] as unknown as [number, number] }), /padding must be a number/);
  assert.throws(() => conv2d(zeros([1, 2, 2, 2]), w), /smaller than the kernel/);
  assert.throws(() => conv2d(x, zeros([3, 2, 3, 3], 'f64')), /cannot mix f32 x and f64 weight/);
  assert.throws(() => conv2d(zeros([1, 4, 4, 2], 'i32'), w), /x must be f32 or f64/);
});

test('upsampleNearest2x by hand and gradcheck (backward sums each 2×2 block)', () => {
  const x = tensor([1, 10, 2, 20, 3, 30, 4, 40], [1, 2, 2, 2]);
  const y = upsampleNearest2x(x);
  assert.deepEqual(y.shape, [1, 4, 4, 2]);
  const ch0 = y.toArray().filter((_, i) => i % 2 === 0);
  assert.deepEqual(ch0, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  const xg = randn([2, 2, 3, 2], { dtype: 'f64', generator: new Generator(9), requiresGrad: true });
  gradcheck((a) => upsampleNearest2x(a!), [xg]);
  assert.throws(() => upsampleNearest2x(zeros([2, 2, 2])), /must be \[N, H, W, C\]/);
});
