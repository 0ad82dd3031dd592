// Codebook bookkeeping that is not autograd: k-means initialisation, EMA updates, dead-code restarts
// and usage statistics over a whole pass. Plain arrays in, plain arrays out; the quantizer owns state.
// Legend: M vectors (N·h·w encoder outputs), D code dim, K codebook size.

import { codebookArgmin } from '../../engine/ops/quantize.js';
import type { Generator } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';

/** Scales each D-vector of a [rows, D] array to unit length in place (zero rows stay zero). */
export function normalizeRowsInPlace(a: Float32Array, d: number): Float32Array {
  for (let o = 0; o < a.length; o += d) {
    let s = 0;
    for (let t = o; t < o + d; t++) s += a[t]! * a[t]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let t = o; t < o + d; t++) a[t] = a[t]! * inv;
  }
  return a;
}

/** k distinct row indices of [0, m) (with replacement when m < k), drawn from g. */
export function sampleRows(m: number, k: number, g: Generator): Int32Array {
  const out = new Int32Array(k);
  if (m < k) { for (let i = 0; i < k; i++) out[i] = g.int(m); return out; }
  const perm = Int32Array.from({ length: m }, (_, i) => i); // partial Fisher-Yates: only the first k swaps
  for (let i = 0; i < k; i++) {
    const j = i + g.int(m - i);
    const t = perm[i]!; perm[i] = perm[j]!; perm[j] = t;
    out[i] = perm[i]!;
  }
  return out;
}

export interface KMeansResult {
  /** [K, D] centroids. */
  centroids: Float32Array;
  /** [K] points assigned to each centroid by the last assignment step. */
  counts: Float64Array;
}

/**
 * k-means++ seeding (Arthur & Vassilvitskii 2007): the first centroid is a uniform random point, each
 * next one a point drawn with probability ∝ its squared distance to the nearest centroid so far.
 * Plain random seeding often puts two centroids in one cluster, which Lloyd iterations cannot undo.
 * Cost O(M·K·D), about one Lloyd iteration.
 */
export function kmeansPlusPlus(data: Float32Array, d: number, k: number, g: Generator): Float32Array {
  const m = data.length / d;
  const centroids = new Float32Array(k * d); // [K, D]
  const best = new Float64Array(m).fill(Infinity); // [M] squared distance to the nearest centroid so far
  let pick = g.int(m);
  for (let c = 0; c < k; c++) {
    const row = data.subarray(pick * d, pick * d + d);
    centroids.set(row, c * d);
    let total = 0;
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let t = 0, o = i * d; t < d; t++) { const diff = data[o + t]! - row[t]!; s += diff * diff; }
      if (s < best[i]!) best[i] = s;
      total += best[i]!;
    }
    if (total <= 0) { pick = g.int(m); continue; } // every point is already a centroid (M ≤ K or duplicates)
    let u = g.uniform() * total;
    pick = m - 1;
    for (let i = 0; i < m; i++) { u -= best[i]!; if (u < 0) { pick = i; break; } }
  }
  return centroids;
}

/**
 * Lloyd's k-means of data [M, D] into k centroids, seeded by k-means++, then `iters` rounds of
 * (nearest centroid, mean of its points). An empty cluster is re-seeded from a random point.
 * `spherical` keeps the centroids unit length (for l2-normalised codes). Seeded through g.
 */
export function kmeans(data: Float32Array, d: number, k: number, iters: number, g: Generator, spherical = false): KMeansResult {
  const m = data.length / d;
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`kmeans: data of ${data.length} values is not a non-empty [M, ${d}] array`);
  const centroids = kmeansPlusPlus(data, d, k, g); // [K, D]
  if (spherical) normalizeRowsInPlace(centroids, d);
  const counts = new Float64Array(k);
  const x = new Tensor(data, [m, d]);
  for (let it = 0; it < iters; it++) {
    const codes = codebookArgmin(x, new Tensor(centroids, [k, d])).indices.data as Int32Array; // [M]
    const sums = new Float64Array(k * d); // [K, D]
    counts.fill(0);
    for (let i = 0; i < m; i++) {
      const c = codes[i]!;
      counts[c]!++;
      for (let t = 0; t < d; t++) sums[c * d + t] += data[i * d + t]!;
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) { const r = g.int(m); centroids.set(data.subarray(r * d, r * d + d), c * d); continue; }
      for (let t = 0; t < d; t++) centroids[c * d + t] = sums[c * d + t]! / counts[c]!;
    }
    if (spherical) normalizeRowsInPlace(centroids, d);
  }
  return { centroids, counts };
}

