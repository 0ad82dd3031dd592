// The native (oneDNN) backend: every native kernel against its reference kernel on random inputs,
// f32 and bf16, empty tensors, gradients of ops through both backends, bad input (throws, never
// crashes), the primitive cache, and loading from a worker thread. Skipped when the addon is not loaded.
// Tolerances: f32 ≤ 1e-5 relative; bf16 ≤ 1e-4 against the reference on bf16-rounded inputs (same
// rounding, f32 vs double accumulation) and ≤ 1e-2 against the plain f32 reference.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  Generator, Tensor, add, conv2d, div, f32ArrayToBf16, gelu, groupNorm, hasNativeKernel, isNativeAvailable, kernel,
  layerNorm, log, logSoftmax, matmul, mul, nativeAddon, referenceKernel, scaledDotProductAttention, sigmoid, softmax,
  sub, tanh, withBackend,
} from '../../src/engine/index.js';
import type { KernelMap, KernelName } from '../../src/engine/kernels.js';
import { NATIVE_KERNELS } from '../../src/engine/backends/native-kernels.js';
import type { AttentionDims, AttentionMask } from '../../src/engine/ops/attention.js';
import type { Conv2dDims } from '../../src/engine/ops/conv.js';
import type { MatmulDims } from '../../src/engine/ops/matmul.js';
import { maxRelErr } from '../helpers/gradcheck.js';

const addon = nativeAddon();
const skip = addon === null || !isNativeAvailable() ? 'native addon not loaded' : false;

/** The native implementation of a kernel (captured under the native backend). */
function nat<K extends KernelName>(name: K): KernelMap[K] { return withBackend('native', () => kernel(name)); }
const ref = referenceKernel;

function randArr(g: Generator, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * g.uniform();
  return a;
}

/**
 * Asserts max |a − b| / (|b| + floor) ≤ tol, the floor a fraction of b's largest magnitude (10%; 100%
 * for bf16 against f32, where rounding the inputs moves near-zero sums by a fraction of the typical size).
 */
