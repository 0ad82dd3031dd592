import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, arange, concat, expand, mul, pad, permute, randn, reshape, slice, split, squeeze, tensor, transpose,
  unsqueeze, type Tensor,
} from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

const iota = (shape: number[], dtype: 'f32' | 'f64' | 'i32' | 'bf16' = 'f64'): Tensor =>
  tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i), shape, dtype);
const rnd = (shape: number[], seed = 1): Tensor => randn(shape, { dtype: 'f64', generator: new Generator(seed), requiresGrad: true });

test('reshape infers -1 and shares storage; unsqueeze/squeeze', () => {
  const x = iota([2, 3, 4]);
  const y = reshape(x, [4, -1]);
  assert.deepEqual([...y.shape], [4, 6]);
  assert.equal(y.data, x.data); // zero-copy
  assert.deepEqual([...unsqueeze(x, 0).shape], [1, 2, 3, 4]);
  assert.deepEqual([...unsqueeze(x, -1).shape], [2, 3, 4, 1]);
  assert.deepEqual([...squeeze(iota([1, 3, 1]), 0).shape], [3, 1]);
  assert.deepEqual([...squeeze(iota([1, 3, 1])).shape], [3]);
  gradcheck((t) => mul(reshape(t!, [6, 4]), 2), [rnd([2, 3, 4])]);
  gradcheck((t) => squeeze(unsqueeze(t!, 1), 1), [rnd([2, 3])]);
});

test('permute and transpose by hand', () => {
  const x = iota([2, 3]);
  const t = transpose(x);
  assert.deepEqual([...t.shape], [3, 2]);
  assert.deepEqual(t.toArray(), [0, 3, 1, 4, 2, 5]);
  const p = permute(iota([2, 3, 4]), [2, 0, 1]);
  assert.deepEqual([...p.shape], [4, 2, 3]);
  // p[k, i, j] = x[i, j, k] = 12i + 4j + k
  assert.equal(p.toArray()[(3 * 2 + 1) * 3 + 2], 12 + 8 + 3);
  assert.deepEqual([...transpose(iota([2, 3, 4]), 0, 2).shape], [4, 3, 2]);
});

test('permute/transpose gradcheck f64', () => {
  gradcheck((t) => permute(t!, [2, 0, 1]), [rnd([2, 3, 4])]);
  gradcheck((t) => permute(t!, [1, -1, 0]), [rnd([2, 3, 4], 2)]);
  gradcheck((t) => transpose(t!), [rnd([2, 3, 4], 3)]);
});

test('slice by hand: negative bounds, steps, clamping, empty results', () => {
  const x = iota([2, 6]);
  assert.deepEqual(slice(x, 1, 1, 3).toArray(), [1, 2, 7, 8]);
  assert.deepEqual(slice(x, 1, -2).toArray(), [4, 5, 10, 11]);
  assert.deepEqual(slice(x, -1, 0, 6, 2).toArray(), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(slice(x, 1, 1, -1, 3).toArray(), [1, 4, 7, 10]);
  assert.deepEqual(slice(x, 1, -100, 100).toArray(), x.toArray());
  assert.deepEqual([...slice(x, 1, 4, 2).shape], [2, 0]);
  assert.deepEqual(slice(x, 0, 1, 2).toArray(), [6, 7, 8, 9, 10, 11]);
});

test('slice gradcheck f64 (zeros outside the window)', () => {
  gradcheck((t) => slice(t!, 1, 1, 3), [rnd([2, 3, 4])]);
  gradcheck((t) => slice(t!, -1, 0, 4, 2), [rnd([2, 3, 4], 2)]);
  const x = tensor([1, 2, 3, 4], [4], 'f64'); x.requiresGrad = true;
  slice(x, 0, 1, 3).backward(tensor([10, 20], [2], 'f64'));
  assert.deepEqual(x.grad!.toArray(), [0, 10, 20, 0]);
});

test('expand by hand and gradcheck', () => {
  const x = tensor([1, 2, 3], [3, 1], 'f64');
  const y = expand(x, [2, 3, 2]);
  assert.deepEqual(y.toArray(), [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
  assert.deepEqual([...expand(x, [-1, 4]).shape], [3, 4]);
  gradcheck((t) => expand(t!, [2, 3, 4]), [rnd([3, 1])]);
  gradcheck((t) => expand(t!, [2, 3, 4]), [rnd([1, 4], 2)]);
  gradcheck((t) => expand(t!, [2, 3]), [rnd([], 3)]);
});

test('concat and split by hand', () => {
  const a = iota([2, 2]), b = tensor([10, 11, 12, 13, 14, 15], [2, 3], 'f64');
  const c = concat([a, b], 1);
  assert.deepEqual([...c.shape], [2, 5]);
  assert.deepEqual(c.toArray(), [0, 1, 10, 11, 12, 2, 3, 13, 14, 15]);
  assert.deepEqual(concat([a, a], 0).toArray(), [0, 1, 2, 3, 0, 1, 2, 3]);
  const parts = split(iota([2, 5]), 2, 1);
  assert.deepEqual(parts.map((p) => [...p.shape]), [[2, 2], [2, 2], [2, 1]]);
  assert.deepEqual(parts[2]!.toArray(), [4, 9]);
  const parts2 = split(iota([5]), [1, 0, 4]);
  assert.deepEqual(parts2.map((p) => p.toArray()), [[0], [], [1, 2, 3, 4]]);
});

test('concat/split gradcheck f64', () => {
  gradcheck((x, y, z) => concat([x!, y!, z!], 1), [rnd([2, 3, 4]), rnd([2, 1, 4], 2), rnd([2, 2, 4], 3)]);
  gradcheck((x, y) => concat([x!, y!], -1), [rnd([3, 2]), rnd([3, 3], 2)]);
  gradcheck((x) => concat(split(x!, 2, 1).reverse(), 1), [rnd([2, 5])]);
  gradcheck((x) => mul(split(x!, [1, 2], 0)[1]!, 3), [rnd([3, 2], 4)]);
});

test('pad by hand (pads from the first axis; a short list pads leading axes only)', () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], 'f64');
  const p = pad(x, [[1, 0], [2, 1]], 0.5);
  assert.deepEqual([...p.shape], [3, 6]);
  assert.deepEqual(p.toArray(), [
    0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
    0.5, 0.5, 1, 2, 3, 0.5,
    0.5, 0.5, 4, 5, 6, 0.5,
  ]);
  const q = pad(x, [[0, 1]]);
  assert.deepEqual([...q.shape], [3, 3]);
  assert.deepEqual(q.toArray(), [1, 2, 3, 4, 5, 6, 0, 0, 0]);
  gradcheck((t) => pad(t!, [[1, 0], [2, 1]], 0.5), [rnd([2, 3])]);
  gradcheck((t) => pad(t!, [[0, 0], [1, 2], [0, 1]]), [rnd([2, 3, 2], 2)]);
});

