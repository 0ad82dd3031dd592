// The VQGAN's PatchGAN discriminator: taming-transformers' NLayerDiscriminator (Pix2Pix's design).
// It maps an image to a grid of real/fake logits, one per overlapping patch (70×70 pixels at the
// default 3 layers). Parameter names follow taming's `nn.Sequential` numbering (main.0 conv,
// main.1 LeakyReLU, main.2 conv, main.3 BatchNorm, ...), so a taming checkpoint's
// `loss.discriminator.main.*` keys load once the `loss.discriminator.` prefix is stripped.
// Legend: N batch, H×W pixels, C channels, h×w logit grid.

import { add, mul, relu } from '../../engine/ops/elementwise.js';
import { fmtShape } from '../../engine/shape.js';
import { Generator } from '../../engine/random.js';
import { Tensor, randn } from '../../engine/tensor.js';
import { BatchNorm2d } from '../../nn/batchnorm.js';
import { Conv2d } from '../../nn/layers.js';
import { Module, ModuleList } from '../../nn/module.js';

export interface DiscriminatorConfig {
  /** Image channels (taming: input_nc). */
  readonly inChannels: number;
  /** Filters of the first conv; later convs use ndf·min(2^n, 8) (taming: ndf). */
  readonly ndf: number;
  /** Stride-2 convs, i.e. downsampling steps (taming: n_layers; 3 gives 70×70 receptive fields). */
  readonly nLayers: number;
}

export const DEFAULT_DISCRIMINATOR_CONFIG: DiscriminatorConfig = Object.freeze({
  inChannels: 3, // RGB
  ndf: 64, // taming's default (2.8M parameters at nLayers 3)
  nLayers: 3, // taming's default: 256 px in → 30×30 logits
});

/** Named presets: `taming` is the checkpoint-compatible one; the small ones fit these CPUs. */
export const DISCRIMINATOR_PRESETS: Readonly<Record<string, DiscriminatorConfig>> = Object.freeze({
  taming: DEFAULT_DISCRIMINATOR_CONFIG,
  small: Object.freeze({ inChannels: 3, ndf: 32, nLayers: 3 }), // 64 px → 6×6 logits, ~0.7M parameters
  tiny: Object.freeze({ inChannels: 3, ndf: 8, nLayers: 2 }), // tests; 32 px → 6×6 logits
});

/** Fills defaults and checks every field; unknown keys and bad values throw, naming the field. */
export function discriminatorConfig(partial: Partial<DiscriminatorConfig> = {}): DiscriminatorConfig {
  for (const k of Object.keys(partial)) {
    if (!(k in DEFAULT_DISCRIMINATOR_CONFIG)) throw new RangeError(`discriminator config: unknown key '${k}' (known: ${Object.keys(DEFAULT_DISCRIMINATOR_CONFIG).join(', ')})`);
  }
  const c = { ...DEFAULT_DISCRIMINATOR_CONFIG, ...partial };
  for (const [k, min] of [['inChannels', 1], ['ndf', 1], ['nLayers', 0]] as const) {
    if (!Number.isInteger(c[k]) || c[k] < min) throw new RangeError(`discriminator config: ${k} must be an integer ≥ ${min}, got ${c[k]}`);
  }
  return Object.freeze(c);
}

const NEGATIVE_SLOPE = 0.2; // taming's LeakyReLU(0.2)

/**
 * LeakyReLU composed from engine ops: slope·x + (1 − slope)·relu(x) equals x for x > 0 and slope·x
 * otherwise; at 0 the gradient is `slope`, as PyTorch's. (Four elementwise passes instead of one: no
 * fused kernel exists yet; measured cost is small next to the convs.)
 */
export function leakyRelu(x: Tensor, slope = NEGATIVE_SLOPE): Tensor {
  return add(mul(x, slope), mul(relu(x), 1 - slope)); // [...x.shape]
}

/** A parameter-free LeakyReLU, so the Sequential numbering matches taming's. */
export class LeakyReLU extends Module {
  constructor(readonly slope = NEGATIVE_SLOPE) { super(); }
  forward(x: Tensor): Tensor { return leakyRelu(x, this.slope); }
}

