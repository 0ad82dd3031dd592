import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, groupNorm, layerNorm, randn, tensor } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

function near(actual: ArrayLike<number>, expected: number[], tol = 1e-9): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `[${i}]: ${actual[i]} vs ${expected[i]}`);
}

test('layerNorm of [1, 2, 3] by hand (biased variance 2/3), with gamma and beta', () => {
  const x = tensor([1, 2, 3], [1, 3], 'f64');
  const s = 1 / Math.sqrt(2 / 3 + 1e-5);
  near(layerNorm(x, null, null).data, [-s, 0, s]);
  const y = layerNorm(x, tensor([2, 2, 2], [3], 'f64'), tensor([1, 0, -1], [3], 'f64'));
  near(y.data, [1 - 2 * s, 0, 2 * s - 1]);
});

test('groupNorm normalises each (sample, group) over pixels and its channels', () => {
  // x [N=1, P=2, C=4], 2 groups: group 0 holds {1, 2, 3, 4} (channels 0-1), group 1 holds {10, 10, 10, 10}.
  const x = tensor([1, 2, 10, 10, 3, 4, 10, 10], [1, 2, 4], 'f64');
  const y = groupNorm(x, 2, null, null, 1e-5);
  const s = 1 / Math.sqrt(1.25 + 1e-5); // biased variance of {1, 2, 3, 4} is 1.25
  near(y.data, [-1.5 * s, -0.5 * s, 0, 0, 0.5 * s, 1.5 * s, 0, 0]);
});

test('layerNorm gradcheck f64 (x, gamma, beta; and without affine)', () => {
  const g = new Generator(5);
  const x = randn([3, 2, 6], { dtype: 'f64', generator: g, requiresGrad: true });
  const gamma = randn([6], { dtype: 'f64', generator: g, requiresGrad: true });
  const beta = randn([6], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((a, b, c) => layerNorm(a!, b!, c!), [x, gamma, beta]);
  gradcheck((a) => layerNorm(a!, null, null), [x]);
});

test('groupNorm gradcheck f64 (rank 4 NHWC and rank 2)', () => {
  const g = new Generator(6);
  const x = randn([2, 2, 3, 6], { dtype: 'f64', generator: g, requiresGrad: true });
  const gamma = randn([6], { dtype: 'f64', generator: g, requiresGrad: true });
  const beta = randn([6], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((a, b, c) => groupNorm(a!, 3, b!, c!), [x, gamma, beta]);
  const x2 = randn([3, 4], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((a) => groupNorm(a!, 2, null, null), [x2]);
});

test('norms reject bad shapes, groups and dtypes', () => {
  const x = randn([2, 3, 6]);
  assert.throws(() => groupNorm(x, 4, null, null), (e: unknown) => e instanceof RangeError && /not divisible/.test(e.message));
  assert.throws(() => groupNorm(randn([6]), 2, null, null), RangeError);
  assert.throws(() => layerNorm(x, randn([5]), null), RangeError);
  assert.throws(() => layerNorm(x, null, randn([6], { dtype: 'f64' })), TypeError);
  assert.throws(() => layerNorm(tensor([1, 2], [2], 'i32'), null, null), TypeError);
  assert.throws(() => layerNorm(x, null, null, -1), RangeError);
});
