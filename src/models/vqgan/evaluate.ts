// Using a trained VQGAN tokenizer on images: uint8 RGB ↔ model tensors, tokenize, reconstruct, and
// evaluation over a whole data-set split (PSNR, SSIM on the saved-image scale, codebook usage and
// perplexity over the whole pass, not per batch).
// Legend: N images, H×W pixels, h×w code grid, K codebook size.

import { Tensor, noGrad } from '../../engine/tensor.js';
import { meanPsnr, meanSsim } from '../../eval/image-metrics.js';
import type { Dataset, Split } from '../../data/format.js';
import { COMPARISON_FIELDS, CheckerTally, checkScene, compareScene, type ComparisonField } from '../../data/shapes/checker.js';
import { sceneAttrsOf } from '../../data/shapes/prepare.js';
import { tensorToRgb } from '../../util/png.js';
import { CodebookUsage } from './codebook.js';
import { tokenGrid } from './config.js';
import type { VQModel } from './vqmodel.js';

export const EVALUATE_DEFAULTS = Object.freeze({
  /** Images per forward pass: large enough to use the kernels well, small enough for any memory. */
  batchSize: 32,
  /** PSNR of a pixel-perfect image is +∞; it counts as this many dB in the mean (skimage gives inf). */
  psnrCap: 100,
});

/**
 * uint8 RGB images [H, W, 3] → f32 [N, H, W, 3] in [−1, 1] (v/127.5 − 1), optionally mirrored
 * left-right per image (`flip[i]`), the model's input convention.
 */
export function rgbToTensor(images: readonly Uint8Array[], h: number, w: number, flip?: readonly boolean[]): Tensor {
  if (images.length === 0) throw new RangeError('rgbToTensor: need at least one image');
  const per = h * w * 3;
  const out = new Float32Array(images.length * per); // [N, H, W, 3]
  images.forEach((im, n) => {
    if (im.length !== per) throw new RangeError(`rgbToTensor: image ${n} has ${im.length} bytes, expected ${h}×${w}×3 = ${per}`);
    const o = n * per;
    if (flip?.[n] === true) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const s = (y * w + x) * 3, d = o + (y * w + (w - 1 - x)) * 3;
          out[d] = im[s]! / 127.5 - 1; out[d + 1] = im[s + 1]! / 127.5 - 1; out[d + 2] = im[s + 2]! / 127.5 - 1;
        }
      }
    } else {
      for (let j = 0; j < per; j++) out[o + j] = im[j]! / 127.5 - 1;
    }
  });
  return new Tensor(out, [images.length, h, w, 3]);
}

/** Runs fn with the model in eval mode (no codebook-health side effects, no graph) and restores its mode. */
export function inEvalMode<T>(model: VQModel, fn: () => T): T {
  const was = model.training;
  model.eval();
  try { return noGrad(fn); } finally { model.train(was); }
}

function checkImages(model: VQModel, images: readonly Uint8Array[], what: string): number {
  const r = model.config.resolution, per = r * r * 3;
  images.forEach((im, i) => {
    if (!(im instanceof Uint8Array) || im.length !== per) throw new RangeError(`${what}: image ${i} must be ${r}×${r}×3 uint8 (${per} bytes, the model's resolution), got ${im?.length} bytes`);
  });
  return r;
}

function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Code grids of images at the model's resolution: one i32 [h·w] row-major grid per image. */
export function tokenize(model: VQModel, images: readonly Uint8Array[], batchSize: number = EVALUATE_DEFAULTS.batchSize): { grid: [number, number]; codes: Int32Array[] } {
  const r = checkImages(model, images, 'tokenize');
  const grid = tokenGrid(model.config);
  const codes: Int32Array[] = [];
  for (const b of batches(images, batchSize)) {
    const c = inEvalMode(model, () => model.tokenize(rgbToTensor(b, r, r))); // i32 [n, h, w]
    const per = grid[0] * grid[1];
    const data = c.data as Int32Array;
    for (let i = 0; i < b.length; i++) codes.push(Int32Array.from(data.subarray(i * per, (i + 1) * per)));
  }
  return { grid, codes };
}

