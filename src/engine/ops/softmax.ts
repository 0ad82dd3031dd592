// Softmax and log-softmax over the last axis.
// Legend: R rows (all leading dims folded), C classes (last dim).

import type { FloatArray } from '../dtype.js';

declare module '../kernels.js' {
  interface KernelMap {
    /** y[r, :] = softmax(x[r, :]) (or log-softmax when log) for R rows of C. */
    softmax(x: FloatArray, rows: number, cols: number, log: boolean): FloatArray;
    /** dx from y (the forward output) and g. softmax: y·(g − Σg·y); log-softmax: g − exp(y)·Σg. */
    softmaxBackward(y: FloatArray, g: FloatArray, rows: number, cols: number, log: boolean): FloatArray;
  }
}

// TODO(helper): reference kernels + differentiable ops.
