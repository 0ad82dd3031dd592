// The in-domain feature networks (`shapes`, `emoji`) and the distances computed in their feature space:
// FD-shapes / FD-emoji (a Fréchet distance) and KID-shapes / KID-emoji (a kernel inception distance) — the
// project's honest stand-ins for FID/KID, which need Inception weights we do not have offline. They are never
// reported as FID: each network is small, trained here on its data set's TRAIN split only, frozen and
// versioned (models/feat-shapes-32, models/feat-emoji-64).
//
// Network (FeatureNet): NHWC S×S RGB in [−1, 1] → conv 3→32 (s1) → conv 32→32 (s2) → conv 32→64 (s2)
// → conv 64→64 (s2), each 3×3 with GroupNorm(8) and GELU → flatten (S/8)²×64 → Linear → GELU: the
// 64-d feature. The flatten (rather than a global average pool) keeps where things are in the feature,
// so an image with the right objects in the wrong place is far from the real ones. Linear heads on the
// feature predict labels of the domain (LabelScheme, src/eval/feature-labels.ts). `shapes`: the scene's
// attributes (record.attrs, src/data/shapes/scene.ts), objects in reading order
// (a single object; the left one of a side-by-side pair, the upper one of a stacked pair):
//   layout (one object / pair side by side / pair stacked), shape1, colour1, size1, shape2, colour2, size2
//   (the second object of a pair; ignored on one-object scenes) and position (the 3×3 cell of a single
//   object; ignored on pairs). `emoji`: CLDR group and subgroup (classes: those of the train split), art
//   style, and skin tone (none, one of the five, or mixed). The loss is the sum of the heads' mean
//   cross-entropies. An emoji test split holds base emoji never seen in training (the split is by base
//   emoji), so no head names the emoji itself: recognition is retrieval in the feature space (evaluate.ts).
// After training, one fixed scalar (config.featureScale) scales the features so that the train images'
// have mean square 1 per dimension: KID's cubic kernel then sees values of order 1, as with Inception's.
//
// Distances, in float64 over features [n, d]:
//   FD  = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½), Σ the unbiased covariances; matrix square roots
//         by a cyclic Jacobi symmetric eigendecomposition (negative eigenvalues from round-off clipped to 0).
//   KID = unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ (Bińkowski et al. 2018),
//         averaged over `subsets` random subsets of `subsetSize` rows of each set (drawn without
//         replacement by a seeded Generator); the std is the population std over the subsets.
// Legend: N images, S = 32 pixels per side, C channels, d feature dimension, n rows of a feature set.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset, SampleRecord, Split } from '../data/format.js';
import { loadSafetensors, saveSafetensors } from '../engine/io/safetensors.js';
import { add, gelu } from '../engine/ops/elementwise.js';
import { crossEntropy } from '../engine/ops/loss.js';
import { reshape } from '../engine/ops/shape.js';
import { AdamW, isNotMatrix } from '../engine/optim/adamw.js';
import { Generator } from '../engine/random.js';
import { Tensor, noGrad } from '../engine/tensor.js';
import { Conv2d, GroupNorm, Linear } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { writeFileAtomic } from '../util/atomic.js';
import { EMOJI_HEAD_NAMES, FEATURE_HEADS, IGNORE, domainOf, labelScheme, type FeatureDomain, type LabelScheme } from './feature-labels.js';

// ---------------------------------------------------------------- the network

export interface FeatureNetConfig {
  format: 'vilg-feature-net';
  version: 1;
  /** What it was trained on (absent in configs written before emoji: shapes). */
  domain?: FeatureDomain;
  /** Pixels per side of the (square RGB) input. */
  imageSize: number;
  /** Output channels of the four convolutions (strides 1, 2, 2, 2). */
  channels: [number, number, number, number];
  /** GroupNorm groups after every convolution. */
  groups: number;
  /** Feature dimension d (the output of the fully connected layer). */
  featureDim: number;
  /** Classes per head: FEATURE_HEADS for shapes, EMOJI_HEAD_NAMES for emoji. */
  heads: { name: string; classes: string[] }[];
  /**
   * Features are multiplied by this fixed scale, set after training so that the train images' features
   * have mean square 1 per dimension (E‖f‖²/d = 1): KID's kernel (xᵀy/d + 1)³ then sees values of order 1,
   * as with Inception features. One scalar for all dimensions, so FD only changes by its square.
   */
  featureScale: number;
}

