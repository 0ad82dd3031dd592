// Training the ERNIE-ViLG generator on token shards: the joint objective L = w_t2i·L_txt2img + w_i2t·L_img2txt
// (+ w_vqa·L_vqa when the data has questions) on the same pairs every step, and in end-to-end mode the
// reconstruction loss of the VQGAN decoder fed with z_emb (the last layer's hidden states at the image
// positions, projected): its gradients flow back into the transformer and the decoder trains jointly.
// Two-stage mode trains the transformer alone; its images are the frozen decoder's of the sampled codes.
//
//   RUN/config.json                  run settings (resume checks them)
//   RUN/tokens/                      the data set encoded once with both tokenizers (unless --shards is given)
//   RUN/metrics.jsonl                one line per step (+ val losses at every sample sheet)
//   RUN/samples/step-N.{png,html}    images for fixed val prompts, captions for fixed val images
//   RUN/checkpoints/...              src/train/checkpoint.ts (weights, optimizers, step, data order, RNGs)
//   RUN/model/                       everything generation needs: config.json, model.safetensors,
//                                    tokenizer/ (WordPiece), image-tokenizer/ (the VQGAN, with the jointly
//                                    trained decoder in end-to-end mode)
//
// Legend: B batch, T text positions, h×w code grid, n = h·w, H×W pixels, E code dim.

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { add, mul } from '../../engine/ops/elementwise.js';
import { slice } from '../../engine/ops/shape.js';
import { l1Loss, mseLoss } from '../../engine/ops/loss.js';
import { getPrecision, setPrecision, type Precision } from '../../engine/kernels.js';
import { AdamW, isNotMatrix } from '../../engine/optim/adamw.js';
import { clipGradNorm } from '../../engine/optim/clip.js';
import { Generator } from '../../engine/random.js';
import { noGrad, scalar, Tensor } from '../../engine/tensor.js';
import { encodeDataset, shardSources, type ShardSources } from '../../data/encode.js';
import { openDataset, type Dataset, type Lang } from '../../data/format.js';
import { ShardReader, type ReadSample } from '../../data/shards.js';
import { ShardStream } from '../../data/shard-stream.js';
import { loadTokenizer } from '../../data/text/io.js';
import type { WordPieceTokenizer } from '../../data/text/wordpiece.js';
import { type CheckpointParts, initialTrainState, listCheckpointSteps, loadLatestCheckpoint, saveCheckpoint, type JsonValue, type TrainState } from '../../train/checkpoint.js';
import { MetricsLog } from '../../train/metrics-log.js';
import { assertFinite, checkResumeConfig, DataOrder, diffJson, ensureRunConfig, fixedRunConfig, runTrainLoop } from '../../train/run.js';
import type { StopFlag } from '../../train/signals.js';
import { imageGrid, tensorToRgb, writePng } from '../../util/png.js';
import { progress, type Progress } from '../../util/progress.js';
import { lrAt } from '../vqgan/train.js';
import { rgbToTensor } from '../vqgan/evaluate.js';
import { loadVQModel, type VQModel } from '../vqgan/vqmodel.js';
import { NLayerDiscriminator } from '../vqgan/discriminator.js';
import { adversarialLossConfig, generatorAdversarialLoss, vqganDiscriminatorLoss, vqganGeneratorLoss } from '../vqgan/losses.js';
import { imageToTextBatch, textRows, textToImageBatch, vqaBatch, type TextSpecials, type VilgBatch } from './batch.js';
import { vilgConfig, vilgConfigToJson, vilgPreset, type VilgConfig, type VilgConfigInput } from './config.js';
import { endToEndZemb, generateCaptions, sampleImageCodes } from './generate.js';
import { loadVilgModel, saveVilgModel, type TrainMode, type VilgModelBundle } from './io.js';
import { ErnieVilg } from './model.js';

export type { TrainMode } from './io.js';

