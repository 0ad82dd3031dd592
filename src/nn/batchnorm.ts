// Batch normalisation over channels-last images (PyTorch's nn.BatchNorm2d, NHWC here), composed from
// engine ops so autograd comes for free. Used by the PatchGAN discriminator; names and buffers match
// PyTorch (weight, bias, running_mean, running_var, num_batches_tracked) so its state dicts load.
// Legend: N batch, H×W pixels, C channels.

import { add, mul, rsqrt, square, sub } from '../engine/ops/elementwise.js';
import { mean } from '../engine/ops/reduce.js';
import { fmtShape } from '../engine/shape.js';
import { Tensor, full, noGrad, scalar, zeros } from '../engine/tensor.js';
import { Module } from './module.js';

/** Axes a BatchNorm2d reduces over in NHWC: everything but the channels. */
const STAT_AXES = [0, 1, 2] as const;

export interface BatchNormResult {
  y: Tensor; // [N, H, W, C]
  /** Batch mean, detached. */
  mean: Tensor; // [C]
  /** Biased batch variance (what normalises), detached. */
  variance: Tensor; // [C]
  /** Values per channel the statistics came from (N·H·W). */
  count: number;
}

function checkInput(x: Tensor, c: number, op: string): void {
  if (x.rank !== 4) throw new RangeError(`${op}: x must be [N, H, W, C] (channels-last), got ${fmtShape(x.shape)}`);
  if (x.shape[3] !== c) throw new RangeError(`${op}: x has ${x.shape[3]} channels, expected ${c} (${fmtShape(x.shape)})`);
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${op}: x must be f32 or f64, got ${x.dtype} (cast with .to())`);
}

/**
 * Training-mode batch norm: normalises with the batch's own mean and biased variance, then scales
 * and shifts. Differentiable in x, weight and bias (gradients flow through the statistics too).
 */
export function batchNormTrain(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): BatchNormResult {
  const c = x.shape[3] ?? 0;
  checkInput(x, c, 'batchNormTrain');
  const count = x.shape[0]! * x.shape[1]! * x.shape[2]!;
  if (count < 2) throw new RangeError(`batchNormTrain: needs more than one value per channel, got ${fmtShape(x.shape)} (PyTorch refuses this too)`);
  const mu = mean(x, [...STAT_AXES]);                                     // [C]
  const xc = sub(x, mu);                                                   // [N, H, W, C]
  const v = mean(square(xc), [...STAT_AXES]);                              // [C] biased variance
  let y = mul(xc, rsqrt(add(v, eps)));                                     // [N, H, W, C]
  if (weight !== null) y = mul(y, weight);                                 // [N, H, W, C]
  if (bias !== null) y = add(y, bias);                                     // [N, H, W, C]
  return { y, mean: mu.detach(), variance: v.detach(), count };
}

/** Eval-mode batch norm: a fixed per-channel affine map from the running statistics. */
export function batchNormEval(x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  checkInput(x, runningMean.shape[0] ?? 0, 'batchNormEval');
  let y = mul(sub(x, runningMean), rsqrt(add(runningVar, eps)));         // [N, H, W, C]
  if (weight !== null) y = mul(y, weight);                                 // [N, H, W, C]
  if (bias !== null) y = add(y, bias);                                     // [N, H, W, C]
  return y;
}

export interface BatchNorm2dOptions {
  /** Added to the variance before the square root (PyTorch default 1e-5). */
  eps?: number;
  /** Running statistics move this fraction towards each batch's (PyTorch default 0.1). */
  momentum?: number;
  /** Parameter and running-statistic dtype (f32 default; f64 for gradient checks). */
  dtype?: 'f32' | 'f64';
}

/**
 * nn.BatchNorm2d for NHWC activations. Training: normalise with batch statistics (biased variance),
 * and move running_mean/running_var towards the batch's mean and UNBIASED variance by `momentum`
 * (PyTorch's convention), counting num_batches_tracked. Eval: use the running statistics.
 */
export class BatchNorm2d extends Module {
  readonly weight: Tensor; // [C]
  readonly bias: Tensor; // [C]
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new RangeError(`BatchNorm2d: numFeatures must be a positive integer, got ${numFeatures}`);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    if (!(this.eps > 0)) throw new RangeError(`BatchNorm2d: eps must be > 0, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new RangeError(`BatchNorm2d: momentum must be in [0, 1], got ${this.momentum}`);
    const dtype = opts.dtype ?? 'f32';
    this.weight = this.addParameter('weight', full([numFeatures], 1, dtype));
    this.bias = this.addParameter('bias', full([numFeatures], 0, dtype));
    this.addBuffer('running_mean', zeros([numFeatures], dtype));
    this.addBuffer('running_var', full([numFeatures], 1, dtype));
    this.addBuffer('num_batches_tracked', scalar(0, 'i32')); // PyTorch: int64 0-d; I64 checkpoints load into i32
  }

  get runningMean(): Tensor { return this.buffer('running_mean'); } // [C]
  get runningVar(): Tensor { return this.buffer('running_var'); } // [C]
  get numBatchesTracked(): number { return this.buffer('num_batches_tracked').item(); }

  private buffer(name: string): Tensor {
    const b = this.namedBuffers().find(([n]) => n === name);
    if (b === undefined) throw new Error(`BatchNorm2d: buffer '${name}' is missing`);
    return b[1];
  }

  forward(x: Tensor): Tensor { // x [N, H, W, C] → [N, H, W, C]
    checkInput(x, this.numFeatures, 'BatchNorm2d');
    if (!this.training) return batchNormEval(x, this.runningMean, this.runningVar, this.weight, this.bias, this.eps);
    const r = batchNormTrain(x, this.weight, this.bias, this.eps);
    this.updateRunningStats(r.mean, r.variance, r.count);
    return r.y;
  }

  /** running ← (1 − m)·running + m·batch, with the unbiased variance (n / (n − 1)). */
  private updateRunningStats(batchMean: Tensor, batchVar: Tensor, count: number): void {
    const m = this.momentum;
    noGrad(() => {
      const rm = this.runningMean, rv = this.runningVar;
      this.setBuffer('running_mean', add(mul(rm, 1 - m), mul(batchMean.to(rm.dtype), m)));                   // [C]
      this.setBuffer('running_var', add(mul(rv, 1 - m), mul(batchVar.to(rv.dtype), (m * count) / (count - 1)))); // [C]
      this.setBuffer('num_batches_tracked', scalar(this.numBatchesTracked + 1, 'i32'));
    });
  }
}
