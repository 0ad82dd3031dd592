// Vector quantization support: nearest codebook entries and squared distances.
// Legend: M vectors to quantize (e.g. N·h·w encoder outputs), D code dim, K codebook size.
//
// Distances use ‖z‖² − 2 z·c + ‖c‖², so the costly z·cᵀ part is one [M, D]·[D, K] matmul the native
// backend accelerates. That matmul always runs at 'fp32' whatever the global precision: bf16 rounding
// would flip near-ties between codes, and code choice is discrete (no gradient smooths it over).

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel, type Precision } from '../kernels.js';
import { fmtShape } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';

declare module '../kernels.js' {
  interface KernelMap {
    /**
     * Row-wise argmin of dist[i, j] = zSq[i] − 2·dots[i, j] + cSq[j] over j (dots [M, K], zSq [M], cSq [K]).
     * Ties go to the lowest index. distances [M] are clamped at 0 (cancellation can leave −ε);
     * their array type follows `dots` (f32 or f64).
     */
    codebookArgminRows(dots: FloatArray, zSq: FloatArray, cSq: FloatArray, m: number, k: number): { indices: Int32Array; distances: FloatArray };
  }
}

const FP32: Precision = 'fp32';

defineKernel('codebookArgminRows', (dots, zSq, cSq, m, k) => {
  const indices = new Int32Array(m);   // [M]
  const distances = allocLike(dots, m); // [M]
  for (let i = 0; i < m; i++) {
    const row = i * k;
    let best = 0, bestD = cSq[0]! - 2 * dots[row]!;
    for (let j = 1; j < k; j++) {
      const dj = cSq[j]! - 2 * dots[row + j]!; // ‖z‖² is the same for the whole row: added once below
      if (dj < bestD) { bestD = dj; best = j; }  // strict <: ties keep the lower index
    }
    indices[i] = best;
    distances[i] = Math.max(0, zSq[i]! + bestD);
  }
  return { indices, distances };
});

/** Σ_d a[i, d]² for each row of a [rows, D], in doubles; `like` picks the array type. */
function rowSquaredNorms(a: FloatArray, rows: number, dim: number): FloatArray {
  const out = allocLike(a, rows); // [rows]
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = i * dim, e = j + dim; j < e; j++) s += a[j]! * a[j]!;
    out[i] = s;
  }
  return out;
}

function checkPair(op: string, z: Tensor, codebook: Tensor): { m: number; k: number; d: number } {
  const where = `${op}(z ${fmtShape(z.shape)}, codebook ${fmtShape(codebook.shape)})`;
  for (const [name, t] of [['z', z], ['codebook', codebook]] as const) {
    if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`${where}: ${name} must be f32 or f64, got ${t.dtype}`);
    if (t.rank !== 2) throw new RangeError(`${where}: ${name} must be 2-D`);
  }
  if (z.dtype !== codebook.dtype) throw new TypeError(`${where}: cannot mix ${z.dtype} and ${codebook.dtype}`);
  const [m, d] = z.shape as [number, number];
  const [k, dc] = codebook.shape as [number, number];
  if (d !== dc) throw new RangeError(`${where}: code dims differ (${d} vs ${dc})`);
  if (k < 1) throw new RangeError(`${where}: the codebook is empty`);
  return { m, k, d };
}

/** dots [M, K] = z [M, D] · codebook [K, D]ᵀ, at fp32 (see the file header). */
function dotsWithCodes(z: Tensor, codebook: Tensor, m: number, k: number, d: number): FloatArray {
  return kernel('matmul')(z.data as FloatArray, codebook.data as FloatArray,
    { batch: 1, m, k: d, n: k, transA: false, transB: true, strideA: 0, strideB: 0 }, FP32);
}

export interface CodebookArgmin {
  /** i32 [M]: index of the nearest code (ties → lowest index). */
  indices: Tensor;
  /** [M] (dtype of z): squared Euclidean distance to that code, ≥ 0. */
  distances: Tensor;
}

/**
 * Nearest code for each row of z [M, D] in codebook [K, D] by squared Euclidean distance.
 * Not differentiable (the straight-through estimator lives in the VQ layer). Non-finite inputs throw,
 * because a NaN distance would silently pick code 0.
 */
