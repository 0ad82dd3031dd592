import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, matmul, randn, roundToBf16, scaledDotProductAttention, tensor, withPrecision, zeros, type Tensor,
} from '../../src/engine/index.js';
import { gradcheck, maxRelErr } from '../helpers/gradcheck.js';

/** Causal mask [Sq, Sk] (query i sees keys ≤ i), i32. */
function causal(sq: number, sk: number): Tensor {
  return tensor(Array.from({ length: sq * sk }, (_, i) => (i % sk <= Math.floor(i / sk) ? 1 : 0)), [sq, sk], 'i32');
}

/** matmul → scale → masked softmax (loops) → matmul; mask given as a function of (b·h, i, j). */
function composed(q: Tensor, k: Tensor, v: Tensor, scale: number, allowed: (bh: number, i: number, j: number) => boolean): number[] {
  const [b, h, sq] = q.shape as [number, number, number];
  const sk = k.shape[2]!;
  const s = matmul(q, k, { transB: true }).toArray(); // [B, H, Sq, Sk]
  const p = new Float64Array(s.length);
  for (let r = 0; r < b * h * sq; r++) {
    const bh = Math.floor(r / sq), i = r % sq;
    let max = -Infinity;
    for (let j = 0; j < sk; j++) if (allowed(bh, i, j)) max = Math.max(max, s[r * sk + j]! * scale);
    if (max === -Infinity) continue;
    let sum = 0;
    for (let j = 0; j < sk; j++) if (allowed(bh, i, j)) { p[r * sk + j] = Math.exp(s[r * sk + j]! * scale - max); sum += p[r * sk + j]!; }
    for (let j = 0; j < sk; j++) p[r * sk + j]! /= sum;
  }
  return matmul(tensor(p, [b, h, sq, sk]), v).toArray();
}

test('attention by hand: equal scores average v; a mask removes a key', () => {
  const q = tensor([1], [1, 1, 1, 1]), k = tensor([1, 1], [1, 1, 2, 1]), v = tensor([2, 4], [1, 1, 2, 1]);
  assert.deepEqual(scaledDotProductAttention(q, k, v).toArray(), [3]);
  assert.deepEqual(scaledDotProductAttention(q, k, v, { mask: tensor([1, 0], [2], 'i32') }).toArray(), [2]);
});

test('attention equals the explicit matmul/softmax/matmul composition (no mask, causal, per-batch)', () => {
  const g = new Generator(8);
  const q = randn([2, 3, 4, 5], { dtype: 'f64', generator: g });
  const k = randn([2, 3, 6, 5], { dtype: 'f64', generator: g });
  const v = randn([2, 3, 6, 7], { dtype: 'f64', generator: g });
  const y = scaledDotProductAttention(q, k, v);
  assert.deepEqual(y.shape, [2, 3, 4, 7]);
  assert.ok(maxRelErr(y.toArray(), composed(q, k, v, 1 / Math.sqrt(5), () => true)) < 1e-12);
  const yc = scaledDotProductAttention(q, k, v, { mask: causal(4, 6), scale: 0.7 });
  assert.ok(maxRelErr(yc.toArray(), composed(q, k, v, 0.7, (_b, i, j) => j <= i)) < 1e-12);
  // [B, 1, 1, Sk] key-padding mask: batch 0 sees all keys, batch 1 only the first three.
  const pad = tensor([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], [2, 1, 1, 6], 'i32');
  const yp = scaledDotProductAttention(q, k, v, { mask: pad });
  assert.ok(maxRelErr(yp.toArray(), composed(q, k, v, 1 / Math.sqrt(5), (bh, _i, j) => bh < 3 || j < 3)) < 1e-12);
});

test('attention gradcheck f64 without a mask', () => {
  const g = new Generator(1);
  const q = randn([1, 2, 3, 4], { dtype: 'f64', generator: g, requiresGrad: true });
  const k = randn([1, 2, 5, 4], { dtype: 'f64', generator: g, requiresGrad: true });
  const v = randn([1, 2, 5, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((a, b, c) => scaledDotProductAttention(a!, b!, c!), [q, k, v]);
});

test('attention gradcheck f64 with a causal mask', () => {
  const g = new Generator(2);
  const q = randn([2, 1, 4, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  const k = randn([2, 1, 4, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  const v = randn([2, 1, 4, 2], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((a, b, c) => scaledDotProductAttention(a!, b!, c!, { mask: causal(4, 4) }), [q, k, v]);
});

test('attention: a fully masked query row outputs zeros, gets zero gradient, no NaN', () => {
  const g = new Generator(3);
  const q = randn([1, 2, 3, 2], { dtype: 'f64', generator: g, requiresGrad: true });
  const k = randn([1, 2, 4, 2], { dtype: 'f64', generator: g, requiresGrad: true });
  const v = randn([1, 2, 4, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  // Head 0: query 1 may attend to nothing; head 1: causal-like pattern. Mask [1, 2, 3, 4].
  const mask = tensor([1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, /* head 1 */ 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0], [1, 2, 3, 4], 'i32');
  const f = (a: Tensor, b: Tensor, c: Tensor): Tensor => scaledDotProductAttention(a, b, c, { mask });
  const y = f(q, k, v).toArray();
  assert.deepEqual(y.slice(3, 6), [0, 0, 0]);
  assert.ok(y.every(Number.isFinite));
  gradcheck((a, b, c) => f(a!, b!, c!), [q, k, v]);
  assert.deepEqual(q.grad!.toArray().slice(2, 4), [0, 0]);
  assert.ok(q.grad!.toArray().every(Number.isFinite));
});

test('attention in bf16 precision = fp32 attention of bf16-rounded q, k, v', () => {
  const g = new Generator(6);
  const [q, k, v] = [randn([1, 2, 3, 4], { generator: g }), randn([1, 2, 5, 4], { generator: g }), randn([1, 2, 5, 4], { generator: g })];
  const r = (t: Tensor): Tensor => tensor(roundToBf16(t.data as Float32Array), t.shape);
  const y = withPrecision('bf16', () => scaledDotProductAttention(q, k, v));
  assert.ok(maxRelErr(y.toArray(), scaledDotProductAttention(r(q), r(k), r(v)).toArray()) < 1e-5);
});

test('attention rejects bad inputs', () => {
  const q = zeros([1, 2, 3, 4]), k = zeros([1, 2, 5, 4]), v = zeros([1, 2, 5, 6]);
  assert.throws(() => scaledDotProductAttention(zeros([2, 3, 4]), k, v), /q must be rank 4/);
  assert.throws(() => scaledDotProductAttention(q, zeros([1, 2, 5, 3]), v), /head dims differ \(4 vs 3\)/);
  assert.throws(() => scaledDotProductAttention(q, k, zeros([1, 2, 4, 6])), /different key counts/);
  assert.throws(() => scaledDotProductAttention(q, zeros([1, 3, 5, 4]), v), /batch and head dims must match/);
  assert.throws(() => scaledDotProductAttention(q, k, zeros([1, 2, 5, 6], 'f64')), /share a dtype/);
  assert.throws(() => scaledDotProductAttention(q, k, v, { mask: zeros([3, 5]) }), /mask must be i32/);
  assert.throws(() => scaledDotProductAttention(q, k, v, { mask: zeros([4, 5], 'i32') }), /does not broadcast/);
  assert.throws(() => scaledDotProductAttention(q, k, v, { mask: zeros([2, 2, 3, 5], 'i32') }), /does not broadcast/);
  assert.throws(() => scaledDotProductAttention(q, k, v, { scale: NaN }), /scale must be a finite number/);
});
