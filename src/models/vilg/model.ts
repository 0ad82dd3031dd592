// ERNIE-ViLG's generator: one transformer, parameters shared by text → image and image → text (and
// generative VQA), with a text-vocabulary head and an image-codebook head, the per-direction
// cross-entropy, the joint objective L = w_t2i·L_txt2img + w_i2t·L_img2txt (+ w_vqa·L_vqa) on the same
// pairs, and the end-to-end pieces: the last layer's hidden states at the image positions projected to
// z_emb [B, h, w, E] for the VQGAN decoder (VQModel.decode(zEmb) applies post_quant_conv + decoder).
// Parameter names follow reference/vilg.py (PyTorch) one for one.
// Legend: B batch, S sequence, P predicted positions, D hidden, V text vocab, K codes, h×w grid, n = h·w, E code dim.
//
// Per direction the loss is the MEAN over predicted tokens (the seed writes sums; a mean keeps 1024
// image tokens from drowning ~20 text tokens — the weights then set the balance).

import { add, mul } from '../../engine/ops/elementwise.js';
import { crossEntropy } from '../../engine/ops/loss.js';
import { matmul } from '../../engine/ops/matmul.js';
import { reshape, slice } from '../../engine/ops/shape.js';
import { Generator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor, zeros } from '../../engine/tensor.js';
import { Dropout, LayerNorm } from '../../nn/layers.js';
import { Module, ModuleList } from '../../nn/module.js';
import {
  IGNORE_INDEX, imageToTextBatch, partLength, textToImageBatch, vqaBatch, type VilgBatch,
} from './batch.js';
import { vilgConfig, type VilgConfig, type VilgConfigInput } from './config.js';
import { VilgEmbeddings } from './embeddings.js';
import { Block, Projection, layerAttentionInputs } from './transformer.js';

export interface ErnieVilgOptions {
  /** Seeds the weight init (default Generator(0): construction is reproducible). */
  generator?: Generator;
  /** Seeds dropout masks (default Generator(1)). */
  dropoutGenerator?: Generator;
  /** 'random' (default) draws the init; 'zeros' skips it for a model that loads a checkpoint next. */
  init?: 'random' | 'zeros';
}

/** A head whose weight is an input embedding table (tied): only the bias is its own. */
export class TiedHead extends Module {
  readonly bias: Tensor; // [C]
  constructor(classes: number) {
    super();
    this.bias = this.addParameter('bias', zeros([classes]));
  }
  forward(x: Tensor, table: Tensor): Tensor { return add(matmul(x, table, { transB: true }), this.bias); } // [.., D] · [C, D]ᵀ → [.., C]
}

export interface VilgOutput {
  /** [B, P, V] (text head) or [B, P, K] (image head) at the batch's predicted positions. */
  logits: Tensor;
  /** [] mean cross-entropy over the labelled positions. */
  loss: Tensor;
  /** [B, S, D] the last layer's output (after the final LN in pre-LN). */
  hidden: Tensor;
}

/** Weights of the joint objective; the seed's L = L_txt2img + L_img2txt is { t2i: 1, i2t: 1 }. */
export interface JointLossWeights { readonly t2i: number; readonly i2t: number; readonly vqa: number }
export const DEFAULT_JOINT_WEIGHTS: JointLossWeights = Object.freeze({
  t2i: 1, // the seed: L = L_txt2img + L_img2txt
  i2t: 1, // same
  vqa: 1, // a third task of equal weight when questions are given
});

/** One batch of pairs: text rows [CLS] t [SEP] [PAD].. and the image codes; optionally a VQA question and answer per pair. */
export interface VilgPairs {
  /** i32 [B, T] (textRows). */
  readonly text: Tensor;
  /** i32 [B, h, w]. */
  readonly codes: Tensor;
  /** i32 [B, T_q] and [B, T_a]; both or neither. */
  readonly question?: Tensor;
  readonly answer?: Tensor;
}

export interface JointLossResult {
  /** [] w_t2i·L_t2i + w_i2t·L_i2t (+ w_vqa·L_vqa). */
  loss: Tensor;
  t2i: VilgOutput;
  i2t: VilgOutput;
  vqa: VilgOutput | null;
}