export const DEFAULT_FEATURE_CONFIG: Readonly<FeatureNetConfig> = Object.freeze({
  format: 'vilg-feature-net', version: 1,
  domain: 'shapes' as FeatureDomain,
  imageSize: 32, // the shapes data set's default size
  channels: [32, 32, 64, 64] as [number, number, number, number], // 32² → 16² → 8² → 4²: ~0.12 M parameters, a few ms per batch
  groups: 8,
  featureDim: 64, // the feature vector: small enough for a well-conditioned 64×64 covariance from a few hundred images
  heads: FEATURE_HEADS.map((h) => ({ name: h.name, classes: [...h.classes] })),
  featureScale: 1, // set by calibrateFeatureScale after training
});

export class FeatureNet extends Module {
  readonly convs: ModuleList<Conv2d>;
  readonly norms: ModuleList<GroupNorm>;
  readonly fc: Linear;
  readonly heads: ModuleList<Linear>;
  constructor(readonly config: FeatureNetConfig = { ...DEFAULT_FEATURE_CONFIG }, seed = 0) {
    super();
    checkConfig(config);
    const g = new Generator(seed);
    const ch = config.channels, ins = [3, ...ch.slice(0, 3)];
    this.convs = this.addModule('convs', new ModuleList(ch.map((c, i) => new Conv2d(ins[i]!, c, 3, { stride: i === 0 ? 1 : 2, padding: 1, generator: g }))));
    this.norms = this.addModule('norms', new ModuleList(ch.map((c) => new GroupNorm(config.groups, c))));
    const side = config.imageSize / 8;
    this.fc = this.addModule('fc', new Linear(side * side * ch[3], config.featureDim, { generator: g }));
    this.heads = this.addModule('heads', new ModuleList(config.heads.map((h) => new Linear(config.featureDim, h.classes.length, { generator: g }))));
  }

  /** Images [N, S, S, 3] in [−1, 1] → features [N, d]. */
  features(x: Tensor): Tensor {
    const S = this.config.imageSize;
    if (x.rank !== 4 || x.shape[1] !== S || x.shape[2] !== S || x.shape[3] !== 3) throw new RangeError(`FeatureNet: expected images [N, ${S}, ${S}, 3], got [${x.shape.join(', ')}]`);
    let h = x; // [N, S, S, 3]
    for (let i = 0; i < 4; i++) h = gelu(this.norms.at(i).forward(this.convs.at(i).forward(h))); // [N, S/2^i', S/2^i', C_i]
    const flat = reshape(h, [x.shape[0]!, h.size / x.shape[0]!]); // [N, (S/8)²·C_3]
    return gelu(this.fc.forward(flat)); // [N, d]
  }

  /** Features [N, d] → logits per head, each [N, classes]. */
  logits(f: Tensor): Tensor[] { return this.config.heads.map((_, i) => this.heads.at(i).forward(f)); }
}