function near(actual: ArrayLike<number> | null, expected: ArrayLike<number> | null, tol: number, what: string, floorFrac = 0.1): void {
  if (expected === null || actual === null) { assert.equal(actual, expected, `${what}: null mismatch`); return; }
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  const err = maxRelErr(actual, expected, floorFrac * scale + 1e-6);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

// ---------------------------------------------------------------- matmul

const MM_SHAPES = [
  { batch: 1, m: 5, k: 7, n: 3, sa: true, sb: true },
  { batch: 3, m: 6, k: 33, n: 17, sa: true, sb: true },
  { batch: 3, m: 4, k: 9, n: 5, sa: false, sb: true },  // a broadcast over the batch
  { batch: 2, m: 4, k: 9, n: 5, sa: true, sb: false },  // b broadcast
  { batch: 3, m: 2, k: 3, n: 4, sa: false, sb: false }, // both broadcast
];

function mmCases(): { d: MatmulDims; la: number; lb: number }[] {
  const out: { d: MatmulDims; la: number; lb: number }[] = [];
  for (const s of MM_SHAPES) for (const transA of [false, true]) for (const transB of [false, true]) {
    const strideA = s.sa && s.batch > 1 ? s.m * s.k : 0, strideB = s.sb && s.batch > 1 ? s.k * s.n : 0;
    const d: MatmulDims = { batch: s.batch, m: s.m, k: s.k, n: s.n, transA, transB, strideA, strideB };
    out.push({ d, la: strideA === 0 ? s.m * s.k : s.batch * strideA, lb: strideB === 0 ? s.k * s.n : s.batch * strideB });
  }
  return out;
}

test('native: version, cache stats and the registered kernels', { skip }, () => {
  const v = addon!.version();
  assert.match(v.dnnl, /^\d+\.\d+\.\d+$/);
  assert.ok(v.threads >= 1 && typeof v.isa === 'string');
  for (const k of NATIVE_KERNELS) assert.ok(hasNativeKernel(k), `${k} is not registered`);
});

test('native matmul f32: every transpose/broadcast combination matches the reference', { skip }, () => {
  const g = new Generator(1);
  for (const { d, la, lb } of mmCases()) {
    const a = randArr(g, la), b = randArr(g, lb);
    near(nat('matmul')(a, b, d, 'fp32'), ref('matmul')(a, b, d, 'fp32'), 1e-5, `matmul ${JSON.stringify(d)}`);
  }
});

test('matmul with a bias: the reference adds it to every row; native matches the reference (f32, bf16)', { skip }, () => {
  const g = new Generator(3);
  for (const { d, la, lb } of mmCases()) {
    const a = randArr(g, la), b = randArr(g, lb), bias = randArr(g, d.n);
    const plain = ref('matmul')(a, b, d, 'fp32'), withBias = ref('matmul')(a, b, d, 'fp32', bias);
    withBias.forEach((v, i) => assert.ok(Math.abs(v - (plain[i]! + bias[i % d.n]!)) <= 1e-5 * (1 + Math.abs(v)), `reference bias at ${i}`));
    near(nat('matmul')(a, b, d, 'fp32', bias), withBias, 1e-5, `matmul + bias ${JSON.stringify(d)}`);
    near(nat('matmul')(a, b, d, 'bf16', bias), ref('matmul')(a, b, d, 'bf16', bias), 1e-4, `bf16 matmul + bias ${JSON.stringify(d)}`);
  }
  const d1: MatmulDims = { batch: 1, m: 2, k: 2, n: 3, transA: false, transB: false, strideA: 0, strideB: 0 };
  assert.throws(() => nat('matmul')(new Float32Array(4), new Float32Array(6), d1, 'fp32', new Float32Array(2)), /bias must be a float array of n = 3/);
});

test('native sumRows (bias gradients) matches the reference, threaded and not; bad sizes are errors', { skip }, () => {
  const g = new Generator(13);
  for (const [rows, cols] of [[1, 1], [3, 5], [2178, 512], [70000, 3]] as const) {
    const x = randArr(g, rows * cols);
    near(nat('sumRows')(x, rows, cols), ref('sumRows')(x, rows, cols), 1e-6, `sumRows ${rows}×${cols}`);
  }
  assert.deepEqual(Array.from(ref('sumRows')(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3)), [5, 7, 9]);
  assert.throws(() => nat('sumRows')(new Float32Array(5), 2, 3), RangeError);
  assert.throws(() => addon!.sumRows(new Float32Array(5), 2, 3), RangeError);
});

test('native stridedCopy (permute, slice, expand, head split) equals the reference exactly; bad reads are errors', { skip }, () => {
  const g = new Generator(14);
  const cases: Array<{ what: string; len: number; offset: number; strides: number[]; shape: number[] }> = [
    // [B, S, 3·H·Dh] → [3, B, H, S, Dh]: the packed attention's head split (rows of Dh = 32 floats).
    { what: 'head split', len: 8 * 96 * 768, offset: 0, strides: [256, 96 * 768, 32, 768, 1], shape: [3, 8, 8, 96, 32] },
    { what: 'transpose', len: 300 * 70, offset: 0, strides: [1, 70], shape: [70, 300] },
    { what: 'slice with offset', len: 64 * 200, offset: 200 * 3 + 5, strides: [200, 1], shape: [60, 190] },
    { what: 'expand (stride 0)', len: 512, offset: 0, strides: [0, 1], shape: [40, 512] },
    { what: 'size-1 dims and a strided last dim', len: 9000, offset: 1, strides: [0, 3, 90], shape: [1, 30, 99] },
    { what: 'below the native threshold (JS)', len: 100, offset: 0, strides: [1, 10], shape: [10, 10] },
  ];
  for (const c of cases) {
    const x = randArr(g, c.len);
    const got = nat('stridedCopy')(x, c.offset, c.strides, c.shape);
    assert.ok(got instanceof Float32Array, c.what);
    assert.deepEqual(got, ref('stridedCopy')(x, c.offset, c.strides, c.shape), c.what);
  }
  // Other dtypes take the reference path and keep their type.
  const ints = Int32Array.from({ length: 8192 }, (_, i) => i);
  const t = nat('stridedCopy')(ints, 0, [1, 64], [64, 128]);
  assert.ok(t instanceof Int32Array);
  assert.deepEqual(t, ref('stridedCopy')(ints, 0, [1, 64], [64, 128]));
  // A read past the end is a RangeError in TypeScript and in the addon, never a crash.
  assert.throws(() => nat('stridedCopy')(new Float32Array(8191), 0, [128, 1], [64, 128]), /needs 8192 elements, x has 8191/);
  assert.throws(() => addon!.stridedCopy(new Float32Array(10), 0, 2, [4, 4], [4, 1]), RangeError);
  assert.throws(() => addon!.stridedCopy(new Float32Array(16), 0, 2, [4, 4], [4, -1]), RangeError);
  assert.throws(() => addon!.stridedCopy(new Int32Array(16) as unknown as Float32Array, 0, 2, [4, 4], [4, 1]), TypeError);
});

test('native adamwUpdate and dropout are bit-identical to the reference; bad input is an error', { skip }, () => {
  const g = new Generator(15);
  for (const n of [1, 1000, 100_000]) {
    const x = randArr(g, n), m = randArr(g, n, 0, 0.1), v = randArr(g, n, 0, 0.01);
    const xr = x.slice(), mr = m.slice(), vr = v.slice();
    for (let t = 1; t <= 3; t++) {
      const grad = randArr(g, n, -2, 2);
      const h = { b1: 0.9, b2: 0.95, eps: 1e-8, decay: 1 - 3e-4 * 0.01, stepSize: 3e-4 / (1 - 0.9 ** t), bc2Sqrt: Math.sqrt(1 - 0.95 ** t) };
      nat('adamwUpdate')(x, grad, m, v, h);
      ref('adamwUpdate')(xr, grad, mr, vr, h);
    }
    assert.deepEqual([x, m, v], [xr, mr, vr], `adamwUpdate n ${n}`);
    const keep = Uint8Array.from({ length: n }, (_, i) => (i * 7919) % 10 < 9 ? 1 : 0);
    assert.deepEqual(nat('dropout')(x, keep, 1 / 0.9), ref('dropout')(x, keep, 1 / 0.9), `dropout n ${n}`);
  }
  const h = { b1: 0.9, b2: 0.999, eps: 1e-8, decay: 1, stepSize: 1e-3, bc2Sqrt: 0.5 };
  const a = new Float32Array(5000);
  assert.throws(() => nat('adamwUpdate')(a, new Float32Array(4999), a.slice(), a.slice(), h), /one length/);
  assert.throws(() => nat('adamwUpdate')(a, a.slice(), a.slice(), a.slice(), { ...h, eps: NaN }), /eps must be a finite number/);
  assert.throws(() => addon!.adamwUpdate(a, a.slice(), a.slice(), new Float32Array(3), 0.9, 0.999, 1e-8, 1, 1e-3, 0.5), RangeError);
  assert.throws(() => nat('dropout')(a, new Uint8Array(4999), 2), /keep must be a Uint8Array of 5000/);
  assert.throws(() => addon!.dropout(a, new Uint8Array(10), 2), RangeError);
});

test('native sumSquares (chunked, thread-count independent) and scale match the reference', { skip }, () => {
  const g = new Generator(16);
  for (const n of [3, 5000, 300_000]) {
    const x = randArr(g, n, -3, 3);
    const want = ref('sumSquares')(x);
    assert.ok(Math.abs(nat('sumSquares')(x) - want) <= 1e-12 * want, `sumSquares n ${n}`);
    assert.deepEqual(nat('scale')(x, 0.123456789), ref('scale')(x, 0.123456789), `scale n ${n}`);
  }
  assert.equal(nat('sumSquares')(new Float32Array(0)), 0);
  assert.throws(() => nat('scale')(new Float32Array(5000), Infinity), /c must be a finite number/);
  assert.throws(() => addon!.scale(new Float32Array(5000), NaN), RangeError);
});

test('native crossEntropy and its backward match the reference (ignored rows, smoothing, a NaN row); bad input is an error', { skip }, () => {
  const g = new Generator(17);
  // 37 × 513 and 300 × 1000 run native (≥ 4096 logits); 3 × 5 falls back to the reference.
  for (const [rows, cols] of [[3, 5], [37, 513], [300, 1000]] as const) {
    for (const eps of [0, 0.1]) {
      const x = randArr(g, rows * cols, -8, 8);
      const t = Int32Array.from({ length: rows }, (_, r) => (r % 7 === 3 ? -100 : g.int(cols)));
      if (rows > 3) x[5 * cols + 2] = NaN; // row 5: NaN loss, lse and gradient on both sides
      const got = nat('crossEntropy')(x, t, rows, cols, -100, eps), want = ref('crossEntropy')(x, t, rows, cols, -100, eps);
      const gr = randArr(g, rows, 0.5, 2);
      const dx = nat('crossEntropyBackward')(x, t, got.lse, gr, rows, cols, -100, eps);
      const dxWant = ref('crossEntropyBackward')(x, t, want.lse, gr, rows, cols, -100, eps);
      for (const [a, b, what] of [[got.loss, want.loss, 'loss'], [got.lse, want.lse, 'lse'], [dx, dxWant, 'dlogits']] as const) {
        for (let i = 0; i < b.length; i++) {
          const ok = Number.isNaN(b[i]!) ? Number.isNaN(a[i]!) : Math.abs(a[i]! - b[i]!) <= 1e-6 * Math.abs(b[i]!) + 1e-30;
          assert.ok(ok, `${what} [${i}] ${a[i]} vs ${b[i]} (${rows}×${cols}, ε ${eps})`);
        }
      }
      if (rows > 3) {
        assert.equal(got.loss[3], 0, 'an ignored row has no loss');
        assert.ok(dx.subarray(3 * cols, 4 * cols).every((v) => v === 0), 'an ignored row has no gradient');
      }
    }
  }
  const x = new Float32Array(5000), t = new Int32Array(10);
  assert.throws(() => nat('crossEntropy')(x, new Float32Array(10) as unknown as Int32Array, 10, 500, -100, 0), /targets must be an Int32Array of 10/);
  assert.throws(() => nat('crossEntropy')(x, t, 10, 500, -100, 2), /labelSmoothing must be in \[0, 1\]/);
  assert.throws(() => nat('crossEntropyBackward')(x, t, new Float32Array(9), new Float32Array(10), 10, 500, -100, 0), /lse has 9 elements/);
  // The addon re-checks what TypeScript checked: a target outside [0, cols) is a RangeError, not a read out of bounds.
  assert.throws(() => addon!.crossEntropy(x, Int32Array.from({ length: 10 }, () => 500), 10, 500, -100, 0), /outside \[0, cols\)/);
  assert.throws(() => addon!.crossEntropy(x, new Int32Array(9), 10, 500, -100, 0), RangeError);
  assert.throws(() => addon!.crossEntropy(x, t, 10, 500, 1e300, 0), /ignoreIndex must be an integer within int32 range/);
  assert.throws(() => addon!.crossEntropyBackward(x, t, new Float32Array(10), new Float32Array(3), 10, 500, -100, 0), RangeError);
});

test('native matmul bf16: f32 inputs rounded, bf16 storage and mixed inputs', { skip }, () => {
  const g = new Generator(2);
  for (const { d, la, lb } of mmCases()) {
    const a = randArr(g, la), b = randArr(g, lb);
    const got = nat('matmul')(a, b, d, 'bf16');
    near(got, ref('matmul')(a, b, d, 'bf16'), 1e-4, `bf16 matmul vs rounded reference ${JSON.stringify(d)}`);
    near(got, ref('matmul')(a, b, d, 'fp32'), 1e-2, `bf16 matmul vs f32 reference ${JSON.stringify(d)}`, 1);
    const ab = f32ArrayToBf16(a), bb = f32ArrayToBf16(b);
    near(nat('matmul')(ab, bb, d, 'fp32'), ref('matmul')(ab, bb, d, 'fp32'), 1e-4, 'bf16 storage');
    near(nat('matmul')(ab, b, d, 'fp32'), ref('matmul')(ab, b, d, 'fp32'), 1e-5, 'bf16 × f32 widened');
  }
});

test('native kernels hand empty tensors to the reference kernels', { skip }, () => {
  const e = new Float32Array(0);
  const d: MatmulDims = { batch: 2, m: 0, k: 3, n: 4, transA: false, transB: false, strideA: 0, strideB: 12 };
  assert.equal(nat('matmul')(e, new Float32Array(24), d, 'fp32').length, 0);
  const z = nat('matmul')(e, e, { ...d, m: 2, k: 0, strideB: 0 }, 'fp32'); // K = 0: zeros
  assert.deepEqual(Array.from(z), new Array<number>(16).fill(0));
  assert.equal(nat('softmax')(e, 0, 5, true).length, 0);
  assert.equal(nat('layerNorm')(e, null, null, 0, 4, 1e-5).y.length, 0);
  assert.equal(nat('conv2d')(e, new Float32Array(18), null, convDims(0, 4, 4, 2, 1, 3, 3, [1, 1], [1, 1, 1, 1]), 'fp32').length, 0);
  assert.equal(nat('attention')(e, e, e, null, { bh: 2, sq: 0, sk: 0, dh: 4, dv: 4, scale: 0.5 }, 'fp32').out.length, 0);
});

test('native matmul: f64 inputs run the reference kernel', { skip }, () => {
  const a = Float64Array.from([1, 2, 3, 4]), b = Float64Array.from([5, 6, 7, 8]);
  const d: MatmulDims = { batch: 1, m: 2, k: 2, n: 2, transA: false, transB: false, strideA: 0, strideB: 0 };
  const out = nat('matmul')(a, b, d, 'fp32');
  assert.ok(out instanceof Float64Array);
  assert.deepEqual(Array.from(out), [19, 22, 43, 50]);
});

// ---------------------------------------------------------------- conv

function convDims(n: number, h: number, w: number, ci: number, co: number, kh: number, kw: number,
  stride: [number, number], pad: [number, number, number, number]): Conv2dDims {
  const [strideH, strideW] = stride, [padTop, padLeft, padBottom, padRight] = pad;
  const oh = Math.floor((h + padTop + padBottom - kh) / strideH) + 1, ow = Math.floor((w + padLeft + padRight - kw) / strideW) + 1;
  return { n, h, w, ci, co, kh, kw, strideH, strideW, padTop, padLeft, padBottom, padRight, oh, ow };
}

const CONV_CASES: Conv2dDims[] = [
  convDims(2, 9, 8, 3, 4, 3, 3, [2, 2], [1, 0, 1, 1]), // stride 2, asymmetric padding
  convDims(1, 6, 7, 8, 16, 3, 3, [1, 1], [1, 1, 1, 1]),
  convDims(2, 5, 5, 16, 8, 1, 1, [1, 1], [0, 0, 0, 0]),
  convDims(1, 8, 8, 4, 4, 4, 4, [2, 2], [0, 0, 1, 1]), // taming's downsample-like pad (0, 1, 0, 1)
];

for (const precision of ['fp32', 'bf16'] as const) {
  test(`native conv2d forward / backward data / backward weights (${precision})`, { skip }, () => {
    const g = new Generator(3);
    for (const d of CONV_CASES) {
      const x = randArr(g, d.n * d.h * d.w * d.ci), w = randArr(g, d.co * d.ci * d.kh * d.kw);
      const bias = randArr(g, d.co), gy = randArr(g, d.n * d.oh * d.ow * d.co);
      const tol = precision === 'fp32' ? 1e-5 : 1e-4, what = `${precision} ${JSON.stringify(d)}`;
      const y = nat('conv2d')(x, w, bias, d, precision);
      near(y, ref('conv2d')(x, w, bias, d, precision), tol, `conv2d ${what}`);
      near(nat('conv2d')(x, w, null, d, precision), ref('conv2d')(x, w, null, d, precision), tol, `conv2d no bias ${what}`);
      const dx = nat('conv2dBackwardData')(gy, w, d, precision);
      near(dx, ref('conv2dBackwardData')(gy, w, d, precision), tol, `conv2dBackwardData ${what}`);
      const r = nat('conv2dBackwardWeights')(x, gy, d, true, precision), e = ref('conv2dBackwardWeights')(x, gy, d, true, precision);
      near(r.dw, e.dw, tol, `conv2dBackwardWeights dw ${what}`);
      near(r.dbias, e.dbias, 1e-5, `conv2dBackwardWeights dbias ${what}`);
      assert.equal(nat('conv2dBackwardWeights')(x, gy, d, false, precision).dbias, null);
      if (precision === 'bf16') {
        near(y, ref('conv2d')(x, w, bias, d, 'fp32'), 1e-2, `bf16 conv2d vs f32 ${what}`, 1);
        near(dx, ref('conv2dBackwardData')(gy, w, d, 'fp32'), 1e-2, `bf16 conv2dBackwardData vs f32 ${what}`, 1);
        near(r.dw, ref('conv2dBackwardWeights')(x, gy, d, false, 'fp32').dw, 1e-2, `bf16 dw vs f32 ${what}`, 1);
      }
    }
  });
}

test('native conv2d reads bf16 bits directly: all-bf16 inputs equal the bf16-rounded f32 path; mixed inputs widen', { skip }, () => {
  const g = new Generator(4);
  for (const d of CONV_CASES) {
    const x = randArr(g, d.n * d.h * d.w * d.ci), w = randArr(g, d.co * d.ci * d.kh * d.kw), gy = randArr(g, d.n * d.oh * d.ow * d.co);
    const [x16, w16, g16] = [x, w, gy].map((a) => f32ArrayToBf16(a)) as [Uint16Array, Uint16Array, Uint16Array];
    const what = JSON.stringify(d);
    // all inputs bf16, precision fp32 → computed in bf16 (exactly what rounding f32 inputs does)
    near(nat('conv2d')(x16, w16, null, d, 'fp32'), ref('conv2d')(x, w, null, d, 'bf16'), 1e-4, `conv2d bf16 bits ${what}`);
    near(nat('conv2dBackwardData')(g16, w16, d, 'fp32'), ref('conv2dBackwardData')(gy, w, d, 'bf16'), 1e-4, `bwd data bf16 bits ${what}`);
    const r = nat('conv2dBackwardWeights')(x16, g16, d, true, 'fp32'), e = ref('conv2dBackwardWeights')(x16, g16, d, true, 'fp32');
    near(r.dw, e.dw, 1e-4, `bwd weights bf16 bits ${what}`);
    near(r.dbias, e.dbias, 1e-5, `dbias from bf16 bits ${what}`);
    // one bf16 input, fp32 precision → the bf16 one is widened exactly and the conv runs in f32
    near(nat('conv2d')(x16, w, null, d, 'fp32'), ref('conv2d')(x16, w, null, d, 'fp32'), 1e-5, `mixed conv2d ${what}`);
  }
  assert.throws(() => nat('conv2d')(new Int32Array(4) as unknown as Float32Array, new Float32Array(1), null, CONV_CASES[0]!, 'fp32'), TypeError);
});

// ---------------------------------------------------------------- norms, softmax, elementwise

test('native layerNorm and groupNorm (forward + backward, with and without gamma/beta)', { skip }, () => {
  const g = new Generator(5);
  for (const [rows, cols] of [[7, 33], [2, 768]] as const) {
    const x = randArr(g, rows * cols, -2, 3), gy = randArr(g, rows * cols), ga = randArr(g, cols, 0.5, 1.5), be = randArr(g, cols);
    for (const [gamma, beta] of [[ga, be], [null, null], [ga, null], [null, be]] as const) {
      const what = `layerNorm ${rows}×${cols} gamma=${gamma !== null} beta=${beta !== null}`;
      const n = nat('layerNorm')(x, gamma, beta, rows, cols, 1e-5), r = ref('layerNorm')(x, gamma, beta, rows, cols, 1e-5);
      near(n.y, r.y, 1e-5, what); near(n.mean, r.mean, 1e-5, `${what} mean`); near(n.rstd, r.rstd, 1e-5, `${what} rstd`);
      const nb = nat('layerNormBackward')(x, gamma, n.mean, n.rstd, gy, rows, cols, beta !== null);
      const rb = ref('layerNormBackward')(x, gamma, r.mean, r.rstd, gy, rows, cols, beta !== null);
      near(nb.dx, rb.dx, 1e-5, `${what} dx`); near(nb.dgamma, rb.dgamma, 1e-5, `${what} dgamma`); near(nb.dbeta, rb.dbeta, 1e-5, `${what} dbeta`);
    }
  }
  const [n, p, c, groups] = [2, 12, 16, 4];
  const x = randArr(g, n * p * c, -1, 2), gy = randArr(g, n * p * c), ga = randArr(g, c, 0.5, 1.5), be = randArr(g, c);
  for (const [gamma, beta] of [[ga, be], [null, null]] as const) {
    const nf = nat('groupNorm')(x, gamma, beta, n, p, c, groups, 1e-6), rf = ref('groupNorm')(x, gamma, beta, n, p, c, groups, 1e-6);
    near(nf.y, rf.y, 1e-5, 'groupNorm y'); near(nf.mean, rf.mean, 1e-5, 'groupNorm mean'); near(nf.rstd, rf.rstd, 1e-5, 'groupNorm rstd');
    const nb = nat('groupNormBackward')(x, gamma, nf.mean, nf.rstd, gy, n, p, c, groups, beta !== null);
    const rb = ref('groupNormBackward')(x, gamma, rf.mean, rf.rstd, gy, n, p, c, groups, beta !== null);
    near(nb.dx, rb.dx, 1e-5, 'groupNorm dx'); near(nb.dgamma, rb.dgamma, 1e-5, 'groupNorm dgamma'); near(nb.dbeta, rb.dbeta, 1e-5, 'groupNorm dbeta');
  }
});

test('native softmax and log-softmax, forward and backward', { skip }, () => {
  const g = new Generator(6);
  for (const [rows, cols] of [[5, 7], [3, 1000]] as const) for (const log of [false, true]) {
    const x = randArr(g, rows * cols, -6, 6), gy = randArr(g, rows * cols);
    const y = nat('softmax')(x, rows, cols, log);
    near(y, ref('softmax')(x, rows, cols, log), 1e-5, `softmax log=${log}`);
    near(nat('softmaxBackward')(y, gy, rows, cols, log), ref('softmaxBackward')(y, gy, rows, cols, log), 1e-5, `softmaxBackward log=${log}`);
  }
});

test('native unary kinds, forward and backward', { skip }, () => {
  const g = new Generator(7);
  const kinds = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'tanh', 'sigmoid', 'relu', 'gelu', 'gelu_tanh', 'silu'] as const;
  for (const kind of kinds) {
    const positive = kind === 'log' || kind === 'sqrt' || kind === 'rsqrt';
    const x = positive ? randArr(g, 1000, 0.1, 4) : randArr(g, 1000, -5, 5), gy = randArr(g, 1000);
    const y = nat('unary')(kind, x);
    near(y, ref('unary')(kind, x), 1e-5, `unary ${kind}`);
    near(nat('unaryBackward')(kind, x, y, gy), ref('unaryBackward')(kind, x, y, gy), 1e-5, `unaryBackward ${kind}`);
  }
  // Outputs of 64 KiB and more come from the uninitialised-memory allocator: every element must be written.
  const big = randArr(g, 40_000, -4, 4);
  near(nat('unary')('gelu', big), ref('unary')('gelu', big), 1e-5, 'unary gelu, large output');
  const md: MatmulDims = { batch: 1, m: 130, k: 20, n: 131, transA: true, transB: false, strideA: 0, strideB: 0 };
  const a = randArr(g, 130 * 20), b = randArr(g, 20 * 131);
  near(nat('matmul')(a, b, md, 'fp32'), ref('matmul')(a, b, md, 'fp32'), 1e-5, 'matmul, large output');
});

