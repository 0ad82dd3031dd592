import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, maskedFill, randn, tensor, topk, where } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

test('where broadcasts cond, a and b and routes gradients back to their shapes', () => {
  const cond = tensor([1, 0, 0, 1], [2, 2], 'i32');
  const a = tensor([1, 2], [1, 2], 'f64'), b = tensor([10], [], 'f64');
  a.requiresGrad = true; b.requiresGrad = true;
  const y = where(cond, a, b);
  assert.deepEqual([...y.shape], [2, 2]);
  assert.deepEqual(y.toArray(), [1, 10, 10, 2]);
  y.backward(tensor([1, 2, 3, 4], [2, 2], 'f64'));
  assert.deepEqual(a.grad!.toArray(), [1, 4]);
  assert.equal(b.grad!.item(), 5);
  assert.deepEqual(where(tensor([0, 1], [2], 'i32'), tensor([5, 6], [2], 'i32'), tensor([7, 8], [2], 'i32')).toArray(), [7, 6]);
});

test('where gradcheck f64 with a broadcast condition', () => {
  const g = new Generator(21);
  const cond = tensor([1, 0, 1, 1, 0, 0], [3, 1, 2], 'i32');
  const a = randn([3, 4, 2], { dtype: 'f64', generator: g, requiresGrad: true });
  const b = randn([4, 1], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((x, y) => where(cond, x!, y!), [a, b]);
});

test('maskedFill fills where the mask is set and passes no gradient there', () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], 'f64');
  x.requiresGrad = true;
  const y = maskedFill(x, tensor([0, 1, 0], [3], 'i32'), -Infinity);
  assert.deepEqual(y.toArray(), [1, -Infinity, 3, 4, -Infinity, 6]);
  y.backward(tensor([1, 1, 1, 1, 1, 1], [2, 3], 'f64'));
  assert.deepEqual(x.grad!.toArray(), [1, 0, 1, 1, 0, 1]);
  const ids = maskedFill(tensor([5, 6, 7], [3], 'i32'), tensor([0, 0, 1], [3], 'i32'), -100);
  assert.equal(ids.dtype, 'i32');
  assert.deepEqual(ids.toArray(), [5, 6, -100]);
});

test('maskedFill gradcheck f64', () => {
  const x = randn([2, 3, 4], { dtype: 'f64', generator: new Generator(22), requiresGrad: true });
  gradcheck((t) => maskedFill(t!, tensor([1, 0, 0, 1, 1, 0, 1, 0], [2, 1, 4], 'i32'), 0.5), [x]);
});

test('topk: sorted, ties by lower index, smallest mode, NaN counts as largest', () => {
  const x = tensor([3, 1, 3, 2, 5, 5, 0, 5], [2, 4], 'f64');
  const r = topk(x, 3);
  assert.deepEqual(r.values.toArray(), [3, 3, 2, 5, 5, 5]);
  assert.deepEqual(r.indices.toArray(), [0, 2, 3, 0, 1, 3]);
  assert.equal(r.indices.dtype, 'i32');
  const s = topk(x, 2, { largest: false });
  assert.deepEqual(s.values.toArray(), [1, 2, 0, 5]);
  assert.deepEqual(s.indices.toArray(), [1, 3, 2, 0]);
  assert.deepEqual(topk(tensor([1, NaN, 3], [3], 'f64'), 2).indices.toArray(), [1, 2]);
  assert.deepEqual(topk(tensor([1, NaN, 3], [3], 'f64'), 2, { largest: false }).indices.toArray(), [0, 2]);
});

test('topk values gradcheck f64 (gradient scattered to the selected entries)', () => {
  const x = randn([2, 3, 6], { dtype: 'f64', generator: new Generator(23), requiresGrad: true });
  gradcheck((t) => topk(t!, 3).values, [x]);
  gradcheck((t) => topk(t!, 2, { largest: false, axis: 2 }).values, [x]);
});

test('select ops reject bad inputs', () => {
  const x = randn([2, 3]);
  assert.throws(() => where(tensor([1, 0], [2]), x, x), TypeError);
  assert.throws(() => where(tensor([1, 0], [2], 'i32'), x, x), RangeError);
  assert.throws(() => where(tensor([1], [1], 'i32'), x, randn([2, 3], { dtype: 'f64' })), TypeError);
  assert.throws(() => maskedFill(x, tensor([1, 0, 1, 0, 1, 0, 1, 0], [2, 4], 'i32'), 0), RangeError);
  assert.throws(() => maskedFill(x, tensor([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0], [2, 2, 3], 'i32'), 0), RangeError);
  assert.throws(() => maskedFill(tensor([1], [1], 'i32'), tensor([1], [1], 'i32'), 0.5), RangeError);
  assert.throws(() => topk(x, 4), RangeError);
  assert.throws(() => topk(x, 1, { axis: 0 }), (e: unknown) => e instanceof RangeError && /last axis/.test(e.message));
});