/** The EMA state of a codebook: weight = embed_avg / Laplace-smoothed cluster_size. Updated in place. */
export interface EmaState {
  weight: Float32Array;      // [K, D]
  clusterSize: Float32Array; // [K]
  embedAvg: Float32Array;    // [K, D]
}

/**
 * One EMA step (VQ-VAE-2, Sonnet's VectorQuantizerEMA) from a batch z [M, D] assigned to codes [M]:
 *   clusterSize ← decay·clusterSize + (1 − decay)·n_k;   embedAvg ← decay·embedAvg + (1 − decay)·Σ_{i→k} z_i
 *   weight_k = embedAvg_k / ((clusterSize_k + ε) / (n + K·ε) · n),  n = Σ_k clusterSize_k.
 */
export function emaUpdate(s: EmaState, z: Float32Array, codes: Int32Array, d: number, decay: number, eps: number): void {
  const k = s.clusterSize.length;
  const counts = new Float64Array(k), sums = new Float64Array(k * d);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    counts[c]!++;
    for (let t = 0; t < d; t++) sums[c * d + t] += z[i * d + t]!;
  }
  let n = 0;
  for (let c = 0; c < k; c++) { s.clusterSize[c] = decay * s.clusterSize[c]! + (1 - decay) * counts[c]!; n += s.clusterSize[c]!; }
  for (let c = 0; c < k; c++) {
    const smoothed = ((s.clusterSize[c]! + eps) / (n + k * eps)) * n;
    for (let t = 0; t < d; t++) {
      const j = c * d + t;
      s.embedAvg[j] = decay * s.embedAvg[j]! + (1 - decay) * sums[j]!;
      s.weight[j] = s.embedAvg[j]! / smoothed;
    }
  }
}

/** Distribution summary of code usage. */
export interface UsageSummary {
  /** Code occurrences counted. */
  total: number;
  /** Distinct codes seen at least once. */
  used: number;
  /** used / K. */
  fraction: number;
  /** exp(entropy) of the empirical code distribution: K when uniform, 1 when one code takes all. */
  perplexity: number;
}

/** exp(−Σ p log p) of counts (natural log); 0 for an empty histogram. */
export function perplexityOf(counts: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return 0;
  let h = 0;
  for (let i = 0; i < counts.length; i++) { const p = counts[i]! / total; if (p > 0) h -= p * Math.log(p); }
  return Math.exp(h);
}

/**
 * Counts codes over many batches, so usage and perplexity describe a whole pass over a data set,
 * not one batch (a batch of 8 images cannot show more than 8·h·w codes).
 */
export class CodebookUsage {
  readonly counts: Float64Array; // [K]
  constructor(readonly nEmbed: number) {
    if (!Number.isInteger(nEmbed) || nEmbed < 1) throw new RangeError(`CodebookUsage: nEmbed must be a positive integer, got ${nEmbed}`);
    this.counts = new Float64Array(nEmbed);
  }

  /** Adds codes (i32 tensor of any shape, or an Int32Array). */
  add(codes: Tensor | Int32Array): this {
    const a = codes instanceof Tensor ? codes.as('i32') : codes;
    for (let i = 0; i < a.length; i++) {
      const c = a[i]!;
      if (c < 0 || c >= this.nEmbed) throw new RangeError(`CodebookUsage: code ${c} at position ${i} is outside [0, ${this.nEmbed})`);
      this.counts[c]!++;
    }
    return this;
  }

  /** Adds another accumulator's counts (e.g. from parallel workers). */
  merge(other: CodebookUsage): this {
    if (other.nEmbed !== this.nEmbed) throw new RangeError(`CodebookUsage.merge: codebook sizes differ (${this.nEmbed} vs ${other.nEmbed})`);
    for (let i = 0; i < this.nEmbed; i++) this.counts[i] += other.counts[i]!;
    return this;
  }

  reset(): this { this.counts.fill(0); return this; }

  summary(): UsageSummary {
    let total = 0, used = 0;
    for (const c of this.counts) { total += c; if (c > 0) used++; }
    return { total, used, fraction: used / this.nEmbed, perplexity: perplexityOf(this.counts) };
  }
}