export interface TrainVilgOptions {
  /** Prepared data set directory (vilg data prepare ...): pixels for end-to-end targets and sample sheets, VQA questions. */
  data: string;
  /** VQGAN image tokenizer directory (config.json + model.safetensors). */
  tokenizer: string;
  /** WordPiece tokenizer (directory, tokenizer.json or vocab.txt); default DATA/tokenizer. */
  text?: string;
  /** Token shards of this data set made with these tokenizers; default RUN/tokens, encoded on first use. */
  shards?: string;
  /**
   * Stream the training samples from the shards, one shard in memory at a time (src/data/shard-stream.ts:
   * shards and samples within a shard shuffled per epoch), instead of holding the whole split: for data
   * sets that do not fit in memory. Another data order than the default's global shuffle.
   */
  stream?: boolean;
  /** Run directory. */
  out: string;
  /** Model preset (config.ts VILG_PRESETS); V, K, grid and E are taken from the tokenizers. */
  preset?: string;
  /** Overrides on top of the preset (unknown keys are errors). */
  config?: VilgConfigInput;
  mode?: TrainMode;
  steps?: number;
  batchSize?: number;
  /** Micro-batches accumulated per optimizer step. */
  gradAccum?: number;
  lr?: number;
  /** Learning rate of the jointly trained decoder (end-to-end mode). */
  recLr?: number;
  weightDecay?: number;
  warmupSteps?: number;
  schedule?: 'constant' | 'cosine';
  gradClip?: number;
  precision?: Precision;
  /** Weights of the joint objective's terms; rec is end-to-end only, vqa only when the data has questions. */
  weights?: Partial<LossWeights>;
  /** Reconstruction loss of end-to-end mode. */
  recLoss?: 'l2' | 'l1';
  /**
   * End-to-end mode: add the image tokenizer's adversarial loss to the reconstruction (a PatchGAN discriminator,
   * fresh, trained jointly from step 0 with hinge loss; its generator term enters from `recDiscStart`, weighted
   * by taming's adaptive λ against the reconstruction loss at the decoder's last layer).
   */
  recAdversarial?: boolean;
  /** Step from which the adversarial term enters the loss (the discriminator trains from step 0). */
  recDiscStart?: number;
  /** Pairs of each micro-batch that also go through the decoder in end-to-end mode (0 = all): the decoder's
   *  convolutions at full resolution cost more than the transformer on small presets. */
  recBatch?: number;
  sampleEvery?: number;
  checkpointEvery?: number;
  /** Fixed val prompts / images in each sample sheet. */
  sampleCount?: number;
  /** Top-k of the image sampler in sample sheets (0 = full distribution). */
  sampleTopK?: number;
  /** Caption language of prompts and trained captions ('any' draws one per pair). */
  lang?: Lang | 'any';
  seed?: number;
  resume?: 'auto' | 'require' | 'never';
  /**
   * Start a fresh run from a trained generator's weights (a model directory, or a run directory with model/):
   * new optimizers and schedule, e.g. a longer or hotter schedule after a finished run. Its architecture must
   * equal this run's (dropout may differ: no weight depends on it), its text vocabulary must equal `text`'s and
   * its image tokenizer's encoder and codebook must equal `tokenizer`'s (the shards' codes come from those).
   * In end-to-end mode its jointly trained decoder becomes the reconstructor. A resumed run ignores it.
   */
  init?: string;
  stop?: StopFlag;
  showProgress?: boolean;
  log?: (message: string) => void;
  /** Test hook after each completed step. */
  onStep?: (step: number, parts: { model: ErnieVilg; reconstructor: VQModel }) => void;
}

export interface LossWeights { readonly t2i: number; readonly i2t: number; readonly vqa: number; readonly rec: number }

export const TRAIN_VILG_DEFAULTS = Object.freeze({
  preset: 'emoji-small', // 6 layers × 256 hidden: trains on two CPU cores
  mode: 'end-to-end' as TrainMode, // the paper's main text→image setting
  steps: 3000, // see RESULTS.md for what this reaches on emoji
  batchSize: 16, // pairs per micro-batch (each gives a t2i and an i2t sequence)
  gradAccum: 1, // no accumulation
  lr: 3e-4, // small transformers from scratch (GPT-2 small used 6e-4 at batch 512)
  recLr: 1e-4, // the decoder starts trained: a gentler rate keeps it from forgetting
  weightDecay: 0.01, // AdamW on matrices only
  warmupSteps: 200, // linear warmup: Adam's first moments are noisy
  schedule: 'cosine' as 'constant' | 'cosine', // down to lr/10 at the last step
  gradClip: 1.0, // global L2 norm over transformer + decoder
  precision: 'fp32' as Precision, // bf16 gave no speedup at hidden 256 on these CPUs (conversion ≈ savings); --precision bf16 for wide models
  weights: Object.freeze({ t2i: 1, i2t: 1, vqa: 1, rec: 1 }) as LossWeights, // the seed: L = L_txt2img + L_img2txt (+ the reconstruction)
  recLoss: 'l2' as 'l2' | 'l1', // the seed's ‖x − x̂‖²
  recBatch: 0, // every pair of the batch
  stream: false, // small data sets: every encoded sample in memory, one global shuffle per epoch
  recAdversarial: false, // the seed's reconstruction loss alone; the issue's option: taming's PatchGAN term
  recDiscStart: 0, // the decoder starts trained: the adversarial term can enter at once (λ balances it)
  sampleEvery: 500, // a sample sheet every N steps
  checkpointEvery: 250, // at most N steps lost to a kill
  sampleCount: 8, // prompts and images per sheet
  sampleTopK: 32, // of 512 codes: sharper images than the full distribution this early in training
  lang: 'any' as Lang | 'any', // both languages of the data set
  seed: 0, // init, data order, caption choice, dropout, sampling
  resume: 'auto' as 'auto' | 'require' | 'never',
});

export interface TrainVilgResult {
  step: number;
  stopped: boolean;
  reason: string | null;
  lastCheckpoint: string | null;
  modelDir: string;
  resumedFrom: number | null;
}

const where = 'trainVilg';
/** Val samples read for the sample sheets (sampleCount) and the val losses (64). */
const VAL_KEEP = 256;

function firstN<T>(it: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  for (const x of it) { if (out.length >= n) break; out.push(x); }
  return out;
}

function int(v: number, name: string, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${where}: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

function num(v: number, name: string, allowZero: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) throw new RangeError(`${where}: ${name} must be a finite number ${allowZero ? '≥' : '>'} 0, got ${String(v)}`);
  return v;
}

function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw new RangeError(`${where}: ${name} must be true or false, got ${String(v)}`);
  return v;
}

function oneOf<T extends string>(v: T, name: string, allowed: readonly T[]): T {
  if (!allowed.includes(v)) throw new RangeError(`${where}: ${name} must be one of ${allowed.join(', ')}, got '${String(v)}'`);
  return v;
}

