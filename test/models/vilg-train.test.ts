// `vilg train`: the generator's training loop on a tiny data set — it learns, end-to-end training moves the
// decoder (two-stage does not), a killed run resumes to bit-identical weights, a NaN stops it keeping the
// last good checkpoint, the model directory reloads, and bad options are clear errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../../src/engine/index.js';
import { Generator } from '../../src/engine/random.js';
import { DatasetWriter } from '../../src/data/format.js';
import { makeShapesSample, sceneConfig } from '../../src/data/shapes/prepare.js';
import { trainDatasetTokenizer } from '../../src/data/text/from-dataset.js';
import { vqganPreset } from '../../src/models/vqgan/config.js';
import { loadVQModel, saveVQModel, VQModel } from '../../src/models/vqgan/vqmodel.js';
import { loadVilgModel } from '../../src/models/vilg/io.js';
import { trainVilg, type TrainVilgOptions } from '../../src/models/vilg/train.js';
import { readMetrics } from '../../src/train/metrics-log.js';
import { NonFiniteLossError } from '../../src/train/run.js';
import { StopFlag } from '../../src/train/signals.js';

const root = await mkdtemp(join(tmpdir(), 'vilg-train-'));
test.after(async () => { await rm(root, { recursive: true, force: true }); });

const data = join(root, 'data');
{
  const w = new DatasetWriter(data, 16, 16);
  for (let i = 0; i < 24; i++) {
    const { rgb, record } = makeShapesSample(0, i, 16, sceneConfig(1));
    w.add(rgb, { ...record, split: i < 18 ? 'train' : i < 21 ? 'val' : 'test' });
  }
  w.finish({ name: 'tiny-shapes', description: 'test', languages: ['en', 'zh'], licences: ['CC0-1.0'], attribution: [], createdBy: 'test', skipped: {}, notes: [] });
}
trainDatasetTokenizer({ data, out: join(data, 'tokenizer'), vocabSize: 120, langs: ['en', 'zh'], minFrequency: 1, lowercase: true, showProgress: false });
const tokDir = join(root, 'tok');
await saveVQModel(tokDir, new VQModel(vqganPreset('tiny'), { generator: new Generator(3) })); // 16 px → 8×8 codes of 16

const base = (out: string, over: Partial<TrainVilgOptions> = {}): TrainVilgOptions => ({
  data, tokenizer: tokDir, out, preset: 'tiny', config: { maxTextLen: 12 }, steps: 12, batchSize: 4, lr: 3e-3, recLr: 1e-3,
  warmupSteps: 2, sampleEvery: 6, checkpointEvery: 4, sampleCount: 3, showProgress: false, log: () => undefined, ...over,
});

const weightsOf = async (dir: string): Promise<Record<string, number[]>> => {
  const b = await loadVilgModel(dir);
  const out: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(b.model.stateDict())) out[k] = Array.from(t.data as Float32Array);
  for (const [k, t] of Object.entries(b.imageTokenizer.stateDict())) out[`rec.${k}`] = Array.from(t.data as Float32Array);
  return out;
};

test('end-to-end: the losses fall, the decoder trains and the encoder does not, sheets and a loadable model are written', async () => {
  const out = join(root, 'e2e');
  const r = await trainVilg(base(out, { steps: 40, sampleEvery: 20, recBatch: 2 }));
  assert.equal(r.step, 40);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(m.length, 40);
  const mean = (rs: typeof m, k: string): number => rs.reduce((s, x) => s + (x[k] as number), 0) / rs.length;
  for (const k of ['t2i', 'i2t', 'rec']) {
    const first = mean(m.slice(0, 4), k), last = mean(m.slice(-4), k);
    assert.ok(last < 0.9 * first, `${k}: ${first.toFixed(3)} → ${last.toFixed(3)} should fall`);
  }
  assert.ok(m.every((x) => typeof x['vqa'] === 'number'), 'shapes data has questions: the VQA term is trained');
  assert.ok(typeof m[19]!['val_t2i'] === 'number' && typeof m[39]!['val_i2t'] === 'number', 'val losses at each sheet');
  for (const f of ['step-0000020.png', 'step-0000020.html', 'step-0000040.png']) assert.ok(existsSync(join(out, 'samples', f)), f);
  assert.match(await readFile(join(out, 'samples', 'step-0000040.html'), 'utf8'), /generated caption/);

  const before = await loadVQModel(tokDir), after = (await loadVilgModel(r.modelDir)).imageTokenizer;
  const same = (a: VQModel, b: VQModel, prefix: string): boolean => Object.entries(a.stateDict()).filter(([k]) => k.startsWith(prefix))
    .every(([k, t]) => Array.from(t.data as Float32Array).every((v, i) => v === (b.stateDict()[k]!.data as Float32Array)[i]));
  assert.ok(!same(before, after, 'decoder.'), 'the decoder trained jointly');
  assert.ok(same(before, after, 'encoder.') && same(before, after, 'quantize.'), 'encoder and codebook frozen');
  const b = await loadVilgModel(r.modelDir);
  assert.equal(b.mode, 'end-to-end');
  assert.equal(b.model.config.numCodes, 16);
  assert.deepEqual(b.model.config.imageGrid, [8, 8]);
});

