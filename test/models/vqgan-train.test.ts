// The VQGAN tokenizer's training loop and commands on a tiny data set made on the fly (16 px shapes,
// the `tiny` preset): the loss goes down, a stopped-and-resumed run is bit-identical to a straight one,
// a NaN stops the run and keeps the last good checkpoint, evaluation gives sane numbers, and the CLI
// rejects bad arguments.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSafetensors } from '../../src/engine/index.js';
import { DatasetWriter, openDataset } from '../../src/data/format.js';
import { makeShapesSample, sceneAttrsOf, sceneConfig } from '../../src/data/shapes/prepare.js';
import { CheckerTally, checkScene, compareScene } from '../../src/data/shapes/checker.js';
import { evaluateTokenizer, reconstruct, rgbToTensor, tokenize } from '../../src/models/vqgan/evaluate.js';
import { trainTokenizer, type TrainTokenizerOptions } from '../../src/models/vqgan/train.js';
import { loadVQModel } from '../../src/models/vqgan/vqmodel.js';
import { readMetrics } from '../../src/train/metrics-log.js';
import { NonFiniteLossError } from '../../src/train/run.js';
import { StopFlag, stopExitCode } from '../../src/train/signals.js';
import { listCheckpointSteps } from '../../src/train/checkpoint.js';
import { UsageError } from '../../src/cli/args.js';
import { commands } from '../../src/cli/commands/tokenizer.js';
import { writePng } from '../../src/util/png.js';

const root = await mkdtemp(join(tmpdir(), 'vqgan-train-'));
test.after(async () => { await rm(root, { recursive: true, force: true }); });

/** 24 shapes scenes at 16 px, every one in `train` (the tiny preset's resolution). */
function makeData(dir: string, n = 24): string {
  const w = new DatasetWriter(dir, 16, 16);
  for (let i = 0; i < n; i++) {
    const { rgb, record } = makeShapesSample(0, i, 16, sceneConfig(2));
    w.add(rgb, { ...record, split: i < n - 4 ? 'train' : 'test' });
  }
  w.finish({ name: 'tiny-shapes', description: 'test', languages: ['en'], licences: ['CC0-1.0'], attribution: [], createdBy: 'test', skipped: {}, notes: [] });
  return dir;
}
const data = makeData(join(root, 'data'));

const base = (out: string, over: Partial<TrainTokenizerOptions> = {}): TrainTokenizerOptions => ({
  data, out, preset: 'tiny', discriminator: 'tiny', batchSize: 2, lr: 2e-3, precision: 'fp32', warmupSteps: 0,
  schedule: 'constant', sampleEvery: 1000, checkpointEvery: 1000, sampleCount: 4, log: () => undefined, ...over,
});

async function weights(path: string): Promise<Record<string, Float32Array>> {
  const { tensors } = await loadSafetensors(path);
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Float32Array.from(t.data as Float32Array)]));
}

function assertBitIdentical(a: Record<string, Float32Array>, b: Record<string, Float32Array>, what: string): void {
  assert.deepEqual(Object.keys(a), Object.keys(b), `${what}: names`);
  for (const k of Object.keys(a)) {
    const x = a[k]!, y = b[k]!;
    const i = x.findIndex((v, j) => !Object.is(v, y[j]));
    assert.equal(i, -1, `${what}: ${k}[${i}] ${x[i]} vs ${y[i]}`);
  }
}

test('training lowers the reconstruction loss and writes metrics, a preview grid and the model dir', async () => {
  const out = join(root, 'run-loss');
  const r = await trainTokenizer(base(out, { steps: 20, sampleEvery: 10, discStart: 1000 }));
  assert.equal(r.step, 20);
  assert.equal(r.stopped, false);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(m.length, 20);
  const rec = m.map((x) => x['rec'] as number);
  const first = (rec[0]! + rec[1]! + rec[2]!) / 3, last = (rec[17]! + rec[18]! + rec[19]!) / 3;
  assert.ok(last < 0.7 * first, `rec loss ${first.toFixed(4)} → ${last.toFixed(4)} should fall by > 30%`);
  for (const k of ['loss', 'q', 'commit', 'd_loss', 'usage_used', 'perplexity', 'images_per_s', 'peak_rss_mb']) assert.equal(typeof m[19]![k], 'number', k);
  assert.equal(typeof m[9]!['preview_psnr'], 'number');
  assert.ok(existsSync(join(out, 'samples', 'step-0000010.png')) && existsSync(join(out, 'samples', 'step-0000020.png')));
  assert.ok(existsSync(join(out, 'model', 'config.json')) && existsSync(join(out, 'model', 'model.safetensors')));
  assert.deepEqual(await listCheckpointSteps(out), [20]);
});

