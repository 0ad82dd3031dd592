// Vector quantization with the seed's loss and the codebook-health options.
//   codes   = argmin_k ‖z − e_k‖²                                   (nearest code, ties → lowest k)
//   z_q     = z + sg[e_codes − z]                                    (straight-through estimator)
//   loss    = ‖sg[z] − z_emb‖²  +  β · ‖sg[z_emb] − z‖²             (codebook term + β · commitment)
// β sits on the COMMITMENT term, as in the seed and VQ-VAE. taming's VectorQuantizer2 with legacy=True
// (its default) puts β on the codebook term instead; we do not copy that.
// Names: `quantize.embedding.weight` [K, D] (taming), plus `quantize.cluster_size` [K] and
// `quantize.embed_avg` [K, D] buffers when EMA is on (then the codebook is a buffer, not a parameter).
// Training-mode forwards also run the health machinery (k-means init, EMA, dead-code restarts);
// eval-mode forwards change nothing.
// Legend: N batch, h×w code grid, M = N·h·w vectors, D code dim, K codebook size.

import { add, div, mul, sqrt, square, sub } from '../../engine/ops/elementwise.js';
import { embedding } from '../../engine/ops/embedding.js';
import { mseLoss } from '../../engine/ops/loss.js';
import { codebookArgmin } from '../../engine/ops/quantize.js';
import { sum } from '../../engine/ops/reduce.js';
import { reshape } from '../../engine/ops/shape.js';
import { Generator, type GeneratorState } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor, full, noGrad, rand } from '../../engine/tensor.js';
import { Module } from '../../nn/module.js';
import { emaUpdate, kmeans, normalizeRowsInPlace, sampleRows } from './codebook.js';
import type { QuantizerOptions } from './config.js';

/** The codebook table under taming's name `embedding.weight`: a parameter, or a buffer under EMA. */
class CodebookTable extends Module {
  readonly weight: Tensor; // [K, D]
  constructor(k: number, d: number, trainable: boolean, g: Generator) {
    super();
    const w = rand([k, d], { low: -1 / k, high: 1 / k, generator: g }); // taming: uniform(−1/K, 1/K)
    this.weight = trainable ? this.addParameter('weight', w) : this.addBuffer('weight', w);
  }
}

export interface QuantizeResult {
  /** [N, h, w, D] straight-through codes z + sg[z_emb − z]: values of z_emb, gradient of z. */
  zq: Tensor;
  /** i32 [N, h, w] code indices. */
  codes: Tensor;
  /** [N, h, w, D] what was quantized (l2-normalised when the codes are cosine). */
  z: Tensor;
  /** [] mean ‖sg[z] − z_emb‖²: trains the codebook only (detached, and not in `loss`, under EMA). */
  codebookLoss: Tensor;
  /** [] mean ‖sg[z_emb] − z‖²: trains the encoder only. */
  commitmentLoss: Tensor;
  /** [] codebookLoss + β·commitmentLoss (β·commitmentLoss alone under EMA). */
  loss: Tensor;
}

/** What a training run must save to resume the health machinery exactly (JSON-safe). */
export interface QuantizerHealthState {
  /** k-means initialisation done (or weights loaded, which makes it moot). */
  initialised: boolean;
  /** [K] training steps since each code was last used. */
  unusedSteps: number[];
  generator: GeneratorState;
}

/** l2-normalises the rows of x [M, D] differentiably: x / √(Σx² + ε). */
function l2Rows(x: Tensor): Tensor {
  return div(x, sqrt(add(sum(square(x), -1, true), 1e-12))); // [M, D]
}

export class VectorQuantizer extends Module {
  readonly embedding: CodebookTable;
  /** EMA buffers (null unless opts.ema). */
  readonly clusterSize: Tensor | null; // [K]
  readonly embedAvg: Tensor | null; // [K, D]
  private initialised: boolean;
  private readonly pending: Float32Array[] = []; // encoder outputs pooled for k-means
  private readonly unused: Int32Array; // [K]
  private readonly rng: Generator;

