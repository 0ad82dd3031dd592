// BatchNorm2d (NHWC) against PyTorch's nn.BatchNorm2d (reference/discriminator.py →
// test/fixtures/discriminator/batchnorm.safetensors): train outputs and gradients, running-statistic
// updates over two steps, eval outputs; plus finite-difference gradient checks in f64.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Generator, loadSafetensors, randn, sum, mul, tensor, type Tensor } from '../../src/engine/index.js';
import { BatchNorm2d, batchNormEval, batchNormTrain } from '../../src/nn/batchnorm.js';
import { gradcheck, maxRelErr } from '../helpers/gradcheck.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/discriminator/batchnorm.safetensors', import.meta.url));
const fx = (await loadSafetensors(FIXTURE)).tensors;
const get = (name: string): Tensor => { const t = fx[name]; assert.ok(t, `fixture has ${name}`); return t; };
const prefixed = (prefix: string): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(fx).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));

for (const tag of ['a', 'b']) {
  const [c, momentum, eps] = get(`${tag}.config`).toArray() as [number, number, number];
  for (const dtype of ['f32', 'f64'] as const) {
    const tol = dtype === 'f32' ? 1e-4 : 1e-9;
    test(`BatchNorm2d case ${tag} (C=${c}, momentum ${momentum}, eps ${eps}) matches PyTorch in ${dtype}`, () => {
      const bn = new BatchNorm2d(c, { momentum, eps, dtype });
      bn.loadStateDict(prefixed(`${tag}.init.`));
      const x1 = get(`${tag}.x1`).to(dtype);
      x1.requiresGrad = true;
      const y1 = bn.forward(x1);                                         // [N, H, W, C]
      assert.ok(maxRelErr(y1.toArray(), get(`${tag}.y1_train`).toArray()) < tol, 'train output');
      sum(mul(y1, get(`${tag}.grad_weight`).to(dtype))).backward();
      assert.ok(maxRelErr(x1.grad!.toArray(), get(`${tag}.grad.x1`).toArray()) < tol, 'grad x');
      assert.ok(maxRelErr(bn.weight.grad!.toArray(), get(`${tag}.grad.weight`).toArray()) < tol, 'grad weight');
      assert.ok(maxRelErr(bn.bias.grad!.toArray(), get(`${tag}.grad.bias`).toArray()) < tol, 'grad bias');
      for (const step of [1, 2]) {
        if (step === 2) assert.ok(maxRelErr(bn.forward(get(`${tag}.x2`).to(dtype)).toArray(), get(`${tag}.y2_train`).toArray()) < tol, 'train output, step 2');
        assert.ok(maxRelErr(bn.runningMean.toArray(), get(`${tag}.step${step}.running_mean`).toArray()) < tol, `running_mean after step ${step}`);
        assert.ok(maxRelErr(bn.runningVar.toArray(), get(`${tag}.step${step}.running_var`).toArray()) < tol, `running_var (unbiased update) after step ${step}`);
        assert.equal(bn.numBatchesTracked, get(`${tag}.step${step}.num_batches_tracked`).item());
      }
      bn.eval();
      const y = bn.forward(get(`${tag}.x1`).to(dtype));
      assert.ok(maxRelErr(y.toArray(), get(`${tag}.y1_eval`).toArray()) < tol, 'eval output from running statistics');
      assert.equal(bn.numBatchesTracked, 2, 'eval does not count batches');
    });
  }
}

test('state dict uses PyTorch names; a PyTorch state dict (I64 num_batches_tracked) round-trips', () => {
  const bn = new BatchNorm2d(6);
  assert.deepEqual(Object.keys(bn.stateDict()), ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
  assert.deepEqual(bn.namedParameters().map(([n]) => n), ['weight', 'bias'], 'running statistics are buffers, not parameters');
  bn.loadStateDict(prefixed('a.step2.'));
  assert.equal(bn.numBatchesTracked, 2);
  assert.deepEqual(bn.stateDict()['num_batches_tracked']!.shape, []);
});

test('batchNormTrain gradients (x, weight, bias) pass a finite-difference check in f64', () => {
  const g = new Generator(7);
  const x = randn([2, 3, 2, 4], { dtype: 'f64', generator: g, requiresGrad: true });
  const w = randn([4], { dtype: 'f64', generator: g, mean: 1, std: 0.3, requiresGrad: true });
  const b = randn([4], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((xi, wi, bi) => batchNormTrain(xi!, wi!, bi!, 1e-5).y, [x, w, b]);
});

test('batchNormEval gradients pass a finite-difference check in f64', () => {
  const g = new Generator(8);
  const x = randn([2, 2, 3, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  const w = randn([3], { dtype: 'f64', generator: g, requiresGrad: true });
  const b = randn([3], { dtype: 'f64', generator: g, requiresGrad: true });
  const rm = tensor([0.1, -0.2, 0.3], [3], 'f64'), rv = tensor([0.5, 1.5, 2], [3], 'f64');
  gradcheck((xi, wi, bi) => batchNormEval(xi!, rm, rv, wi!, bi!), [x, w, b]);
});

test('bad input gives clear errors', () => {
  const bn = new BatchNorm2d(4);
  assert.throws(() => bn.forward(randn([2, 3, 3, 5])), /5 channels, expected 4/);
  assert.throws(() => bn.forward(randn([2, 3, 4])), /\[N, H, W, C\]/);
  assert.throws(() => bn.forward(randn([1, 1, 1, 4])), /more than one value per channel/);
  assert.throws(() => new BatchNorm2d(0), /positive integer/);
  assert.throws(() => new BatchNorm2d(4, { momentum: 2 }), /momentum/);
});
