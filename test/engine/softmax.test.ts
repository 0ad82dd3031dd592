import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, logSoftmax, randn, softmax, tensor } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

function near(actual: ArrayLike<number>, expected: number[], tol = 1e-12): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `[${i}]: ${actual[i]} vs ${expected[i]}`);
}

test('softmax of [0, ln 2] is [1/3, 2/3]; logSoftmax is its log', () => {
  const x = tensor([0, Math.LN2], [2], 'f64');
  near(softmax(x).data, [1 / 3, 2 / 3]);
  near(logSoftmax(x).data, [Math.log(1 / 3), Math.log(2 / 3)]);
});

test('softmax is stable for huge logits and rows sum to 1 (f32)', () => {
  const y = softmax(tensor([1000, 1000, -1000, 0, 1, 2], [2, 3]));
  near(y.data, [0.5, 0.5, 0, 0.09003057, 0.24472847, 0.66524096], 1e-6);
  near(logSoftmax(tensor([1000, 1000], [1, 2])).data, [-Math.LN2, -Math.LN2], 1e-6);
});

test('softmax / logSoftmax gradcheck f64 over leading dims', () => {
  const g = new Generator(3);
  const x = randn([2, 3, 5], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((t) => softmax(t!), [x]);
  gradcheck((t) => logSoftmax(t!, 2), [x]);
});

test('softmax rejects non-last axes and non-float input', () => {
  const x = randn([2, 3]);
  assert.throws(() => softmax(x, 0), (e: unknown) => e instanceof RangeError && /only the last axis/.test(e.message));
  assert.throws(() => logSoftmax(x, 2), RangeError);
  assert.throws(() => softmax(tensor([1, 2], [2], 'i32')), TypeError);
});