/** Fills defaults and checks every option. */
export function resolveTrainVilgOptions(o: TrainVilgOptions): Required<Omit<TrainVilgOptions, 'stop' | 'onStep' | 'log' | 'config' | 'shards' | 'text' | 'weights' | 'init'>> & { shards: string; text: string; weights: LossWeights; init: string | null } {
  const d = TRAIN_VILG_DEFAULTS;
  for (const [k, what] of [['data', 'a prepared data set directory'], ['tokenizer', 'the VQGAN image tokenizer directory'], ['out', 'the run directory']] as const) {
    if (typeof o[k] !== 'string' || o[k] === '') throw new RangeError(`${where}: ${k} (${what}) is required`);
  }
  const weights = { ...d.weights, ...(o.weights ?? {}) } as LossWeights;
  for (const k of Object.keys(weights)) if (!(k in d.weights)) throw new RangeError(`${where}: unknown loss weight '${k}' (known: ${Object.keys(d.weights).join(', ')})`);
  for (const [k, v] of Object.entries(weights)) num(v, `weights.${k}`, true);
  if (weights.t2i === 0 && weights.i2t === 0) throw new RangeError(`${where}: weights.t2i and weights.i2t are both 0: nothing to train`);
  if (o.init !== undefined && (typeof o.init !== 'string' || o.init === '')) throw new RangeError(`${where}: init must be a generator model directory, got ${String(o.init)}`);
  if (o.recAdversarial === true && (o.mode ?? d.mode) !== 'end-to-end') throw new RangeError(`${where}: recAdversarial needs mode end-to-end (two-stage mode trains no decoder)`);
  return {
    data: o.data, tokenizer: o.tokenizer, out: o.out,
    text: o.text ?? join(o.data, 'tokenizer'), shards: o.shards ?? join(o.out, 'tokens'),
    preset: o.preset ?? d.preset, mode: oneOf(o.mode ?? d.mode, 'mode', ['end-to-end', 'two-stage']),
    steps: int(o.steps ?? d.steps, 'steps', 1), batchSize: int(o.batchSize ?? d.batchSize, 'batchSize', 1),
    gradAccum: int(o.gradAccum ?? d.gradAccum, 'gradAccum', 1), lr: num(o.lr ?? d.lr, 'lr', false), recLr: num(o.recLr ?? d.recLr, 'recLr', true),
    weightDecay: num(o.weightDecay ?? d.weightDecay, 'weightDecay', true), warmupSteps: int(o.warmupSteps ?? d.warmupSteps, 'warmupSteps', 0),
    schedule: oneOf(o.schedule ?? d.schedule, 'schedule', ['constant', 'cosine']), gradClip: num(o.gradClip ?? d.gradClip, 'gradClip', true),
    precision: oneOf(o.precision ?? d.precision, 'precision', ['fp32', 'bf16']), weights,
    recLoss: oneOf(o.recLoss ?? d.recLoss, 'recLoss', ['l2', 'l1']), recBatch: int(o.recBatch ?? d.recBatch, 'recBatch', 0),
    stream: bool(o.stream ?? d.stream, 'stream'), recAdversarial: bool(o.recAdversarial ?? d.recAdversarial, 'recAdversarial'), recDiscStart: int(o.recDiscStart ?? d.recDiscStart, 'recDiscStart', 0),
    sampleEvery: int(o.sampleEvery ?? d.sampleEvery, 'sampleEvery', 1), checkpointEvery: int(o.checkpointEvery ?? d.checkpointEvery, 'checkpointEvery', 1),
    sampleCount: int(o.sampleCount ?? d.sampleCount, 'sampleCount', 1), sampleTopK: int(o.sampleTopK ?? d.sampleTopK, 'sampleTopK', 0),
    lang: oneOf(o.lang ?? d.lang, 'lang', ['en', 'zh', 'any']), seed: int(o.seed ?? d.seed, 'seed', 0),
    resume: oneOf(o.resume ?? d.resume, 'resume', ['auto', 'require', 'never']), showProgress: o.showProgress ?? false,
    init: o.init ?? null,
  };
}

/** The model config: the preset with V, K, grid and E taken from the tokenizers, then the user's overrides. */
export function configForTokenizers(preset: string, overrides: VilgConfigInput, text: WordPieceTokenizer, vq: VQModel): VilgConfig {
  const f = 2 ** (vq.config.chMult.length - 1), g = vq.config.resolution / f;
  const fromTokenizers: VilgConfigInput = { textVocab: text.vocabSize, numCodes: vq.config.nEmbed, imageGrid: [g, g], embedDim: vq.config.embedDim };
  for (const k of Object.keys(fromTokenizers) as (keyof VilgConfigInput)[]) {
    if (k in overrides && JSON.stringify(overrides[k]) !== JSON.stringify(fromTokenizers[k])) {
      throw new RangeError(`${where}: config.${k} = ${JSON.stringify(overrides[k])} contradicts the tokenizers (${JSON.stringify(fromTokenizers[k])})`);
    }
  }
  return vilgConfig({ ...fromTokenizers, ...overrides }, vilgPreset(preset));
}

/** The names of a VQGAN's weights that fix its codes: what a generator's image tokenizer shares with the shards'. */
const CODE_WEIGHTS = (name: string): boolean => name.startsWith('encoder.') || name.startsWith('quant_conv.') || name === 'quantize.embedding.weight';

/**
 * Loads the generator a fresh run starts from (`init`) and checks that its weights mean the same here: the
 * architecture (dropout aside), the text vocabulary and the image tokenizer's encoder and codebook. Nothing is
 * written before this passes.
 */
