// The standard layers, with PyTorch's parameter names, layouts and default initialisation, so that
// PyTorch state dicts load unchanged. Activations are channels-last (NHWC) for images.
// Legend: B batch, S sequence, D features, N batch of images, H×W pixels, C channels, V vocabulary.

import { conv2d, type Conv2dPadding } from '../engine/ops/conv.js';
import { embedding } from '../engine/ops/embedding.js';
import { add } from '../engine/ops/elementwise.js';
import { linear } from '../engine/ops/matmul.js';
import { groupNorm, layerNorm } from '../engine/ops/norm.js';
import { dropout } from '../engine/ops/random.js';
import { defaultGenerator, type Generator } from '../engine/random.js';
import { Tensor, full, rand, randn } from '../engine/tensor.js';
import { Module } from './module.js';

export interface InitOptions { generator?: Generator }

/** U(−1/√fanIn, 1/√fanIn): PyTorch's default for Linear/Conv weights (kaiming_uniform, a=√5) and biases. */
function uniformFanIn(shape: number[], fanIn: number, g: Generator): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return rand(shape, { low: -bound, high: bound, generator: g });
}

/** y = x·Wᵀ + b, weight [out, in] as in PyTorch. */
export class Linear extends Module {
  readonly weight: Tensor; // [out, in]
  readonly bias: Tensor | null; // [out]
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: InitOptions & { bias?: boolean } = {}) {
    super();
    positiveInts({ inFeatures, outFeatures }, 'Linear');
    const g = opts.generator ?? defaultGenerator;
    this.weight = this.addParameter('weight', uniformFanIn([outFeatures, inFeatures], inFeatures, g));
    this.bias = (opts.bias ?? true) ? this.addParameter('bias', uniformFanIn([outFeatures], inFeatures, g)) : null;
  }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); } // x [..., in] → [..., out]
}

/** 2-D convolution on NHWC activations with an OIHW weight [out, in, k, k] (PyTorch layout). */
export class Conv2d extends Module {
  readonly weight: Tensor; // [CO, CI, KH, KW]
  readonly bias: Tensor | null; // [CO]
  readonly stride: number;
  readonly padding: Conv2dPadding;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number,
    opts: InitOptions & { stride?: number; padding?: Conv2dPadding; bias?: boolean } = {}) {
    super();
    positiveInts({ inChannels, outChannels, kernelSize }, 'Conv2d');
    const g = opts.generator ?? defaultGenerator;
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = this.addParameter('weight', uniformFanIn([outChannels, inChannels, kernelSize, kernelSize], fanIn, g));
    this.bias = (opts.bias ?? true) ? this.addParameter('bias', uniformFanIn([outChannels], fanIn, g)) : null;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
  }
  forward(x: Tensor): Tensor { // x [N, H, W, CI] → [N, OH, OW, CO]
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

/** Group norm over channels-last activations; weight/bias [C] (PyTorch names). */
export class GroupNorm extends Module {
  readonly weight: Tensor; // [C]
  readonly bias: Tensor; // [C]
  constructor(readonly numGroups: number, readonly numChannels: number, readonly eps = 1e-5) {
    super();
    positiveInts({ numGroups, numChannels }, 'GroupNorm');
    if (numChannels % numGroups !== 0) throw new RangeError(`GroupNorm: ${numChannels} channels do not split into ${numGroups} groups`);
    this.weight = this.addParameter('weight', full([numChannels], 1));
    this.bias = this.addParameter('bias', full([numChannels], 0));
  }
  forward(x: Tensor): Tensor { return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps); } // [N, ..., C]
}

/** Layer norm over the last axis; weight/bias [D]. */
export class LayerNorm extends Module {
  readonly weight: Tensor; // [D]
  readonly bias: Tensor; // [D]
  constructor(readonly features: number, readonly eps = 1e-5) {
    super();
    positiveInts({ features }, 'LayerNorm');
    this.weight = this.addParameter('weight', full([features], 1));
    this.bias = this.addParameter('bias', full([features], 0));
  }
  forward(x: Tensor): Tensor { return layerNorm(x, this.weight, this.bias, this.eps); } // [..., D]
}

/** Token embedding table [V, D], initialised N(0, std) (PyTorch: std 1). */
export class Embedding extends Module {
  readonly weight: Tensor; // [V, D]
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: InitOptions & { std?: number } = {}) {
    super();
    positiveInts({ numEmbeddings, dim }, 'Embedding');
    this.weight = this.addParameter('weight', randn([numEmbeddings, dim], { std: opts.std ?? 1, generator: opts.generator ?? defaultGenerator }));
  }
  forward(ids: Tensor): Tensor { return embedding(ids, this.weight); } // [...] i32 → [..., D]
}

/** Inverted dropout, active only in training mode; draws from its own seeded generator. */
export class Dropout extends Module {
  constructor(readonly p: number, readonly generator: Generator = defaultGenerator) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor { return dropout(x, this.p, { training: this.training, generator: this.generator }); }
}

function positiveInts(values: Record<string, number>, layer: string): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${layer}: ${k} must be a positive integer, got ${v}`);
  }
}
