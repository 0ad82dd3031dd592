// Layer norm (last axis) and group norm (channels-last).
// Legend: R rows, C normalised features; N batch, P = H·W pixels, C channels, G groups, Cg = C/G.
//
// Both use the biased variance (divide by the element count), like PyTorch, and keep mean and
// rstd = 1/√(var + eps) per normalised group for the backward. With x̂ = (x − mean)·rstd and
// ĝ = g·gamma, the input gradient over a group of M elements is
//   dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ·x̂)).

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { fmtShape, numel } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';

export interface NormStats { y: FloatArray; mean: FloatArray; rstd: FloatArray }
export interface NormGrads { dx: FloatArray; dgamma: FloatArray | null; dbeta: FloatArray | null }

declare module '../kernels.js' {
  interface KernelMap {
    /** y = (x − mean)·rstd·gamma + beta per row; mean/rstd have R entries (kept for backward). */
    layerNorm(x: FloatArray, gamma: FloatArray | null, beta: FloatArray | null, rows: number, cols: number, eps: number): NormStats;
    layerNormBackward(x: FloatArray, gamma: FloatArray | null, mean: FloatArray, rstd: FloatArray, g: FloatArray,
      rows: number, cols: number, hasBeta: boolean): NormGrads;
    /** x is [N, P, C] channels-last; statistics per (n, group) over P × C/G; mean/rstd have N·G entries. */
    groupNorm(x: FloatArray, gamma: FloatArray | null, beta: FloatArray | null, n: number, p: number, c: number, groups: number, eps: number): NormStats;
    groupNormBackward(x: FloatArray, gamma: FloatArray | null, mean: FloatArray, rstd: FloatArray, g: FloatArray,
      n: number, p: number, c: number, groups: number, hasBeta: boolean): NormGrads;
  }
}

// ---------------------------------------------------------------- reference kernels
// Layer norm is group norm with N = R, P = 1, G = 1, so both share one pair of loops.

defineKernel('layerNorm', (x, gamma, beta, rows, cols, eps) => groupNormRef(x, gamma, beta, rows, 1, cols, 1, eps));
defineKernel('layerNormBackward', (x, gamma, mean, rstd, g, rows, cols, hasBeta) =>
  groupNormBackwardRef(x, gamma, mean, rstd, g, rows, 1, cols, 1, hasBeta));
defineKernel('groupNorm', (x, gamma, beta, n, p, c, groups, eps) => groupNormRef(x, gamma, beta, n, p, c, groups, eps));
defineKernel('groupNormBackward', (x, gamma, mean, rstd, g, n, p, c, groups, hasBeta) =>
  groupNormBackwardRef(x, gamma, mean, rstd, g, n, p, c, groups, hasBeta));

function groupNormRef(x: FloatArray, gamma: FloatArray | null, beta: FloatArray | null,
  n: number, p: number, c: number, groups: number, eps: number): NormStats {
  const cg = c / groups, m = p * cg;
  const y = allocLike(x, n * p * c);        // [N, P, C]
  const mean = allocLike(x, n * groups);    // [N, G]
  const rstd = allocLike(x, n * groups);    // [N, G]
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < groups; gi++) {
      const c0 = gi * cg;
      // Two passes (mean, then centred squares): stable where E[x²] − E[x]² would cancel.
      let s = 0;
      for (let pi = 0; pi < p; pi++) { const o = (b * p + pi) * c + c0; for (let k = 0; k < cg; k++) s += x[o + k]!; }
      const mu = s / m;
      let v = 0;
      for (let pi = 0; pi < p; pi++) { const o = (b * p + pi) * c + c0; for (let k = 0; k < cg; k++) { const d = x[o + k]! - mu; v += d * d; } }
      const rs = 1 / Math.sqrt(v / m + eps);
      mean[b * groups + gi] = mu; rstd[b * groups + gi] = rs;
      for (let pi = 0; pi < p; pi++) {
        const o = (b * p + pi) * c + c0;
        for (let k = 0; k < cg; k++) {
          const xh = (x[o + k]! - mu) * rs;
          y[o + k] = xh * (gamma === null ? 1 : gamma[c0 + k]!) + (beta === null ? 0 : beta[c0 + k]!);
        }
      }
    }
  }
  return { y, mean, rstd };
}

function groupNormBackwardRef(x: FloatArray, gamma: FloatArray | null, mean: FloatArray, rstd: FloatArray, g: FloatArray,
  n: number, p: number, c: number, groups: number, hasBeta: boolean): NormGrads {
  const cg = c / groups, m = p * cg;
  const dx = allocLike(x, n * p * c);                       // [N, P, C]
  const dgamma = gamma === null ? null : allocLike(x, c);   // [C]
  const dbeta = hasBeta ? allocLike(x, c) : null;           // [C]
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < groups; gi++) {
      const c0 = gi * cg, mu = mean[b * groups + gi]!, rs = rstd[b * groups + gi]!;
      let sg = 0, sgx = 0; // Σ ĝ and Σ ĝ·x̂ over the group
      for (let pi = 0; pi < p; pi++) {
        const o = (b * p + pi) * c + c0;
        for (let k = 0; k < cg; k++) {
          const gv = g[o + k]!, xh = (x[o + k]! - mu) * rs;
          const gh = gv * (gamma === null ? 1 : gamma[c0 + k]!);
          sg += gh; sgx += gh * xh;
          if (dgamma !== null) dgamma[c0 + k] += gv * xh;
          if (dbeta !== null) dbeta[c0 + k] += gv;
        }
      }
      const mg = sg / m, mgx = sgx / m;
      for (let pi = 0; pi < p; pi++) {
        const o = (b * p + pi) * c + c0;
        for (let k = 0; k < cg; k++) {
          const xh = (x[o + k]! - mu) * rs;
          const gh = g[o + k]! * (gamma === null ? 1 : gamma[c0 + k]!);
          dx[o + k] = rs * (gh - mg - xh * mgx);
        }
      }
    }
  }
  return { dx, dgamma, dbeta };
}