/** Reconstructions x̂ = G(q(E(x))) of images at the model's resolution, as uint8 RGB. */
export function reconstruct(model: VQModel, images: readonly Uint8Array[], batchSize: number = EVALUATE_DEFAULTS.batchSize): Uint8Array[] {
  const r = checkImages(model, images, 'reconstruct');
  const out: Uint8Array[] = [];
  for (const b of batches(images, batchSize)) {
    out.push(...inEvalMode(model, () => tensorToRgb(model.forward(rgbToTensor(b, r, r)).xRec))); // [n, H, W, 3]
  }
  return out;
}

export interface CodebookUsageReport {
  /** Distinct codes used at least once over the split. */
  used: number;
  /** Codebook size K. */
  total: number;
  /** used / K. */
  fraction: number;
  /** exp(entropy) of the code distribution over the split (K when uniform). */
  perplexity: number;
}

export interface TokenizerEvaluation {
  /** Mean per-image PSNR in dB (uint8 images, data range 255; a perfect image counts as psnrCap). */
  psnr: number;
  /** Mean per-image SSIM (skimage's Gaussian-window SSIM). */
  ssim: number;
  codebookUsage: CodebookUsageReport;
  /** Images evaluated. */
  count: number;
  /**
   * Only for data sets with shapes attributes (record.attrs): the shapes checker's accuracy on the
   * reconstructions, per field and all together — the ceiling this tokenizer sets for any generator
   * whose images it decodes (issue 7's "gold image sequence" bound).
   */
  attributes?: Record<'all' | ComparisonField, number> & { scenes: number };
}

export interface EvaluateOptions {
  batchSize?: number;
  /** Evaluate only the first `limit` images of the split. */
  limit?: number;
  /** Called after each batch with (images done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** PSNR, SSIM and codebook usage of `model` over one split of a prepared data set. */
export function evaluateTokenizer(model: VQModel, dataset: Dataset, split: Split, opts: EvaluateOptions = {}): TokenizerEvaluation {
  const r = model.config.resolution;
  const { height, width } = dataset.card.imageSize;
  if (height !== r || width !== r) throw new RangeError(`evaluateTokenizer: ${dataset.dir} has ${height}×${width} images, the model takes ${r}×${r} (prepare the data at --size ${r})`);
  const bs = opts.batchSize ?? EVALUATE_DEFAULTS.batchSize;
  if (!Number.isInteger(bs) || bs < 1) throw new RangeError(`evaluateTokenizer: batchSize must be a positive integer, got ${bs}`);
  let records = dataset.split(split);
  if (opts.limit !== undefined) records = records.slice(0, opts.limit);
  if (records.length === 0) throw new RangeError(`evaluateTokenizer: ${dataset.dir} has no images in split '${split}'`);
  const usage = new CodebookUsage(model.config.nEmbed);
  let psnrSum = 0, ssimSum = 0, done = 0;
  const tally = new CheckerTally();
  for (const b of batches(records, bs)) {
    const imgs = b.map((rec) => dataset.image(rec.index));
    const { rec, codes } = inEvalMode(model, () => {
      const f = model.forward(rgbToTensor(imgs, r, r));
      return { rec: tensorToRgb(f.xRec), codes: f.codes };                // [n, H, W, 3] uint8, i32 [n, h, w]
    });
    usage.add(codes);
    psnrSum += meanPsnr(imgs, rec, { cap: EVALUATE_DEFAULTS.psnrCap }) * b.length;
    ssimSum += meanSsim(imgs, rec, r, r) * b.length;
    b.forEach((record, i) => {
      const attrs = sceneAttrsOf(record);
      if (attrs !== null) tally.add(compareScene(attrs, checkScene(rec[i]!, r)));
    });
    done += b.length;
    opts.onProgress?.(done, records.length);
  }
  const s = usage.summary();
  return {
    psnr: psnrSum / done, ssim: ssimSum / done,
    codebookUsage: { used: s.used, total: model.config.nEmbed, fraction: s.fraction, perplexity: s.perplexity },
    count: done,
    ...(tally.total.all > 0 ? {
      attributes: {
        ...(Object.fromEntries((['all', ...COMPARISON_FIELDS] as const).map((f) => [f, tally.accuracy(f)])) as Record<'all' | ComparisonField, number>),
        scenes: tally.total.all,
      },
    } : {}),
  };
}