test('native binary: same shapes, broadcast either side, scalars, fallbacks', { skip }, () => {
  const g = new Generator(8);
  const cases: [number[], number[]][] = [[[4, 5], [4, 5]], [[3, 4, 5], [5]], [[3, 4, 5], [4, 1]], [[5], [3, 4, 5]], [[4, 1], [3, 4, 5]],
    [[2, 3], []], [[], [2, 3]], [[3, 1], [1, 4]]];
  for (const kind of ['add', 'sub', 'mul', 'div'] as const) {
    for (const [as, bs] of cases) {
      const out = as.length >= bs.length ? as.map((d, i) => Math.max(d, bs[i - as.length + bs.length] ?? 1)) : bs.map((d, i) => Math.max(d, as[i - bs.length + as.length] ?? 1));
      const a = randArr(g, as.reduce((p, d) => p * d, 1), 0.5, 2), b = randArr(g, bs.reduce((p, d) => p * d, 1), 0.5, 2);
      near(nat('binary')(kind, a, as, b, bs, out), ref('binary')(kind, a, as, b, bs, out), 1e-6, `binary ${kind} [${as}] ∘ [${bs}]`);
    }
  }
});

test('native attention: no mask, shared and per-head masks with an empty row, f32 and bf16', { skip }, () => {
  const g = new Generator(10);
  const d: AttentionDims = { bh: 3, sq: 5, sk: 7, dh: 8, dv: 6, scale: 1 / Math.sqrt(8) };
  const q = randArr(g, d.bh * d.sq * d.dh, -2, 2), k = randArr(g, d.bh * d.sk * d.dh, -2, 2), v = randArr(g, d.bh * d.sk * d.dv);
  const gy = randArr(g, d.bh * d.sq * d.dv);
  const causal = Uint8Array.from({ length: d.sq * d.sk }, (_, i) => (i % d.sk <= Math.floor(i / d.sk) ? 1 : 0));
  const perHead = Uint8Array.from({ length: d.bh * d.sq * d.sk }, () => (g.uniform() < 0.6 ? 1 : 0));
  perHead.fill(0, 2 * d.sk, 3 * d.sk); // query row 2 of head 0 may attend to nothing
  const masks: (AttentionMask | null)[] = [null, { data: causal, shared: true }, { data: perHead, shared: false }];
  for (const precision of ['fp32', 'bf16'] as const) for (const mask of masks) {
    const what = `attention ${precision} mask=${mask === null ? 'none' : mask.shared ? 'shared' : 'per-head'}`;
    const tol = precision === 'fp32' ? 1e-5 : 1e-4;
    const n = nat('attention')(q, k, v, mask, d, precision), r = ref('attention')(q, k, v, mask, d, precision);
    near(n.out, r.out, tol, `${what} out`); near(n.probs, r.probs, tol, `${what} probs`);
    if (mask !== null && !mask.shared) assert.ok(n.probs.subarray(2 * d.sk, 3 * d.sk).every((p) => p === 0), 'empty row has zero probs');
    const nb = nat('attentionBackward')(q, k, v, n.probs, gy, d, precision), rb = ref('attentionBackward')(q, k, v, r.probs, gy, d, precision);
    near(nb.dq, rb.dq, tol, `${what} dq`); near(nb.dk, rb.dk, tol, `${what} dk`); near(nb.dv, rb.dv, tol, `${what} dv`);
  }
});