function checkConfig(c: FeatureNetConfig): void {
  if (c === null || typeof c !== 'object' || c.format !== 'vilg-feature-net' || c.version !== 1) throw new RangeError(`FeatureNet: config format must be 'vilg-feature-net' version 1, got ${String(c?.format)} v${String(c?.version)}`);
  if (!Number.isInteger(c.imageSize) || c.imageSize < 8 || c.imageSize % 8 !== 0) throw new RangeError(`FeatureNet: imageSize must be a multiple of 8, got ${String(c.imageSize)}`);
  if (!Array.isArray(c.channels) || c.channels.length !== 4 || !c.channels.every((v) => Number.isInteger(v) && v > 0 && v % c.groups === 0)) throw new RangeError(`FeatureNet: channels must be four positive multiples of groups (${String(c.groups)}), got ${JSON.stringify(c.channels)}`);
  if (typeof c.featureScale !== 'number' || !(c.featureScale > 0) || !Number.isFinite(c.featureScale)) throw new RangeError(`FeatureNet: featureScale must be a positive finite number, got ${String(c.featureScale)}`);
  if (!Number.isInteger(c.featureDim) || c.featureDim < 2) throw new RangeError(`FeatureNet: featureDim must be an integer ≥ 2, got ${String(c.featureDim)}`);
  const domain = c.domain ?? 'shapes';
  if (domain !== 'shapes' && domain !== 'emoji') throw new RangeError(`FeatureNet: domain must be shapes or emoji, got ${String(domain)}`);
  const want = domain === 'shapes' ? FEATURE_HEADS : EMOJI_HEAD_NAMES.map((name) => ({ name, classes: null }));
  if (!Array.isArray(c.heads) || c.heads.length !== want.length || c.heads.some((h, i) => h.name !== want[i]!.name || !Array.isArray(h.classes) || h.classes.length === 0
    || (want[i]!.classes !== null && h.classes.join('|') !== want[i]!.classes!.join('|')))) {
    throw new RangeError(`FeatureNet: ${domain} heads must be ${want.map((h) => `${h.name}${h.classes === null ? '' : ` (${h.classes.length})`}`).join(', ')} — this network was trained on other labels`);
  }
}

/** RGB uint8 images (each [S, S, 3]) → f32 [N, S, S, 3] in [−1, 1]. */
export function imagesToTensor(rgbs: readonly Uint8Array[], size: number): Tensor {
  const per = size * size * 3, out = new Float32Array(rgbs.length * per);
  rgbs.forEach((rgb, i) => {
    if (!(rgb instanceof Uint8Array) || rgb.length !== per) throw new RangeError(`feature net: image ${i} has ${rgb?.length} bytes, expected ${size}×${size}×3 = ${per}`);
    for (let k = 0; k < per; k++) out[i * per + k] = rgb[k]! / 127.5 - 1;
  });
  return new Tensor(out, [rgbs.length, size, size, 3]); // [N, S, S, 3]
}

/** Summed mean cross-entropy of the heads over the rows where each applies; labels i32 [N, heads]. */
function headLoss(logits: readonly Tensor[], labels: Int32Array, n: number): Tensor | null {
  let total: Tensor | null = null;
  const H = logits.length;
  logits.forEach((l, h) => {
    const t = new Int32Array(n);
    let any = false;
    for (let i = 0; i < n; i++) { t[i] = labels[i * H + h]!; if (t[i] !== IGNORE) any = true; }
    if (!any) return; // no row of the batch has this head's attribute: a mean over nothing would be NaN
    const ce = crossEntropy(l, new Tensor(t, [n]), { ignoreIndex: IGNORE }); // []
    total = total === null ? ce : add(total, ce); // []
  });
  return total;
}

// ---------------------------------------------------------------- training

export interface TrainFeatureOptions {
  /** Passes over the training records (default 14). */
  epochs?: number;
  /** Seeds the initialisation and the shuffling (default 0). */
  seed?: number;
  /** Images per step (default 64). */
  batchSize?: number;
  /** Peak AdamW learning rate, cosine-decayed to 5% of it (default 3e-3). */
  lr?: number;
  /** Train on the first `limit` training records only (default: all; tests use a few). */
  limit?: number;
  /** Called after every step (progress bars). */
  onStep?: (step: number, steps: number, loss: number) => void;
}

