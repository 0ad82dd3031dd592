// The VQGAN's building blocks, as taming-transformers' diffusionmodules/model.py writes them (with
// temb_channels = 0, so no timestep projection), on channels-last activations.
// Legend: N batch, H×W feature map, C channels, P = H·W positions.

import { add, silu } from '../../engine/ops/elementwise.js';
import { scaledDotProductAttention } from '../../engine/ops/attention.js';
import { upsampleNearest2x } from '../../engine/ops/conv.js';
import { reshape } from '../../engine/ops/shape.js';
import type { Generator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import type { Tensor } from '../../engine/tensor.js';
import { Conv2d, Dropout, GroupNorm } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';

/** What every block needs to know besides its channel counts. */
export interface BlockOptions {
  /** GroupNorm groups (taming: 32). */
  normGroups: number;
  /** Seeds the weight init. */
  generator: Generator;
}

/** taming's Normalize: GroupNorm with eps 1e-6 (not PyTorch's default 1e-5) and affine weights. */
export function normalize(channels: number, groups: number): GroupNorm {
  return new GroupNorm(groups, channels, 1e-6);
}

/** taming's `nonlinearity`: swish x·σ(x). */
export const nonlinearity = silu;

/** norm1 → swish → conv1 → norm2 → swish → dropout → conv2, plus a 1×1 nin_shortcut when channels change. */
export class ResnetBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm;
  readonly dropout: Dropout;
  readonly conv2: Conv2d;
  readonly ninShortcut: Conv2d | null;

  constructor(readonly inChannels: number, readonly outChannels: number, dropout: number, opts: BlockOptions & { dropoutGenerator: Generator }) {
    super();
    const g = opts.generator;
    // Registration order = taming's state-dict order.
    this.norm1 = this.addModule('norm1', normalize(inChannels, opts.normGroups));
    this.conv1 = this.addModule('conv1', new Conv2d(inChannels, outChannels, 3, { padding: 1, generator: g }));
    this.norm2 = this.addModule('norm2', normalize(outChannels, opts.normGroups));
    this.dropout = this.addModule('dropout', new Dropout(dropout, opts.dropoutGenerator)); // no parameters
    this.conv2 = this.addModule('conv2', new Conv2d(outChannels, outChannels, 3, { padding: 1, generator: g }));
    this.ninShortcut = inChannels === outChannels ? null : this.addModule('nin_shortcut', new Conv2d(inChannels, outChannels, 1, { generator: g }));
  }

  forward(x: Tensor): Tensor { // x [N, H, W, Cin] → [N, H, W, Cout]
    let h = this.conv1.forward(nonlinearity(this.norm1.forward(x)));           // [N, H, W, Cout]
    h = this.norm2.forward(h);                                                  // [N, H, W, Cout]
    h = this.conv2.forward(this.dropout.forward(nonlinearity(h)));              // [N, H, W, Cout]
    const skip = this.ninShortcut === null ? x : this.ninShortcut.forward(x);   // [N, H, W, Cout]
    return add(skip, h);                                                        // [N, H, W, Cout]
  }
}

/**
 * Single-head self-attention over all H·W positions (scale C^−½), with 1×1-conv projections q, k, v,
 * proj_out and a residual connection. taming writes it as bmm + softmax; the fused op is the same math.
 */
export class AttnBlock extends Module {
  readonly norm: GroupNorm;
  readonly q: Conv2d;
  readonly k: Conv2d;
  readonly v: Conv2d;
  readonly projOut: Conv2d;

  constructor(readonly channels: number, opts: BlockOptions) {
    super();
    const g = opts.generator;
    this.norm = this.addModule('norm', normalize(channels, opts.normGroups));
    this.q = this.addModule('q', new Conv2d(channels, channels, 1, { generator: g }));
    this.k = this.addModule('k', new Conv2d(channels, channels, 1, { generator: g }));
    this.v = this.addModule('v', new Conv2d(channels, channels, 1, { generator: g }));
    this.projOut = this.addModule('proj_out', new Conv2d(channels, channels, 1, { generator: g }));
  }

  forward(x: Tensor): Tensor { // x [N, H, W, C] → [N, H, W, C]
    const [n, hh, ww, c] = x.shape as [number, number, number, number];
    const h = this.norm.forward(x);                                             // [N, H, W, C]
    // NHWC rows are already position-major: [N, H, W, C] reads as [N, 1 head, P, C] without a copy.
    const asSeq = (t: Tensor): Tensor => reshape(t, [n, 1, hh * ww, c]);        // [N, 1, P, C]
    const q = asSeq(this.q.forward(h)), k = asSeq(this.k.forward(h)), v = asSeq(this.v.forward(h));
    const a = scaledDotProductAttention(q, k, v, { scale: c ** -0.5 });         // [N, 1, P, C]
    const out = this.projOut.forward(reshape(a, [n, hh, ww, c]));               // [N, H, W, C]
    return add(x, out);                                                         // [N, H, W, C]
  }
}

/**
 * Stride-2 3×3 conv after padding one row at the bottom and one column at the right (taming pads
 * (0, 1, 0, 1) because PyTorch's conv has no asymmetric padding; our conv pads [top, left, bottom, right]).
 */
export class Downsample extends Module {
  readonly conv: Conv2d;
  constructor(readonly channels: number, opts: BlockOptions) {
    super();
    this.conv = this.addModule('conv', new Conv2d(channels, channels, 3, { stride: 2, padding: [0, 0, 1, 1], generator: opts.generator }));
  }
  forward(x: Tensor): Tensor { // x [N, H, W, C] → [N, H/2, W/2, C]
    if (x.shape[1]! % 2 !== 0 || x.shape[2]! % 2 !== 0) throw new RangeError(`Downsample: odd feature map ${fmtShape(x.shape)}; image sides must be divisible by the downsampling factor`);
    return this.conv.forward(x);
  }
}

/** Nearest-neighbour 2× upsampling, then a 3×3 conv (taming: resamp_with_conv = True). */
export class Upsample extends Module {
  readonly conv: Conv2d;
  constructor(readonly channels: number, opts: BlockOptions) {
    super();
    this.conv = this.addModule('conv', new Conv2d(channels, channels, 3, { padding: 1, generator: opts.generator }));
  }
  forward(x: Tensor): Tensor { // x [N, H, W, C] → [N, 2H, 2W, C]
    return this.conv.forward(upsampleNearest2x(x));
  }
}