// ---------------------------------------------------------------- gradients through the ops

/** Runs fn on a backend and returns the output and the gradients of `inputs` for a fixed seed gradient. */
function runGrads(backend: 'native' | 'reference', fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], seed: number) {
  return withBackend(backend, () => {
    const leaves = inputs.map((t) => new Tensor(t.data, t.shape, true));
    const y = fn(...leaves);
    const gen = new Generator(seed);
    y.backward(new Tensor(randArr(gen, y.size), y.shape));
    return { y: y.data as Float32Array, grads: leaves.map((l) => l.grad!.data as Float32Array) };
  });
}

/**
 * Outputs within 1e-5, gradients within 5e-5: the backward runs on each backend's own forward outputs, so
 * last-bit differences of the forward (f32 vs double) are amplified once more through the chain.
 */
function sameGrads(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], what: string): void {
  const n = runGrads('native', fn, inputs, 9), r = runGrads('reference', fn, inputs, 9);
  near(n.y, r.y, 1e-5, `${what} output`);
  n.grads.forEach((gr, i) => near(gr, r.grads[i]!, 5e-5, `${what} grad ${i}`));
}

test('native: gradients of ops match the reference backend', { skip }, () => {
  const g = new Generator(4);
  const t = (shape: number[], lo = -1, hi = 1): Tensor => new Tensor(randArr(g, shape.reduce((p, d) => p * d, 1), lo, hi), shape);
  sameGrads((a, b) => matmul(a!, b!), [t([3, 4, 5]), t([5, 6])], 'matmul broadcast b');
  sameGrads((a, b) => matmul(a!, b!, { transA: true, transB: true }), [t([2, 5, 4]), t([2, 6, 5])], 'matmul transposed');
  sameGrads((x, w, b) => conv2d(x!, w!, b!, { stride: 2, padding: [1, 0, 1, 1] }), [t([2, 7, 6, 3]), t([5, 3, 3, 3]), t([5])], 'conv2d');
  sameGrads((x, ga, be) => layerNorm(x!, ga!, be!), [t([3, 4, 16]), t([16]), t([16])], 'layerNorm');
  sameGrads((x, ga, be) => groupNorm(x!, 4, ga!, be!), [t([2, 3, 3, 8]), t([8]), t([8])], 'groupNorm');
  sameGrads((x) => softmax(x!), [t([4, 9], -3, 3)], 'softmax');
  sameGrads((x) => logSoftmax(x!), [t([4, 9], -3, 3)], 'logSoftmax');
  sameGrads((x, b) => gelu(add(x!, b!)), [t([3, 5, 8]), t([8])], 'gelu(x + b)');
  sameGrads((x, b) => div(sub(b!, x!), mul(x!, x!)), [t([3, 8], 0.5, 2), t([8], 0.5, 2)], 'div/sub/mul broadcasts');
  sameGrads((x) => log(sigmoid(tanh(x!))), [t([50], 0.1, 3)], 'log ∘ sigmoid ∘ tanh');
  const causal = new Tensor(Int32Array.from({ length: 36 }, (_, i) => (i % 6 <= Math.floor(i / 6) ? 1 : 0)), [6, 6]);
  sameGrads((q, k, v) => scaledDotProductAttention(q!, k!, v!, { mask: causal }), [t([2, 2, 6, 4]), t([2, 2, 6, 4]), t([2, 2, 6, 3])], 'attention');
});