async function loadInit(dir: string, config: VilgConfig, text: WordPieceTokenizer, rec: VQModel): Promise<VilgModelBundle> {
  const modelDir = existsSync(join(dir, 'model', 'config.json')) ? join(dir, 'model') : dir; // a run directory works too
  const init = await loadVilgModel(modelDir);
  const arch = (c: VilgConfig): JsonValue => { const j = vilgConfigToJson(c) as Record<string, JsonValue>; delete j['dropout']; return j; };
  const differ = diffJson(arch(init.model.config), arch(config));
  if (differ.length) throw new RangeError(`${where}: init ${modelDir} has another architecture than this run (${differ.map((k) => `${k}: ${JSON.stringify((vilgConfigToJson(init.model.config) as Record<string, unknown>)[k])} vs ${JSON.stringify((vilgConfigToJson(config) as Record<string, unknown>)[k])}`).join(', ')}); pass the preset and overrides it was trained with`);
  if (init.text.vocab.join('\n') !== text.vocab.join('\n')) throw new RangeError(`${where}: init ${modelDir} was trained with another text vocabulary than ${text.vocabSize === init.text.vocabSize ? 'the given one' : `the given one (${init.text.vocabSize} vs ${text.vocabSize} tokens)`}: its text ids would mean other words`);
  const mine = rec.stateDict(), theirs = init.imageTokenizer.stateDict();
  const codeDiff = Object.keys(mine).filter(CODE_WEIGHTS).filter((k) => {
    const a = mine[k]!, b = theirs[k];
    return b === undefined || a.dtype !== b.dtype || a.size !== b.size || a.data.some((v, i) => !Object.is(v, b.data[i]));
  });
  if (codeDiff.length) throw new RangeError(`${where}: init ${modelDir} was trained on another image tokenizer than ${rec.config.nEmbed} codes of the given one (${codeDiff.slice(0, 3).join(', ')}${codeDiff.length > 3 ? ', ...' : ''} differ): its image ids would mean other codes`);
  return init;
}

/** Encodes the data set into RUN/tokens when that has not been done (or checks given shards fit). */
async function ensureShards(o: ReturnType<typeof resolveTrainVilgOptions>, given: boolean, log: (m: string) => void): Promise<ShardReader> {
  if (!existsSync(join(o.shards, 'shards.json'))) {
    if (given) throw new RangeError(`${where}: ${o.shards} holds no token shards (make them with \`vilg data encode\`, or omit --shards to encode into the run)`);
    log(`encoding ${o.data} with ${o.tokenizer} and ${o.text} into ${o.shards} (once per run)`);
    const r = await encodeDataset({ data: o.data, imageTokenizer: o.tokenizer, textTokenizer: o.text, out: o.shards, showProgress: o.showProgress });
    log(`encoded ${r.index.shards.reduce((s, e) => s + e.count, 0)} samples in ${r.seconds.toFixed(1)} s; ${r.codesUsed} codes used`);
  }
  const reader = ShardReader.open(o.shards);
  const meta = reader.index.meta as Record<string, unknown> | undefined;
  const stored = meta?.['fingerprints'] as Partial<ShardSources> | undefined;
  const sources: ShardSources = { imageTokenizer: o.tokenizer, textTokenizer: o.text, data: o.data };
  const now = stored === undefined ? null : shardSources(sources);
  for (const k of ['imageTokenizer', 'textTokenizer', 'data'] as const) {
    if (stored !== undefined && now !== null && typeof stored[k] === 'string') {
      // By content: a copied or moved source still matches; a retrained one at the same path does not.
      if (stored[k] !== now[k]) {
        throw new RangeError(`${where}: ${o.shards} was encoded with a different ${k} than ${resolve(sources[k])} (content differs from ${String(meta?.[k])}); re-encode or pass the matching one`);
      }
    } else if (meta !== undefined && typeof meta[k] === 'string' && meta[k] !== resolve(sources[k])) {
      // Shards from before fingerprints: only the paths can be compared.
      throw new RangeError(`${where}: ${o.shards} was encoded with ${k} ${String(meta[k])}, not ${resolve(sources[k])}; re-encode or pass the matching one`);
    }
  }
  return reader;
}

/** Picks a caption of a sample: the requested language (or a random one), a random variant. */
function pickCaption(s: ReadSample, lang: Lang | 'any', g: Generator): number[] | null {
  const pool = s.captions.filter((c) => lang === 'any' || c.lang === lang);
  return pool.length === 0 ? null : Array.from(pool[g.int(pool.length)]!.ids);
}

