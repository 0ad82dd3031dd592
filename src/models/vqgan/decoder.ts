// taming-transformers' Decoder: z (after post_quant_conv) → image.
// conv_in (Z → ch·chMult[L−1]); mid.block_1, mid.attn_1, mid.block_2; then the levels from the lowest
// resolution up: up.{i}.block.{j} (numResBlocks + 1 blocks), up.{i}.attn.{j}, up.{i}.upsample (all but
// level 0). taming builds the levels lowest-resolution first and INSERTS each at the front, so `up.0`
// is the highest-resolution level and forward runs i = L−1 … 0. norm_out → swish → conv_out (RGB).
// Legend: N batch, h×w token grid, H×W = f·h × f·w pixels, C channels, L levels, Z zChannels.

import type { Generator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import type { Tensor } from '../../engine/tensor.js';
import { Conv2d, type GroupNorm } from '../../nn/layers.js';
import { Module, ModuleList } from '../../nn/module.js';
import { AttnBlock, ResnetBlock, Upsample, nonlinearity, normalize } from './blocks.js';
import { levelResolutions, type VQGANConfig } from './config.js';
import { MidBlock, type EncoderOptions } from './encoder.js';

/** One decoder level: its ResNet blocks, optional attention after each, and the upsampling step. */
class UpLevel extends Module {
  readonly block: ModuleList<ResnetBlock>;
  readonly attn: ModuleList<AttnBlock>;
  readonly upsample: Upsample | null;
  constructor(blocks: ResnetBlock[], attns: AttnBlock[], upsample: Upsample | null) {
    super();
    this.block = this.addModule('block', new ModuleList(blocks));
    this.attn = this.addModule('attn', new ModuleList(attns));
    this.upsample = upsample === null ? null : this.addModule('upsample', upsample);
  }
}

export class Decoder extends Module {
  readonly convIn: Conv2d;
  readonly mid: MidBlock;
  readonly up: ModuleList<UpLevel>;
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(readonly config: VQGANConfig, opts: EncoderOptions) {
    super();
    const c = config, g = opts.generator, L = c.chMult.length;
    const bo = { normGroups: c.normGroups, generator: g, dropoutGenerator: opts.dropoutGenerator };
    const sizes = levelResolutions(c);
    let blockIn = c.ch * c.chMult[L - 1]!;
    this.convIn = this.addModule('conv_in', new Conv2d(c.zChannels, blockIn, 3, { padding: 1, generator: g }));
    this.mid = this.addModule('mid', new MidBlock(blockIn, c.dropout, bo));
    // Built lowest resolution first (taming's construction order, so seeded inits draw in its order) ...
    const levels: UpLevel[] = new Array<UpLevel>(L);
    for (let i = L - 1; i >= 0; i--) {
      const blockOut = c.ch * c.chMult[i]!;
      const blocks: ResnetBlock[] = [], attns: AttnBlock[] = [];
      for (let j = 0; j <= c.numResBlocks; j++) {
        blocks.push(new ResnetBlock(blockIn, blockOut, c.dropout, bo));
        blockIn = blockOut;
        if (c.attnResolutions.includes(sizes[i]!)) attns.push(new AttnBlock(blockIn, bo));
      }
      levels[i] = new UpLevel(blocks, attns, i === 0 ? null : new Upsample(blockIn, bo));
    }
    // ... and registered as up.0 (highest resolution) … up.{L−1}, as taming's insert(0, ·) leaves them.
    this.up = this.addModule('up', new ModuleList(levels));
    this.normOut = this.addModule('norm_out', normalize(blockIn, c.normGroups));
    this.convOut = this.addModule('conv_out', new Conv2d(blockIn, c.inChannels, 3, { padding: 1, generator: g }));
  }

  forward(z: Tensor): Tensor { // z [N, h, w, Z] → [N, f·h, f·w, inChannels]
    const c = this.config;
    if (z.rank !== 4 || z.shape[3] !== c.zChannels) throw new RangeError(`Decoder: input must be [N, h, w, ${c.zChannels}], got ${fmtShape(z.shape)}`);
    let h = this.mid.forward(this.convIn.forward(z));                  // [N, h, w, C_last]
    for (let i = this.up.length - 1; i >= 0; i--) {
      const level = this.up.at(i);
      level.block.items.forEach((block, j) => {
        h = block.forward(h);                                          // [N, H_i, W_i, ch·chMult[i]]
        if (level.attn.length > 0) h = level.attn.at(j).forward(h);    // same
      });
      if (level.upsample !== null) h = level.upsample.forward(h);      // [N, 2H_i, 2W_i, ·]
    }
    return this.convOut.forward(nonlinearity(this.normOut.forward(h))); // [N, H, W, inChannels]
  }
}
