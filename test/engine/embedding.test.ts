import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, embedding, randn, tensor } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

test('embedding picks rows; repeated ids accumulate gradient', () => {
  const w = tensor([0, 1, 10, 11, 20, 21], [3, 2], 'f64');
  w.requiresGrad = true;
  const ids = tensor([2, 0, 2, 2], [2, 2], 'i32');
  const y = embedding(ids, w);
  assert.deepEqual([...y.shape], [2, 2, 2]);
  assert.deepEqual(y.toArray(), [20, 21, 0, 1, 20, 21, 20, 21]);
  y.backward(tensor([1, 1, 1, 1, 1, 1, 1, 1], [2, 2, 2], 'f64'));
  assert.deepEqual(w.grad!.toArray(), [1, 1, 0, 0, 3, 3]);
});

test('embedding gradcheck f64', () => {
  const w = randn([5, 3], { dtype: 'f64', generator: new Generator(9), requiresGrad: true });
  const ids = tensor([4, 1, 1, 0, 3, 4], [3, 2], 'i32');
  gradcheck((x) => embedding(ids, x!), [w]);
});

test('embedding rejects out-of-range ids (naming the id) and non-i32 ids', () => {
  const w = randn([4, 2]);
  assert.throws(() => embedding(tensor([0, 4], [2], 'i32'), w), (e: unknown) => e instanceof RangeError && /id 4\b/.test(e.message));
  assert.throws(() => embedding(tensor([-1], [1], 'i32'), w), /id -1/);
  assert.throws(() => embedding(tensor([0], [1]), w), TypeError);
  assert.throws(() => embedding(tensor([0], [1], 'i32'), randn([4])), RangeError);
});