export const TRAIN_FEATURE_DEFAULTS = Object.freeze({
  epochs: 14, // the committed network's setting: ~10 minutes on one busy core; shapes reach ~95% test accuracy (8 epochs: ~88%)
  seed: 0,
  batchSize: 64,
  lr: 3e-3, // AdamW, weight decay 0.01 on matrices only
});

export interface FeatureTrainResult {
  net: FeatureNet;
  /** Mean loss per epoch. */
  epochLoss: number[];
  /** Loss of every step (the first and last tell whether it learnt). */
  stepLoss: number[];
  samples: number;
  steps: number;
  seconds: number;
}

function intOpt(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`trainFeatureNet: ${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

/** Records of a split that the scheme labels, with their labels i32 [n, heads]. */
function labelled(ds: Dataset, split: Split, scheme: LabelScheme): { recs: SampleRecord[]; labels: Int32Array } {
  const recs: SampleRecord[] = [], rows: Int32Array[] = [];
  for (const r of ds.split(split)) {
    const l = scheme.labels(r);
    if (l !== null) { recs.push(r); rows.push(l); }
  }
  const H = scheme.heads.length, labels = new Int32Array(recs.length * H);
  rows.forEach((l, i) => labels.set(l, i * H));
  return { recs, labels };
}

/** The label scheme a trained network was built with. */
export function schemeOf(net: FeatureNet): LabelScheme {
  return labelScheme(net.config.domain ?? 'shapes', { heads: net.config.heads });
}

/** Trains a FeatureNet on the TRAIN split of a prepared shapes or emoji data set; deterministic given the seed. */
export function trainFeatureNet(ds: Dataset, options: TrainFeatureOptions = {}): FeatureTrainResult {
  const epochs = intOpt('epochs', options.epochs ?? TRAIN_FEATURE_DEFAULTS.epochs, 1, 1000);
  const seed = intOpt('seed', options.seed ?? TRAIN_FEATURE_DEFAULTS.seed, 0, 2 ** 31 - 1);
  const batchSize = intOpt('batchSize', options.batchSize ?? TRAIN_FEATURE_DEFAULTS.batchSize, 1, 4096);
  const lr = options.lr ?? TRAIN_FEATURE_DEFAULTS.lr;
  if (typeof lr !== 'number' || !(lr > 0 && lr < 1)) throw new RangeError(`trainFeatureNet: lr must be in (0, 1), got ${String(lr)}`);
  const S = ds.card.imageSize.height;
  if (S !== ds.card.imageSize.width || S % 8 !== 0) throw new RangeError(`trainFeatureNet: needs square images with a side divisible by 8, ${ds.dir} has ${ds.card.imageSize.height}×${ds.card.imageSize.width}`);
  const trainRecs = ds.split('train'), domain = domainOf(trainRecs);
  if (domain === null) throw new RangeError(`trainFeatureNet: the train split of ${ds.dir} has neither shapes scenes nor emoji (record.attrs from \`vilg data prepare shapes|emoji\`)`);
  const scheme = labelScheme(domain, { records: trainRecs });
  let { recs, labels } = labelled(ds, 'train', scheme);
  if (options.limit !== undefined) {
    const k = intOpt('limit', options.limit, 1, 1e9);
    recs = recs.slice(0, k);
    labels = labels.slice(0, recs.length * scheme.heads.length);
  }
  const t0 = performance.now();
  const net = new FeatureNet({ ...DEFAULT_FEATURE_CONFIG, domain, imageSize: S, heads: scheme.heads }, seed);
  net.train();
  const opt = new AdamW(net.parameters(), { lr, weightDecay: 0.01, noDecay: isNotMatrix });
  const gen = new Generator(seed ^ 0x5eed);
  const perEpoch = Math.ceil(recs.length / batchSize), steps = epochs * perEpoch, H = scheme.heads.length;
  const epochLoss: number[] = [], stepLoss: number[] = [];
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    const order = Array.from({ length: recs.length }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) { const j = gen.int(i + 1); [order[i], order[j]] = [order[j]!, order[i]!]; }
    let sum = 0;
    for (let b = 0; b < recs.length; b += batchSize) {
      const idx = order.slice(b, b + batchSize), n = idx.length;
      const x = imagesToTensor(idx.map((i) => ds.image(recs[i]!.index)), S); // [n, S, S, 3]
      const y = new Int32Array(n * H);
      idx.forEach((i, k) => y.set(labels.subarray(i * H, (i + 1) * H), k * H));
      opt.lr = lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * step / steps)));
      const loss = headLoss(net.logits(net.features(x)), y, n)!; // []
      loss.backward();
      opt.step();
      opt.zeroGrad();
      const v = loss.item();
      if (!Number.isFinite(v)) throw new Error(`trainFeatureNet: loss is ${v} at step ${step}`);
      stepLoss.push(v);
      sum += v;
      options.onStep?.(++step, steps, v);
    }
    epochLoss.push(sum / perEpoch);
  }
  net.eval();
  calibrateFeatureScale(net, ds, Math.min(2000, options.limit ?? 2000));
  return { net, epochLoss, stepLoss, samples: recs.length, steps, seconds: (performance.now() - t0) / 1000 };
}

