import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, crossEntropy, l1Loss, mseLoss, randn, tensor, type Reduction } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

function near(actual: number, expected: number, tol = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} vs ${expected}`);
}

test('crossEntropy by hand: plain, label smoothing, ignored rows', () => {
  // Row 0: logits [0, ln 2] → p = [1/3, 2/3]; row 1: [0, 0] → p = [1/2, 1/2].
  const logits = tensor([0, Math.LN2, 0, 0], [2, 2], 'f64');
  const l0 = -Math.log(2 / 3), l1 = Math.LN2;
  near(crossEntropy(logits, tensor([1, 0], [2], 'i32')).item(), (l0 + l1) / 2);
  near(crossEntropy(logits, tensor([1, 0], [2], 'i32'), { reduction: 'sum' }).item(), l0 + l1);
  // ε = 0.3 over C = 2: (1 − ε)·nll + ε·mean_c(−log p_c).
  const eps = 0.3;
  const s0 = (1 - eps) * l0 + eps * (-Math.log(1 / 3) - Math.log(2 / 3)) / 2;
  const t = tensor([1, -100], [2], 'i32');
  near(crossEntropy(logits, t, { labelSmoothing: eps }).item(), s0); // mean over the one non-ignored row
  const none = crossEntropy(logits, t, { labelSmoothing: eps, reduction: 'none' });
  assert.deepEqual([...none.shape], [2]);
  near(none.data[0]!, s0);
  assert.equal(none.data[1], 0);
  near(crossEntropy(logits, tensor([1, 7], [2], 'i32'), { ignoreIndex: 7 }).item(), l0);
});

test('crossEntropy with every target ignored: mean is NaN (as torch), sum is 0', () => {
  const logits = randn([3, 4], { dtype: 'f64' });
  const t = tensor([-100, -100, -100], [3], 'i32');
  assert.ok(Number.isNaN(crossEntropy(logits, t).item()));
  assert.equal(crossEntropy(logits, t, { reduction: 'sum' }).item(), 0);
});

test('crossEntropy gradcheck f64 for every reduction, with smoothing and ignored rows', () => {
  const g = new Generator(11);
  const logits = randn([2, 3, 5], { dtype: 'f64', generator: g, requiresGrad: true });
  const t = tensor([4, -100, 0, 2, 2, 1], [2, 3], 'i32');
  for (const reduction of ['mean', 'sum', 'none'] as Reduction[]) {
    for (const labelSmoothing of [0, 0.2]) {
      gradcheck((x) => crossEntropy(x!, t, { reduction, labelSmoothing }), [logits]);
    }
  }
});

test('crossEntropy f32 path is stable for large logits', () => {
  const y = crossEntropy(tensor([1000, 0, -1000, 1000], [2, 2]), tensor([0, 1], [2], 'i32'));
  assert.equal(y.dtype, 'f32');
  near(y.item(), 0, 1e-6);
});

test('crossEntropy rejects bad targets, shapes and options', () => {
  const logits = randn([2, 3]);
  assert.throws(() => crossEntropy(logits, tensor([0, 3], [2], 'i32')), (e: unknown) => e instanceof RangeError && /target 3/.test(e.message));
  assert.throws(() => crossEntropy(logits, tensor([0, -1], [2], 'i32')), RangeError);
  assert.throws(() => crossEntropy(logits, tensor([0, 1, 2], [3], 'i32')), RangeError);
  assert.throws(() => crossEntropy(logits, tensor([0, 1], [2])), TypeError);
  assert.throws(() => crossEntropy(logits, tensor([0, 1], [2], 'i32'), { labelSmoothing: 1.5 }), RangeError);
  assert.throws(() => crossEntropy(logits, tensor([0, 1], [2], 'i32'), { reduction: 'avg' as Reduction }), RangeError);
});

test('mseLoss and l1Loss by hand', () => {
  const a = tensor([1, 2, 3, 4], [2, 2], 'f64'), b = tensor([1, 0, 4, 1], [2, 2], 'f64');
  near(mseLoss(a, b).item(), (0 + 4 + 1 + 9) / 4);
  near(mseLoss(a, b, 'sum').item(), 14);
  assert.deepEqual(mseLoss(a, b, 'none').toArray(), [0, 4, 1, 9]);
  near(l1Loss(a, b).item(), (0 + 2 + 1 + 3) / 4);
  assert.deepEqual(l1Loss(a, b, 'none').toArray(), [0, 2, 1, 3]);
});

test('l1Loss gradient is 0 where a = b (torch sign), ±1/E elsewhere', () => {
  const a = tensor([1, 2, 3], [3], 'f64'), b = tensor([1, 0, 4], [3], 'f64');
  a.requiresGrad = true; b.requiresGrad = true;
  l1Loss(a, b).backward();
  assert.deepEqual(a.grad!.toArray(), [0, 1 / 3, -1 / 3]);
  assert.deepEqual(b.grad!.toArray(), [-0, -1 / 3, 1 / 3]);
});

test('mseLoss / l1Loss gradcheck f64 for every reduction', () => {
  const g = new Generator(12);
  const a = randn([3, 4], { dtype: 'f64', generator: g, requiresGrad: true });
  const b = randn([3, 4], { dtype: 'f64', generator: g, requiresGrad: true });
  for (const r of ['mean', 'sum', 'none'] as Reduction[]) {
    gradcheck((x, y) => mseLoss(x!, y!, r), [a, b]);
    gradcheck((x, y) => l1Loss(x!, y!, r), [a, b]);
  }
});

test('regression losses reject mismatched shapes and dtypes', () => {
  assert.throws(() => mseLoss(randn([2, 3]), randn([3, 2])), RangeError);
  assert.throws(() => l1Loss(randn([2]), randn([2], { dtype: 'f64' })), TypeError);
  assert.throws(() => mseLoss(randn([2]), randn([2]), 'avg' as Reduction), RangeError);
});
