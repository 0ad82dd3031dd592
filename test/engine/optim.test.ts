import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdamW, EMA, clipGradNorm, warmupCosine, isNotMatrix, adamwStateToTensors, adamwStateFromTensors,
  parameter, tensor, matmul, parseSafetensors, serializeSafetensors, type Tensor,
} from '../../src/engine/index.js';

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

const f64 = (v: number[], shape?: number[]): Tensor => parameter(tensor(v, shape, 'f64'));
const grad = (v: number[], shape?: number[], dtype: 'f32' | 'f64' = 'f64'): Tensor => tensor(v, shape, dtype);

// ---------------------------------------------------------------- AdamW

test('AdamW first step matches the closed form of PyTorch\'s formula', () => {
  // At t=1: m̂ = g, √v̂ = |g|, so p ← p(1 − lr·wd) − lr·g/(|g| + ε).
  const p = f64([1, -2, 0.5, 3]);
  const g = [0.1, -0.2, 0.3, 0];
  const opt = new AdamW([p], { lr: 0.01, weightDecay: 0.1 });
  p.grad = grad(g);
  opt.step();
  const expected = [1, -2, 0.5, 3].map((x, i) => x * (1 - 0.01 * 0.1) - 0.01 * g[i]! / (Math.abs(g[i]!) + 1e-8));
  close(p.data, expected, 1e-15, 'p');
});

test('AdamW second step matches a hand evaluation with bias correction', () => {
  const p = f64([2]);
  const [b1, b2, lr, eps, wd] = [0.9, 0.999, 0.1, 1e-8, 0.01];
  const opt = new AdamW([p], { lr, weightDecay: wd });
  let x = 2, m = 0, v = 0;
  for (const [t, g] of [[1, 0.5], [2, -1.5]] as const) {
    p.grad = grad([g]);
    opt.step();
    x *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    x -= (lr / (1 - b1 ** t)) * m / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
  }
  close(p.data, [x], 1e-15, 'p');
});

test('AdamW matches torch.optim.AdamW over 3 steps (f64, no-decay group, a skipped grad)', () => {
  // Expected values printed by /usr/bin/python3 (torch 1.13) running:
  //   w = tensor([[1,-2],[.5,3]], f64); b = tensor([.25,-.75], f64)
  //   AdamW([{'params':[w],'weight_decay':0.1},{'params':[b],'weight_decay':0.0}], lr=0.01, betas=(0.9,0.999), eps=1e-8)
  //   grads of w per step: gw below; of b: gb below (None at step 2); opt.step() after each.
  const w = f64([1, -2, 0.5, 3], [2, 2]);
  const b = f64([0.25, -0.75]);
  const opt = new AdamW([w, b], { lr: 0.01, weightDecay: 0.1, noDecay: isNotMatrix });
  assert.equal(opt.hasWeightDecay(w), true);
  assert.equal(opt.hasWeightDecay(b), false);
  const gw = [[0.1, -0.2, 0.3, 0.0], [-0.5, 0.4, 0.0, 2.0], [1.0, 1.0, -1.0, 1e-3]];
  const gb = [[0.3, -0.1], null, [-0.2, 0.6]];
  const expW = [
    [0.9890000009999999, -1.9880000005, 0.4895000003333333, 2.997],
    [0.9939945426542334, -1.989673035654104, 0.4823099181075821, 2.9865616318169352],
    [0.9894091399285653, -1.9946702503966403, 0.48645986491554777, 2.977819676075298],
  ];
  const expB = [
    [0.24000000033333332, -0.7400000009999999],
    [0.24000000033333332, -0.7400000009999999],
    [0.23855479509285968, -0.7462391875196419],
  ];
  for (let s = 0; s < 3; s++) {
    w.grad = grad(gw[s]!, [2, 2]);
    b.grad = gb[s] === null ? null : grad(gb[s]!);
    opt.step();
    close(w.data, expW[s]!, 1e-14, `w step ${s + 1}`);
    close(b.data, expB[s]!, 1e-14, `b step ${s + 1}`);
  }
  const st = opt.stateDict();
  assert.deepEqual(st.steps, [3, 2]); // PyTorch: state[w]['step'] = 3, state[b]['step'] = 2
  close(st.expAvg[0]!.data, [0.06309999999999999, 0.11979999999999998, -0.07569999999999999, 0.18009999999999995], 1e-14, 'exp_avg');
  close(st.expAvgSq[0]!.data, [0.0012597300100000012, 0.0011997600400000012, 0.001089820090000001, 0.003996001000000004], 1e-14, 'exp_avg_sq');
});

