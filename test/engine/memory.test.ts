// Long-run resource checks: a few hundred training steps must not accumulate memory, and backward must
// release the autograd graph (no tensor of an old step stays reachable).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  AdamW, EMA, Generator, add, clipGradNorm, gelu, matmul, mseLoss, parameter, permute, randn, slice, warmupCosine, zeros, type Tensor,
} from '../../src/engine/index.js';

// `npm test` cannot pass --expose-gc, so enable it at run time; the gc function is taken from a fresh context.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (() => void) | undefined;
const collect = async (): Promise<void> => {
  // WeakRefs stay alive until the current job ends: yield to the event loop before and after collecting.
  await new Promise<void>((r) => setImmediate(r));
  gc?.();
  await new Promise<void>((r) => setImmediate(r));
  gc?.();
};

// Legend: B batch, I input dim, H hidden dim, O output dim.
const B = 32, I = 16, H = 64, O = 8;

function makeModel(g: Generator): { params: Tensor[]; forward: (x: Tensor) => { hidden: Tensor; out: Tensor } } {
  const w1 = parameter(randn([I, H], { generator: g, std: 0.25 }), 'w1'); // [I, H]
  const b1 = parameter(zeros([H]), 'b1');                                  // [H]
  const w2 = parameter(randn([H, O], { generator: g, std: 0.125 }), 'w2'); // [H, O]
  const b2 = parameter(zeros([O]), 'b2');                                  // [O]
  return {
    params: [w1, b1, w2, b2],
    forward: (x) => {                                  // x [B, I]
      const hidden = gelu(add(matmul(x, w1), b1));     // [B, H]
      const out = add(matmul(hidden, w2), b2);         // [B, O]
      return { hidden, out };
    },
  };
}

test('300 training steps of an MLP with AdamW keep memory flat and free every graph', async () => {
  const g = new Generator(11);
  const model = makeModel(g);
  const batches = Array.from({ length: 4 }, () => ({ x: randn([B, I], { generator: g }), y: randn([B, O], { generator: g }) })); // [B, I], [B, O]
  const opt = new AdamW(model.params, { lr: 3e-3, weightDecay: 0.01, noDecay: (p) => p.rank < 2 });
  const schedule = warmupCosine({ peakLr: 3e-3, warmupSteps: 20, totalSteps: 300, minLr: 3e-4 });
  const ema = new EMA(model.params, { decay: 0.99 });

  const mem = (): { external: number; rss: number } => {
    const m = process.memoryUsage();
    return { external: m.heapUsed + m.arrayBuffers, rss: m.rss };
  };
  let atStep50 = { external: 0, rss: 0 };
  let firstLoss = NaN, lastLoss = NaN;
  let oldHidden: WeakRef<Tensor> | null = null;
  let oldLoss: WeakRef<Tensor> | null = null;

  for (let step = 0; step < 300; step++) {
    const { x, y } = batches[step % batches.length]!;
    const { hidden, out } = model.forward(x);
    const loss = mseLoss(out, y); // []
    loss.backward();
    // backward() drops every node it ran, so nothing links this step's tensors together any more.
    assert.equal(loss.node, null);
    assert.equal(hidden.node, null);
    assert.equal(out.node, null);
    clipGradNorm(model.params, 1.0);
    opt.lr = schedule(step);
    opt.step();
    opt.zeroGrad();
    ema.update();
    if (step === 0) firstLoss = loss.item();
    if (step === 299) lastLoss = loss.item();
    if (step === 10) { oldHidden = new WeakRef(hidden); oldLoss = new WeakRef(loss); }
    if (step === 50) { await collect(); atStep50 = mem(); }
  }
  await collect();
  const atEnd = mem();

  assert.ok(lastLoss < firstLoss * 0.5, `training made progress: loss ${firstLoss} → ${lastLoss}`);
  for (const p of model.params) assert.equal(p.grad, null);
  const rssGrowth = atEnd.rss - atStep50.rss;
  assert.ok(rssGrowth < 64 * 2 ** 20, `RSS grew by ${(rssGrowth / 2 ** 20).toFixed(1)} MB between step 50 and 300`);
  if (gc !== undefined) {
    // A retained graph per step (activations of 32×64 floats, several per step) would add megabytes here.
    const growth = atEnd.external - atStep50.external;
    assert.ok(growth < 2 * 2 ** 20, `heap + ArrayBuffers grew by ${(growth / 2 ** 20).toFixed(2)} MB between step 50 and 300`);
    assert.equal(oldHidden!.deref(), undefined, 'the hidden activation of step 10 was collected');
    assert.equal(oldLoss!.deref(), undefined, 'the loss of step 10 was collected');
  }
});

test('retainGraph keeps the graph reachable until the final backward', async () => {
  const g = new Generator(3);
  const model = makeModel(g);
  const x = randn([B, I], { generator: g }), y = randn([B, O], { generator: g }); // [B, I], [B, O]
  let ref: WeakRef<Tensor>;
  const loss = ((): Tensor => {
    const { hidden, out } = model.forward(x);
    ref = new WeakRef(hidden);
    return mseLoss(out, y); // []
  })();
  loss.backward(undefined, { retainGraph: true });
  await collect();
  assert.notEqual(ref!.deref(), undefined, 'the graph is still held through loss.node');
  assert.notEqual(loss.node, null);
  loss.backward();
  assert.equal(loss.node, null);
  await collect();
  if (gc !== undefined) assert.equal(ref!.deref(), undefined, 'freed once the last backward ran');
});

test('the graph keeps only what backward needs: inputs of data-free backwards are collected before backward', async () => {
  // add, permute, slice, reshape, linear's bias: their backward needs shapes only, so the tensors they
  // consumed must not be kept by the graph (the transformer's qkv / head-split copies would otherwise
  // double its activation memory). gelu's input and matmul's inputs are needed and must stay.
  const g = new Generator(5);
  const w = parameter(randn([I, H], { generator: g }), 'w'); // [I, H]
  const b = parameter(zeros([H]), 'b');                       // [H]
  let dropped: Array<WeakRef<Tensor>> = [], kept: Array<WeakRef<Tensor>> = [];
  const loss = ((): Tensor => {
    const x = randn([B, I], { generator: g });                 // [B, I]
    const mm = matmul(x, w);                                   // [B, H]: only add consumes it
    const biased = add(mm, b);                                 // [B, H]: gelu saves it
    const act = gelu(biased);                                  // [B, H]
    const moved = permute(act, [1, 0]);                        // [H, B]: only slice consumes it
    const part = slice(moved, 0, 0, H / 2);                    // [H/2, B]
    dropped = [new WeakRef(mm), new WeakRef(moved)];
    kept = [new WeakRef(x), new WeakRef(biased)];
    return mseLoss(part, zeros([H / 2, B]));                   // []
  })();
  await collect();
  if (gc !== undefined) {
    dropped.forEach((r, i) => assert.equal(r.deref(), undefined, `intermediate ${i} (no backward needs it) was collected`));
    kept.forEach((r, i) => assert.notEqual(r.deref(), undefined, `saved tensor ${i} (a backward needs it) is alive`));
  }
  loss.backward();
  assert.ok(w.grad !== null && b.grad !== null, 'gradients still reach the parameters');
  let gsum = 0;
  for (const v of b.grad!.data) gsum += Math.abs(v);
  assert.ok(gsum > 0, 'the bias gradient is non-zero');
});