export class ErnieVilg extends Module {
  readonly config: VilgConfig;
  readonly embeddings: VilgEmbeddings;
  readonly lnEmb: LayerNorm | null; // post-LN only (BERT's embedding LN)
  readonly drop: Dropout;
  readonly layers: ModuleList<Block>;
  readonly lnF: LayerNorm | null;   // pre-LN only
  readonly textHead: Projection | TiedHead;
  readonly imageHead: Projection | TiedHead;
  readonly zembProj: Projection;

  constructor(config: VilgConfigInput = {}, opts: ErnieVilgOptions = {}) {
    super();
    const c = vilgConfig(config);
    this.config = c;
    const g = (opts.init ?? 'random') === 'zeros' ? null : opts.generator ?? new Generator(0);
    const dg = opts.dropoutGenerator ?? new Generator(1);
    this.embeddings = this.addModule('embeddings', new VilgEmbeddings(c, g));
    this.lnEmb = c.preLN ? null : this.addModule('ln_emb', new LayerNorm(c.hidden));
    this.drop = this.addModule('drop', new Dropout(c.dropout, dg));
    const blocks: Block[] = [];
    for (let i = 0; i < c.numLayers; i++) blocks.push(new Block(c, g, dg));
    this.layers = this.addModule('layers', new ModuleList(blocks));
    this.lnF = c.preLN ? this.addModule('ln_f', new LayerNorm(c.hidden)) : null;
    this.textHead = this.addModule('text_head', c.tieEmbeddings ? new TiedHead(c.textVocab) : new Projection(c.hidden, c.textVocab, c.initStd, g));
    this.imageHead = this.addModule('image_head', c.tieEmbeddings ? new TiedHead(c.numCodes) : new Projection(c.hidden, c.numCodes, c.initStd, g));
    this.zembProj = this.addModule('zemb_proj', new Projection(c.hidden, c.embedDim, c.initStd, g));
  }

  /** The last layer's output for a batch: [B, S, D] (after ln_f in pre-LN). */
  hidden(batch: VilgBatch): Tensor {
    const c = this.config;
    const S = batch.parts.reduce((s, p) => s + partLength(p), 0);
    if (batch.keyValid.dtype !== 'i32' || batch.keyValid.rank !== 2 || batch.keyValid.shape[1] !== S || batch.keyValid.shape[0] !== batch.tokens.shape[0]) {
      throw new RangeError(`ErnieVilg.hidden: keyValid must be i32 [B, ${S}] like tokens ${fmtShape(batch.tokens.shape)}, got ${batch.keyValid.dtype} ${fmtShape(batch.keyValid.shape)}`);
    }
    let x = this.embeddings.forward(batch.parts, batch.tokens);   // [B, S, D]
    if (this.lnEmb !== null) x = this.lnEmb.forward(x);           // [B, S, D]
    x = this.drop.forward(x);                                     // [B, S, D]
    const att = layerAttentionInputs(batch.segments, c, batch.hasPadding ? batch.keyValid : null);
    this.layers.items.forEach((block, i) => { x = block.forward(x, att[i]!); }); // [B, S, D]
    return this.lnF === null ? x : this.lnF.forward(x);           // [B, S, D]
  }

  /** Scores hidden states [.., D] with the text ([.., V]) or image ([.., K]) head. */
  head(which: 'text' | 'image', h: Tensor): Tensor {
    const e = this.embeddings;
    if (which === 'text') {
      return this.textHead instanceof TiedHead ? this.textHead.forward(h, e.textTokens.weight) : this.textHead.forward(h); // [.., V]
    }
    return this.imageHead instanceof TiedHead
      ? this.imageHead.forward(h, slice(e.imageTokens.weight, 0, 0, this.config.numCodes)) // [.., K] (row K is [BOI], never predicted)
      : this.imageHead.forward(h);                                                         // [.., K]
  }

