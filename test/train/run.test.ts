// The loop around a trainer's step: checkpoint cadence, graceful stop on a signal, the non-finite
// guard, the resumable data order and the run config check.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataOrder, NonFiniteLossError, assertFinite, diffJson, ensureRunConfig, readRunConfig, runTrainLoop } from '../../src/train/run.js';
import { StopFlag } from '../../src/train/signals.js';

const dir = mkdtempSync(join(tmpdir(), 'vilg-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('checkpoints every N steps and at the end', async () => {
  const saved: number[] = [], seen: number[] = [];
  const r = await runTrainLoop({
    startStep: 2, totalSteps: 9, checkpointEvery: 3,
    runStep: (s) => { seen.push(s); return { loss: 1 }; },
    saveCheckpoint: async (s) => { saved.push(s); return `ck${s}`; },
  });
  assert.deepEqual(seen, [2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(saved, [3, 6, 9]);
  assert.deepEqual(r, { step: 9, stopped: false, reason: null, lastCheckpoint: 'ck9' });
  const idle = await runTrainLoop({ startStep: 9, totalSteps: 9, checkpointEvery: 3, lastCheckpoint: 'ck9', runStep: () => ({}), saveCheckpoint: async () => assert.fail('nothing to save') });
  assert.deepEqual(idle, { step: 9, stopped: false, reason: null, lastCheckpoint: 'ck9' });
});

test('SIGINT finishes the current step, saves and stops; a second SIGINT exits at once', async () => {
  const notices: string[] = [], exits: number[] = [];
  const listenersBefore = process.listenerCount('SIGINT');
  const stop = StopFlag.install({ log: (m) => notices.push(m), exit: (c) => exits.push(c) });
  try {
    const saved: number[] = [];
    const r = await runTrainLoop({
      startStep: 0, totalSteps: 100, checkpointEvery: 50, stop,
      runStep: (s) => { if (s === 4) process.emit('SIGINT', 'SIGINT'); return { loss: s }; },
      saveCheckpoint: async (s) => { saved.push(s); return `ck${s}`; },
    });
    assert.deepEqual(r, { step: 5, stopped: true, reason: 'SIGINT', lastCheckpoint: 'ck5' });
    assert.deepEqual(saved, [5]);
    assert.match(notices[0]!, /SIGINT: stopping after the current step/);
    process.emit('SIGTERM', 'SIGTERM');
    assert.deepEqual(exits, [143]);
    assert.match(notices[1]!, /SIGTERM again: exiting now/);
  } finally { stop.dispose(); }
  assert.equal(process.listenerCount('SIGINT'), listenersBefore, 'handlers removed');
});

test('a real SIGINT during a synchronous step stops the loop after that step, not at the next checkpoint', async () => {
  const stop = StopFlag.install({ log: () => undefined, exit: () => undefined });
  try {
    const saved: number[] = [];
    const r = await runTrainLoop({
      startStep: 0, totalSteps: 1000, checkpointEvery: 500, stop,
      runStep: (s) => {
        if (s === 4) process.kill(process.pid, 'SIGINT'); // delivered through the event loop, like Ctrl-C
        const t = Date.now(); while (Date.now() - t < 2) { /* a CPU-bound step */ }
        return { loss: s };
      },
      saveCheckpoint: async (s) => { saved.push(s); return `ck${s}`; },
    });
    assert.equal(r.stopped, true);
    assert.equal(r.reason, 'SIGINT');
    assert.ok(r.step >= 5 && r.step <= 6, `stopped at step ${r.step}`);
    assert.deepEqual(saved, [r.step]);
  } finally { stop.dispose(); }
});

test('a non-finite loss throws with the step and the last good checkpoint, and saves nothing', async () => {
  const saved: number[] = [];
  await assert.rejects(runTrainLoop({
    startStep: 0, totalSteps: 10, checkpointEvery: 2,
    runStep: (s) => ({ rec: 0.1, codebook: s === 4 ? NaN : 0.2 }),
    saveCheckpoint: async (s) => { saved.push(s); return `runs/x/checkpoints/step-000000${s}`; },
  }), (e: unknown) => e instanceof NonFiniteLossError && e.term === 'codebook' && e.step === 5 &&
    e.message.startsWith("loss term 'codebook' became NaN at step 5; the last good checkpoint is kept at runs/x/checkpoints/step-0000004"));
  assert.deepEqual(saved, [2, 4]);
  assert.throws(() => assertFinite('gan', Infinity, 1), /loss term 'gan' became Infinity at step 1; no checkpoint had been written yet/);
  assertFinite('ok', 0, 1);
});

test('DataOrder: reproducible per epoch, drop-last batches, exact resume from {epoch, position}', () => {
  const a = new DataOrder(10, 3);
  const batches = Array.from({ length: 7 }, () => Array.from(a.next(3)));
  assert.deepEqual([...batches.slice(0, 3).flat()].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(new Set(batches.slice(3, 6).flat()).size, 9, 'epoch 1 again distinct samples');
  assert.notDeepEqual(batches.slice(0, 3), batches.slice(3, 6), 'each epoch is reshuffled');
  assert.deepEqual(a.getState(), { epoch: 2, position: 3 });
  const ref = new DataOrder(10, 3);
  for (let i = 0; i < 4; i++) ref.next(3);
  const b = new DataOrder(10, 3).setState(ref.getState());
  assert.deepEqual([b.next(3), b.next(3), b.next(3)].map((x) => Array.from(x)), batches.slice(4, 7));
  assert.throws(() => a.next(11), /batch size/);
  assert.throws(() => a.setState({ epoch: 0, position: 11 }), /position/);
});

test('run config: written once, resumable with allowed changes only', async () => {
  const run = join(dir, 'new', 'cfg'); // created on first write
  const cfg = { model: { ch: 64, mult: [1, 2] }, train: { steps: 100, lr: 1e-3 } };
  assert.deepEqual(await ensureRunConfig(run, cfg), []);
  assert.deepEqual(await readRunConfig(run), cfg);
  assert.deepEqual(await ensureRunConfig(run, { ...cfg, train: { steps: 200, lr: 1e-3 } }, { allowChanged: ['train.steps'] }), ['train.steps']);
  assert.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).train.steps, 200);
  await assert.rejects(ensureRunConfig(run, { ...cfg, model: { ch: 32, mult: [1, 2] } }, { allowChanged: ['train'] }), /different config \(model\.ch differ\)/);
  assert.deepEqual(diffJson({ a: 1, b: [1, 2], c: { d: 1 } }, { a: 1, b: [1, 3], e: 2 }), ['b', 'c', 'e']);
});