type Layer = Conv2d | BatchNorm2d | LeakyReLU;

/** Sizes of the discriminator's layers; kernel 4, padding 1 everywhere (taming's kw/padw). */
interface ConvStep { cin: number; cout: number; stride: number; bias: boolean; norm: boolean; act: boolean }
function convPlan(c: DiscriminatorConfig): ConvStep[] {
  const plan: ConvStep[] = [{ cin: c.inChannels, cout: c.ndf, stride: 2, bias: true, norm: false, act: true }];
  let mult = 1;
  for (let n = 1; n < c.nLayers; n++) {
    const prev = mult;
    mult = Math.min(2 ** n, 8);
    plan.push({ cin: c.ndf * prev, cout: c.ndf * mult, stride: 2, bias: false, norm: true, act: true }); // BN has its own shift
  }
  const prev = mult;
  mult = Math.min(2 ** c.nLayers, 8);
  plan.push({ cin: c.ndf * prev, cout: c.ndf * mult, stride: 1, bias: false, norm: true, act: true });
  plan.push({ cin: c.ndf * mult, cout: 1, stride: 1, bias: true, norm: false, act: false }); // the 1-channel logit map
  return plan;
}

export interface DiscriminatorOptions {
  /** Seeds the weight init (default: a fresh Generator(0), so construction is reproducible). */
  generator?: Generator;
}

/**
 * NLayerDiscriminator: image [N, H, W, C] in [−1, 1] → logits [N, h, w, 1] (positive = "real").
 * BatchNorm makes train/eval mode matter: train normalises with batch statistics and updates the
 * running ones; eval uses the running ones.
 */
export class NLayerDiscriminator extends Module {
  readonly config: DiscriminatorConfig;
  readonly main: ModuleList<Layer>;

  constructor(config: Partial<DiscriminatorConfig> = {}, opts: DiscriminatorOptions = {}) {
    super();
    this.config = discriminatorConfig(config);
    const g = opts.generator ?? new Generator(0);
    const layers: Layer[] = [];
    for (const p of convPlan(this.config)) {
      const conv = new Conv2d(p.cin, p.cout, 4, { stride: p.stride, padding: 1, bias: p.bias, generator: g });
      // taming's weights_init: conv weights N(0, 0.02); conv biases keep PyTorch's default uniform init.
      (conv.weight.data as Float32Array).set(randn(conv.weight.shape, { std: 0.02, generator: g }).data as Float32Array);
      layers.push(conv);
      if (p.norm) {
        const bn = new BatchNorm2d(p.cout);
        // weights_init: BatchNorm weight N(1, 0.02), bias 0.
        (bn.weight.data as Float32Array).set(randn([p.cout], { mean: 1, std: 0.02, generator: g }).data as Float32Array);
        layers.push(bn);
      }
      if (p.act) layers.push(new LeakyReLU());
    }
    this.main = this.addModule('main', new ModuleList(layers));
  }

  /** The logit grid size for an H×W input (each conv: ⌊(size + 2 − 4) / stride⌋ + 1). */
  outputSize(h: number, w: number): [number, number] {
    for (const p of convPlan(this.config)) {
      h = Math.floor((h - 2) / p.stride) + 1;
      w = Math.floor((w - 2) / p.stride) + 1;
    }
    return [h, w];
  }

  forward(x: Tensor): Tensor { // x [N, H, W, C] → [N, h, w, 1]
    if (x.rank !== 4 || x.shape[3] !== this.config.inChannels) {
      throw new RangeError(`NLayerDiscriminator: input must be [N, H, W, ${this.config.inChannels}] (channels-last), got ${fmtShape(x.shape)}`);
    }
    const [oh, ow] = this.outputSize(x.shape[1]!, x.shape[2]!);
    if (oh < 1 || ow < 1) {
      throw new RangeError(`NLayerDiscriminator: a ${x.shape[1]}×${x.shape[2]} image is too small for ${this.config.nLayers} layers (the logit grid would be empty)`);
    }
    let h = x;
    for (const layer of this.main.items) h = layer.forward(h); // [N, ·, ·, ·] → ... → [N, h, w, 1]
    return h;
  }
}