export type HeadAccuracy = Record<string, { correct: number; total: number; accuracy: number }>;

/** Accuracy of every head (and 'all') on the records of a split the network's scheme labels (over those where the head applies). */
export function headAccuracy(net: FeatureNet, ds: Dataset, split: Split, limit = Infinity): HeadAccuracy {
  const scheme = schemeOf(net), { recs, labels } = labelled(ds, split, scheme);
  const n = Math.min(recs.length, limit);
  return accuracyOn(net, recs.slice(0, n).map((r) => ds.image(r.index)), labels.subarray(0, n * scheme.heads.length));
}

/** Accuracy per head of the network on images [S, S, 3] with labels i32 [n, heads] (sceneLabels rows for shapes). */
export function accuracyOn(net: FeatureNet, rgbs: readonly Uint8Array[], labels: Int32Array): HeadAccuracy {
  const heads = net.config.heads, H = heads.length, out: HeadAccuracy = {};
  for (const h of heads) out[h.name] = { correct: 0, total: 0, accuracy: 0 };
  out['all'] = { correct: 0, total: 0, accuracy: 0 };
  const S = net.config.imageSize;
  for (let b = 0; b < rgbs.length; b += 128) {
    const part = rgbs.slice(b, b + 128);
    const logits = noGrad(() => { net.eval(); return net.logits(net.features(imagesToTensor(part, S))); }); // heads × [n, classes]
    part.forEach((_, i) => {
      let allOk = true;
      heads.forEach((h, k) => {
        const want = labels[(b + i) * H + k]!;
        if (want === IGNORE) return;
        const l = logits[k]!, c = l.shape[1]!, d = l.data as Float32Array;
        let arg = 0;
        for (let j = 1; j < c; j++) if (d[i * c + j]! > d[i * c + arg]!) arg = j;
        out[h.name]!.total++;
        if (arg === want) out[h.name]!.correct++; else allOk = false;
      });
      out['all']!.total++;
      if (allOk) out['all']!.correct++;
    });
  }
  for (const v of Object.values(out)) v.accuracy = v.total > 0 ? v.correct / v.total : 0;
  return out;
}

// ---------------------------------------------------------------- saving and loading