test('AdamW on f32 parameters matches torch f32 to float precision', () => {
  // /usr/bin/python3 (torch 1.13): w = tensor([1,-2,.5,3], f32); AdamW([w], lr=0.05, betas=(0.8,0.99),
  // eps=1e-6, weight_decay=0.2); the same three gradients as above; print(w.tolist()).
  const w = parameter(tensor([1, -2, 0.5, 3]));
  const opt = new AdamW([w], { lr: 0.05, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.2 });
  for (const g of [[0.1, -0.2, 0.3, 0.0], [-0.5, 0.4, 0.0, 2.0], [1.0, 1.0, -1.0, 1e-3]]) {
    w.grad = grad(g, undefined, 'f32');
    opt.step();
  }
  assert.ok(w.data instanceof Float32Array);
  close(w.data, [0.9323413968086243, -1.950899600982666, 0.432307630777359, 2.843691110610962], 2e-7, 'w');
});

test('AdamW updates in place, trains a matmul, and zeroGrad clears gradients', () => {
  const w = parameter(tensor([0.5, -0.5, 0.25, 1], [2, 2], 'f64'));
  const storage = w.data;
  const x = tensor([1, 2, 3, 4], [2, 2], 'f64');
  const opt = new AdamW([w], { lr: 0.05, weightDecay: 0 });
  const loss = (): number => matmul(x, w).toArray().reduce((a, v) => a + v * v, 0);
  const before = loss();
  for (let i = 0; i < 20; i++) {
    const y = matmul(x, w);
    y.backward(tensor(Array.from(y.data, (v) => 2 * v), [2, 2], 'f64')); // d(Σy²)/dy
    opt.step();
    opt.zeroGrad();
    assert.equal(w.grad, null);
  }
  assert.equal(w.data, storage, 'the parameter keeps its storage');
  assert.ok(loss() < before * 0.5, `loss ${loss()} should fall well below ${before}`);
});

test('AdamW lr is settable per step; options are validated', () => {
  const p = f64([1]);
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0 });
  opt.lr = 0; // lr 0 (e.g. first warmup step) must leave p unchanged
  p.grad = grad([1]);
  opt.step();
  assert.deepEqual(Array.from(p.data), [1]);
  assert.throws(() => { opt.lr = -1; }, /lr must be/);
  assert.throws(() => { opt.lr = NaN; }, /lr must be/);
  assert.throws(() => new AdamW([p], { lr: -0.1 }), RangeError);
  assert.throws(() => new AdamW([p], { betas: [1, 0.999] }), /betas\[0\]/);
  assert.throws(() => new AdamW([p], { betas: [0.9, -0.1] }), /betas\[1\]/);
  assert.throws(() => new AdamW([p], { eps: -1 }), /eps/);
  assert.throws(() => new AdamW([p], { weightDecay: Infinity }), /weightDecay/);
  assert.throws(() => new AdamW([p, p]), /appears twice/);
  assert.throws(() => new AdamW([tensor([1, 2], [2], 'i32')]), /f32 or f64/);
  assert.throws(() => new AdamW([matmul(parameter(tensor([1], [1, 1])), tensor([1], [1, 1]))]), /not a leaf/);
  p.grad = grad([1, 2]);
  assert.throws(() => opt.step(), /does not match parameter/);
});

