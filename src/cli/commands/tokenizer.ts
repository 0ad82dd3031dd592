// `vilg train-tokenizer | tokenize | reconstruct | eval-tokenizer`: the VQGAN image tokenizer's commands.
// Heavy modules load inside run(), so `vilg --help` stays fast.
import { basename, extname, join } from 'node:path';
import { UsageError, intOption, requiredString, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';

const T = { steps: 20000, batchSize: 8, lr: 2e-4, discStart: 5000, sampleEvery: 500, checkpointEvery: 500, seed: 0 } as const; // mirrors TRAIN_TOKENIZER_DEFAULTS (literal so --help loads nothing)

const int = intOption; // the shared option checks live in ../args.ts

async function loadModel(dir: string): Promise<import('../../models/vqgan/vqmodel.js').VQModel> {
  await import('../../engine/index.js'); // loads the native backend when it is built
  const { loadVQModel } = await import('../../models/vqgan/vqmodel.js');
  return loadVQModel(dir);
}

async function readImages(paths: string[], size: number): Promise<Uint8Array[]> {
  const { loadImageRgb } = await import('../../data/image.js');
  const out: Uint8Array[] = [];
  for (const p of paths) out.push((await loadImageRgb(p, { size })).rgb);
  return out;
}

export const commands: Record<string, Command> = {
  'train-tokenizer': {
    summary: 'train (or resume) the VQGAN image tokenizer on a prepared data set',
    options: {
      data: { type: 'string', help: 'prepared data set directory (vilg data prepare ...)' },
      preset: { type: 'string', help: 'model preset: emoji-64, emoji-32, shapes-32, tiny, paper', default: 'emoji-64' },
      codes: { type: 'number', help: 'codebook size K (nEmbed), overriding the preset\'s' },
      out: { type: 'string', help: 'run directory (checkpoints, metrics.jsonl, samples/, model/)' },
      steps: { type: 'number', help: 'total optimizer steps', default: T.steps },
      'batch-size': { type: 'number', help: 'images per step', default: T.batchSize },
      lr: { type: 'number', help: 'peak learning rate (AdamW, betas 0.5/0.9)', default: T.lr },
      precision: { type: 'string', help: 'bf16 (bf16 matmul/conv, f32 master weights) or fp32', default: 'bf16' },
      'no-adversarial': { type: 'boolean', help: 'no discriminator: the seed\'s VQVAE loss alone (best PSNR/SSIM per CPU second)' },
      'disc-start': { type: 'number', help: 'step from which the adversarial loss enters the generator (D trains from 0)', default: T.discStart },
      'sample-every': { type: 'number', help: 'write RUN/samples/step-N.png every N steps', default: T.sampleEvery },
      'checkpoint-every': { type: 'number', help: 'checkpoint every N steps', default: T.checkpointEvery },
      seed: { type: 'number', help: 'seed of weights, data order and flips', default: T.seed },
      flip: { type: 'boolean', help: 'random horizontal flips (off: emoji and text are not mirror-symmetric)' },
      schedule: { type: 'string', help: 'lr schedule after warmup: cosine or constant', default: 'cosine' },
      resume: { type: 'boolean', help: 'require a checkpoint to resume from (without it: resume when RUN has one)' },
      init: { type: 'string', help: 'start a fresh run from a trained tokenizer\'s weights (model dir of the same preset; new optimizer and schedule)' },
      quiet: { type: 'boolean', help: 'no progress bar' },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      const data = requiredString(o, 'data', 'dir'), out = requiredString(o, 'out', 'dir');
      const init = o['init'];
      if (init !== undefined && (typeof init !== 'string' || init === '')) throw new UsageError('--init needs a model directory');
      const precision = o['precision'];
      if (precision !== 'bf16' && precision !== 'fp32') throw new UsageError(`--precision must be bf16 or fp32, got '${String(precision)}'`);
      const schedule = o['schedule'];
      if (schedule !== 'cosine' && schedule !== 'constant') throw new UsageError(`--schedule must be cosine or constant, got '${String(schedule)}'`);
      const lr = o['lr'];
      if (typeof lr !== 'number' || !(lr > 0)) throw new UsageError(`--lr must be a positive number, got ${String(lr)}`);
      const opts: import('../../models/vqgan/train.js').TrainTokenizerOptions = {
        data, out, preset: String(o['preset']), ...(o['codes'] !== undefined ? { config: { nEmbed: int(o, 'codes', 2)! } } : {}), precision: precision as 'bf16' | 'fp32', schedule: schedule as 'cosine' | 'constant', lr,
        steps: int(o, 'steps', 1)!, batchSize: int(o, 'batch-size', 1)!, discStart: int(o, 'disc-start', 0)!,
        sampleEvery: int(o, 'sample-every', 1)!, checkpointEvery: int(o, 'checkpoint-every', 1)!, seed: int(o, 'seed', 0)!,
        flip: o['flip'] === true, adversarial: o['no-adversarial'] !== true, resume: o['resume'] === true ? 'require' : 'auto', showProgress: o['quiet'] !== true,
        ...(typeof init === 'string' ? { init } : {}),
      };
      await import('../../engine/index.js');
      const { VQGAN_PRESETS } = await import('../../models/vqgan/config.js');
      if (!(opts.preset! in VQGAN_PRESETS)) throw new UsageError(`--preset: unknown preset '${opts.preset}' (known: ${Object.keys(VQGAN_PRESETS).join(', ')})`);
      const { trainTokenizer } = await import('../../models/vqgan/train.js');
      const { StopFlag, stopExitCode } = await import('../../train/signals.js');
      const stop = StopFlag.install();
      try {
        const r = await trainTokenizer({ ...opts, stop });
        process.stdout.write(`${r.stopped ? `stopped (${r.reason ?? 'stop requested'})` : 'finished'} at step ${r.step}; checkpoint ${r.lastCheckpoint ?? '-'}; model ${r.modelDir}\n`);
        return r.stopped ? stopExitCode(r.reason) : 0; // a stopped run is not a finished one: scripts see it
      } finally { stop.dispose(); }
    },
  },

  'tokenize': {
    summary: 'print the code grid of each image (any format, centre-cropped to the model resolution)',
    positionals: '<image>...',
    options: {
      model: { type: 'string', help: 'model directory (config.json + model.safetensors)' },
      json: { type: 'boolean', help: 'print one JSON object per image' },
    },
    async run(positionals, o) {
      const dir = requiredString(o, 'model', 'dir');
      if (positionals.length === 0) throw new UsageError('give at least one image');
      const model = await loadModel(dir);
      const { tokenize } = await import('../../models/vqgan/evaluate.js');
      const { grid: [h, w], codes } = tokenize(model, await readImages(positionals, model.config.resolution));
      const width = String(model.config.nEmbed - 1).length;
      codes.forEach((c, i) => {
        if (o['json'] === true) { process.stdout.write(JSON.stringify({ image: positionals[i], grid: [h, w], codes: Array.from(c) }) + '\n'); return; }
        const rows: string[] = [];
        for (let y = 0; y < h; y++) rows.push(Array.from(c.subarray(y * w, (y + 1) * w), (v) => String(v).padStart(width)).join(' '));
        process.stdout.write(`${positionals[i]} (${h}×${w} codes of ${model.config.nEmbed}):\n${rows.join('\n')}\n`);
      });
    },
  },

  'reconstruct': {
    summary: 'write the tokenizer\'s reconstruction of each image as PNG',
    positionals: '<image>...',
    options: {
      model: { type: 'string', help: 'model directory (config.json + model.safetensors)' },
      out: { type: 'string', help: 'output directory (one <name>.rec.png per image)' },
    },
    async run(positionals, o) {
      const dir = requiredString(o, 'model', 'dir'), out = requiredString(o, 'out', 'dir');
      if (positionals.length === 0) throw new UsageError('give at least one image');
      const model = await loadModel(dir);
      const { reconstruct } = await import('../../models/vqgan/evaluate.js');
      const { writePng } = await import('../../util/png.js');
      const { mkdir } = await import('node:fs/promises');
      const r = model.config.resolution;
      const recs = reconstruct(model, await readImages(positionals, r));
      await mkdir(out, { recursive: true });
      const used = new Set<string>();
      for (const [i, rec] of recs.entries()) {
        let name = basename(positionals[i]!, extname(positionals[i]!));
        if (used.has(name)) name = `${name}-${i}`;
        used.add(name);
        const path = join(out, `${name}.rec.png`);
        await writePng(path, rec, r, r);
        process.stdout.write(`${path}\n`);
      }
    },
  },

  'eval-tokenizer': {
    summary: 'PSNR, SSIM, codebook usage and perplexity of a tokenizer over a data-set split (on shapes data also attribute accuracy of the reconstructions), as JSON',
    options: {
      model: { type: 'string', help: 'model directory (config.json + model.safetensors)' },
      data: { type: 'string', help: 'prepared data set directory' },
      split: { type: 'string', help: 'train, val or test', default: 'test' },
      'batch-size': { type: 'number', help: 'images per forward pass', default: 32 },
      limit: { type: 'number', help: 'only the first N images of the split' },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      const dir = requiredString(o, 'model', 'dir'), data = requiredString(o, 'data', 'dir');
      const split = o['split'];
      if (split !== 'train' && split !== 'val' && split !== 'test') throw new UsageError(`--split must be train, val or test, got '${String(split)}'`);
      const batchSize = int(o, 'batch-size', 1), limit = int(o, 'limit', 1);
      const model = await loadModel(dir);
      const { openDataset } = await import('../../data/format.js');
      const { evaluateTokenizer } = await import('../../models/vqgan/evaluate.js');
      const { progress } = await import('../../util/progress.js');
      const ds = openDataset(data);
      let bar: ReturnType<typeof progress> | null = null, last = 0;
      const res = evaluateTokenizer(model, ds, split, {
        ...(batchSize !== undefined ? { batchSize } : {}), ...(limit !== undefined ? { limit } : {}),
        onProgress: (done, total) => { bar ??= progress('eval-tokenizer', total); bar.tick(done - last); last = done; },
      });
      (bar as ReturnType<typeof progress> | null)?.done();
      process.stdout.write(JSON.stringify(res) + '\n');
    },
  },
};