// ---------------------------------------------------------------- differentiable ops

function checkAffine(op: string, x: Tensor, t: Tensor | null, name: string, c: number): void {
  if (t === null) return;
  if (t.dtype !== x.dtype) throw new TypeError(`${op}: ${name} is ${t.dtype} but x is ${x.dtype}`);
  if (t.rank !== 1 || t.shape[0] !== c) throw new RangeError(`${op}: ${name} must be [${c}], got ${fmtShape(t.shape)}`);
}

function checkEps(op: string, eps: number): void {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${String(eps)}`);
}

/** Normalises x [..., C] over its last axis, then scales by gamma [C] and shifts by beta [C] (either may be null). */
export function layerNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  const op = `layerNorm(x ${fmtShape(x.shape)})`;
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${op}: x must be f32 or f64, got ${x.dtype}`);
  if (x.rank === 0) throw new RangeError(`${op}: x must have rank ≥ 1`);
  const cols = x.shape[x.rank - 1]!;
  if (cols === 0) throw new RangeError(`${op}: the normalised axis is empty`);
  checkAffine(op, x, gamma, 'gamma', cols);
  checkAffine(op, x, beta, 'beta', cols);
  checkEps(op, eps);
  const rows = x.size / cols;
  const xd = x.data as FloatArray, gd = gamma === null ? null : gamma.data as FloatArray;
  const { y, mean, rstd } = kernel('layerNorm')(xd, gd, beta === null ? null : beta.data as FloatArray, rows, cols, eps);
  const out = new Tensor(y, x.shape); // [..., C]

  const inputs = [x, ...(gamma === null ? [] : [gamma]), ...(beta === null ? [] : [beta])];
  return recordOp('layerNorm', out, inputs, (g) => { // g [..., C]; saved: x, mean, rstd (not y)
    const r = kernel('layerNormBackward')(xd, gd, mean, rstd, g.data as FloatArray, rows, cols, beta !== null && needsGrad(beta));
    return affineGrads(x, gamma, beta, r);
  });
}

/**
 * Group norm of channels-last x [N, ..., C] (every middle dim is a pixel: P = their product; rank ≥ 2).
 * Statistics per (sample, group of C/G consecutive channels); then per-channel gamma [C] / beta [C].
 */
export function groupNorm(x: Tensor, groups: number, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  const op = `groupNorm(x ${fmtShape(x.shape)}, groups ${String(groups)})`;
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${op}: x must be f32 or f64, got ${x.dtype}`);
  if (x.rank < 2) throw new RangeError(`${op}: x must be [N, ..., C] with rank ≥ 2`);
  const n = x.shape[0]!, c = x.shape[x.rank - 1]!, p = numel(x.shape.slice(1, -1));
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`${op}: groups must be an integer ≥ 1`);
  if (c % groups !== 0) throw new RangeError(`${op}: ${c} channels are not divisible into ${groups} groups`);
  if (p === 0) throw new RangeError(`${op}: there are no pixels to normalise over`);
  checkAffine(op, x, gamma, 'gamma', c);
  checkAffine(op, x, beta, 'beta', c);
  checkEps(op, eps);
  const xd = x.data as FloatArray, gd = gamma === null ? null : gamma.data as FloatArray;
  const { y, mean, rstd } = kernel('groupNorm')(xd, gd, beta === null ? null : beta.data as FloatArray, n, p, c, groups, eps);
  const out = new Tensor(y, x.shape); // [N, ..., C]

  const inputs = [x, ...(gamma === null ? [] : [gamma]), ...(beta === null ? [] : [beta])];
  return recordOp('groupNorm', out, inputs, (g) => { // g [N, ..., C]; saved: x, mean, rstd (not y)
    const r = kernel('groupNormBackward')(xd, gd, mean, rstd, g.data as FloatArray, n, p, c, groups, beta !== null && needsGrad(beta));
    return affineGrads(x, gamma, beta, r);
  });
}

/** Kernel gradients → one tensor per recorded input (x, then gamma and beta when present). */
function affineGrads(x: Tensor, gamma: Tensor | null, beta: Tensor | null, r: NormGrads): Array<Tensor | null> {
  const grads: Array<Tensor | null> = [new Tensor(r.dx, x.shape)];                                  // [..., C]
  if (gamma !== null) grads.push(r.dgamma === null ? null : new Tensor(r.dgamma, gamma.shape));   // [C]
  if (beta !== null) grads.push(r.dbeta === null ? null : new Tensor(r.dbeta, beta.shape));       // [C]
  return grads;
}