// ---------------------------------------------------------------- bad input

test('native kernels reject bad input with TypeError/RangeError before calling in', { skip }, () => {
  const d: MatmulDims = { batch: 1, m: 2, k: 2, n: 2, transA: false, transB: false, strideA: 0, strideB: 0 };
  const f4 = new Float32Array(4);
  assert.throws(() => nat('matmul')(new Int32Array(4) as unknown as Float32Array, f4, d, 'fp32'), TypeError);
  assert.throws(() => nat('matmul')(new Float32Array(3), f4, d, 'fp32'), RangeError);
  assert.throws(() => nat('matmul')(f4, f4, { ...d, m: -2 }, 'fp32'), RangeError);
  assert.throws(() => nat('matmul')(f4, f4, { ...d, k: 1.5 }, 'fp32'), RangeError);
  assert.throws(() => nat('matmul')(f4, f4, d, 'fp16' as 'fp32'), RangeError);
  const cd = convDims(1, 4, 4, 2, 2, 3, 3, [1, 1], [1, 1, 1, 1]);
  assert.throws(() => nat('conv2d')(new Float32Array(31), new Float32Array(36), null, cd, 'fp32'), RangeError);
  assert.throws(() => nat('conv2d')(new Float32Array(32), new Float32Array(36), null, { ...cd, oh: 5 }, 'fp32'), RangeError);
  assert.throws(() => nat('conv2dBackwardData')(new Float32Array(32), [] as unknown as Float32Array, cd, 'fp32'), TypeError);
  assert.throws(() => nat('conv2dBackwardWeights')(new Float32Array(32), new Float32Array(32), { ...cd, strideH: 0 }, true, 'fp32'), RangeError);
  // Norms, softmax, elementwise.
  assert.throws(() => nat('layerNorm')(new Float32Array(6), null, null, 2, 3, NaN), RangeError);
  assert.throws(() => nat('layerNorm')(new Float32Array(6), new Float32Array(2), null, 2, 3, 1e-5), RangeError);
  assert.throws(() => nat('layerNormBackward')(f4, null, new Float32Array(2), new Float32Array(2), f4, 2, -2, false), RangeError);
  assert.throws(() => nat('groupNorm')(new Float32Array(6), null, null, 1, 2, 3, 2, 1e-5), RangeError);
  assert.throws(() => nat('groupNorm')(new Float32Array(6), null, null, 1, 2, 3, 3, Infinity), RangeError);
  assert.throws(() => nat('softmax')(new Float32Array(5), 2, 3, false), RangeError);
  assert.throws(() => nat('softmaxBackward')(new Float32Array(6), new Uint8Array(6) as unknown as Float32Array, 2, 3, true), TypeError);
  assert.throws(() => nat('unary')('cube' as 'exp', f4), RangeError);
  assert.throws(() => nat('unaryBackward')('exp', f4, f4, new Float32Array(3)), RangeError);
  assert.throws(() => nat('binary')('add', f4, [2, 2], f4, [2, 3], [2, 3]), RangeError);
  assert.throws(() => nat('binary')('pow' as 'add', f4, [4], f4, [4], [4]), RangeError);
  const ad: AttentionDims = { bh: 1, sq: 2, sk: 2, dh: 2, dv: 2, scale: 0.5 };
  assert.throws(() => nat('attention')(f4, f4, f4, { data: new Uint8Array(3), shared: true }, ad, 'fp32'), RangeError);
  assert.throws(() => nat('attention')(f4, f4, f4, { data: new Int32Array(4) as unknown as Uint8Array, shared: true }, ad, 'fp32'), TypeError);
  assert.throws(() => nat('attention')(f4, f4, f4, null, { ...ad, scale: NaN }, 'fp32'), RangeError);
  assert.throws(() => nat('attentionBackward')(f4, f4, f4, f4, new Float32Array(2), ad, 'fp32'), RangeError);
  // A detached buffer reads as empty.
  const gone = new Float32Array(4);
  structuredClone(gone.buffer, { transfer: [gone.buffer] });
  assert.throws(() => nat('matmul')(gone, f4, d, 'fp32'), RangeError);
  assert.throws(() => nat('softmax')(gone, 2, 2, false), /detached/);
});