test('AdamW stateDict/loadStateDict resume exactly, also through safetensors', () => {
  const gs = [[0.3, -0.2, 0.1], [0.5, 0.5, -1], [-0.1, 0.2, 0.3]];
  const a = f64([1, 2, 3]);
  const optA = new AdamW([a], { lr: 0.02 });
  for (const g of gs.slice(0, 2)) { a.grad = grad(g); optA.step(); }
  const state = optA.stateDict();
  const snapshot = Array.from(state.expAvg[0]!.data);

  // Resume in a "new process": fresh parameter with a's values, state restored from serialized bytes.
  const b = f64(Array.from(a.data));
  const optB = new AdamW([b], { lr: 0.02 });
  const file = parseSafetensors(serializeSafetensors(adamwStateToTensors(state)));
  optB.loadStateDict(adamwStateFromTensors(file.tensors));

  a.grad = grad(gs[2]!); optA.step();
  b.grad = grad(gs[2]!); optB.step();
  assert.deepEqual(Array.from(b.data), Array.from(a.data));
  assert.deepEqual(optB.stateDict().steps, [3]);
  assert.deepEqual(Array.from(state.expAvg[0]!.data), snapshot, 'stateDict returns a copy, not live buffers');
});

test('AdamW loadStateDict rejects mismatched states and leaves the optimizer untouched', () => {
  const p = f64([1, 2]);
  const opt = new AdamW([p]);
  const good = opt.stateDict();
  assert.throws(() => opt.loadStateDict({ ...good, steps: [1, 2] }), /steps has 2 entries but the optimizer has 1/);
  assert.throws(() => opt.loadStateDict({ ...good, steps: [-1] }), /non-negative integer/);
  assert.throws(() => opt.loadStateDict({ ...good, expAvg: [tensor([1, 2, 3], undefined, 'f64')] }), /expAvg\[0\] has shape \[3\] but parameter 0 has \[2\]/);
  assert.throws(() => opt.loadStateDict({ ...good, expAvgSq: [tensor([1, 2], undefined, 'i32')] }), /f32 or f64/);
  assert.throws(() => adamwStateFromTensors({}), /missing tensor 'optim.steps'/);
  assert.deepEqual(opt.stateDict().steps, [0]);
});

// ---------------------------------------------------------------- clipGradNorm

test('clipGradNorm scales by maxNorm/(norm+1e-6) and returns the pre-clip norm', () => {
  const a = f64([0, 0]), b = f64([0]), c = f64([5]);
  const ga = grad([3, 4]), gb = grad([12]);
  a.grad = ga; b.grad = gb; // c has no gradient: skipped
  const norm = clipGradNorm([a, b, c], 6.5);
  assert.equal(norm, 13);
  const k = 6.5 / (13 + 1e-6);
  close(a.grad!.data, [3 * k, 4 * k], 1e-15, 'a');
  close(b.grad!.data, [12 * k], 1e-15, 'b');
  assert.equal(c.grad, null);
  assert.deepEqual(Array.from(ga.data), [3, 4], 'the old gradient tensor is not mutated');
  // Under the bound: untouched, same objects.
  const ga2 = a.grad;
  assert.ok(Math.abs(clipGradNorm([a, b], 100) - 6.5) < 1e-6);
  assert.equal(a.grad, ga2);
});

test('clipGradNorm returns a non-finite norm and leaves grads alone; validates maxNorm', () => {
  const a = f64([0, 0]);
  const g = grad([NaN, 1]);
  a.grad = g;
  assert.ok(Number.isNaN(clipGradNorm([a], 1)));
  assert.equal(a.grad, g);
  a.grad = grad([Infinity, 1]);
  assert.equal(clipGradNorm([a], 1), Infinity);
  assert.equal(clipGradNorm([], 1), 0);
  assert.throws(() => clipGradNorm([a], -1), /maxNorm/);
  assert.throws(() => clipGradNorm([a], NaN), /maxNorm/);
});

// ---------------------------------------------------------------- warmupCosine