/** Writes DIR/model.safetensors and DIR/config.json (the config plus `extra`, e.g. training facts). */
export async function saveFeatureNet(net: FeatureNet, dir: string, extra: Record<string, unknown> = {}): Promise<void> {
  if (typeof dir !== 'string' || dir === '') throw new RangeError('saveFeatureNet: dir must be a directory path');
  await mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, 'model.safetensors'), net.stateDict(), { format: 'vilg-feature-net' });
  await writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify({ ...net.config, ...extra }, null, 2)}\n`);
}

/** Loads a FeatureNet saved by saveFeatureNet; the config and every tensor name and shape are checked. */
export async function loadFeatureNet(dir: string): Promise<FeatureNet> {
  if (typeof dir !== 'string' || dir === '') throw new RangeError('loadFeatureNet: dir must be a directory path');
  for (const f of ['config.json', 'model.safetensors']) if (!existsSync(join(dir, f))) throw new RangeError(`loadFeatureNet: ${dir} has no ${f} (train one with \`vilg train-features\`)`);
  let raw: FeatureNetConfig & Record<string, unknown>;
  try { raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as FeatureNetConfig & Record<string, unknown>; } catch (e) { throw new RangeError(`loadFeatureNet: ${dir}/config.json is not valid JSON: ${(e as Error).message}`); }
  const config: FeatureNetConfig = { format: raw.format, version: raw.version, domain: raw.domain ?? 'shapes', imageSize: raw.imageSize, channels: raw.channels, groups: raw.groups, featureDim: raw.featureDim, heads: raw.heads, featureScale: raw.featureScale };
  const net = new FeatureNet(config, 0);
  const file = await loadSafetensors(join(dir, 'model.safetensors'));
  try { net.loadStateDict(file.tensors); } catch (e) { throw new RangeError(`loadFeatureNet: ${dir}/model.safetensors: ${(e as Error).message}`); }
  return net.eval();
}

// ---------------------------------------------------------------- features

/** Rows of features: n × d, row-major float64. */
export interface FeatureSet { n: number; d: number; data: Float64Array }

/** The network's features of RGB images [S, S, 3] (batched, no gradients), times config.featureScale, as float64 rows. */
export function extractFeatures(net: FeatureNet, rgbs: readonly Uint8Array[], batchSize = 128): FeatureSet {
  if (rgbs.length === 0) throw new RangeError('extractFeatures: no images');
  const d = net.config.featureDim, out = new Float64Array(rgbs.length * d), scale = net.config.featureScale;
  const was = net.training;
  net.eval();
  try {
    for (let b = 0; b < rgbs.length; b += batchSize) {
      const f = noGrad(() => net.features(imagesToTensor(rgbs.slice(b, b + batchSize), net.config.imageSize))); // [n, d]
      const fd = f.data as Float32Array;
      for (let i = 0; i < fd.length; i++) out[b * d + i] = fd[i]! * scale;
    }
  } finally { net.train(was); }
  return { n: rgbs.length, d, data: out };
}

/**
 * Sets net.config.featureScale so that the features of the first `limit` train images have mean square 1
 * per dimension; returns it. trainFeatureNet calls it at the end of training.
 */
export function calibrateFeatureScale(net: FeatureNet, ds: Dataset, limit = 2000): number {
  const scheme = schemeOf(net), recs = ds.split('train').filter((r) => scheme.labels(r) !== null).slice(0, limit);
  if (recs.length === 0) throw new RangeError(`calibrateFeatureScale: the train split of ${ds.dir} has no ${scheme.domain} records`);
  net.config.featureScale = 1;
  const f = extractFeatures(net, recs.map((r) => ds.image(r.index)));
  let ms = 0;
  for (let i = 0; i < f.data.length; i++) ms += f.data[i]! * f.data[i]!;
  ms /= f.data.length;
  if (!(ms > 0)) throw new RangeError('calibrateFeatureScale: the features are all zero');
  net.config.featureScale = Math.fround(1 / Math.sqrt(ms));
  return net.config.featureScale;
}