test('native addon re-checks its arguments itself and never crashes', { skip }, () => {
  const a = addon!;
  const f4 = new Float32Array(4);
  assert.throws(() => (a.matmul as (...args: unknown[]) => unknown)(f4, f4, 1, 2, 2, 2, false, false, 0, 0), TypeError); // missing argument
  assert.throws(() => a.matmul(f4, new Float64Array(4) as unknown as Float32Array, 1, 2, 2, 2, false, false, 0, 0, false, null), TypeError);
  assert.throws(() => a.matmul(f4, f4, 1, 3, 2, 2, false, false, 0, 0, false, null), RangeError);
  assert.throws(() => a.matmul(f4, f4, 1, -2, 2, 2, false, false, 0, 0, false, null), RangeError);
  assert.throws(() => a.matmul(f4, f4, 1, 2 ** 30, 2 ** 30, 2, false, false, 0, 0, false, null), RangeError);
  assert.throws(() => a.matmul(f4, f4, 1, 2, 2, 2, false, false, 0, 0, false, new Float32Array(1)), RangeError); // bias shorter than n
  assert.throws(() => a.matmul(f4, f4, 1, 2, 2, 2, false, false, 0, 0, false, new Uint16Array(2) as unknown as Float32Array), TypeError);
  assert.throws(() => a.conv2d(f4, f4, null, [1, 2], false), RangeError);
  assert.throws(() => a.conv2d(f4, f4, null, [1, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, 2], false), RangeError);
  assert.throws(() => a.layerNorm(f4, null, null, 2, 2, NaN), RangeError);
  assert.throws(() => a.groupNorm(f4, null, null, 1, 2, 2, 3, 1e-5), RangeError);
  assert.throws(() => a.unary('cube', f4), RangeError);
  assert.throws(() => a.binary('add', f4, [2, 2], f4, [2, 3], false), RangeError);
  assert.throws(() => a.attention(f4, f4, f4, new Float32Array(4) as unknown as Uint8Array, true, 1, 2, 2, 2, 2, 0.5, false), TypeError);
  assert.throws(() => a.attention(f4, f4, f4, null, false, 1, 2, 2, 2, 2, Infinity, false), RangeError);
  assert.throws(() => a.setOutputAllocator(42 as unknown as (n: number) => ArrayBuffer), TypeError);
  const gone = new Float32Array(4);
  structuredClone(gone.buffer, { transfer: [gone.buffer] });
  assert.throws(() => a.softmax(gone, 1, 4, false), /detached/);
  const large = new Float32Array(1 << 15);
  try {
    a.setOutputAllocator((n) => { a.unary('relu', f4); return new ArrayBuffer(n); });
    assert.throws(() => a.unary('relu', large), /re-entrant/);
    a.setOutputAllocator((n) => new ArrayBuffer(n + 4));
    assert.throws(() => a.unary('relu', large), RangeError);
  } finally {
    a.setOutputAllocator((n) => Buffer.allocUnsafeSlow(n).buffer as ArrayBuffer);
  }
  assert.deepEqual(Array.from(a.unary('relu', Float32Array.from([-1, 2]))), [0, 2]); // still alive
});

