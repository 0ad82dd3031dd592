// taming-transformers' Encoder: image → z (the continuous code grid, before quant_conv).
// conv_in; per level i: down.{i}.block.{j} (numResBlocks ResNet blocks), down.{i}.attn.{j} (where the
// level's size is in attnResolutions), down.{i}.downsample (all levels but the last); mid.block_1,
// mid.attn_1, mid.block_2; norm_out → swish → conv_out (zChannels; double_z is false for VQ).
// Legend: N batch, H×W pixels, C channels, f = 2^(L−1) downsampling factor, L levels, Z zChannels.

import type { Generator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import type { Tensor } from '../../engine/tensor.js';
import { Conv2d, type GroupNorm } from '../../nn/layers.js';
import { Module, ModuleList } from '../../nn/module.js';
import { AttnBlock, Downsample, ResnetBlock, nonlinearity, normalize, type BlockOptions } from './blocks.js';
import { downsampleFactor, levelResolutions, type VQGANConfig } from './config.js';

/** The middle of both encoder and decoder: ResNet, attention, ResNet at the lowest resolution. */
export class MidBlock extends Module {
  readonly block1: ResnetBlock;
  readonly attn1: AttnBlock;
  readonly block2: ResnetBlock;
  constructor(channels: number, dropout: number, opts: BlockOptions & { dropoutGenerator: Generator }) {
    super();
    this.block1 = this.addModule('block_1', new ResnetBlock(channels, channels, dropout, opts));
    this.attn1 = this.addModule('attn_1', new AttnBlock(channels, opts));
    this.block2 = this.addModule('block_2', new ResnetBlock(channels, channels, dropout, opts));
  }
  forward(x: Tensor): Tensor { // [N, h, w, C] → [N, h, w, C]
    return this.block2.forward(this.attn1.forward(this.block1.forward(x)));
  }
}

/** One encoder level: its ResNet blocks, optional attention after each, and the downsampling step. */
class DownLevel extends Module {
  readonly block: ModuleList<ResnetBlock>;
  readonly attn: ModuleList<AttnBlock>;
  readonly downsample: Downsample | null;
  constructor(blocks: ResnetBlock[], attns: AttnBlock[], downsample: Downsample | null) {
    super();
    this.block = this.addModule('block', new ModuleList(blocks));
    this.attn = this.addModule('attn', new ModuleList(attns)); // empty where the level has none
    this.downsample = downsample === null ? null : this.addModule('downsample', downsample);
  }
}

export interface EncoderOptions { generator: Generator; dropoutGenerator: Generator }

export class Encoder extends Module {
  readonly convIn: Conv2d;
  readonly down: ModuleList<DownLevel>;
  readonly mid: MidBlock;
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(readonly config: VQGANConfig, opts: EncoderOptions) {
    super();
    const c = config, g = opts.generator;
    const bo = { normGroups: c.normGroups, generator: g, dropoutGenerator: opts.dropoutGenerator };
    const sizes = levelResolutions(c);
    this.convIn = this.addModule('conv_in', new Conv2d(c.inChannels, c.ch, 3, { padding: 1, generator: g }));
    const levels: DownLevel[] = [];
    let blockIn = c.ch;
    c.chMult.forEach((m, i) => {
      const blockOut = c.ch * m;
      const blocks: ResnetBlock[] = [], attns: AttnBlock[] = [];
      for (let j = 0; j < c.numResBlocks; j++) {
        blocks.push(new ResnetBlock(blockIn, blockOut, c.dropout, bo));
        blockIn = blockOut;
        if (c.attnResolutions.includes(sizes[i]!)) attns.push(new AttnBlock(blockIn, bo));
      }
      const last = i === c.chMult.length - 1;
      levels.push(new DownLevel(blocks, attns, last ? null : new Downsample(blockIn, bo)));
    });
    this.down = this.addModule('down', new ModuleList(levels));
    this.mid = this.addModule('mid', new MidBlock(blockIn, c.dropout, bo));
    this.normOut = this.addModule('norm_out', normalize(blockIn, c.normGroups));
    this.convOut = this.addModule('conv_out', new Conv2d(blockIn, c.zChannels, 3, { padding: 1, generator: g }));
  }

  forward(x: Tensor): Tensor { // x [N, H, W, inChannels] → [N, H/f, W/f, Z]
    const c = this.config, f = downsampleFactor(c);
    if (x.rank !== 4 || x.shape[3] !== c.inChannels) throw new RangeError(`Encoder: input must be [N, H, W, ${c.inChannels}] (channels-last), got ${fmtShape(x.shape)}`);
    if (x.shape[1]! % f !== 0 || x.shape[2]! % f !== 0) throw new RangeError(`Encoder: image sides ${x.shape[1]}×${x.shape[2]} must be divisible by the downsampling factor ${f}`);
    let h = this.convIn.forward(x);                                   // [N, H, W, ch]
    for (const level of this.down.items) {
      level.block.items.forEach((block, j) => {
        h = block.forward(h);                                         // [N, H_i, W_i, ch·chMult[i]]
        if (level.attn.length > 0) h = level.attn.at(j).forward(h);   // same
      });
      if (level.downsample !== null) h = level.downsample.forward(h); // [N, H_i/2, W_i/2, ·]
    }
    h = this.mid.forward(h);                                          // [N, H/f, W/f, C_last]
    return this.convOut.forward(nonlinearity(this.normOut.forward(h))); // [N, H/f, W/f, Z]
  }
}
