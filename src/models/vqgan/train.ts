// Training the VQGAN image tokenizer: the seed's VQVAE loss ‖x − x̂‖² + codebook + β·commitment, plus
// the PatchGAN adversarial term from `discStart` (the discriminator itself trains from step 0), two
// AdamW optimizers as taming's, exact resume from the last checkpoint (weights, both optimizers, step,
// data order, every RNG, codebook-health state), atomic checkpoints, JSONL metrics, preview grids of
// originals vs reconstructions, and a stop with a clear message when a loss term turns NaN/Inf.
// `init` starts a fresh run from a trained tokenizer's weights (fine-tuning, or a longer schedule).
//
//   RUN/config.json                   model / discriminator / loss / training settings (resume checks them)
//   RUN/metrics.jsonl                 one line per step
//   RUN/samples/step-0000500.png      top row originals (fixed val images), bottom row reconstructions
//   RUN/checkpoints/...               see src/train/checkpoint.ts
//   RUN/model/{config.json, model.safetensors}   the final tokenizer (saveVQModel), for tokenize/reconstruct
//
// Legend: B batch, H×W pixels, h×w code grid, K codebook size.

import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { mseLoss } from '../../engine/ops/loss.js';
import { getPrecision, setPrecision, type Precision } from '../../engine/kernels.js';
import { AdamW, isNotMatrix } from '../../engine/optim/adamw.js';
import { clipGradNorm } from '../../engine/optim/clip.js';
import { warmupCosine } from '../../engine/optim/schedule.js';
import { Generator } from '../../engine/random.js';
import { openDataset, type Dataset, type SampleRecord } from '../../data/format.js';
import { meanPsnr } from '../../eval/image-metrics.js';
import { type CheckpointParts, initialTrainState, listCheckpointSteps, loadLatestCheckpoint, saveCheckpoint, type JsonValue, type TrainState } from '../../train/checkpoint.js';
import { MetricsLog } from '../../train/metrics-log.js';
import { assertFinite, checkResumeConfig, DataOrder, diffJson, ensureRunConfig, fixedRunConfig, runTrainLoop } from '../../train/run.js';
import type { StopFlag } from '../../train/signals.js';
import { imageGrid, tensorToRgb, writePng } from '../../util/png.js';
import { progress, type Progress } from '../../util/progress.js';
import { CodebookUsage } from './codebook.js';
import { configToJson, vqganConfig, vqganPreset, type VQGANConfigInput } from './config.js';
import { DISCRIMINATOR_PRESETS, NLayerDiscriminator, discriminatorConfig, type DiscriminatorConfig } from './discriminator.js';
import { inEvalMode, rgbToTensor } from './evaluate.js';
import { adversarialLossConfig, generatorAdversarialLoss, vqganDiscriminatorLoss, vqganGeneratorLoss, type AdversarialLossConfig } from './losses.js';
import type { QuantizerHealthState } from './quantizer.js';
import { loadVQModel, saveVQModel, VQModel } from './vqmodel.js';