test('adversarial: false builds no discriminator: no D state in the checkpoint, no D terms in the metrics', async () => {
  const out = join(root, 'run-no-adv');
  const r = await trainTokenizer(base(out, { steps: 4, adversarial: false }));
  assert.equal(r.step, 4);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(m.length, 4);
  assert.equal(m[3]!['d_loss'], undefined);
  assert.equal(m[3]!['g'], 0);
  assert.equal(typeof m[3]!['rec'], 'number');
  const ckpt = join(out, 'checkpoints', 'step-0000004');
  assert.ok(existsSync(join(ckpt, 'model.safetensors')));
  assert.ok(!existsSync(join(ckpt, 'discriminator.safetensors')), 'no discriminator weights');
  // The run's config pins the choice: resuming it with a discriminator is refused.
  await assert.rejects(trainTokenizer(base(out, { steps: 6, adversarial: true })), /adversarial|discriminator/);
  // A checkpoint that another run left in a fresh directory (no config.json of its own) is refused.
  const { cp } = await import('node:fs/promises');
  await cp(join(out, 'checkpoints'), join(root, 'run-foreign', 'checkpoints'), { recursive: true });
  await assert.rejects(trainTokenizer(base(join(root, 'run-foreign'), { steps: 6, adversarial: false, lr: 1e-3 })), /was written by a run with other settings \(train.discLr, train.lr differ/);
});

test('stop at step 3 + resume to 6 is bit-identical to 6 straight steps (weights, D, optimizers, RNG, codebook health)', async () => {
  // Exercise every piece of state: flips (RNG), the adversarial term from step 2, k-means init and dead-code restarts.
  const over: Partial<TrainTokenizerOptions> = {
    steps: 6, discStart: 2, flip: true, schedule: 'cosine', warmupSteps: 2, precision: 'bf16', // the default precision
    config: { nEmbed: 64, quantizer: { kmeansInit: true, deadCodeRestart: true, deadCodeSteps: 2 } }, // 64 codes for 2·64 vectors: some die and restart
  };
  const a = join(root, 'run-straight'), b = join(root, 'run-resumed');
  await trainTokenizer(base(a, over));
  const stop = new StopFlag();
  const first = await trainTokenizer(base(b, { ...over, stop, onStep: (s) => { if (s === 3) stop.request('test'); } }));
  assert.equal(first.step, 3);
  assert.equal(first.stopped, true);
  assert.deepEqual(await listCheckpointSteps(b), [3]);
  const second = await trainTokenizer(base(b, over));
  assert.equal(second.resumedFrom, 3);
  assert.equal(second.step, 6);
  assertBitIdentical(await weights(join(a, 'model', 'model.safetensors')), await weights(join(b, 'model', 'model.safetensors')), 'model');
  for (const f of ['discriminator.safetensors', 'optimizer.safetensors', 'discriminator.optimizer.safetensors']) {
    assertBitIdentical(await weights(join(a, 'checkpoints', 'step-0000006', f)), await weights(join(b, 'checkpoints', 'step-0000006', f)), f);
  }
  const ma = readMetrics(join(a, 'metrics.jsonl')), mb = readMetrics(join(b, 'metrics.jsonl'));
  assert.deepEqual(mb.map((x) => x.step), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(mb.map((x) => x['loss']), ma.map((x) => x['loss']));
  // A different model config cannot resume the run.
  await assert.rejects(trainTokenizer(base(b, { ...over, steps: 8, config: { nEmbed: 32 } })), /different config/);
});

test('init: a fresh run starts from a trained model\'s weights (no k-means over them); a config mismatch is refused before anything is written', async () => {
  const src = join(root, 'run-init-src');
  const codes = { nEmbed: 64, quantizer: { kmeansInit: true } };
  await trainTokenizer(base(src, { steps: 3, adversarial: false, config: codes }));
  const trained = (await loadVQModel(join(src, 'model'))).stateDict();
  const out = join(root, 'run-init');
  let first: Record<string, Float32Array> | null = null, initialised = false;
  const logs: string[] = [];
  // One step at lr 1e-9 moves no weight by more than ~1e-8, so the weights after it show what the run started from.
  await trainTokenizer(base(out, {
    steps: 2, adversarial: false, config: codes, init: join(src, 'model'), log: (m) => logs.push(m), lr: 1e-9,
    onStep: (s, { model }) => {
      if (s !== 1) return;
      initialised = model.quantize.isInitialised;
      first = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, Float32Array.from(t.data as Float32Array)]));
    },
  }));
  assert.ok(logs.some((m) => m.includes('starting from the weights of')), logs.join('\n'));
  assert.ok(initialised, 'the codebook counts as initialised');
  const after = first as Record<string, Float32Array> | null;
  assert.ok(after !== null);
  assert.deepEqual(Object.keys(after).sort(), Object.keys(trained).sort());
  for (const [k, t] of Object.entries(trained)) {
    const v = t.data as Float32Array, mine = after[k]!;
    const d = v.reduce((m, x, i) => Math.max(m, Math.abs(x - mine[i]!)), 0);
    assert.ok(d < 1e-6, `${k}: max |Δ| ${d} (without init: the source run's 3 steps and k-means apart)`);
  }
  const cfg = JSON.parse((await import('node:fs')).readFileSync(join(out, 'config.json'), 'utf8')) as { init: string };
  assert.equal(cfg.init, join(src, 'model'));
  // Another codebook size than the init model: refused, and no run directory is left behind.
  const bad = join(root, 'run-init-bad');
  await assert.rejects(trainTokenizer(base(bad, { steps: 2, adversarial: false, config: { nEmbed: 32 }, init: join(src, 'model') })), /another model config than preset 'tiny'.*nEmbed/);
  assert.ok(!existsSync(bad), 'nothing written');
  await assert.rejects(trainTokenizer(base(bad, { steps: 2, init: join(root, 'nowhere') })), /is not a directory/);
});