  constructor(readonly nEmbed: number, readonly embedDim: number, readonly beta: number, readonly opts: QuantizerOptions,
    init: { generator: Generator }) {
    super();
    this.embedding = this.addModule('embedding', new CodebookTable(nEmbed, embedDim, !opts.ema, init.generator));
    if (opts.ema) {
      // cluster_size starts at 1 with embed_avg = weight, i.e. every code "has seen itself once": an unused
      // code then decays numerator and denominator alike and stays put. (Zeros, as in taming's
      // EMAVectorQuantizer, make an unused code's weight explode as embed_avg / ~ε after the first step.)
      this.clusterSize = this.addBuffer('cluster_size', full([nEmbed], 1));
      this.embedAvg = this.addBuffer('embed_avg', new Tensor(Float32Array.from(this.embedding.weight.data as Float32Array), [nEmbed, embedDim]));
    } else {
      this.clusterSize = null;
      this.embedAvg = null;
    }
    this.initialised = !opts.kmeansInit;
    this.unused = new Int32Array(nEmbed);
    this.rng = new Generator(opts.seed);
  }

  /** The codes as used for distances and lookup: the table, row-normalised for cosine codes. Differentiable. */
  codebook(): Tensor { // [K, D]
    const w = this.embedding.weight;
    return this.opts.l2Normalised ? l2Rows(w) : w;
  }

  /** z_emb for codes (i32 [...]) → [..., D]; what decodeCodes feeds the decoder. */
  lookup(codes: Tensor): Tensor {
    if (codes.dtype !== 'i32') throw new TypeError(`VectorQuantizer.lookup: codes must be i32, got ${codes.dtype} ${fmtShape(codes.shape)}`);
    return embedding(codes, this.codebook()); // [..., D]
  }

  /** Nearest codes of z [N, h, w, D] → i32 [N, h, w], with no graph and no training side effects. */
  nearest(z: Tensor): Tensor {
    this.checkInput(z);
    return noGrad(() => {
      let flat = reshape(z, [-1, this.embedDim]);                     // [M, D]
      if (this.opts.l2Normalised) flat = l2Rows(flat);
      return reshape(codebookArgmin(flat, this.codebook()).indices, z.shape.slice(0, 3)); // [N, h, w]
    });
  }

  forward(z: Tensor): QuantizeResult { // z [N, h, w, D]
    this.checkInput(z);
    const gridShape = z.shape.slice(0, 3);
    let flat = reshape(z, [-1, this.embedDim]);                       // [M, D]
    if (this.opts.l2Normalised) flat = l2Rows(flat);                  // [M, D] unit rows
    const zd = flat.detach();                                         // [M, D] sg[z]
    if (this.training && !this.initialised) this.collectForKmeans(zd);

    const cb = this.codebook();                                       // [K, D]
    const codes = codebookArgmin(zd, cb.detach()).indices;            // i32 [M]
    const zEmb = embedding(codes, cb);                                // [M, D], gradient → codebook only
    const codebookLoss = mseLoss(zEmb, zd);                           // [] ‖sg[z] − z_emb‖²
    const commitmentLoss = mseLoss(flat, zEmb.detach());              // [] ‖sg[z_emb] − z‖²
    const committed = mul(commitmentLoss, this.beta);                 // [] β on the commitment term
    const loss = this.opts.ema ? committed : add(codebookLoss, committed);
    const zq = add(flat, sub(zEmb, flat).detach());                   // [M, D] straight-through

    // Health updates write the table in place after the graph above was built. Safe: zEmb has its own
    // storage, the lookup's backward reads no weights, and rows that get rewritten (all under EMA,
    // where the table takes no gradient; unused ones on a restart) receive zero gradient this step.
    if (this.training) noGrad(() => this.afterAssignment(zd, codes.data as Int32Array));
    return {
      zq: reshape(zq, z.shape),                                       // [N, h, w, D]
      codes: reshape(codes, gridShape),                               // [N, h, w]
      z: reshape(flat, z.shape),                                      // [N, h, w, D]
      codebookLoss: this.opts.ema ? codebookLoss.detach() : codebookLoss,
      commitmentLoss,
      loss,
    };
  }

  private checkInput(z: Tensor): void {
    if (z.rank !== 4 || z.shape[3] !== this.embedDim) throw new RangeError(`VectorQuantizer: z must be [N, h, w, ${this.embedDim}], got ${fmtShape(z.shape)}`);
    if (z.dtype !== 'f32') throw new TypeError(`VectorQuantizer: z must be f32 (the codebook's dtype), got ${z.dtype}`);
  }