  /** Logits at the batch's predicted positions and their mean cross-entropy (padding ignored). */
  forward(batch: VilgBatch): VilgOutput {
    const hidden = this.hidden(batch);                                         // [B, S, D]
    const [B, S] = hidden.shape as [number, number, number];
    const P = batch.labels.shape[1]!;
    if (batch.labels.dtype !== 'i32' || batch.labels.rank !== 2 || batch.labels.shape[0] !== B || batch.targetStart < 0 || batch.targetStart + P > S) {
      throw new RangeError(`ErnieVilg.forward: labels ${fmtShape(batch.labels.shape)} from position ${batch.targetStart} do not fit a [${B}, ${S}] sequence`);
    }
    const h = slice(hidden, 1, batch.targetStart, batch.targetStart + P);      // [B, P, D]
    const logits = this.head(batch.head, h);                                   // [B, P, V | K]
    const loss = crossEntropy(logits, batch.labels, { ignoreIndex: IGNORE_INDEX }); // []
    return { logits, loss, hidden };
  }

  /** The last layer's hidden states at the positions whose INPUT is z_1..z_n: [B, n, D]. */
  imageHidden(batch: VilgBatch, hidden?: Tensor): Tensor {
    const images = batch.parts.filter((p) => p.kind === 'image');
    if (images.length !== 1) throw new RangeError(`ErnieVilg.imageHidden: the batch must hold exactly one image, it holds ${images.length}`);
    let start = 0;
    for (const p of batch.parts) { if (p.kind === 'image') break; start += partLength(p); }
    const h = hidden ?? this.hidden(batch);                                    // [B, S, D]
    return slice(h, 1, start, start + partLength(images[0]!));                 // [B, n, D]
  }

  /** Image hidden states [B, n, D] → z_emb [B, h, w, E] (the end-to-end input of VQModel.decode). */
  projectZemb(imageHidden: Tensor): Tensor {
    const c = this.config, [gh, gw] = c.imageGrid;
    if (imageHidden.rank !== 3 || imageHidden.shape[1] !== gh * gw || imageHidden.shape[2] !== c.hidden) {
      throw new RangeError(`ErnieVilg.projectZemb: expected [B, ${gh * gw}, ${c.hidden}], got ${fmtShape(imageHidden.shape)}`);
    }
    const x = reshape(imageHidden, [imageHidden.shape[0]!, gh, gw, c.hidden]); // [B, h, w, D]
    return this.zembProj.forward(x);                                           // [B, h, w, E]
  }

  /** z_emb [B, h, w, E] of a batch's image (pass `hidden` from forward to reuse that pass). */
  zEmb(batch: VilgBatch, hidden?: Tensor): Tensor {
    return this.projectZemb(this.imageHidden(batch, hidden)); // [B, h, w, E]
  }

  /** The joint objective on one batch of pairs: both directions (and VQA when given) from the same pairs. */
  jointLoss(pairs: VilgPairs, padId: number, weights: Partial<JointLossWeights> = {}): JointLossResult {
    for (const k of Object.keys(weights)) {
      if (!(k in DEFAULT_JOINT_WEIGHTS)) throw new RangeError(`ErnieVilg.jointLoss: unknown weight '${k}' (known: t2i, i2t, vqa)`);
    }
    const w = { ...DEFAULT_JOINT_WEIGHTS, ...weights };
    for (const [k, v] of Object.entries(w)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`ErnieVilg.jointLoss: weight ${k} must be a finite number ≥ 0, got ${String(v)}`);
    }
    if ((pairs.question === undefined) !== (pairs.answer === undefined)) throw new RangeError('ErnieVilg.jointLoss: question and answer come together');
    const c = this.config, sp = { pad: padId };
    const t2i = this.forward(textToImageBatch(c, pairs.text, pairs.codes, sp));
    const i2t = this.forward(imageToTextBatch(c, pairs.codes, pairs.text, sp));
    let loss = add(mul(t2i.loss, w.t2i), mul(i2t.loss, w.i2t)); // []
    let vqa: VilgOutput | null = null;
    if (pairs.question !== undefined && pairs.answer !== undefined) {
      vqa = this.forward(vqaBatch(c, pairs.codes, pairs.question, pairs.answer, sp));
      loss = add(loss, mul(vqa.loss, w.vqa));                          // []
    }
    return { loss, t2i, i2t, vqa };
  }
}