export interface TrainTokenizerOptions {
  /** Prepared data set directory (src/data/format.ts); trains on `train`, previews `val`. */
  data: string;
  /** Run directory. */
  out: string;
  /** Model preset name (config.ts VQGAN_PRESETS). */
  preset?: string;
  /** Overrides on top of the preset (unknown keys are errors). */
  config?: VQGANConfigInput;
  /** Discriminator preset name or config. */
  discriminator?: string | Partial<DiscriminatorConfig>;
  /** false: no discriminator at all, the seed's VQVAE loss alone (best PSNR/SSIM per CPU second). */
  adversarial?: boolean;
  /** Adversarial-loss overrides (discStart is set from `discStart` below when given). */
  adversarialLoss?: Partial<AdversarialLossConfig>;
  steps?: number;
  batchSize?: number;
  lr?: number;
  discLr?: number;
  precision?: Precision;
  discStart?: number;
  sampleEvery?: number;
  checkpointEvery?: number;
  seed?: number;
  flip?: boolean;
  warmupSteps?: number;
  schedule?: 'constant' | 'cosine';
  gradClip?: number;
  weightDecay?: number;
  /** 'auto': resume when RUN has a checkpoint; 'require': it must; 'never': RUN must have none. */
  resume?: 'auto' | 'require' | 'never';
  /**
   * A trained tokenizer (model directory) whose weights start a fresh run: fine-tuning, or a longer schedule
   * after a finished one, with a new optimizer, warmup and schedule. Its config must equal the run's
   * (preset + overrides). Only a fresh run reads it; a resumed run continues from its checkpoint.
   */
  init?: string;
  /** Fixed preview images in the sample grid. */
  sampleCount?: number;
  /** Steps per window of the running codebook usage. */
  usageWindow?: number;
  /** Polled after every step (Ctrl-C: finish the step, checkpoint, return). */
  stop?: StopFlag;
  /** Show the progress bar on stderr. */
  showProgress?: boolean;
  /** Messages (resume notices); default stderr. */
  log?: (message: string) => void;
  /** Test hook after each completed step (e.g. to corrupt a weight and check the NaN guard). */
  onStep?: (step: number, parts: { model: VQModel; discriminator: NLayerDiscriminator | null }) => void;
}

export const TRAIN_TOKENIZER_DEFAULTS = Object.freeze({
  preset: 'emoji-64', // the small tokenizer the generator issue builds on
  discriminator: 'small', // 64 px → 6×6 logits, ~0.7M parameters
  adversarial: true, // taming's VQGAN: PatchGAN from discStart; false = the seed's VQVAE loss alone
  steps: 20000, // emoji-64 reaches its targets well before this on 2 cores (see the report)
  batchSize: 8, // fits any machine; images/s barely grows beyond it on 2 cores
  lr: 2e-4, // small VQGANs trained from scratch; taming's 4.5e-6·batch is tuned for fine-scale ImageNet runs
  precision: 'bf16' as Precision, // bf16 matmul/conv with f32 master weights; --precision fp32 if it hurts
  discStart: 5000, // once reconstructions are decent (losses.ts DEFAULT_ADVERSARIAL_CONFIG)
  sampleEvery: 500, // a preview grid every N steps
  checkpointEvery: 500, // at most N steps lost to a kill
  seed: 0, // data order, flips, dropout
  flip: false, // emoji and text-like art are not mirror-symmetric
  warmupSteps: 200, // linear warmup from ~0: Adam's first moments are noisy
  schedule: 'cosine' as 'constant' | 'cosine', // decays to 10% of lr at the last step
  gradClip: 1.0, // global L2 norm; bounds the occasional spike from a codebook restart (0 = measure only)
  weightDecay: 0, // taming uses plain Adam
  resume: 'auto' as 'auto' | 'require' | 'never',
  sampleCount: 8, // one row of originals, one of reconstructions
  usageWindow: 100, // steps; 100 · batch · h·w codes are enough to see a 512-code book's spread
});

export interface TrainTokenizerResult {
  step: number;
  stopped: boolean;
  reason: string | null;
  lastCheckpoint: string | null;
  /** RUN/model, written at the end (also after a stop). */
  modelDir: string;
  /** The step the run resumed from (null for a fresh run). */
  resumedFrom: number | null;
}

