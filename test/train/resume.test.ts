// THE resume test: a run interrupted by a stop request and resumed from its checkpoint — into freshly
// constructed objects with different initial weights and generator states — takes bit-identical steps
// to an uninterrupted run (losses, weights, AdamW moments, both optimizers, dropout RNG, data order).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AdamW } from '../../src/engine/optim/adamw.js';
import { warmupCosine } from '../../src/engine/optim/schedule.js';
import { mseLoss } from '../../src/engine/ops/loss.js';
import { tanh } from '../../src/engine/ops/elementwise.js';
import { Generator } from '../../src/engine/random.js';
import { Tensor, noGrad, tensor } from '../../src/engine/tensor.js';
import { Module } from '../../src/nn/module.js';
import { Dropout, Linear } from '../../src/nn/layers.js';
import { initialTrainState, loadLatestCheckpoint, saveCheckpoint, type CheckpointParts } from '../../src/train/checkpoint.js';
import { DataOrder, runTrainLoop } from '../../src/train/run.js';
import { StopFlag } from '../../src/train/signals.js';

const root = mkdtempSync(join(tmpdir(), 'vilg-resume-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Linear → tanh → dropout → Linear, plus a buffer counting forward passes. */
class TinyNet extends Module {
  readonly fc1: Linear; readonly fc2: Linear; readonly drop: Dropout;
  private calls: Tensor; // [1] i32
  constructor(init: Generator, dropGen: Generator) {
    super();
    this.fc1 = this.addModule('fc1', new Linear(4, 8, { generator: init }));
    this.fc2 = this.addModule('fc2', new Linear(8, 1, { generator: init }));
    this.drop = this.addModule('drop', new Dropout(0.25, dropGen));
    this.calls = this.addBuffer('calls', tensor([0], [1], 'i32'));
  }
  forward(x: Tensor): Tensor { // x [B, 4] → [B, 1]
    this.calls = tensor([this.calls.data[0]! + 1], [1], 'i32'); // [1]
    this.setBuffer('calls', this.calls);
    return this.fc2.forward(this.drop.forward(tanh(this.fc1.forward(x)))); // [B, 1]
  }
}

const N = 20, B = 4, TOTAL = 12;
const dataGen = new Generator(99);
const X = Array.from({ length: N * 4 }, () => dataGen.normal()); // [N, 4]
const Y = Array.from({ length: N }, (_, i) => Math.sin(X[i * 4]!) + 0.5 * X[i * 4 + 1]!); // [N]

interface Setup { parts: CheckpointParts; net: TinyNet; aux: Linear; order: DataOrder; losses: number[]; runDir: string }

function setup(runDir: string, initSeed: number): Setup {
  const dropGen = new Generator(initSeed + 1);
  const net = new TinyNet(new Generator(initSeed), dropGen);
  const aux = new Linear(1, 1, { generator: new Generator(initSeed + 2) }); // a second model with its own optimizer (like a discriminator)
  const optimizer = new AdamW(net.parameters(), { lr: 0.05, weightDecay: 0.1 });
  const auxOpt = new AdamW(aux.parameters(), { lr: 0.02 });
  return { parts: { model: net, optimizer, extraModules: { aux }, extraOptimizers: { aux: auxOpt }, generators: { dropout: dropGen } }, net, aux, order: new DataOrder(N, 7), losses: [], runDir };
}

async function train(s: Setup, startStep: number, stop?: StopFlag, last: string | null = null) {
  const lr = warmupCosine({ peakLr: 0.05, warmupSteps: 3, totalSteps: TOTAL });
  const opt = s.parts.optimizer, auxOpt = s.parts.extraOptimizers!.aux!;
  return runTrainLoop({
    startStep, totalSteps: TOTAL, checkpointEvery: 4, stop, lastCheckpoint: last,
    runStep(step) {
      const idx = s.order.next(B);
      const x = tensor(Array.from(idx).flatMap((i) => X.slice(i * 4, i * 4 + 4)), [B, 4]); // [B, 4]
      const y = tensor(Array.from(idx).map((i) => Y[i]!), [B, 1]); // [B, 1]
      opt.lr = lr(step);
      const pred = s.net.forward(x); // [B, 1]
      const loss = mseLoss(pred, y);
      const auxLoss = mseLoss(s.aux.forward(pred.detach()), y); // [B, 1] → scalar
      opt.zeroGrad(); auxOpt.zeroGrad();
      loss.backward(); auxLoss.backward();
      noGrad(() => { opt.step(); auxOpt.step(); });
      s.losses.push(loss.item());
      return { loss: loss.item(), aux: auxLoss.item() };
    },
    afterStep(done) { if (done === 6) stop?.request('test stop'); },
    saveCheckpoint: (done) => saveCheckpoint(s.runDir, { ...s.parts, state: initialTrainState({ step: done, epoch: s.order.epoch, dataPosition: s.order.position, precision: 'fp32' }) }),
  });
}

const snapshot = (s: Setup): Record<string, number[]> => {
  const out: Record<string, number[]> = {};
  for (const [n, t] of Object.entries({ ...s.net.stateDict(), ...Object.fromEntries(Object.entries(s.aux.stateDict()).map(([k, v]) => [`aux.${k}`, v])) })) out[n] = Array.from(t.data);
  const o = s.parts.optimizer.stateDict(), a = s.parts.extraOptimizers!.aux!.stateDict();
  o.expAvg.forEach((t, i) => { out[`m${i}`] = Array.from(t.data); out[`v${i}`] = Array.from(o.expAvgSq[i]!.data); });
  a.expAvg.forEach((t, i) => { out[`am${i}`] = Array.from(t.data); out[`av${i}`] = Array.from(a.expAvgSq[i]!.data); });
  out.steps = [...o.steps, ...a.steps];
  return out;
};

test('a stopped and resumed run is bit-identical to an uninterrupted one', async () => {
  const ref = setup(join(root, 'ref'), 1);
  const r = await train(ref, 0);
  assert.deepEqual(r, { step: TOTAL, stopped: false, reason: null, lastCheckpoint: join(root, 'ref', 'checkpoints', 'step-0000012') });

  const first = setup(join(root, 'resumed'), 1);
  const stop = new StopFlag();
  const r1 = await train(first, 0, stop);
  assert.equal(r1.step, 6);
  assert.equal(r1.stopped, true);
  assert.equal(r1.reason, 'test stop');
  assert.equal(r1.lastCheckpoint, join(root, 'resumed', 'checkpoints', 'step-0000006'));

  // A new process: different init seed (so nothing carries over by accident), then restore.
  const second = setup(join(root, 'resumed'), 12345);
  assert.notDeepEqual(snapshot(second)['fc1.weight'], snapshot(first)['fc1.weight']);
  const loaded = await loadLatestCheckpoint(second.runDir, second.parts);
  assert.ok(loaded !== null);
  assert.equal(loaded.state.step, 6);
  second.order.setState({ epoch: loaded.state.epoch, position: loaded.state.dataPosition });
  const r2 = await train(second, loaded.state.step, undefined, loaded.dir);
  assert.equal(r2.step, TOTAL);

  assert.deepEqual([...first.losses, ...second.losses], ref.losses, 'losses of every step');
  assert.deepEqual(snapshot(second), snapshot(ref), 'weights, buffers and both optimizers');
  assert.deepEqual(second.parts.generators!.dropout!.getState(), ref.parts.generators!.dropout!.getState());
  assert.deepEqual(second.order.getState(), ref.order.getState());
});