test('a NaN loss stops with NonFiniteLossError and keeps the last good checkpoint', async () => {
  const out = join(root, 'run-nan');
  const err = await trainTokenizer(base(out, {
    steps: 10, checkpointEvery: 2, discStart: 1000,
    onStep: (s, { model }) => { if (s === 3) (model.decoder.convOut.bias!.data as Float32Array).fill(NaN); },
  })).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof NonFiniteLossError, `expected NonFiniteLossError, got ${String(err)}`);
  assert.equal(err.step, 4);
  assert.match(err.message, /step-0000002/);
  assert.deepEqual(await listCheckpointSteps(out), [2]);
  for (const [k, v] of Object.entries(await weights(join(out, 'checkpoints', 'step-0000002', 'model.safetensors')))) {
    assert.ok(v.every(Number.isFinite), `${k} is finite in the kept checkpoint`);
  }
  assert.ok(!existsSync(join(out, 'model')), 'no model dir from a failed run');
  // The run resumes from the good checkpoint.
  const r = await trainTokenizer(base(out, { steps: 4, checkpointEvery: 2, discStart: 1000 }));
  assert.equal(r.resumedFrom, 2);
  assert.equal(r.step, 4);
});

test('evaluateTokenizer, tokenize and reconstruct give sane results', async () => {
  const model = await loadVQModel(join(root, 'run-loss', 'model'));
  const ds = openDataset(data);
  const ev = evaluateTokenizer(model, ds, 'test', { batchSize: 3 });
  assert.equal(ev.count, 4);
  assert.ok(ev.psnr > 8 && ev.psnr < 100, `psnr ${ev.psnr}`);
  assert.ok(ev.ssim > -1 && ev.ssim <= 1, `ssim ${ev.ssim}`);
  const u = ev.codebookUsage;
  assert.equal(u.total, 16);
  assert.ok(u.used >= 1 && u.used <= 16 && u.fraction === u.used / 16 && u.perplexity >= 1 && u.perplexity <= u.used + 1e-9, JSON.stringify(u));
  const imgs = ds.split('test').map((r) => ds.image(r.index));
  const { grid, codes } = tokenize(model, imgs);
  assert.deepEqual(grid, [8, 8]);
  assert.equal(codes.length, 4);
  assert.ok(codes.every((c) => c.length === 64 && c.every((v) => v >= 0 && v < 16)));
  const recs = reconstruct(model, imgs);
  assert.equal(recs.length, 4);
  assert.equal(recs[0]!.length, 16 * 16 * 3);
  // Shapes data carry attributes: the checker's verdict on the reconstructions, the same as checking them here.
  const a = ev.attributes!;
  assert.ok(a !== undefined, 'shapes data set: attributes reported');
  const tally = new CheckerTally();
  ds.split('test').forEach((r, i) => tally.add(compareScene(sceneAttrsOf(r)!, checkScene(recs[i]!, 16))));
  assert.equal(a.scenes, 4);
  assert.equal(a.all, tally.accuracy('all'));
  assert.equal(a.shape, tally.accuracy('shape'));
  for (const f of ['count', 'colour', 'shape', 'size', 'position', 'relation'] as const) assert.ok(a[f] >= a.all && a[f] <= 1, `${f} ${a[f]} vs all ${a.all}`);
  // The same codes decode to the same reconstruction.
  const viaCodes = model.decodeCodes(model.tokenize(rgbToTensor(imgs, 16, 16)));
  assert.deepEqual(viaCodes.shape, [4, 16, 16, 3]);
  assert.throws(() => evaluateTokenizer(model, ds, 'val'), /no images in split 'val'/);
});

