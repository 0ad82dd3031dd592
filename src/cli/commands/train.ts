// `vilg train`: the ERNIE-ViLG generator (src/models/vilg/train.ts). Heavy modules load inside run().
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';

// Mirrors TRAIN_VILG_DEFAULTS (literals, so --help loads nothing).
const D = { steps: 3000, batchSize: 16, lr: 3e-4, recLr: 1e-4, sampleEvery: 500, checkpointEvery: 250, seed: 0 } as const;

function int(o: ParsedOptions, name: string, min: number): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

function nonNegative(o: ParsedOptions, name: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new UsageError(`--${name} must be a number ≥ 0, got ${String(v)}`);
  return v;
}

function choice<T extends string>(o: ParsedOptions, name: string, allowed: readonly T[]): T | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got '${String(v)}'`);
  return v as T;
}

export const commands: Record<string, Command> = {
  train: {
    summary: 'train (or resume) the ERNIE-ViLG generator: text→image and image→text in one transformer',
    options: {
      data: { type: 'string', help: 'prepared data set directory (vilg data prepare ...)' },
      tokenizer: { type: 'string', help: 'VQGAN image tokenizer directory (vilg train-tokenizer ... → RUN/model)' },
      text: { type: 'string', help: 'WordPiece tokenizer (default DATA/tokenizer)' },
      shards: { type: 'string', help: 'token shards from `vilg data encode` (default: encode into RUN/tokens on first use)' },
      stream: { type: 'boolean', help: 'stream training samples shard by shard (one shard in memory; for data sets too large to hold)' },
      out: { type: 'string', help: 'run directory (checkpoints, metrics.jsonl, samples/, model/)' },
      preset: { type: 'string', help: 'model preset: emoji-small, shapes-small, tiny, paper', default: 'emoji-small' },
      mode: { type: 'string', help: 'end-to-end (z_emb → decoder, trained jointly) or two-stage', default: 'end-to-end' },
      attention: { type: 'string', help: 'sparse (row/column/conv for image-to-image) or dense', default: 'sparse' },
      layers: { type: 'number', help: 'override the preset\'s layer count' },
      hidden: { type: 'number', help: 'override the preset\'s hidden size' },
      heads: { type: 'number', help: 'override the preset\'s head count' },
      dropout: { type: 'number', help: 'override the preset\'s dropout' },
      steps: { type: 'number', help: 'total optimizer steps', default: D.steps },
      'batch-size': { type: 'number', help: 'pairs per micro-batch', default: D.batchSize },
      'grad-accum': { type: 'number', help: 'micro-batches per optimizer step', default: 1 },
      lr: { type: 'number', help: 'peak learning rate (AdamW, warmup + cosine)', default: D.lr },
      'rec-lr': { type: 'number', help: 'learning rate of the jointly trained decoder (end-to-end)', default: D.recLr },
      precision: { type: 'string', help: 'fp32 or bf16 (bf16 matmul/conv, f32 master weights)', default: 'fp32' },
      'w-t2i': { type: 'number', help: 'weight of L_txt2img', default: 1 },
      'w-i2t': { type: 'number', help: 'weight of L_img2txt', default: 1 },
      'w-vqa': { type: 'number', help: 'weight of the generative VQA loss (0: off; used when the data has questions)', default: 1 },
      'w-rec': { type: 'number', help: 'weight of the end-to-end reconstruction loss', default: 1 },
      'rec-loss': { type: 'string', help: 'l2 or l1', default: 'l2' },
      'rec-adversarial': { type: 'boolean', help: 'end-to-end: add the tokenizer\'s adversarial loss (a PatchGAN trained jointly) to the reconstruction' },
      'rec-disc-start': { type: 'number', help: 'step from which the adversarial term enters (the discriminator trains from step 0)', default: 0 },
      'rec-batch': { type: 'number', help: 'pairs of each batch that also train through the decoder (0: all)', default: 0 },
      lang: { type: 'string', help: 'caption language: en, zh or any', default: 'any' },
      'sample-every': { type: 'number', help: 'write RUN/samples/step-N.{png,html} every N steps', default: D.sampleEvery },
      'checkpoint-every': { type: 'number', help: 'checkpoint every N steps', default: D.checkpointEvery },
      'sample-top-k': { type: 'number', help: 'top-k of the image sampler in sample sheets (0: off)', default: 32 },
      seed: { type: 'number', help: 'seed of weights, data order, caption choice, dropout', default: D.seed },
      resume: { type: 'boolean', help: 'require a checkpoint to resume from (without it: resume when RUN has one)' },
      init: { type: 'string', help: 'start a fresh run from a trained generator\'s weights (model or run dir of the same architecture and tokenizers; new optimizers and schedule)' },
      quiet: { type: 'boolean', help: 'no progress bar' },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      const need = (k: string, what: string): string => {
        const v = o[k];
        if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${k} <${what}> is required`);
        return v;
      };
      const data = need('data', 'dir'), tokenizer = need('tokenizer', 'dir'), out = need('out', 'dir');
      const init = o['init'];
      if (init !== undefined && (typeof init !== 'string' || init.trim() === '')) throw new UsageError('--init needs a generator model directory');
      if (typeof init === 'string' && !existsSync(init)) throw new UsageError(`--init: ${init} does not exist`);
      if (!existsSync(tokenizer)) throw new UsageError(`--tokenizer: ${tokenizer} does not exist (train one with \`vilg train-tokenizer\`)`);
      const text = typeof o['text'] === 'string' && o['text'] !== '' ? o['text'] : join(data, 'tokenizer');
      if (!existsSync(text)) throw new UsageError(`no text tokenizer at ${text}: train one with \`vilg data tokenizer --data ${data} --vocab-size N --out ${text}\` or pass --text`);
      const config: Record<string, unknown> = { attention: choice(o, 'attention', ['sparse', 'dense']) };
      const over = { numLayers: int(o, 'layers', 1), hidden: int(o, 'hidden', 1), heads: int(o, 'heads', 1), dropout: nonNegative(o, 'dropout') };
      for (const [k, v] of Object.entries(over)) if (v !== undefined) config[k] = v;
      const opts: import('../../models/vilg/train.js').TrainVilgOptions = {
        data, tokenizer, text, out, ...(typeof o['shards'] === 'string' ? { shards: o['shards'] } : {}), stream: o['stream'] === true,
        preset: String(o['preset']), config,
        mode: choice(o, 'mode', ['end-to-end', 'two-stage'] as const)!, steps: int(o, 'steps', 1)!, batchSize: int(o, 'batch-size', 1)!,
        gradAccum: int(o, 'grad-accum', 1)!, lr: nonNegative(o, 'lr')!, recLr: nonNegative(o, 'rec-lr')!,
        precision: choice(o, 'precision', ['fp32', 'bf16'] as const)!,
        weights: { t2i: nonNegative(o, 'w-t2i')!, i2t: nonNegative(o, 'w-i2t')!, vqa: nonNegative(o, 'w-vqa')!, rec: nonNegative(o, 'w-rec')! },
        recLoss: choice(o, 'rec-loss', ['l2', 'l1'] as const)!, recBatch: int(o, 'rec-batch', 0)!,
        recAdversarial: o['rec-adversarial'] === true, recDiscStart: int(o, 'rec-disc-start', 0)!, lang: choice(o, 'lang', ['en', 'zh', 'any'] as const)!,
        sampleEvery: int(o, 'sample-every', 1)!, checkpointEvery: int(o, 'checkpoint-every', 1)!, sampleTopK: int(o, 'sample-top-k', 0)!,
        ...(typeof init === 'string' ? { init } : {}),
        seed: int(o, 'seed', 0)!, resume: o['resume'] === true ? 'require' : 'auto', showProgress: o['quiet'] !== true,
      };
      await import('../../engine/index.js');
      const { VILG_PRESETS } = await import('../../models/vilg/config.js');
      if (!(opts.preset! in VILG_PRESETS)) throw new UsageError(`--preset: unknown preset '${opts.preset}' (known: ${Object.keys(VILG_PRESETS).join(', ')})`);
      const { trainVilg } = await import('../../models/vilg/train.js');
      const { StopFlag, stopExitCode } = await import('../../train/signals.js');
      const stop = StopFlag.install();
      try {
        const r = await trainVilg({ ...opts, stop });
        process.stdout.write(`${r.stopped ? `stopped (${r.reason ?? 'stop requested'})` : 'finished'} at step ${r.step}; checkpoint ${r.lastCheckpoint ?? '-'}; model ${r.modelDir}\n`);
        return r.stopped ? stopExitCode(r.reason) : 0; // a stopped run is not a finished one: scripts see it
      } finally { stop.dispose(); }
    },
  },
};