/** Checks a feature set: n ≥ min rows of d finite values. */
function checkSet(name: string, s: FeatureSet, min: number): void {
  if (s === null || typeof s !== 'object' || !(s.data instanceof Float64Array) || !Number.isInteger(s.n) || !Number.isInteger(s.d) || s.d < 1) {
    throw new TypeError(`${name}: expected a feature set { n, d, data: Float64Array }`);
  }
  if (s.data.length !== s.n * s.d) throw new RangeError(`${name}: data holds ${s.data.length} values, not n·d = ${s.n}·${s.d}`);
  if (s.n < min) throw new RangeError(`${name}: needs at least ${min} rows of features, got ${s.n}`);
  for (let i = 0; i < s.data.length; i++) if (!Number.isFinite(s.data[i]!)) throw new RangeError(`${name}: feature ${i % s.d} of row ${Math.floor(i / s.d)} is ${s.data[i]}`);
}

function sameDim(op: string, a: FeatureSet, b: FeatureSet): void {
  if (a.d !== b.d) throw new RangeError(`${op}: the feature sets have different dimensions (${a.d} and ${b.d})`);
}

/** Mean [d] and unbiased covariance [d, d] of a feature set. */
export function meanAndCovariance(s: FeatureSet): { mean: Float64Array; cov: Float64Array } {
  checkSet('meanAndCovariance', s, 2);
  const { n, d, data } = s, mean = new Float64Array(d), cov = new Float64Array(d * d), c = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += data[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) c[j] = data[i * d + j]! - mean[j]!;
    for (let j = 0; j < d; j++) { const cj = c[j]!; if (cj === 0) continue; for (let k = j; k < d; k++) cov[j * d + k]! += cj * c[k]!; }
  }
  for (let j = 0; j < d; j++) for (let k = j; k < d; k++) { const v = cov[j * d + k]! / (n - 1); cov[j * d + k] = v; cov[k * d + j] = v; }
  return { mean, cov };
}

/**
 * Eigendecomposition of a symmetric matrix A [d, d] (row-major) by cyclic Jacobi rotations:
 * A = V diag(values) Vᵀ, the eigenvectors in V's columns. Converges quadratically; ~10 sweeps at d = 64.
 */
export function symmetricEigen(A: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  if (!Number.isInteger(d) || d < 1 || A.length !== d * d) throw new RangeError(`symmetricEigen: expected a ${d}×${d} matrix, got ${A.length} values`);
  const a = Float64Array.from(A), v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale += a[i]! * a[i]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q]! * a[p * d + q]!;
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (apq === 0) continue;
        const app = a[p * d + p]!, aqq = a[q * d + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < d; k++) { // A ← A·J (columns p, q)
          const akp = a[k * d + p]!, akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq; a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) { // A ← Jᵀ·A (rows p, q)
          const apk = a[p * d + k]!, aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk; a[q * d + k] = s * apk + c * aqk;
        }
        a[p * d + q] = 0; a[q * d + p] = 0;
        for (let k = 0; k < d; k++) { // V ← V·J
          const vkp = v[k * d + p]!, vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq; v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = a[i * d + i]!;
  return { values, vectors: v };
}

/** √A of a symmetric positive semi-definite matrix [d, d] (eigenvalues below 0 from round-off → 0). */
function sqrtPsd(A: Float64Array, d: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(A, d), out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const r = Math.sqrt(Math.max(0, values[k]!));
    if (r === 0) continue;
    for (let i = 0; i < d; i++) { const vi = V[i * d + k]! * r; if (vi === 0) continue; for (let j = 0; j < d; j++) out[i * d + j]! += vi * V[j * d + k]!; }
  }
  return out;
}

function matmulSq(A: Float64Array, B: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) { const aik = A[i * d + k]!; if (aik === 0) continue; for (let j = 0; j < d; j++) out[i * d + j]! += aik * B[k * d + j]!; }
  return out;
}

