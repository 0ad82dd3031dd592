// Softmax and log-softmax over the last axis.
// Legend: R rows (all leading dims folded), C classes (last dim).
//
// Numerically stable: every row subtracts its max before exponentiating. A row of all −∞ has no
// defined softmax and yields NaN, exactly like PyTorch (use attention's masked softmax for that case).

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { fmtShape, normAxis } from '../shape.js';
import { Tensor, recordOp } from '../tensor.js';

declare module '../kernels.js' {
  interface KernelMap {
    /** y[r, :] = softmax(x[r, :]) (or log-softmax when log) for R rows of C. */
    softmax(x: FloatArray, rows: number, cols: number, log: boolean): FloatArray;
    /** dx from y (the forward output) and g. softmax: y·(g − Σg·y); log-softmax: g − exp(y)·Σg. */
    softmaxBackward(y: FloatArray, g: FloatArray, rows: number, cols: number, log: boolean): FloatArray;
  }
}

// ---------------------------------------------------------------- reference kernels

defineKernel('softmax', (x, rows, cols, log) => {
  const y = allocLike(x, rows * cols); // [R, C]
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) { const v = x[o + c]!; if (v > max || Number.isNaN(v)) max = v; }
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[o + c]! - max);
    if (log) {
      const lse = Math.log(sum); // log Σ exp(x − max)
      for (let c = 0; c < cols; c++) y[o + c] = x[o + c]! - max - lse;
    } else {
      const inv = 1 / sum;
      for (let c = 0; c < cols; c++) y[o + c] = Math.exp(x[o + c]! - max) * inv;
    }
  }
  return y;
});

defineKernel('softmaxBackward', (y, g, rows, cols, log) => {
  const dx = allocLike(y, rows * cols); // [R, C]
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (log) {
      // y = x − lse(x): dx = g − softmax(x)·Σg, with softmax(x) = exp(y).
      let gs = 0;
      for (let c = 0; c < cols; c++) gs += g[o + c]!;
      for (let c = 0; c < cols; c++) dx[o + c] = g[o + c]! - Math.exp(y[o + c]!) * gs;
    } else {
      // Jacobian diag(y) − y·yᵀ applied to g.
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += g[o + c]! * y[o + c]!;
      for (let c = 0; c < cols; c++) dx[o + c] = y[o + c]! * (g[o + c]! - dot);
    }
  }
  return dx;
});

// ---------------------------------------------------------------- differentiable ops

function softmaxOp(name: 'softmax' | 'logSoftmax', x: Tensor, axis: number): Tensor {
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${name}: x must be f32 or f64, got ${x.dtype} ${fmtShape(x.shape)}`);
  if (x.rank === 0) throw new RangeError(`${name}: x must have rank ≥ 1, got a scalar`);
  if (!Number.isInteger(axis)) throw new RangeError(`${name}: axis must be an integer, got ${String(axis)}`);
  const ax = normAxis(axis, x.rank);
  if (ax !== x.rank - 1) {
    throw new RangeError(`${name}: only the last axis is supported (got axis ${axis} of x ${fmtShape(x.shape)}); permute first`);
  }
  const log = name === 'logSoftmax';
  const cols = x.shape[x.rank - 1]!;
  const rows = cols === 0 ? 0 : x.size / cols;
  const y = kernel('softmax')(x.data as FloatArray, rows, cols, log);
  const out = new Tensor(y, x.shape); // [..., C]

  return recordOp(name, out, [x], (g) => { // g [..., C]
    const dx = kernel('softmaxBackward')(y, g.data as FloatArray, rows, cols, log);
    return [new Tensor(dx, x.shape)]; // [..., C]
  });
}

/** softmax(x) along `axis` (the last axis only; others throw a RangeError). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp('softmax', x, axis);
}

/** log(softmax(x)) along `axis` (the last axis only), computed as x − max − log Σ exp(x − max). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp('logSoftmax', x, axis);
}