// ---------------------------------------------------------------- cache, worker threads

test('native primitive cache: misses once per shape, then hits; capacity is enforced', { skip }, () => {
  const a = addon!;
  const x = new Float32Array(37 * 3);
  const s0 = a.cacheStats();
  a.softmax(x, 37, 3, false);
  const s1 = a.cacheStats();
  a.softmax(x, 37, 3, false);
  const s2 = a.cacheStats();
  assert.equal(s2.hits, s1.hits + 1);
  assert.equal(s2.misses, s1.misses);
  assert.ok(s1.misses >= s0.misses);
  const cap = s2.capacity;
  try {
    a.setCacheCapacity(2);
    for (let c = 1; c <= 4; c++) a.softmax(x, 1, 30 + c, false); // four new shapes
    assert.ok(a.cacheStats().size <= 2);
  } finally {
    a.setCacheCapacity(cap);
  }
});

test('native addon loads and runs in a worker thread that then exits', { skip }, async () => {
  const url = new URL('../../src/engine/index.js', import.meta.url).href;
  const src = `import { parentPort } from 'node:worker_threads';
    const E = await import(${JSON.stringify(url)});
    const y = E.nativeAddon().unary('relu', Float32Array.from([-1, 3]));
    parentPort.postMessage(Array.from(y));`;
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`));
  // Listen for 'exit' from the start: a worker that posts and exits at once may emit it before a later
  // once('exit') is attached, leaving the test awaiting an event that already happened.
  const exited = new Promise((resolve) => w.once('exit', resolve));
  const msg = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  assert.deepEqual(msg, [0, 3]);
  await exited;
  assert.deepEqual(Array.from(addon!.unary('relu', Float32Array.from([2, -2]))), [2, 0]); // main thread still fine
});