/** Fréchet distance of the Gaussians fitted to two feature sets (see the header); ≥ 0, symmetric. */
export function frechetDistance(a: FeatureSet, b: FeatureSet): number {
  checkSet('frechetDistance (first set)', a, 2);
  checkSet('frechetDistance (second set)', b, 2);
  sameDim('frechetDistance', a, b);
  const d = a.d, A = meanAndCovariance(a), B = meanAndCovariance(b);
  let mu = 0, tr = 0;
  for (let j = 0; j < d; j++) { mu += (A.mean[j]! - B.mean[j]!) ** 2; tr += A.cov[j * d + j]! + B.cov[j * d + j]!; }
  const r = sqrtPsd(A.cov, d);
  const m = matmulSq(matmulSq(r, B.cov, d), r, d);
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) { const s = (m[i * d + j]! + m[j * d + i]!) / 2; m[i * d + j] = s; m[j * d + i] = s; }
  let trSqrt = 0;
  for (const l of symmetricEigen(m, d).values) trSqrt += Math.sqrt(Math.max(0, l));
  return Math.max(0, mu + tr - 2 * trSqrt);
}

export interface KidOptions {
  /** Random subsets averaged over (default 10). */
  subsets?: number;
  /** Rows drawn from each set per subset (default min(n1, n2, 100)). */
  subsetSize?: number;
  /** Seeds the subset draws (default 0). */
  seed?: number;
}

export const KID_DEFAULTS = Object.freeze({ subsets: 10, subsetSize: 100, seed: 0 }); // as Bińkowski et al. / torch-fidelity, with smaller subsets

export interface KidResult { mean: number; std: number; subsets: number; subsetSize: number }

/** KID: unbiased MMD² with the cubic polynomial kernel over random subsets (see the header). */
export function kernelInceptionDistance(a: FeatureSet, b: FeatureSet, options: KidOptions = {}): KidResult {
  checkSet('kernelInceptionDistance (first set)', a, 2);
  checkSet('kernelInceptionDistance (second set)', b, 2);
  sameDim('kernelInceptionDistance', a, b);
  const subsets = options.subsets ?? KID_DEFAULTS.subsets, seed = options.seed ?? KID_DEFAULTS.seed;
  const m = options.subsetSize ?? Math.min(a.n, b.n, KID_DEFAULTS.subsetSize);
  if (!Number.isInteger(subsets) || subsets < 1) throw new RangeError(`kernelInceptionDistance: subsets must be a positive integer, got ${String(subsets)}`);
  if (!Number.isInteger(m) || m < 2 || m > Math.min(a.n, b.n)) throw new RangeError(`kernelInceptionDistance: subsetSize must be an integer in [2, ${Math.min(a.n, b.n)}] (the smaller set's rows), got ${String(m)}`);
  if (!Number.isInteger(seed)) throw new RangeError(`kernelInceptionDistance: seed must be an integer, got ${String(seed)}`);
  const d = a.d, g = new Generator(seed);
  const draw = (n: number): Int32Array => { // m distinct rows of n (partial Fisher–Yates)
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < m; i++) { const j = i + g.int(n - i); const t = idx[i]!; idx[i] = idx[j]!; idx[j] = t; }
    return idx.slice(0, m);
  };
  const k = (x: Float64Array, i: number, y: Float64Array, j: number): number => {
    let s = 0;
    for (let c = 0; c < d; c++) s += x[i * d + c]! * y[j * d + c]!;
    return (s / d + 1) ** 3;
  };
  const values: number[] = [];
  for (let s = 0; s < subsets; s++) {
    const ia = draw(a.n), ib = draw(b.n);
    let xx = 0, yy = 0, xy = 0;
    for (let i = 0; i < m; i++) {
      for (let j = i + 1; j < m; j++) { xx += 2 * k(a.data, ia[i]!, a.data, ia[j]!); yy += 2 * k(b.data, ib[i]!, b.data, ib[j]!); }
      for (let j = 0; j < m; j++) xy += k(a.data, ia[i]!, b.data, ib[j]!);
    }
    values.push(xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m));
  }
  const mean = values.reduce((x, v) => x + v, 0) / subsets;
  const std = Math.sqrt(values.reduce((x, v) => x + (v - mean) ** 2, 0) / subsets);
  return { mean, std, subsets, subsetSize: m };
}