test('two-stage: no reconstruction term and the decoder is untouched', async () => {
  const out = join(root, 'two');
  const r = await trainVilg(base(out, { mode: 'two-stage', steps: 4 }));
  const m = readMetrics(join(out, 'metrics.jsonl'));
  assert.ok(m.every((x) => x['rec'] === undefined));
  const before = (await loadVQModel(tokDir)).stateDict(), after = (await loadVilgModel(r.modelDir)).imageTokenizer.stateDict();
  for (const [k, t] of Object.entries(before)) assert.deepEqual(Array.from(after[k]!.data as Float32Array), Array.from(t.data as Float32Array), k);
});

test('a run stopped at step 6 and resumed ends bit-identical to an uninterrupted one', async () => {
  const a = join(root, 'a'), b = join(root, 'b');
  await trainVilg(base(a));
  const stop = new StopFlag();
  const first = await trainVilg(base(b, { stop, onStep: (s) => { if (s === 6) stop.request('test'); } }));
  assert.equal(first.stopped, true);
  assert.equal(first.step, 6);
  const second = await trainVilg(base(b));
  assert.equal(second.resumedFrom, 6);
  assert.equal(second.step, 12);
  const wa = await weightsOf(join(a, 'model')), wb = await weightsOf(join(b, 'model'));
  for (const k of Object.keys(wa)) assert.deepEqual(wb[k], wa[k], k);
  const ma = readMetrics(join(a, 'metrics.jsonl')), mb = readMetrics(join(b, 'metrics.jsonl'));
  assert.deepEqual(mb.map((x) => x['loss']), ma.map((x) => x['loss']));
});

test('end-to-end with the adversarial option: g, λ and D\'s loss logged, D checkpointed, resume bit-identical', async () => {
  const adv = { recAdversarial: true, recDiscStart: 3, recBatch: 2, steps: 6, checkpointEvery: 2, sampleEvery: 6 };
  const a = join(root, 'adv-a'), b = join(root, 'adv-b');
  await trainVilg(base(a, adv));
  const m = readMetrics(join(a, 'metrics.jsonl'));
  for (const x of m) for (const k of ['g', 'd_weight', 'd_loss']) assert.ok(Number.isFinite(x[k] as number), `${k} at step ${x.step}: ${String(x[k])}`);
  assert.ok(m.slice(3).every((x) => (x['d_weight'] as number) > 0), 'λ > 0 once the term is on');
  assert.ok(m.every((x) => (x['d_loss'] as number) > 0), 'hinge D loss');
  const state = JSON.parse(await readFile(join(a, 'checkpoints', 'step-0000006', 'state.json'), 'utf8')) as { modules: string[]; optimizers: string[] };
  assert.ok(state.modules.includes('discriminator') && state.optimizers.includes('discriminator'), JSON.stringify(state));
  const stop = new StopFlag();
  await trainVilg(base(b, { ...adv, stop, onStep: (s) => { if (s === 3) stop.request('test'); } }));
  const second = await trainVilg(base(b, adv));
  assert.equal(second.resumedFrom, 3);
  const ma = readMetrics(join(a, 'metrics.jsonl')), mb = readMetrics(join(b, 'metrics.jsonl'));
  assert.deepEqual(mb.map((x) => [x['loss'], x['d_loss']]), ma.map((x) => [x['loss'], x['d_loss']]));
  // A run without the option refuses this directory (the fixed settings differ).
  await assert.rejects(trainVilg(base(b, { ...adv, recAdversarial: false, steps: 8 })), /recAdversarial/);
  await assert.rejects(trainVilg(base(join(root, 'adv-two'), { ...adv, mode: 'two-stage' })), /recAdversarial needs mode end-to-end/);
  assert.ok(!existsSync(join(root, 'adv-two')), 'refused before anything is written');
});