/** Trains (or resumes) a generator run; see the top of this file for what lands in `out`. */
export async function trainVilg(options: TrainVilgOptions): Promise<TrainVilgResult> {
  const o = resolveTrainVilgOptions(options);
  const log = options.log ?? ((m: string): void => { process.stderr.write(`${m}\n`); });
  const e2e = o.mode === 'end-to-end';

  // Tokenizers, data, shards.
  const text = loadTokenizer(o.text);
  const specials: TextSpecials = { pad: text.padId, cls: text.clsId, sep: text.sepId };
  const rec = await loadVQModel(o.tokenizer);                         // the reconstructor (decoder trains in end-to-end mode)
  const config = configForTokenizers(o.preset, options.config ?? {}, text, rec);
  const ds: Dataset = openDataset(o.data);
  const r = rec.config.resolution;
  if (ds.card.imageSize.height !== r || ds.card.imageSize.width !== r) {
    throw new RangeError(`${where}: ${o.data} has ${ds.card.imageSize.height}×${ds.card.imageSize.width} images, the image tokenizer takes ${r}×${r}`);
  }
  const init = o.init === null ? null : await loadInit(o.init, config, text, rec); // checked before anything is written
  if (o.resume === 'never' && (await listCheckpointSteps(o.out)).length > 0) throw new RangeError(`${where}: ${o.out} already has checkpoints; resume it or choose a new output directory`);
  await mkdir(o.out, { recursive: true });
  const shards = await ensureShards(o, options.shards !== undefined, log);
  const sc = shards.index.config;
  if (sc.gridHeight !== config.imageGrid[0] || sc.gridWidth !== config.imageGrid[1] || sc.codebookSize !== config.numCodes || sc.textVocabSize !== config.textVocab) {
    throw new RangeError(`${where}: ${o.shards} has a ${sc.gridHeight}×${sc.gridWidth} grid of ${sc.codebookSize} codes and ${sc.textVocabSize} text ids; the tokenizers give ${config.imageGrid.join('×')}, ${config.numCodes}, ${config.textVocab}`);
  }
  // The encoded samples are small (n codes + a few caption ids each): by default held in memory and shuffled
  // by index; with `stream`, read shard by shard (ShardStream). Val: the first VAL_KEEP samples (sheets, val losses).
  const keepSample = (s: ReadSample): boolean => s.captions.some((c) => o.lang === 'any' || c.lang === o.lang);
  const stream = o.stream ? new ShardStream(shards, 'train', o.seed, keepSample) : null;
  const train = stream === null ? [...shards.samples('train')].filter(keepSample) : [];
  const val = firstN(shards.samples('val'), Math.max(VAL_KEEP, o.sampleCount));
  const trainCount = stream?.n ?? train.length;
  if (trainCount < o.batchSize) throw new RangeError(`${where}: ${o.shards} has ${trainCount} training pairs${o.lang === 'any' || stream !== null ? '' : ` with '${o.lang}' captions`}, fewer than the batch size ${o.batchSize}`);
  const hasVqa = o.weights.vqa > 0 && ds.records.some((rr) => rr.split === 'train' && (rr.vqa?.length ?? 0) > 0);

  const runConfig: JsonValue = {
    kind: 'ernie-vilg-generator', preset: o.preset, model: vilgConfigToJson(config) as JsonValue,
    data: resolve(o.data), tokenizer: resolve(o.tokenizer), text: resolve(o.text), shards: resolve(o.shards),
    ...(o.init === null ? {} : { init: resolve(o.init) }), // absent without: older runs resume unchanged
    train: {
      mode: o.mode, steps: o.steps, batchSize: o.batchSize, gradAccum: o.gradAccum, lr: o.lr, recLr: o.recLr, weightDecay: o.weightDecay,
      warmupSteps: o.warmupSteps, schedule: o.schedule, gradClip: o.gradClip, precision: o.precision, weights: { ...o.weights }, recLoss: o.recLoss, recBatch: o.recBatch,
      ...(o.recAdversarial ? { recAdversarial: true, recDiscStart: o.recDiscStart } : {}), // absent when off: older runs resume unchanged
      lang: o.lang, seed: o.seed, ...(o.stream ? { stream: true } : {}), sampleEvery: o.sampleEvery, checkpointEvery: o.checkpointEvery, sampleCount: o.sampleCount, sampleTopK: o.sampleTopK,
    },
  };
  const allowChanged = ['train.steps', 'train.sampleEvery', 'train.checkpointEvery', 'init']; // init: read by a fresh run only
  const changed = await ensureRunConfig(o.out, runConfig, { allowChanged });
  const fixedConfig = fixedRunConfig(runConfig, allowChanged, ['data', 'tokenizer', 'text', 'shards']); // checked on resume

  // Model, optimizers, state.
  const dropoutGen = new Generator(o.seed + 1), dataGen = new Generator(o.seed + 2);
  const model = new ErnieVilg(config, { generator: new Generator(o.seed), dropoutGenerator: dropoutGen }).train();
  const opt = new AdamW(model.parameters(), { lr: o.lr, betas: [0.9, 0.95], weightDecay: o.weightDecay, noDecay: isNotMatrix });
  const recParams = [...rec.decoder.parameters(), ...rec.postQuantConv.parameters()]; // encoder and codebook stay frozen
  const recOpt = new AdamW(recParams, { lr: o.recLr, betas: [0.5, 0.9], weightDecay: 0, noDecay: isNotMatrix }); // taming's betas
  if (e2e) rec.train(); else rec.eval();
  // The optional adversarial term: a fresh PatchGAN (nLayers 2 below 64 px: a 3-layer one would see 2×2 patches of a 32 px image).
  const disc = o.recAdversarial ? new NLayerDiscriminator({ inChannels: 3, ndf: 32, nLayers: r >= 64 ? 3 : 2 }, { generator: new Generator(o.seed + 3) }).train() : null;
  const discParams = disc === null ? [] : disc.parameters();
  const discOpt = disc === null ? null : new AdamW(discParams, { lr: o.recLr, betas: [0.5, 0.9], weightDecay: 0, noDecay: isNotMatrix });
  const adv = adversarialLossConfig({ discStart: o.recDiscStart });
  const order = stream ?? new DataOrder(train.length, o.seed);
  const parts: CheckpointParts = {
    model, optimizer: opt, generators: { dropout: dropoutGen, data: dataGen },
    extraModules: { reconstructor: rec, ...(disc === null ? {} : { discriminator: disc }) },
    extraOptimizers: { ...(e2e ? { reconstructor: recOpt } : {}), ...(discOpt === null ? {} : { discriminator: discOpt }) },
  };
  let state: TrainState = initialTrainState({ precision: o.precision });
  let lastCheckpoint: string | null = null;
  const loaded = o.resume === 'never' ? null : await loadLatestCheckpoint(o.out, parts, { warn: (m) => log(`warning: ${m}`) });
  if (o.resume === 'require' && loaded === null) throw new RangeError(`${where}: --resume was given but ${o.out} has no checkpoint`);
  if (loaded !== null) {
    checkResumeConfig(where, loaded.dir, loaded.state.extra['runConfig'], fixedConfig);
    state = loaded.state;
    lastCheckpoint = loaded.dir;
    order.setState({ epoch: state.epoch, position: state.dataPosition });
    log(`resuming ${o.out} from step ${state.step} (${loaded.dir})${changed.length ? `; changed settings: ${changed.join(', ')}` : ''}${init !== null ? ` (init ${o.init} is not read: the checkpoint has the weights)` : ''}`);
  } else if (init !== null) {
    model.loadStateDict(init.model.stateDict());
    // End-to-end: the decoder that learned to read z_emb goes on training; two-stage keeps the tokenizer's own.
    if (e2e) rec.loadStateDict(init.imageTokenizer.stateDict());
    log(`starting from the weights of ${o.init}${e2e ? ' (transformer and its end-to-end decoder)' : ''}; new optimizers and schedule`);
  }
  const resumedFrom = loaded === null ? null : state.step;

  // Questions and answers, tokenised once per distinct string.
  const textCache = new Map<string, number[]>();
  const ids = (s: string): number[] => {
    let v = textCache.get(s);
    if (v === undefined) { v = text.encode(s, { addSpecialTokens: false }).ids; textCache.set(s, v); }
    return v;
  };

  /** Codes i32 [B, h, w] of a list of samples. */
  const codesOf = (ss: readonly ReadSample[]): Tensor => {
    const n = config.imageGrid[0] * config.imageGrid[1], out = new Int32Array(ss.length * n);
    ss.forEach((s, i) => out.set(s.codes, i * n));
    return new Tensor(out, [ss.length, config.imageGrid[0], config.imageGrid[1]]); // [B, h, w]
  };

  /** Loss terms of one micro-batch and its token count; backward of (their weighted sum / gradAccum) runs here. */
  const microStep = (batch: ReadSample[], step: number): { terms: Record<string, number>; tokens: number } => {
    const caps = batch.map((s) => pickCaption(s, o.lang, dataGen)!);                  // ids without specials
    const textT = textRows(caps, specials, config.maxTextLen);                          // [B, T]
    const codes = codesOf(batch);                                                       // [B, h, w]
    const T = textT.shape[1]!, n = config.imageGrid[0] * config.imageGrid[1];
    // A direction with weight 0 is not run at all (the single-direction ablations), except the t2i pass that
    // end-to-end reconstruction reads its hidden states from.
    const needT2i = o.weights.t2i > 0 || (e2e && o.weights.rec > 0), needI2t = o.weights.i2t > 0;
    let tokens = batch.length * ((needT2i ? T + 1 + n : 0) + (needI2t ? n + T : 0));  // t2i + i2t sequences
    let loss: Tensor, t2iHidden: Tensor | null = null, discPair: { x: Tensor; xRec: Tensor } | null = null;
    const terms: Record<string, number> = {};
    if (needT2i && needI2t) {
      const j = model.jointLoss({ text: textT, codes }, specials.pad, { t2i: o.weights.t2i, i2t: o.weights.i2t, vqa: 0 });
      loss = j.loss;                                                                    // []
      t2iHidden = j.t2i.hidden;                                                         // [B, S, D]
      terms['t2i'] = j.t2i.loss.item(); terms['i2t'] = j.i2t.loss.item();
    } else if (needT2i) {
      const out = model.forward(textToImageBatch(config, textT, codes, specials));
      loss = mul(out.loss, o.weights.t2i);                                              // []
      t2iHidden = out.hidden;                                                           // [B, S, D]
      terms['t2i'] = out.loss.item();
    } else {
      const out = model.forward(imageToTextBatch(config, codes, textT, specials));
      loss = mul(out.loss, o.weights.i2t);                                              // []
      terms['i2t'] = out.loss.item();
    }
    if (hasVqa) {
      // A random question of each pair that has one (in the caption language when possible).
      const q: number[][] = [], a: number[][] = [], qs: ReadSample[] = [];
      for (const s of batch) {
        const items = ds.records[s.index]!.vqa ?? [];
        if (items.length === 0) continue;
        const it = items[dataGen.int(items.length)]!;
        const lang = (o.lang !== 'any' && it.question[o.lang] !== undefined ? o.lang : (Object.keys(it.question)[dataGen.int(Object.keys(it.question).length)] as Lang));
        const qs1 = it.question[lang], as1 = it.answer[lang];
        if (qs1 === undefined || as1 === undefined) continue;
        const qi = ids(qs1), ai = ids(as1);
        if (qi.length === 0 || ai.length === 0) continue;
        q.push(qi); a.push(ai); qs.push(s);
      }
      if (qs.length > 0) {
        const vb = vqaBatchOf(qs, q, a);
        tokens += vb.tokens.size;
        const out = model.forward(vb);
        loss = add(loss, mul(out.loss, o.weights.vqa));                                  // []
        terms['vqa'] = out.loss.item();
      }
    }
    if (e2e && o.weights.rec > 0) {
      const k = o.recBatch > 0 ? Math.min(o.recBatch, batch.length) : batch.length;
      let zEmb = model.zEmb(textToImageBatch(config, textT, codes, specials), t2iHidden!); // [B, h, w, E] from the same pass
      if (k < batch.length) zEmb = slice(zEmb, 0, 0, k);                                 // [k, h, w, E]
      const xRec = rec.decode(zEmb);                                                    // [k, H, W, 3]
      const x = rgbToTensor(batch.slice(0, k).map((s) => ds.image(s.index)), r, r);     // [k, H, W, 3] in [−1, 1]
      const recL = o.recLoss === 'l2' ? mseLoss(xRec, x) : l1Loss(xRec, x);              // []
      let recTerm = recL;                                                               // []
      if (disc !== null) {
        for (const p of discParams) p.requiresGrad = false; // the generator's backward reaches x̂, not D's weights
        const g = generatorAdversarialLoss(disc.forward(xRec));                          // [] −mean D(x̂)
        const gl = vqganGeneratorLoss({ rec: recL, q: scalar(0), g, lastLayer: rec.decoder.convOut.weight, step, config: adv });
        recTerm = gl.loss;                                                              // [] rec + λ·g (from recDiscStart)
        terms['g'] = gl.g; terms['d_weight'] = gl.dWeight;
        discPair = { x, xRec };
      }
      loss = add(loss, mul(recTerm, o.weights.rec));                                    // []
      terms['rec'] = recL.item();
    }
    terms['loss'] = loss.item();
    for (const [k, v] of Object.entries(terms)) assertFinite(k, v, state.step + 1, lastCheckpoint);
    (o.gradAccum > 1 ? mul(loss, 1 / o.gradAccum) : loss).backward();
    if (disc !== null && discPair !== null) {
      // The discriminator on x and sg[x̂], from step 0; its grads accumulate over micro-batches like the rest.
      for (const p of discParams) p.requiresGrad = true;
      const dl = vqganDiscriminatorLoss(disc.forward(discPair.x), disc.forward(discPair.xRec.detach()), adv); // logits [k, h', w', 1]
      terms['d_loss'] = dl.loss.item();
      assertFinite('d_loss', terms['d_loss'], step + 1, lastCheckpoint);
      (o.gradAccum > 1 ? mul(dl.loss, 1 / o.gradAccum) : dl.loss).backward();
    }
    return { terms, tokens };
  };
  const vqaBatchOf = (ss: ReadSample[], q: number[][], a: number[][]): VilgBatch =>
    vqaBatch(config, codesOf(ss), textRows(q, specials, config.maxTextLen), textRows(a, specials, config.maxTextLen), specials);

  const allParams = e2e ? [...opt.params, ...recParams] : [...opt.params];
  const t0 = Date.now(), wall0 = state.wallTimeS;
  let tokensDone = 0;
  const runStep = (step: number): Record<string, number> => {
    opt.lr = lrAt(step, o.lr, o.warmupSteps, o.steps, o.schedule);
    recOpt.lr = lrAt(step, o.recLr, o.warmupSteps, o.steps, o.schedule);
    opt.zeroGrad(); recOpt.zeroGrad(); discOpt?.zeroGrad();
    if (discOpt !== null) discOpt.lr = lrAt(step, o.recLr, o.warmupSteps, o.steps, o.schedule);
    const sums: Record<string, number> = {};
    for (let m = 0; m < o.gradAccum; m++) {
      const batch = stream !== null ? stream.next(o.batchSize) : Array.from((order as DataOrder).next(o.batchSize), (i) => train[i]!);
      const { terms, tokens } = microStep(batch, step);
      for (const [k, v] of Object.entries(terms)) sums[k] = (sums[k] ?? 0) + v / o.gradAccum;
      tokensDone += tokens;
    }
    const gradNorm = clipGradNorm(allParams, o.gradClip > 0 ? o.gradClip : Number.MAX_VALUE);
    assertFinite('grad_norm', gradNorm, step + 1, lastCheckpoint);
    opt.step();
    if (e2e) recOpt.step();
    discOpt?.step();
    return { ...sums, grad_norm: gradNorm, lr: opt.lr };
  };

  // Fixed val pairs for the sample sheets and the val losses.
  const sheetGen = (): Generator => new Generator(o.seed + 1000); // the same draws at every sheet: comparable across steps
  const valPairs = (val.length > 0 ? val : train.length > 0 ? train : firstN(shards.samples('train'), VAL_KEEP)).filter((s) => s.captions.length > 0);
  const sheet = valPairs.slice(0, o.sampleCount);
  const valBatch = valPairs.slice(0, Math.min(64, valPairs.length));
  const mainCaption = (s: ReadSample): number[] => {
    const c = s.captions.filter((x) => x.variant === 0 && (o.lang === 'any' || x.lang === o.lang));
    return Array.from((c.length ? c[0]! : s.captions[0]!).ids);
  };

  const writeSheet = (): { valTerms: Record<string, number>; gen: Uint8Array[]; truthRec: Uint8Array[]; caps: number[][] } => {
    const was = model.training, recWas = rec.training;
    model.eval(); rec.eval();
    try {
      return noGrad(() => {
        // Val losses on a fixed batch (main captions).
        const vt = textRows(valBatch.map(mainCaption), specials, config.maxTextLen);   // [Bv, T]
        const vj = model.jointLoss({ text: vt, codes: codesOf(valBatch) }, specials.pad, { vqa: 0 });
        const valTerms = { val_t2i: vj.t2i.loss.item(), val_i2t: vj.i2t.loss.item() };
        // Images for the prompts, captions for the images.
        const prompts = textRows(sheet.map(mainCaption), specials, config.maxTextLen);  // [n, T]
        const codes = sampleImageCodes(model, prompts, specials, { topK: Math.min(o.sampleTopK, config.numCodes), generator: sheetGen() }); // [n, h, w]
        const gen = e2e ? rec.decode(endToEndZemb(model, prompts, codes, specials)) : rec.decodeCodes(codes); // [n, H, W, 3]
        const truthCodes = codesOf(sheet);                                             // [n, h, w]
        const truthRec = rec.decodeCodes(truthCodes);                                  // [n, H, W, 3]
        const caps = generateCaptions(model, truthCodes, specials, {});
        return { valTerms, gen: tensorToRgb(gen), truthRec: tensorToRgb(truthRec), caps };
      });
    } finally {
      model.train(was); rec.train(recWas);
    }
  };

  const saveSheet = async (step: number): Promise<Record<string, number>> => {
    const s = writeSheet();
    const originals = sheet.map((p) => ds.image(p.index));
    const grid = imageGrid([...originals, ...s.truthRec, ...s.gen], { cols: sheet.length, height: r, width: r }); // rows: original, tokenizer recon, generated
    const name = `step-${String(step).padStart(7, '0')}`;
    await mkdir(join(o.out, 'samples'), { recursive: true });
    await writePng(join(o.out, 'samples', `${name}.png`), grid.rgb, grid.height, grid.width);
    const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
    const rows = sheet.map((p, i) => `<tr><td>${i + 1}</td><td>${esc(text.decode(mainCaption(p)))}</td><td>${esc(text.decode(s.caps[i]!))}</td></tr>`).join('\n');
    await writeFile(join(o.out, 'samples', `${name}.html`), `<!doctype html><meta charset="utf-8"><title>${esc(o.out)} step ${step}</title>
<h1>step ${step} (${o.mode}, ${config.attention} attention)</h1>
<p>Rows: val image; its tokenizer reconstruction; the image generated from its caption (top-${o.sampleTopK}, fixed seed).</p>
<img src="${name}.png" style="image-rendering: pixelated; width: ${grid.width * 2}px">
<h2>Captions generated for the val images (greedy)</h2>
<table border="1" cellpadding="4"><tr><th>#</th><th>prompt / reference caption</th><th>generated caption</th></tr>
${rows}
</table>
`);
    return s.valTerms;
  };

  const metrics = MetricsLog.open(join(o.out, 'metrics.jsonl'), { resumeStep: resumedFrom });
  const bar: Progress = progress('train', Math.max(0, o.steps - state.step), { silent: !o.showProgress });
  const previousPrecision = getPrecision();
  setPrecision(o.precision);
  const afterStep = async (stepsDone: number, losses: Record<string, number>): Promise<void> => {
    const elapsed = (Date.now() - t0) / 1000;
    const tps = tokensDone / Math.max(elapsed, 1e-9);
    const peak = process.resourceUsage().maxRSS / 1024; // MB: the process's peak resident memory so far
    const values: Record<string, number> = { ...losses, tokens_per_s: tps, peak_rss_mb: peak };
    if (stepsDone % o.sampleEvery === 0 || stepsDone === o.steps) Object.assign(values, await saveSheet(stepsDone));
    metrics.append(stepsDone, values);
    const f = (k: string): string => (losses[k] === undefined ? '' : ` ${k} ${losses[k]!.toFixed(3)}`);
    bar.tick(1, `step ${stepsDone}${f('loss')}${f('t2i')}${f('i2t')}${f('vqa')}${f('rec')} ${tps.toFixed(0)} tok/s peak ${peak.toFixed(0)} MB`);
    options.onStep?.(stepsDone, { model, reconstructor: rec });
  };
  const save = async (stepsDone: number): Promise<string> => {
    const os = order.getState();
    state = {
      ...state, step: stepsDone, epoch: os.epoch, dataPosition: os.position, precision: o.precision, wallTimeS: wall0 + (Date.now() - t0) / 1000,
      extra: { ...state.extra, runConfig: fixedConfig },
    };
    lastCheckpoint = await saveCheckpoint(o.out, { ...parts, state });
    return lastCheckpoint;
  };

  try {
    const res = await runTrainLoop({ startStep: state.step, totalSteps: o.steps, checkpointEvery: o.checkpointEvery, lastCheckpoint, stop: options.stop, runStep, afterStep, saveCheckpoint: save });
    bar.done();
    const modelDir = join(o.out, 'model');
    await saveVilgModel(modelDir, model, { text: o.text, reconstructor: rec, mode: o.mode, specials });
    return { step: res.step, stopped: res.stopped, reason: res.reason, lastCheckpoint: res.lastCheckpoint, modelDir, resumedFrom };
  } finally {
    metrics.close();
    setPrecision(previousPrecision);
  }
}