test('warmupCosine: linear warmup, cosine to minLr, constant after', () => {
  const lr = warmupCosine({ peakLr: 1e-3, warmupSteps: 10, totalSteps: 110, minLr: 1e-4 });
  assert.equal(lr(0), 0);
  assert.ok(Math.abs(lr(5) - 5e-4) < 1e-18);
  assert.equal(lr(10), 1e-3);
  assert.ok(Math.abs(lr(60) - 5.5e-4) < 1e-15, 'halfway through the cosine: (peak + min) / 2');
  assert.ok(Math.abs(lr(35) - (1e-4 + 0.5 * 9e-4 * (1 + Math.cos(Math.PI / 4)))) < 1e-15);
  assert.equal(lr(110), 1e-4);
  assert.equal(lr(10_000), 1e-4);
  for (let s = 11; s < 110; s++) assert.ok(lr(s) < lr(s - 1), 'monotone decay');
  const noWarm = warmupCosine({ peakLr: 2, warmupSteps: 0, totalSteps: 4 });
  assert.deepEqual([0, 2, 4].map(noWarm), [2, 1, 0]);
});

test('warmupCosine validates its options and steps', () => {
  assert.throws(() => warmupCosine({ peakLr: -1, warmupSteps: 0, totalSteps: 1 }), /peakLr/);
  assert.throws(() => warmupCosine({ peakLr: 1, warmupSteps: 0, totalSteps: 1, minLr: 2 }), /minLr/);
  assert.throws(() => warmupCosine({ peakLr: 1, warmupSteps: 1.5, totalSteps: 10 }), /warmupSteps/);
  assert.throws(() => warmupCosine({ peakLr: 1, warmupSteps: 10, totalSteps: 10 }), /totalSteps/);
  assert.throws(() => warmupCosine({ peakLr: 1, warmupSteps: 0, totalSteps: 10 })(-1), /step must be/);
});

// ---------------------------------------------------------------- EMA

test('EMA update follows shadow = d·shadow + (1−d)·param; copyTo, swap, withAveraged', () => {
  const p = f64([1, 2]);
  const ema = new EMA([p], { decay: 0.9 });
  p.data.set([3, 4]);
  ema.update();           // 0.9·[1,2] + 0.1·[3,4] = [1.2, 2.2]
  p.data.set([5, 6]);
  ema.update();           // 0.9·[1.2,2.2] + 0.1·[5,6] = [1.58, 2.58]
  assert.equal(ema.numUpdates, 2);
  const target = f64([0, 0]);
  ema.copyTo([target]);
  close(target.data, [1.58, 2.58], 1e-15, 'copyTo');

  ema.swap();
  close(p.data, [1.58, 2.58], 1e-15, 'swapped in');
  ema.swap();
  assert.deepEqual(Array.from(p.data), [5, 6]);

  const seen = ema.withAveraged(() => Array.from(p.data));
  close(seen, [1.58, 2.58], 1e-15, 'withAveraged');
  assert.deepEqual(Array.from(p.data), [5, 6]);
  assert.throws(() => ema.withAveraged(() => { throw new Error('boom'); }), /boom/);
  assert.deepEqual(Array.from(p.data), [5, 6], 'restored after a throw');
});

test('EMA state dict round-trips; bad inputs are rejected', () => {
  const p = f64([1, 2]);
  const ema = new EMA([p], { decay: 0.5 });
  p.data.set([3, 3]);
  ema.update();
  const st = ema.stateDict();
  const q = f64([0, 0]);
  const ema2 = new EMA([q], { decay: 0.5 });
  ema2.loadStateDict(st);
  assert.equal(ema2.numUpdates, 1);
  ema2.copyTo();
  assert.deepEqual(Array.from(q.data), [2, 2.5]);
  assert.throws(() => new EMA([p], { decay: 1.5 }), /decay/);
  assert.throws(() => ema.copyTo([f64([1, 2, 3])]), /shape \[3\]/);
  assert.throws(() => ema.copyTo([]), /got 0 tensors/);
  assert.throws(() => ema.loadStateDict({ updates: -1, shadow: st.shadow }), /updates/);
});