test('a direction with loss weight 0 is not run: no t2i term (two-stage) or no i2t term in the metrics', async () => {
  const i2tOnly = join(root, 'i2t-only'), t2iOnly = join(root, 't2i-only');
  await trainVilg(base(i2tOnly, { mode: 'two-stage', steps: 2, weights: { t2i: 0 } }));
  await trainVilg(base(t2iOnly, { steps: 2, weights: { i2t: 0, vqa: 0 }, recBatch: 2 }));
  const mi = readMetrics(join(i2tOnly, 'metrics.jsonl')), mt = readMetrics(join(t2iOnly, 'metrics.jsonl'));
  assert.ok(mi.every((x) => x['t2i'] === undefined && typeof x['i2t'] === 'number'));
  assert.ok(mt.every((x) => x['i2t'] === undefined && x['vqa'] === undefined && typeof x['t2i'] === 'number' && typeof x['rec'] === 'number'));
  assert.ok((mt[1]!['tokens_per_s'] as number) > 0);
  assert.ok((mt[1]!['peak_rss_mb'] as number) > 10, 'peak resident memory is logged in MB');
});

test('--stream: samples read shard by shard; a stopped and resumed run ends bit-identical to an uninterrupted one', async () => {
  const opts = { stream: true, steps: 8, checkpointEvery: 2, sampleEvery: 8, recBatch: 2 };
  const a = join(root, 'stream-a'), b = join(root, 'stream-b');
  await trainVilg(base(a, opts));
  const stop = new StopFlag();
  await trainVilg(base(b, { ...opts, stop, onStep: (s) => { if (s === 5) stop.request('test'); } }));
  const second = await trainVilg(base(b, opts));
  assert.equal(second.resumedFrom, 5);
  const ma = readMetrics(join(a, 'metrics.jsonl')), mb = readMetrics(join(b, 'metrics.jsonl'));
  assert.deepEqual(mb.map((x) => x['loss']), ma.map((x) => x['loss']));
  // The in-memory order is another one: the same run without --stream gives other losses (and refuses this directory).
  const c = join(root, 'stream-c');
  await trainVilg(base(c, { ...opts, stream: false, steps: 2 }));
  assert.notDeepEqual(readMetrics(join(c, 'metrics.jsonl')).map((x) => x['loss']), ma.slice(0, 2).map((x) => x['loss']));
  await assert.rejects(trainVilg(base(a, { ...opts, stream: false, steps: 10 })), /stream/);
});

test('a NaN stops the run with NonFiniteLossError and keeps the last good checkpoint', async () => {
  const out = join(root, 'nan');
  const err = await trainVilg(base(out, { onStep: (s, { model }) => { if (s === 5) (model.embeddings.textTokens.weight.data as Float32Array).fill(NaN); } })).catch((e: unknown) => e);
  assert.ok(err instanceof NonFiniteLossError, `expected NonFiniteLossError, got ${String(err)}`);
  assert.match((err as Error).message, /step-0000004/);
  assert.ok(existsSync(join(out, 'checkpoints', 'step-0000004')));
  assert.ok(!existsSync(join(out, 'checkpoints', 'step-0000008')));
});