export function codebookArgmin(z: Tensor, codebook: Tensor): CodebookArgmin {
  const { m, k, d } = checkPair('codebookArgmin', z, codebook);
  for (const [name, t] of [['z', z], ['codebook', codebook]] as const) {
    const a = t.data as FloatArray;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i]!)) throw new RangeError(`codebookArgmin: ${name} ${fmtShape(t.shape)} has a non-finite value at element ${i}`);
    }
  }
  const dots = dotsWithCodes(z, codebook, m, k, d);                     // [M, K]
  const zSq = rowSquaredNorms(z.data as FloatArray, m, d);              // [M]
  const cSq = rowSquaredNorms(codebook.data as FloatArray, k, d);       // [K]
  const r = kernel('codebookArgminRows')(dots, zSq, cSq, m, k);
  const dist = allocLike(z.data as FloatArray, m);                      // [M] in z's dtype
  dist.set(r.distances);
  return { indices: new Tensor(r.indices, [m]), distances: new Tensor(dist, [m]) };
}

/**
 * All squared distances ‖z_i − c_j‖² = ‖z_i‖² − 2 z_i·c_j + ‖c_j‖²: z [M, D], codebook [K, D] → [M, K].
 * Differentiable in both inputs; not clamped (tiny negatives from cancellation are possible).
 */
export function squaredDistances(z: Tensor, codebook: Tensor): Tensor {
  const { m, k, d } = checkPair('squaredDistances', z, codebook);
  const zd = z.data as FloatArray, cd = codebook.data as FloatArray;
  const dots = dotsWithCodes(z, codebook, m, k, d);   // [M, K]
  const zSq = rowSquaredNorms(zd, m, d);              // [M]
  const cSq = rowSquaredNorms(cd, k, d);              // [K]
  const out = allocLike(zd, m * k);                   // [M, K]
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) out[i * k + j] = zSq[i]! - 2 * dots[i * k + j]! + cSq[j]!;

  return recordOp('squaredDistances', new Tensor(out, [m, k]), [z, codebook], (g) => { // g [M, K]
    if (g.dtype !== 'f32' && g.dtype !== 'f64') throw new TypeError(`squaredDistances backward: expected a float gradient, got ${g.dtype}`);
    const gd = g.data as FloatArray;
    const mm = (a: FloatArray, b: FloatArray, rows: number, inner: number, cols: number, transA: boolean): FloatArray =>
      kernel('matmul')(a, b, { batch: 1, m: rows, k: inner, n: cols, transA, transB: false, strideA: 0, strideB: 0 }, FP32);
    // ∂/∂z_i = 2 (Σ_j g_ij) z_i − 2 Σ_j g_ij c_j ;  ∂/∂c_j = 2 (Σ_i g_ij) c_j − 2 Σ_i g_ij z_i
    let dz: Tensor | null = null, dc: Tensor | null = null;
    if (needsGrad(z)) {
      const gc = mm(gd, cd, m, k, d, false); // [M, D] = g · C
      const a = allocLike(zd, m * d);        // [M, D]
      for (let i = 0; i < m; i++) {
        let rs = 0;
        for (let j = 0; j < k; j++) rs += gd[i * k + j]!;
        for (let t = 0; t < d; t++) a[i * d + t] = 2 * (rs * zd[i * d + t]! - gc[i * d + t]!);
      }
      dz = new Tensor(a, z.shape);
    }
    if (needsGrad(codebook)) {
      const gz = mm(gd, zd, k, m, d, true);  // [K, D] = gᵀ · Z
      const cs = new Float64Array(k);        // [K] column sums of g
      for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) cs[j] += gd[i * k + j]!;
      const a = allocLike(cd, k * d);        // [K, D]
      for (let j = 0; j < k; j++) for (let t = 0; t < d; t++) a[j * d + t] = 2 * (cs[j]! * cd[j * d + t]! - gz[j * d + t]!);
      dc = new Tensor(a, codebook.shape);
    }
    return [dz, dc];
  });
}