  // ---------------------------------------------------------------- codebook health (training only)

  private get weightData(): Float32Array { return this.embedding.weight.data as Float32Array; }

  /** Pools encoder outputs; after `kmeansBatches` batches, replaces the codebook by k-means centroids. */
  private collectForKmeans(zd: Tensor): void {
    this.pending.push(Float32Array.from(zd.data as Float32Array));
    if (this.pending.length < this.opts.kmeansBatches) return;
    const all = new Float32Array(this.pending.reduce((n, a) => n + a.length, 0)); // [M_total, D]
    let at = 0;
    for (const a of this.pending) { all.set(a, at); at += a.length; }
    this.pending.length = 0;
    const { centroids } = kmeans(all, this.embedDim, this.nEmbed, this.opts.kmeansIters, this.rng, this.opts.l2Normalised);
    this.setCodes(Int32Array.from({ length: this.nEmbed }, (_, i) => i), centroids);
    this.initialised = true;
  }

  /** Overwrites codes `ids` with rows of `values` [ids.length, D] (EMA buffers restart at one use). */
  private setCodes(ids: Int32Array, values: Float32Array): void {
    const d = this.embedDim, w = this.weightData;
    ids.forEach((k, i) => {
      const row = values.subarray(i * d, i * d + d);
      w.set(row, k * d);
      if (this.embedAvg !== null && this.clusterSize !== null) {
        (this.embedAvg.data as Float32Array).set(row, k * d);
        (this.clusterSize.data as Float32Array)[k] = 1;
      }
      this.unused[k] = 0;
    });
  }

  /** EMA update, then dead-code bookkeeping and restarts, from this step's assignments. */
  private afterAssignment(zd: Tensor, codes: Int32Array): void {
    const d = this.embedDim;
    const z = zd.data as Float32Array; // [M, D]
    if (this.opts.ema && this.clusterSize !== null && this.embedAvg !== null) {
      emaUpdate({ weight: this.weightData, clusterSize: this.clusterSize.data as Float32Array, embedAvg: this.embedAvg.data as Float32Array },
        z, codes, d, this.opts.emaDecay, this.opts.emaEps);
    }
    const seen = new Uint8Array(this.nEmbed);
    for (const c of codes) seen[c] = 1;
    const dead: number[] = [];
    for (let k = 0; k < this.nEmbed; k++) {
      this.unused[k] = seen[k] ? 0 : this.unused[k]! + 1;
      if (this.opts.deadCodeRestart && this.unused[k]! >= this.opts.deadCodeSteps) dead.push(k);
    }
    if (dead.length === 0) return;
    // Restart each dead code at a random encoder output of this batch (distinct ones while they last).
    const rows = sampleRows(codes.length, dead.length, this.rng);
    const values = new Float32Array(dead.length * d);
    rows.forEach((r, i) => values.set(z.subarray(r * d, r * d + d), i * d));
    if (this.opts.l2Normalised) normalizeRowsInPlace(values, d);
    this.setCodes(Int32Array.from(dead), values);
  }

  /** Marks the codebook as initialised (weights came from a checkpoint: no k-means over them). */
  markInitialised(): void { this.initialised = true; this.pending.length = 0; }

  get isInitialised(): boolean { return this.initialised; }

  /** Training steps since each code was last used (a copy). */
  unusedSteps(): Int32Array { return Int32Array.from(this.unused); }

  healthState(): QuantizerHealthState {
    return { initialised: this.initialised, unusedSteps: Array.from(this.unused), generator: this.rng.getState() };
  }

  loadHealthState(s: QuantizerHealthState): void {
    if (typeof s?.initialised !== 'boolean' || !Array.isArray(s.unusedSteps) || s.unusedSteps.length !== this.nEmbed) {
      throw new TypeError(`VectorQuantizer.loadHealthState: expected { initialised, unusedSteps: [${this.nEmbed} integers], generator }`);
    }
    this.rng.setState(s.generator);
    this.unused.set(s.unusedSteps);
    this.initialised = s.initialised;
    this.pending.length = 0;
  }
}
