import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, Tensor, arange, bf16BitsToF32, f32ToBf16Bits, full, manualSeed, matmul, noGrad, ones, parameter,
  rand, randn, recordOp, tensor, zeros,
} from '../../src/engine/index.js';

test('creation: zeros, ones, full, arange, tensor', () => {
  assert.deepEqual(zeros([2, 2]).toArray(), [0, 0, 0, 0]);
  assert.deepEqual(ones([3], 'i32').toArray(), [1, 1, 1]);
  assert.deepEqual(full([2], 2.5, 'f64').toArray(), [2.5, 2.5]);
  assert.deepEqual(arange(5).toArray(), [0, 1, 2, 3, 4]);
  assert.deepEqual(arange(1, 2, 0.25, 'f32').toArray(), [1, 1.25, 1.5, 1.75]);
  const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  assert.deepEqual([...t.shape], [2, 3]);
  assert.equal(t.dtype, 'f32');
  assert.ok(t.data instanceof Float32Array);
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /needs 4/);
  assert.throws(() => zeros([2, -1]), RangeError);
  assert.throws(() => arange(0, 3, 0), /step/);
});

test('TypedArray round trip keeps storage and dtype', () => {
  const src = new Int32Array([3, 1, 2]);
  const t = tensor(src, [3]);
  assert.equal(t.dtype, 'i32');
  assert.equal(t.data, src);
  assert.deepEqual(t.to('f64').toArray(), [3, 1, 2]);
});

test('bf16 conversion rounds to nearest even and decodes exactly', () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(bf16BitsToF32(0x3f80), 1);
  // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
  assert.equal(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8)), 1);
  // 1 + 3·2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up to the even one.
  assert.equal(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8)), 1 + 2 ** -6);
  assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))));
  assert.equal(bf16BitsToF32(f32ToBf16Bits(Infinity)), Infinity);
  const t = tensor([1.5, -2, 3.140625], [3]).to('bf16');
  assert.equal(t.dtype, 'bf16');
  assert.deepEqual(t.toArray(), [1.5, -2, 3.140625]);
});

test('gradients accumulate across uses of a tensor and across backward calls', () => {
  const x = parameter(tensor([1, 2, 3, 4], [2, 2], 'f64'));
  const y = matmul(x, x); // x used twice: d(sum(x·x))/dx = 1·xᵀ + xᵀ·1 patterns
  y.backward(ones([2, 2], 'f64'));
  // d/dx sum(x @ x) = ones @ xᵀ + xᵀ @ ones
  const expected = [1 + 2 + 1 + 3, 3 + 4 + 1 + 3, 1 + 2 + 2 + 4, 3 + 4 + 2 + 4];
  assert.deepEqual(x.grad!.toArray(), expected);
  matmul(x, x).backward(ones([2, 2], 'f64'));
  assert.deepEqual(x.grad!.toArray(), expected.map((v) => 2 * v));
});

test('noGrad records nothing; detach cuts the graph but shares values', () => {
  const w = parameter(randn([2, 2]));
  const y = noGrad(() => matmul(w, w));
  assert.equal(y.node, null);
  assert.throws(() => y.backward(ones([2, 2])), /does not require grad/);
  const d = w.detach();
  assert.equal(d.requiresGrad, false);
  assert.equal(d.data, w.data);
  const z = matmul(d, w);
  z.backward(ones([2, 2]));
  assert.ok(w.grad);
});

test('backward frees the graph unless retainGraph is set', () => {
  const w = parameter(randn([2, 2]));
  const y = matmul(w, w);
  y.backward(ones([2, 2]), { retainGraph: true });
  assert.notEqual(y.node, null);
  y.backward(ones([2, 2]));
  assert.equal(y.node, null);
});

test('backward checks seed shape and scalar-ness, and the shapes a backward returns', () => {
  const w = parameter(randn([2, 2]));
  assert.throws(() => matmul(w, w).backward(), /seed gradient is needed/);
  assert.throws(() => matmul(w, w).backward(ones([3])), /does not match/);
  const bad = recordOp('bad', zeros([2]), [w], () => [zeros([5])]);
  assert.throws(() => bad.backward(ones([2])), /returned grad \[5\] for input \[2, 2\]/);
});

test('seeded randomness is bit-identical for the same seed and differs for another', () => {
  const a = randn([1000], { generator: new Generator(42) });
  const b = randn([1000], { generator: new Generator(42) });
  const c = randn([1000], { generator: new Generator(43) });
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
  manualSeed(7); const u1 = rand([10], { low: -1, high: 1 });
  manualSeed(7); const u2 = rand([10], { low: -1, high: 1 });
  assert.deepEqual(u1.data, u2.data);
  assert.ok(u1.toArray().every((v) => v >= -1 && v < 1));
  // moments of the normal generator
  const n = randn([20000], { generator: new Generator(1) }).toArray();
  const mean = n.reduce((s, v) => s + v, 0) / n.length;
  const variance = n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length;
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(variance - 1) < 0.05, `mean ${mean} var ${variance}`);
});

test('tensor validates shapes and dtypes', () => {
  assert.throws(() => new Tensor(new Float32Array(3), [2, 2]), RangeError);
  assert.throws(() => parameter(tensor([1], [1], 'i32')), /must be f32 or f64/);
  assert.throws(() => tensor([1, 2]).as('i32'), /expected a i32 tensor/);
  assert.throws(() => tensor([1, 2]).item(), /exactly one element/);
});

test('generator state round-trips for exact resume', () => {
  const g = new Generator(5);
  g.normal(); // leaves a spare Box-Muller value behind
  const st = JSON.parse(JSON.stringify(g.getState()));
  const a = [g.normal(), g.uniform(), g.nextU32()];
  const h = new Generator(0).setState(st);
  assert.deepEqual([h.normal(), h.uniform(), h.nextU32()], a);
  assert.throws(() => new Generator().setState({ s: [1, 2], spare: null }), /four uint32/);
});