/** Runs a command, returning what it printed. */
async function runCommand(name: string, positionals: string[], options: Record<string, string | number | boolean | undefined>): Promise<string> {
  const cmd = commands[name]!;
  const full = { ...Object.fromEntries(Object.entries(cmd.options).map(([k, s]) => [k, s.default])), ...options };
  let printed = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array): boolean => { printed += String(s); return true; }) as typeof process.stdout.write;
  try { await cmd.run(positionals, full); } finally { process.stdout.write = write; }
  return printed;
}

test('CLI: tokenize, reconstruct, eval-tokenizer work on a trained run; bad arguments are usage errors', async () => {
  const modelDir = join(root, 'run-loss', 'model');
  const ds = openDataset(data);
  const png = join(root, 'img.png');
  await writePng(png, ds.image(0), 16, 16);
  const tok = await runCommand('tokenize', [png], { model: modelDir });
  assert.match(tok, /\(8×8 codes of 16\):/);
  assert.equal(tok.trim().split('\n').length, 9);
  const recDir = join(root, 'recs');
  assert.match(await runCommand('reconstruct', [png], { model: modelDir, out: recDir }), /img\.rec\.png/);
  assert.ok(existsSync(join(recDir, 'img.rec.png')));
  const ev = JSON.parse(await runCommand('eval-tokenizer', [], { model: modelDir, data, split: 'test' })) as { count: number; codebookUsage: { total: number } };
  assert.equal(ev.count, 4);
  assert.equal(ev.codebookUsage.total, 16);

  const bad: Array<[string, string[], Record<string, string | number | boolean>, RegExp]> = [
    ['train-tokenizer', [], { out: join(root, 'x') }, /--data <dir> is required/],
    ['train-tokenizer', [], { data, out: join(root, 'x'), precision: 'fp16' }, /--precision must be bf16 or fp32/],
    ['train-tokenizer', [], { data, out: join(root, 'x'), steps: 2.5 }, /--steps must be an integer/],
    ['train-tokenizer', [], { data, out: join(root, 'x'), preset: 'nope' }, /unknown preset 'nope'/],
    ['train-tokenizer', ['extra'], { data, out: join(root, 'x') }, /unexpected argument/],
    ['train-tokenizer', [], { data, out: join(root, 'x'), codes: 1 }, /--codes must be an integer ≥ 2/],
    ['tokenize', [], { model: modelDir }, /at least one image/],
    ['reconstruct', [png], { model: modelDir }, /--out <dir> is required/],
    ['eval-tokenizer', [], { model: modelDir, data, split: 'dev' }, /--split must be train, val or test/],
  ];
  for (const [name, pos, opts, re] of bad) {
    await assert.rejects(runCommand(name, pos, opts), (e: unknown) => e instanceof UsageError && re.test(e.message), `${name} ${JSON.stringify(opts)}`);
  }
  // A --resume without a checkpoint is a clear error, not a fresh run.
  await assert.rejects(runCommand('train-tokenizer', [], { data, out: join(root, 'fresh'), preset: 'tiny', resume: true, quiet: true, steps: 1 }), /has no checkpoint/);
  // --codes overrides the preset's codebook size, and the run's model config records it.
  const k32 = join(root, 'k32');
  await runCommand('train-tokenizer', [], { data, out: k32, preset: 'tiny', codes: 32, 'no-adversarial': true, precision: 'fp32', quiet: true, steps: 1, 'batch-size': 2 });
  assert.equal((await loadVQModel(join(k32, 'model'))).config.nEmbed, 32);
  // Resuming the same run with another codebook size is refused (the model config is fixed).
  await assert.rejects(runCommand('train-tokenizer', [], { data, out: k32, preset: 'tiny', codes: 64, 'no-adversarial': true, precision: 'fp32', quiet: true, steps: 2, 'batch-size': 2 }), /model/);
});

test('CLI: SIGTERM stops `vilg train-tokenizer` after a checkpoint and exits 143 (130 for SIGINT), so scripts see an unfinished run', async () => {
  assert.equal(stopExitCode('SIGTERM'), 143);
  assert.equal(stopExitCode('SIGINT'), 130);
  assert.equal(stopExitCode('test'), 1);
  const out = join(root, 'run-sigterm');
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [main, 'train-tokenizer', '--data', data, '--preset', 'tiny', '--out', out, '--steps', '100000',
    '--batch-size', '2', '--precision', 'fp32', '--no-adversarial', '--sample-every', '100000', '--checkpoint-every', '100000', '--quiet'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const metrics = join(out, 'metrics.jsonl');
  const t0 = Date.now();
  while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').length > 0)) { // a step has run: the stop flag is installed
    assert.ok(Date.now() - t0 < 60_000, 'no training step within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 143);
  assert.match(stdout, /^stopped \(SIGTERM\) at step \d+; checkpoint /m);
  assert.equal((await listCheckpointSteps(out)).length, 1, 'the stop wrote a checkpoint');
});