test('bad options are clear errors', async () => {
  const out = join(root, 'bad');
  await assert.rejects(trainVilg(base(out, { weights: { t2i: 1, bogus: 1 } as never })), /unknown loss weight 'bogus'/);
  await assert.rejects(trainVilg(base(out, { mode: 'both' as never })), /mode must be one of end-to-end, two-stage/);
  await assert.rejects(trainVilg(base(out, { config: { numCodes: 99 } })), /config.numCodes = 99 contradicts the tokenizers \(16\)/);
  await assert.rejects(trainVilg(base(out, { weights: { t2i: 0, i2t: 0 } })), /nothing to train/);
  await assert.rejects(trainVilg(base(out, { batchSize: 1000 })), /fewer than the batch size 1000/);
  await assert.rejects(trainVilg(base(out, { shards: join(root, 'nowhere') })), /holds no token shards/);
  await trainVilg(base(join(root, 'cfg'), { steps: 1 }));
  await assert.rejects(trainVilg(base(join(root, 'cfg'), { steps: 2, lr: 1e-2 })), /different config \(train.lr differ/);
  // A checkpoint left by another run in a directory whose config.json was replaced is refused.
  const { rm: remove, cp } = await import('node:fs/promises');
  await remove(join(root, 'cfg', 'config.json'));
  await cp(join(root, 'cfg', 'checkpoints'), join(root, 'cfg2', 'checkpoints'), { recursive: true });
  await assert.rejects(trainVilg(base(join(root, 'cfg2'), { steps: 3, batchSize: 2 })), /was written by a run with other settings \(train.batchSize differ/);
});

test('given shards match their sources by content: a copied tokenizer is accepted, a different one is refused', async () => {
  const first = join(root, 'fp-first');
  await trainVilg(base(first, { steps: 1, mode: 'two-stage' })); // encodes into first/tokens
  const shards = join(first, 'tokens');
  const copy = join(root, 'tok-copy');
  await cp(tokDir, copy, { recursive: true });
  const r = await trainVilg(base(join(root, 'fp-copy'), { steps: 1, mode: 'two-stage', shards, tokenizer: copy }));
  assert.equal(r.step, 1, 'the same tokenizer at another path trains on the shards');
  const other = join(root, 'tok-other');
  await saveVQModel(other, new VQModel(vqganPreset('tiny'), { generator: new Generator(4) })); // same shapes, other weights
  await assert.rejects(trainVilg(base(join(root, 'fp-other'), { steps: 1, mode: 'two-stage', shards, tokenizer: other })),
    /encoded with a different imageTokenizer than .*tok-other/);
});

test('init: a fresh run starts from a trained generator (transformer and e2e decoder), fresh optimizers; mismatches refused before writing', async () => {
  const src = join(root, 'init-src');
  const trained = await trainVilg(base(src, { steps: 4, recBatch: 2 }));
  const srcWeights = await weightsOf(trained.modelDir);
  // A run from init with another dropout (no weight depends on it), stopped right after its first step: the
  // first step's loss is the trained model's, far below a fresh model's.
  const fresh = join(root, 'init-fresh'), ft = join(root, 'init-ft');
  await trainVilg(base(fresh, { steps: 1, recBatch: 2, config: { maxTextLen: 12, dropout: 0 } }));
  const seen: Record<string, number[]> = {}; // the weights after the run's first step
  await trainVilg(base(ft, {
    init: src, steps: 1, recBatch: 2, lr: 1e-9, recLr: 1e-9, config: { maxTextLen: 12, dropout: 0 },
    onStep: (_s, { model, reconstructor }) => {
      for (const [k, t] of Object.entries(model.stateDict())) seen[k] = Array.from(t.data as Float32Array);
      for (const [k, t] of Object.entries(reconstructor.stateDict())) seen[`rec.${k}`] = Array.from(t.data as Float32Array);
    },
  }));
  assert.ok(Object.keys(seen).length > 0);
  // After one step at lr 1e-9 every weight is within ~1e-6 of the trained one (the decoder's too).
  let worst = 0;
  for (const [k, v] of Object.entries(srcWeights)) {
    const w = seen[k]!;
    assert.equal(w.length, v.length, k);
    for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(w[i]! - v[i]!));
  }
  assert.ok(worst < 1e-5, `weights start from init (max |diff| ${worst})`);
  const lossOf = (dir: string): number => readMetrics(join(dir, 'metrics.jsonl'))[0]!['loss'] as number;
  assert.ok(lossOf(ft) < lossOf(fresh), `init loss ${lossOf(ft)} < fresh ${lossOf(fresh)}`);
  const cfg = JSON.parse(await readFile(join(ft, 'config.json'), 'utf8')) as { init?: string };
  assert.match(cfg.init ?? '', /init-src$/, 'recorded in the run config');
  // Resuming the finished run with more steps ignores init (the checkpoint has the weights), even a changed one.
  const resumed = await trainVilg(base(ft, { init: join(root, 'nowhere-needed-only-if-fresh'), steps: 2, recBatch: 2, lr: 1e-9, recLr: 1e-9, config: { maxTextLen: 12, dropout: 0 } })).catch((e: unknown) => e);
  assert.ok(resumed instanceof Error && /config.json is missing/.test(resumed.message), 'init is checked even on resume (a typo is not silently ignored)');
  // Mismatches: architecture, image tokenizer, text vocabulary — refused before the run directory exists.
  const other = join(root, 'tok-init-other');
  await saveVQModel(other, new VQModel(vqganPreset('tiny'), { generator: new Generator(5) }));
  await assert.rejects(trainVilg(base(join(root, 'init-bad1'), { init: src, config: { maxTextLen: 12, numLayers: 1 } })), /another architecture than this run \(numLayers: 4 vs 1\)/);
  await assert.rejects(trainVilg(base(join(root, 'init-bad2'), { init: src, tokenizer: other })), /trained on another image tokenizer/);
  const text2 = join(root, 'text2');
  trainDatasetTokenizer({ data, out: text2, vocabSize: 120, langs: ['en'], minFrequency: 1, lowercase: true, showProgress: false });
  await assert.rejects(trainVilg(base(join(root, 'init-bad3'), { init: src, text: text2 })), /another text vocabulary|another architecture/);
  for (const d of ['init-bad1', 'init-bad2', 'init-bad3']) assert.ok(!existsSync(join(root, d)), `${d}: nothing written`);
  await assert.rejects(trainVilg(base(join(root, 'init-bad4'), { init: '' })), /init must be a generator model directory/);
});
