// Checkpoints: exact round trip, crash safety (a failed save never looks valid), fallback past a
// corrupt checkpoint with a warning naming the file, pruning to the newest K plus 'best', mismatches.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AdamW } from '../../src/engine/optim/adamw.js';
import { Generator } from '../../src/engine/random.js';
import { tensor } from '../../src/engine/tensor.js';
import { Linear } from '../../src/nn/layers.js';
import {
  CheckpointMismatchError, CorruptCheckpointError, initialTrainState, listCheckpointSteps, loadCheckpoint,
  loadLatestCheckpoint, saveCheckpoint, type CheckpointParts,
} from '../../src/train/checkpoint.js';

const root = mkdtempSync(join(tmpdir(), 'vilg-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));
let runCount = 0;
const newRun = (): string => join(root, `run${runCount++}`);

/** A 3→2 linear model with one AdamW step taken, so moments are non-zero. */
function parts(seed: number, extra = false): CheckpointParts & { gen: Generator } {
  const model = new Linear(3, 2, { generator: new Generator(seed) });
  const optimizer = new AdamW(model.parameters(), { lr: 0.1 });
  const gen = new Generator(seed + 100);
  const p: CheckpointParts & { gen: Generator } = { model, optimizer, generators: { data: gen }, gen };
  if (extra) {
    const disc = new Linear(2, 1, { generator: new Generator(seed + 1) });
    p.extraModules = { discriminator: disc };
    p.extraOptimizers = { discriminator: new AdamW(disc.parameters()) };
  }
  return p;
}

function takeStep(p: CheckpointParts, g: number): void {
  for (const t of p.optimizer.params) t.grad = tensor(Array.from({ length: t.size }, (_, i) => g * (i + 1)), [...t.shape]);
  p.optimizer.step();
}

const weights = (p: CheckpointParts): number[] => p.model.parameters().flatMap((t) => Array.from(t.data));
const save = (run: string, p: CheckpointParts, step: number, opts = {}) => saveCheckpoint(run, { ...p, state: initialTrainState({ step, epoch: 1, dataPosition: 8, precision: 'bf16', wallTimeS: 12.5, extra: { note: 'x' } }) }, opts);
const silent = { warn: (): void => undefined };

test('round trip restores weights, AdamW moments, RNG state and the train state exactly', async () => {
  const run = newRun();
  const a = parts(1, true);
  takeStep(a, 0.3); a.gen.normal(); a.gen.uniform(); // odd number of normals: a Box-Muller spare is pending
  const dir = await save(run, a, 5);
  assert.equal(dir, join(run, 'checkpoints', 'step-0000005'));
  assert.deepEqual(readdirSync(dir).sort(), ['discriminator.optimizer.safetensors', 'discriminator.safetensors', 'model.safetensors', 'optimizer.safetensors', 'state.json']);
  assert.deepEqual(JSON.parse(readFileSync(join(run, 'checkpoints', 'latest'), 'utf8')), { step: 5, dir: 'step-0000005' });

  const b = parts(2, true);
  const loaded = await loadLatestCheckpoint(run, b);
  assert.ok(loaded !== null);
  assert.equal(loaded.dir, dir);
  assert.deepEqual(loaded.state, { step: 5, epoch: 1, dataPosition: 8, best: null, wallTimeS: 12.5, precision: 'bf16', extra: { note: 'x' } });
  assert.deepEqual(weights(b), weights(a));
  assert.deepEqual(b.optimizer.stateDict(), a.optimizer.stateDict());
  assert.deepEqual(b.extraOptimizers!.discriminator!.stateDict(), a.extraOptimizers!.discriminator!.stateDict());
  assert.deepEqual(b.extraModules!.discriminator!.parameters().map((t) => Array.from(t.data)), a.extraModules!.discriminator!.parameters().map((t) => Array.from(t.data)));
  assert.deepEqual(b.gen.getState(), a.gen.getState());
  assert.equal(b.gen.normal(), a.gen.normal());
});

test('a fresh run has no checkpoint', async () => {
  assert.equal(await loadLatestCheckpoint(newRun(), parts(1)), null);
});

test('a crash at any stage of a save leaves the previous checkpoint as latest and nothing that looks valid', async () => {
  for (const stage of ['file:model.safetensors', 'file:optimizer.safetensors', 'state']) {
    const run = newRun();
    const a = parts(1);
    await save(run, a, 1);
    takeStep(a, 0.5);
    await assert.rejects(save(run, a, 2, { hook: (s: string) => { if (s === stage) throw new Error(`crash at ${stage}`); } }), /crash at/);
    assert.deepEqual(await listCheckpointSteps(run), [1], stage);
    assert.deepEqual(readdirSync(join(run, 'checkpoints')).sort(), ['latest', 'step-0000001'], `${stage}: temp dir removed`);
    const b = parts(9);
    assert.equal((await loadLatestCheckpoint(run, b))!.state.step, 1);
  }
  // Crash after the directory was renamed into place but before `latest` was replaced: it does not count.
  const run = newRun();
  const a = parts(1);
  await save(run, a, 1);
  const w1 = weights(a);
  takeStep(a, 0.5);
  await assert.rejects(save(run, a, 2, { hook: (s: string) => { if (s === 'renamed') throw new Error('crash'); } }));
  assert.deepEqual(await listCheckpointSteps(run), [2, 1]);
  const b = parts(9);
  assert.equal((await loadLatestCheckpoint(run, b))!.state.step, 1);
  assert.deepEqual(weights(b), w1);
  // The next save of step 2 (after resuming from 1) replaces the abandoned directory.
  await save(run, b, 2);
  assert.equal((await loadLatestCheckpoint(run, parts(3)))!.state.step, 2);
});

test('a truncated or corrupt file is named in the error, and loading falls back to the previous checkpoint', async () => {
  const run = newRun();
  const a = parts(1);
  await save(run, a, 1);
  const w1 = weights(a);
  takeStep(a, 0.5);
  const dir2 = await save(run, a, 2);
  const model2 = join(dir2, 'model.safetensors');
  const good = readFileSync(model2);
  truncateSync(model2, good.length - 5);

  await assert.rejects(loadCheckpoint(dir2, parts(3)), (e: unknown) => e instanceof CorruptCheckpointError && e.file === model2 && /bytes, the manifest says/.test(e.message));
  const warnings: string[] = [];
  const b = parts(3);
  const loaded = await loadLatestCheckpoint(run, b, { warn: (m) => warnings.push(m) });
  assert.equal(loaded!.state.step, 1);
  assert.deepEqual(weights(b), w1);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /skipping checkpoint step-0000002: .*model\.safetensors.*falling back to step-0000001/);

  // Same size, one byte flipped: the sha256 catches it.
  writeFileSync(model2, good);
  await loadCheckpoint(dir2, parts(3));
  const bytes = readFileSync(join(dir2, 'optimizer.safetensors'));
  bytes[bytes.length - 1] ^= 1;
  writeFileSync(join(dir2, 'optimizer.safetensors'), bytes);
  await assert.rejects(loadCheckpoint(dir2, parts(3)), /optimizer\.safetensors: does not match its sha256/);

  // A truncated state.json.
  const state1 = join(run, 'checkpoints', 'step-0000001', 'state.json');
  writeFileSync(state1, readFileSync(state1, 'utf8').slice(0, 40));
  await assert.rejects(loadLatestCheckpoint(run, parts(3), silent), (e: unknown) => e instanceof CorruptCheckpointError && /no complete checkpoint[\s\S]*step-0000002[\s\S]*step-0000001.state\.json.*not valid JSON/.test(e.message));
});

test('a missing or corrupt latest pointer falls back to the checkpoint directories', async () => {
  const run = newRun();
  const a = parts(1);
  await save(run, a, 3);
  writeFileSync(join(run, 'checkpoints', 'latest'), '{"step":');
  const warnings: string[] = [];
  assert.equal((await loadLatestCheckpoint(run, parts(2), { warn: (m) => warnings.push(m) }))!.state.step, 3);
  assert.match(warnings.join('\n'), /latest.*not valid JSON/);
});

test('pruning keeps the newest K complete checkpoints plus the best one', async () => {
  const run = newRun();
  const a = parts(1);
  for (let s = 1; s <= 7; s++) await save(run, a, s * 10, { keep: 2, best: s === 2 });
  assert.deepEqual(await listCheckpointSteps(run), [70, 60, 20]);
  assert.deepEqual(JSON.parse(readFileSync(join(run, 'checkpoints', 'best'), 'utf8')), { step: 20, dir: 'step-0000020' });
  // Resuming from 20 and saving 30 abandons 60 and 70 (another timeline) and the default keep is 3.
  await save(run, a, 30);
  assert.deepEqual(await listCheckpointSteps(run), [30, 20]);
  assert.ok(existsSync(join(run, 'checkpoints', 'best')));
  await save(run, a, 40); await save(run, a, 50); await save(run, a, 60);
  assert.deepEqual(await listCheckpointSteps(run), [60, 50, 40, 20]);
});

test('a checkpoint of another model is a mismatch error that changes nothing', async () => {
  const run = newRun();
  await save(run, parts(1, true), 1);
  const other = { model: new Linear(3, 4), optimizer: new AdamW(new Linear(3, 4).parameters()) };
  const fresh = parts(5, true);
  (fresh.extraModules as Record<string, unknown>) = { discriminator: new Linear(2, 3) };
  const before = weights(fresh);
  await assert.rejects(loadLatestCheckpoint(run, fresh), (e: unknown) => e instanceof CheckpointMismatchError && /discriminator\.safetensors does not fit the model: mis-shaped weight/.test(e.message));
  assert.deepEqual(weights(fresh), before, 'the model was not touched');
  const m = new Linear(3, 4);
  await assert.rejects(loadLatestCheckpoint(run, { ...other, model: m, optimizer: new AdamW(m.parameters()) }), CheckpointMismatchError);
  await assert.rejects(loadLatestCheckpoint(run, parts(2)), /also holds discriminator/);
  const p = parts(2, true);
  delete (p as { generators?: unknown }).generators;
  await assert.rejects(loadLatestCheckpoint(run, p), /generators \[data\] but \[\] were passed/);
});

test('bad arguments are rejected before anything is written', async () => {
  const run = newRun();
  await assert.rejects(saveCheckpoint(run, { ...parts(1), state: initialTrainState({ step: -1 }) }), /state\.step must be a non-negative integer/);
  await assert.rejects(saveCheckpoint(run, { ...parts(1), extraModules: { 'bad name': new Linear(1, 1) }, state: initialTrainState() }), /extra module name 'bad name'/);
  await assert.rejects(saveCheckpoint(run, { ...parts(1), extraModules: { model: new Linear(1, 1) }, state: initialTrainState() }), /not be one of model/);
  await assert.rejects(save(run, parts(1), 1, { keep: 0 }), /keep must be a positive integer/);
  assert.deepEqual(await listCheckpointSteps(run), []);
});
