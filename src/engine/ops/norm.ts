// Layer norm (last axis) and group norm (channels-last).
// Legend: R rows, C normalised features; N batch, P = H·W pixels, C channels, G groups.

import type { FloatArray } from '../dtype.js';

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

// TODO(helper): reference kernels + differentiable ops.