function positiveInt(v: number, name: string, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`trainTokenizer: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

function positiveNumber(v: number, name: string, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) throw new RangeError(`trainTokenizer: ${name} must be a finite number ${allowZero ? '≥' : '>'} 0, got ${String(v)}`);
  return v;
}

/** Fills defaults and checks every option. */
export function resolveTrainOptions(o: TrainTokenizerOptions): Required<Omit<TrainTokenizerOptions, 'stop' | 'onStep' | 'log' | 'config' | 'adversarialLoss' | 'discriminator' | 'init'>> & { discriminator: DiscriminatorConfig; init: string | null } {
  const d = TRAIN_TOKENIZER_DEFAULTS;
  if (typeof o.data !== 'string' || o.data === '') throw new RangeError('trainTokenizer: data (a prepared data set directory) is required');
  if (typeof o.out !== 'string' || o.out === '') throw new RangeError('trainTokenizer: out (the run directory) is required');
  const disc = o.discriminator ?? d.discriminator;
  let discCfg: DiscriminatorConfig;
  if (typeof disc === 'string') {
    const p = DISCRIMINATOR_PRESETS[disc];
    if (p === undefined) throw new RangeError(`trainTokenizer: unknown discriminator preset '${disc}' (known: ${Object.keys(DISCRIMINATOR_PRESETS).join(', ')})`);
    discCfg = p;
  } else discCfg = discriminatorConfig(disc);
  const precision = o.precision ?? d.precision;
  if (precision !== 'bf16' && precision !== 'fp32') throw new RangeError(`trainTokenizer: precision must be 'bf16' or 'fp32', got '${String(precision)}'`);
  const schedule = o.schedule ?? d.schedule;
  if (schedule !== 'constant' && schedule !== 'cosine') throw new RangeError(`trainTokenizer: schedule must be 'constant' or 'cosine', got '${String(schedule)}'`);
  const resume = o.resume ?? d.resume;
  if (!['auto', 'require', 'never'].includes(resume)) throw new RangeError(`trainTokenizer: resume must be 'auto', 'require' or 'never', got '${String(resume)}'`);
  const lr = positiveNumber(o.lr ?? d.lr, 'lr');
  if (o.init !== undefined && (typeof o.init !== 'string' || o.init === '')) throw new RangeError(`trainTokenizer: init must be a model directory, got ${String(o.init)}`);
  return {
    data: o.data, out: o.out, preset: o.preset ?? d.preset, discriminator: discCfg, adversarial: o.adversarial ?? d.adversarial,
    steps: positiveInt(o.steps ?? d.steps, 'steps'), batchSize: positiveInt(o.batchSize ?? d.batchSize, 'batchSize'),
    lr, discLr: positiveNumber(o.discLr ?? lr, 'discLr'), precision,
    discStart: positiveInt(o.discStart ?? o.adversarialLoss?.discStart ?? d.discStart, 'discStart', 0),
    sampleEvery: positiveInt(o.sampleEvery ?? d.sampleEvery, 'sampleEvery'),
    checkpointEvery: positiveInt(o.checkpointEvery ?? d.checkpointEvery, 'checkpointEvery'),
    seed: positiveInt(o.seed ?? d.seed, 'seed', 0), flip: o.flip ?? d.flip,
    warmupSteps: positiveInt(o.warmupSteps ?? d.warmupSteps, 'warmupSteps', 0), schedule,
    gradClip: positiveNumber(o.gradClip ?? d.gradClip, 'gradClip', true), weightDecay: positiveNumber(o.weightDecay ?? d.weightDecay, 'weightDecay', true),
    resume, init: o.init ?? null, sampleCount: positiveInt(o.sampleCount ?? d.sampleCount, 'sampleCount'),
    usageWindow: positiveInt(o.usageWindow ?? d.usageWindow, 'usageWindow'), showProgress: o.showProgress ?? false,
  };
}

/** lr at a 0-based step: linear warmup over (0, lr], then constant or cosine down to lr/10 at `steps`. */
export function lrAt(step: number, lr: number, warmup: number, steps: number, schedule: 'constant' | 'cosine'): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  if (schedule === 'constant' || steps <= warmup) return lr;
  return warmupCosine({ peakLr: lr, warmupSteps: warmup, totalSteps: steps, minLr: lr / 10 })(step);
}

/** The fixed preview images: the first `n` of val (or of train when there is no val split). */
function previewRecords(ds: Dataset, n: number): SampleRecord[] {
  const val = ds.split('val');
  return (val.length > 0 ? val : ds.split('train')).slice(0, n);
}

/** Trains (or resumes) a VQGAN tokenizer run; see the top of this file for what lands in `out`. */
export async function trainTokenizer(options: TrainTokenizerOptions): Promise<TrainTokenizerResult> {
  const o = resolveTrainOptions(options);
  const log = options.log ?? ((m: string): void => { process.stderr.write(`${m}\n`); });
  const config = vqganConfig(options.config ?? {}, vqganPreset(o.preset));
  if (typeof o.adversarial !== 'boolean') throw new RangeError(`trainTokenizer: adversarial must be true or false, got ${String(o.adversarial)}`);
  const adv = adversarialLossConfig({ ...options.adversarialLoss, discStart: o.discStart });
  const ds = openDataset(o.data);
  const r = config.resolution;
  if (ds.card.imageSize.height !== r || ds.card.imageSize.width !== r) {
    throw new RangeError(`trainTokenizer: ${o.data} has ${ds.card.imageSize.height}×${ds.card.imageSize.width} images, preset '${o.preset}' takes ${r}×${r} (prepare the data with --size ${r})`);
  }
  const train = ds.split('train');
  if (train.length < o.batchSize) throw new RangeError(`trainTokenizer: ${o.data} has ${train.length} training images, fewer than the batch size ${o.batchSize}`);
  const preview = previewRecords(ds, o.sampleCount);
  // Checked before anything is written: a mismatched init must not leave a run directory behind.
  const initModel = o.init === null ? null : await loadVQModel(o.init);
  if (initModel !== null) {
    const differ = diffJson(configToJson(config) as JsonValue, configToJson(initModel.config) as JsonValue);
    if (differ.length > 0) {
      throw new RangeError(`trainTokenizer: ${o.init} has another model config than preset '${o.preset}' with the given overrides (${differ.join(', ')} differ); pass the preset and options it was trained with`);
    }
  }

  if (o.resume === 'never' && (await listCheckpointSteps(o.out)).length > 0) {
    throw new RangeError(`trainTokenizer: ${o.out} already has checkpoints; resume it or choose a new output directory`);
  }
  // Resume checks that the model, loss and data settings are the ones the run started with.
  const runConfig: JsonValue = {
    kind: 'vqgan-tokenizer', preset: o.preset, model: configToJson(config) as JsonValue, init: o.init === null ? null : resolve(o.init),
    discriminator: o.adversarial ? { ...o.discriminator } : null, adversarial: o.adversarial ? { ...adv } : null,
    train: {
      data: o.data, steps: o.steps, batchSize: o.batchSize, lr: o.lr, discLr: o.discLr, precision: o.precision, seed: o.seed, flip: o.flip,
      warmupSteps: o.warmupSteps, schedule: o.schedule, gradClip: o.gradClip, weightDecay: o.weightDecay,
      sampleEvery: o.sampleEvery, checkpointEvery: o.checkpointEvery, sampleCount: o.sampleCount, usageWindow: o.usageWindow,
    },
  };
  const allowChanged = ['train.steps', 'train.sampleEvery', 'train.checkpointEvery', 'train.data', 'init']; // init: read by a fresh run only
  const changed = await ensureRunConfig(o.out, runConfig, { allowChanged });
  const fixedConfig = fixedRunConfig(runConfig, allowChanged); // checked on resume

  const dropoutGen = new Generator(o.seed + 1);
  const model = new VQModel(config, { generator: new Generator(o.seed), dropoutGenerator: dropoutGen }).train();
  const disc = o.adversarial ? new NLayerDiscriminator(o.discriminator, { generator: new Generator(o.seed + 2) }).train() : null;
  const noDecay = isNotMatrix;
  const optG = new AdamW(model.parameters(), { lr: o.lr, betas: [0.5, 0.9], weightDecay: o.weightDecay, noDecay }); // taming's betas
  const optD = disc === null ? null : new AdamW(disc.parameters(), { lr: o.discLr, betas: [0.5, 0.9], weightDecay: o.weightDecay, noDecay });
  const flipGen = new Generator(o.seed + 3);
  const order = new DataOrder(train.length, o.seed);
  const usage = new CodebookUsage(config.nEmbed); // running window
  const parts: CheckpointParts = {
    model, optimizer: optG, generators: { flip: flipGen, dropout: dropoutGen },
    extraModules: disc === null ? {} : { discriminator: disc }, extraOptimizers: optD === null ? {} : { discriminator: optD },
  };

  let state: TrainState = initialTrainState({ precision: o.precision });
  let lastCheckpoint: string | null = null;
  const loaded = o.resume === 'never' ? null : await loadLatestCheckpoint(o.out, parts, { warn: (m) => log(`warning: ${m}`) });
  if (o.resume === 'require' && loaded === null) throw new RangeError(`trainTokenizer: --resume was given but ${o.out} has no checkpoint`);
  if (loaded !== null) {
    checkResumeConfig('trainTokenizer', loaded.dir, loaded.state.extra['runConfig'], fixedConfig);
    state = loaded.state;
    lastCheckpoint = loaded.dir;
    order.setState({ epoch: state.epoch, position: state.dataPosition });
    model.quantize.loadHealthState(state.extra['quantizer'] as unknown as QuantizerHealthState);
    const counts = state.extra['usage'] as number[] | undefined;
    if (Array.isArray(counts) && counts.length === config.nEmbed) usage.counts.set(counts);
    log(`resuming ${o.out} from step ${state.step} (${loaded.dir})${changed.length ? `; changed settings: ${changed.join(', ')}` : ''}${initModel !== null ? ` (init ${o.init} is not read: the checkpoint has the weights)` : ''}`);
  } else if (initModel !== null) {
    model.loadStateDict(initModel.stateDict()); // also marks the codebook initialised: no k-means over trained codes
    log(`starting from the weights of ${o.init} (new optimizer and schedule)`);
  }
  const resumedFrom = loaded === null ? null : state.step;
  const metrics = MetricsLog.open(join(o.out, 'metrics.jsonl'), { resumeStep: resumedFrom });
  const bar: Progress = progress('train-tokenizer', Math.max(0, o.steps - state.step), { silent: !o.showProgress });
  const lastLayer = model.decoder.convOut.weight;
  const previousPrecision = getPrecision();
  setPrecision(o.precision);
  const t0 = Date.now(), wall0 = state.wallTimeS;
  let imagesDone = 0;

  const runStep = (step: number): Record<string, number> => {
    const idx = order.next(o.batchSize);
    const imgs = Array.from(idx, (i) => ds.image(train[i]!.index));
    const flips = imgs.map(() => o.flip && flipGen.uniform() < 0.5);
    const x = rgbToTensor(imgs, r, r, flips);                             // [B, H, W, 3] in [−1, 1]
    optG.lr = lrAt(step, o.lr, o.warmupSteps, o.steps, o.schedule);
    if (optD !== null) optD.lr = lrAt(step, o.discLr, o.warmupSteps, o.steps, o.schedule);

    // Generator (encoder, codebook, decoder).
    const f = model.forward(x);                                           // xRec [B, H, W, 3], codes [B, h, w]
    const rec = mseLoss(f.xRec, x);                                       // [] the seed's ‖x − x̂‖²
    const g = disc !== null && step >= adv.discStart ? generatorAdversarialLoss(disc.forward(f.xRec)) : null; // [] −mean D(x̂)
    const gl = vqganGeneratorLoss({ rec, q: f.qLoss, g, lastLayer, step, config: adv });
    const terms: Record<string, number> = {
      loss: gl.total, rec: gl.rec, q: gl.q, codebook: f.codebookLoss.item(), commit: f.commitmentLoss.item(), g: gl.g, d_weight: gl.dWeight,
    };
    // Checked before any weight changes, so even the in-memory model stays the last good one.
    for (const [k, v] of Object.entries(terms)) assertFinite(k, v, step + 1, lastCheckpoint);
    optG.zeroGrad();
    gl.loss.backward();
    const gradNorm = clipGradNorm(optG.params, o.gradClip > 0 ? o.gradClip : Number.MAX_VALUE);
    assertFinite('grad_norm', gradNorm, step + 1, lastCheckpoint);
    optG.step();

    optG.zeroGrad();
    usage.add(f.codes);
    imagesDone += o.batchSize;
    if (disc === null || optD === null) return { ...terms, grad_norm: gradNorm, lr: optG.lr };

    // Discriminator, from step 0, on x and sg[x̂].
    optD.zeroGrad(); // the generator's backward through D(x̂) filled D's grads
    const dl = vqganDiscriminatorLoss(disc.forward(x), disc.forward(f.xRec.detach()), adv); // logits [B, h', w', 1]
    const dLoss = dl.loss.item();
    assertFinite('d_loss', dLoss, step + 1, lastCheckpoint);
    dl.loss.backward();
    optD.step();
    optD.zeroGrad();
    return { ...terms, grad_norm: gradNorm, d_loss: dLoss, logits_real: dl.logitsReal, logits_fake: dl.logitsFake, lr: optG.lr };
  };

  const writePreview = async (step: number): Promise<number> => {
    const origs = preview.map((rec) => ds.image(rec.index));
    const recs = inEvalMode(model, () => tensorToRgb(model.forward(rgbToTensor(origs, r, r)).xRec)); // [n, H, W, 3]
    const grid = imageGrid([...origs, ...recs], { cols: origs.length, height: r, width: r });
    await mkdir(join(o.out, 'samples'), { recursive: true });
    await writePng(join(o.out, 'samples', `step-${String(step).padStart(7, '0')}.png`), grid.rgb, grid.height, grid.width);
    return meanPsnr(origs, recs, { cap: 100 });
  };

  const afterStep = async (stepsDone: number, losses: Record<string, number>): Promise<void> => {
    const s = usage.summary();
    const elapsed = (Date.now() - t0) / 1000;
    const ips = imagesDone / Math.max(elapsed, 1e-9);
    const peak = process.resourceUsage().maxRSS / 1024; // MB: the process's peak resident memory so far
    const values: Record<string, number> = { ...losses, usage_used: s.used, usage_fraction: s.fraction, perplexity: s.perplexity, images_per_s: ips, peak_rss_mb: peak };
    if (stepsDone % o.sampleEvery === 0 || stepsDone === o.steps) values['preview_psnr'] = await writePreview(stepsDone);
    metrics.append(stepsDone, values);
    bar.tick(1, `step ${stepsDone} loss ${losses['loss']!.toFixed(4)} rec ${losses['rec']!.toFixed(4)} q ${losses['q']!.toFixed(4)} ` +
      (disc === null ? '' : `g ${losses['g']!.toFixed(3)} d ${losses['d_loss']!.toFixed(3)} `) + `codes ${s.used}/${config.nEmbed} ppl ${s.perplexity.toFixed(0)} ${ips.toFixed(1)} img/s peak ${peak.toFixed(0)} MB`);
    if (stepsDone % o.usageWindow === 0) usage.reset();
    options.onStep?.(stepsDone, { model, discriminator: disc });
  };

  const save = async (stepsDone: number): Promise<string> => {
    const os = order.getState();
    state = {
      ...state, step: stepsDone, epoch: os.epoch, dataPosition: os.position, precision: o.precision,
      wallTimeS: wall0 + (Date.now() - t0) / 1000,
      extra: { quantizer: model.quantize.healthState() as unknown as JsonValue, usage: Array.from(usage.counts), runConfig: fixedConfig },
    };
    lastCheckpoint = await saveCheckpoint(o.out, { ...parts, state });
    return lastCheckpoint;
  };

  try {
    const res = await runTrainLoop({
      startStep: state.step, totalSteps: o.steps, checkpointEvery: o.checkpointEvery, lastCheckpoint, stop: options.stop,
      runStep, afterStep, saveCheckpoint: save,
    });
    bar.done();
    const modelDir = join(o.out, 'model');
    await saveVQModel(modelDir, model);
    return { step: res.step, stopped: res.stopped, reason: res.reason, lastCheckpoint: res.lastCheckpoint, modelDir, resumedFrom };
  } finally {
    metrics.close();
    setPrecision(previousPrecision);
  }
}
