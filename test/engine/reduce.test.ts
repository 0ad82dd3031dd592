import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, argmax, argmin, max, mean, min, randn, sum, sumToShape, tensor } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

const x23 = (): ReturnType<typeof tensor> => tensor([1, 2, 3, 4, 5, 6], [2, 3], 'f64');

test('sum and mean by hand', () => {
  assert.equal(sum(x23()).item(), 21);
  assert.deepEqual(sum(x23()).shape, []);
  assert.deepEqual(sum(x23(), 0).toArray(), [5, 7, 9]);
  const s = sum(x23(), -1, true);
  assert.deepEqual([...s.shape], [2, 1]);
  assert.deepEqual(s.toArray(), [6, 15]);
  assert.deepEqual([...sum(x23(), undefined, true).shape], [1, 1]);
  assert.deepEqual(sum(x23(), []).toArray(), [1, 2, 3, 4, 5, 6]); // an empty list reduces nothing
  assert.equal(mean(x23()).item(), 3.5);
  assert.deepEqual(mean(x23(), [1]).toArray(), [2, 5]);
  assert.equal(sum(randn([4, 5])).dtype, 'f32');
});

test('sum over several axes matches a direct loop', () => {
  const x = randn([2, 3, 4, 5], { dtype: 'f64', generator: new Generator(2) });
  const got = sum(x, [0, 2]).toArray(); // [3, 5]
  for (let j = 0; j < 3; j++) {
    for (let l = 0; l < 5; l++) {
      let t = 0;
      for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) t += x.data[((i * 3 + j) * 4 + k) * 5 + l]!;
      assert.ok(Math.abs(got[j * 5 + l]! - t) < 1e-12);
    }
  }
});

const AXES: Array<number | number[] | undefined> = [undefined, 1, -1, [0, 2], [2, 0], [0, 1, 2]];
for (const axes of AXES) {
  for (const keepDims of [false, true]) {
    test(`sum/mean gradcheck f64 axes=${JSON.stringify(axes)} keepDims=${keepDims}`, () => {
      const g = new Generator(3);
      const x = randn([2, 3, 4], { dtype: 'f64', generator: g, requiresGrad: true });
      gradcheck((t) => sum(t!, axes, keepDims), [x]);
      gradcheck((t) => mean(t!, axes, keepDims), [x]);
    });
  }
}

test('max/min/argmax/argmin by hand; ties go to the first element', () => {
  const x = tensor([1, 3, 3, 2, 0, -1, 0, 5], [2, 4], 'f64');
  assert.deepEqual(max(x, 1).toArray(), [3, 5]);
  assert.deepEqual(min(x, 1).toArray(), [1, -1]);
  assert.deepEqual(max(x, 0, true).toArray(), [1, 3, 3, 5]);
  assert.deepEqual([...max(x, 0, true).shape], [1, 4]);
  assert.equal(max(x).item(), 5);
  assert.equal(min(x).item(), -1);
  const am = argmax(x, 1);
  assert.equal(am.dtype, 'i32');
  assert.deepEqual(am.toArray(), [1, 3]);
  assert.deepEqual(argmin(x, -1).toArray(), [0, 1]);
  assert.deepEqual(argmin(x, 0).toArray(), [1, 1, 1, 0]);
  assert.deepEqual([...argmax(x, 1, true).shape], [2, 1]);
  assert.equal(argmax(x).item(), 7);
  const t = tensor([1, 3, 3, 2], [4], 'f64'); t.requiresGrad = true;
  max(t).backward();
  assert.deepEqual(t.grad!.toArray(), [0, 1, 0, 0]);
  assert.ok(Number.isNaN(max(tensor([1, Number.NaN, 3], [3], 'f64')).item()));
});

for (const axis of [undefined, 0, 1, 2, -1]) {
  for (const keepDims of [false, true]) {
    test(`max/min gradcheck f64 axis=${String(axis)} keepDims=${keepDims}`, () => {
      const x = randn([2, 3, 4], { dtype: 'f64', generator: new Generator(9), requiresGrad: true });
      gradcheck((t) => max(t!, axis, keepDims), [x]);
      gradcheck((t) => min(t!, axis, keepDims), [x]);
    });
  }
}

test('sumToShape reduces broadcast dims', () => {
  const g = tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4], 'f64');
  assert.equal(sumToShape(g, [2, 3, 4]), g); // nothing to reduce: the same tensor
  assert.deepEqual(sumToShape(g, []).toArray(), [276]);
  const a = sumToShape(g, [3, 1]);
  assert.deepEqual([...a.shape], [3, 1]);
  assert.deepEqual(a.toArray(), [60, 92, 124]); // row j: Σ_i Σ_k (4·(3i + j) + k)
  assert.deepEqual(sumToShape(g, [1, 4]).toArray(), [60, 66, 72, 78]);
  const x = randn([2, 3, 4], { dtype: 'f64', generator: new Generator(4), requiresGrad: true });
  gradcheck((t) => sumToShape(t!, [3, 1]), [x]);
  gradcheck((t) => sumToShape(t!, [1, 3, 1]), [x]);
});

test('reductions reject bad inputs with clear errors', () => {
  const x = randn([2, 3]);
  assert.throws(() => sum(x, [0, -2]), /repeat an axis/);
  assert.throws(() => sum(x, 2), /axis 2 out of range for rank 2/);
  assert.throws(() => mean(tensor([1, 2], [2], 'i32')), /mean: needs an f32 or f64 tensor/);
  assert.throws(() => max(randn([2, 0]), 1), /is empty/);
  assert.throws(() => argmax(randn([0])), /empty tensor/);
  assert.throws(() => sumToShape(randn([2, 3]), [4]), /does not broadcast/);
  assert.throws(() => sumToShape(randn([3]), [2, 3]), /does not broadcast/);
});