test('shape ops move i32 and bf16 elements unchanged', () => {
  for (const dtype of ['i32', 'bf16'] as const) {
    const x = iota([2, 3], dtype);
    assert.equal(transpose(x).dtype, dtype);
    assert.deepEqual(transpose(x).toArray(), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(slice(x, 1, 1).toArray(), [1, 2, 4, 5]);
    assert.deepEqual(expand(slice(x, 0, 0, 1), [2, 3]).toArray(), [0, 1, 2, 0, 1, 2]);
    assert.deepEqual(concat([x, x], 0).toArray(), [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
    assert.deepEqual(split(x, 1, 0)[1]!.toArray(), [3, 4, 5]);
    assert.deepEqual(pad(x, [[0, 0], [1, 0]], 7).toArray(), [7, 0, 1, 2, 7, 3, 4, 5]);
    assert.deepEqual(reshape(x, [3, 2]).toArray(), [0, 1, 2, 3, 4, 5]);
  }
  assert.deepEqual(pad(arange(2), [[1, 1]], -1).toArray(), [-1, 0, 1, -1]);
});

test('shape ops reject bad inputs with clear errors', () => {
  const x = iota([2, 3]);
  assert.throws(() => reshape(x, [4, -1]), /cannot infer -1/);
  assert.throws(() => squeeze(x, 0), /has size 2, not 1/);
  assert.throws(() => unsqueeze(x, 3), RangeError);
  assert.throws(() => permute(x, [0, 0]), /repeat an axis/);
  assert.throws(() => permute(x, [0]), /must list all 2 axes/);
  assert.throws(() => slice(x, 1, 0, 3, 0), /step must be ≥ 1/);
  assert.throws(() => slice(x, 2, 0, 1), /out of range/);
  assert.throws(() => expand(x, [2, 4]), /cannot expand \[2, 3\] to \[2, 4\]/);
  assert.throws(() => expand(x, [3]), /cannot expand \[2, 3\] to \[3\]/);
  assert.throws(() => concat([], 0), /at least one tensor/);
  assert.throws(() => concat([x, iota([3, 3])], 1), /differ outside axis 1/);
  assert.throws(() => concat([x, iota([2, 3], 'f32')], 0), /cannot mix f64 and f32/);
  assert.throws(() => split(x, [1, 1], 1), /do not add up to 3/);
  assert.throws(() => split(x, 0, 1), /positive integer/);
  assert.throws(() => pad(x, [[-1, 0]]), RangeError);
  assert.throws(() => pad(x, [[0, 0], [0, 0], [0, 0]]), /at most 2/);
  assert.throws(() => pad(iota([2], 'i32'), [[1, 1]], 0.5), /not an integer/);
});
