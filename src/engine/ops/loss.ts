// Losses: cross-entropy over class logits, mean-squared and absolute error.
// Legend: R rows (all target dims folded), C classes; E elements (regression losses).
//
// crossEntropy follows PyTorch 1.13's F.cross_entropy exactly (class dim last here). Per row r with
// target t, logp = logSoftmax(x[r]) and smoothing ε:
//   loss_r = (1 − ε)·(−logp[t]) + ε · mean_c(−logp[c]),   loss_r = 0 where t = ignoreIndex.
// 'mean' divides Σ loss_r by the number of non-ignored rows (both terms, as torch does), so a batch
// whose targets are ALL ignored gives 0/0 = NaN under 'mean' (torch does the same); 'sum' gives 0.
// Gradient: ∂loss_r/∂x[r, c] = softmax(x[r])[c] − (1 − ε)·[c = t] − ε/C.

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { fmtShape, sameShape } from '../shape.js';
import { Tensor, recordOp } from '../tensor.js';

export type Reduction = 'mean' | 'sum' | 'none';
export type RegressionKind = 'mse' | 'l1';

declare module '../kernels.js' {
  interface KernelMap {
    /** Per-row loss [R] (0 at ignored rows) and log Σ exp(x[r]) [R] (kept for backward). Targets are pre-checked. */
    crossEntropy(logits: FloatArray, targets: Int32Array, rows: number, cols: number, ignoreIndex: number, labelSmoothing: number):
      { loss: FloatArray; lse: FloatArray };
    /** dlogits [R, C] = g[r] · (softmax − (1 − ε)·onehot(t) − ε/C); zero rows where ignored. */
    crossEntropyBackward(logits: FloatArray, targets: Int32Array, lse: FloatArray, g: FloatArray, rows: number, cols: number,
      ignoreIndex: number, labelSmoothing: number): FloatArray;
    /** Elementwise (a − b)² or |a − b| for E elements. */
    regressionLoss(a: FloatArray, b: FloatArray, kind: RegressionKind): FloatArray;
    /** ∂/∂a of the elementwise loss times scale·g (g has E entries, or 1 that is broadcast); ∂/∂b is its negation. */
    regressionLossBackward(a: FloatArray, b: FloatArray, g: FloatArray, scale: number, kind: RegressionKind): FloatArray;
  }
}

// ---------------------------------------------------------------- reference kernels

defineKernel('crossEntropy', (x, t, rows, cols, ignoreIndex, eps) => {
  const loss = allocLike(x, rows); // [R]
  const lse = allocLike(x, rows);  // [R]
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) { const v = x[o + c]!; if (v > max || Number.isNaN(v)) max = v; }
    let s = 0, sx = 0;
    for (let c = 0; c < cols; c++) { s += Math.exp(x[o + c]! - max); sx += x[o + c]!; }
    const l = max + Math.log(s);
    lse[r] = l;
    if (t[r] === ignoreIndex) continue;
    const nll = l - x[o + t[r]!]!;
    const smooth = l - sx / cols; // mean_c(−logp[c]) = lse − mean_c x[c]
    loss[r] = eps === 0 ? nll : (1 - eps) * nll + eps * smooth;
  }
  return { loss, lse };
});

defineKernel('crossEntropyBackward', (x, t, lse, g, rows, cols, ignoreIndex, eps) => {
  const dx = allocLike(x, rows * cols); // [R, C]
  const off = eps / cols;
  for (let r = 0; r < rows; r++) {
    if (t[r] === ignoreIndex) continue;
    const o = r * cols, gr = g[r]!, l = lse[r]!;
    for (let c = 0; c < cols; c++) dx[o + c] = gr * (Math.exp(x[o + c]! - l) - off);
    dx[o + t[r]!] -= gr * (1 - eps);
  }
  return dx;
});

defineKernel('regressionLoss', (a, b, kind) => {
  const out = allocLike(a, a.length); // [E]
  for (let i = 0; i < a.length; i++) { const d = a[i]! - b[i]!; out[i] = kind === 'mse' ? d * d : Math.abs(d); }
  return out;
});

defineKernel('regressionLossBackward', (a, b, g, scale, kind) => {
  const da = allocLike(a, a.length); // [E]
  const bcast = g.length === 1 && a.length !== 1;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!, gi = scale * g[bcast ? 0 : i]!;
    da[i] = kind === 'mse' ? 2 * d * gi : Math.sign(d) * gi; // sign(0) = 0, as torch's l1 gradient
  }
  return da;
});

// ---------------------------------------------------------------- shared helpers

function checkReduction(op: string, r: unknown): asserts r is Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new RangeError(`${op}: reduction must be 'mean', 'sum' or 'none', got ${String(r)}`);
}

/** A scalar tensor holding v, in the dtype of `like`. */
function scalarOf(like: FloatArray, v: number): Tensor {
  const out = allocLike(like, 1);
  out[0] = v;
  return new Tensor(out, []);
}

// ---------------------------------------------------------------- cross-entropy

export interface CrossEntropyOptions {
  /** Rows whose target equals this contribute no loss and no gradient (torch's default −100). */
  ignoreIndex?: number;
  /** ε in [0, 1]: the target distribution is (1 − ε)·onehot + ε/C (torch's label_smoothing). */
  labelSmoothing?: number;
  /** 'mean' over non-ignored rows (default), 'sum', or 'none' (per-row losses, shape of targets). */
  reduction?: Reduction;
}

/** Cross-entropy of logits [..., C] (classes last) against i32 class targets [...]. */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = `crossEntropy(logits ${fmtShape(logits.shape)}, targets ${fmtShape(targets.shape)})`;
  const ignoreIndex = opts.ignoreIndex ?? -100, eps = opts.labelSmoothing ?? 0, reduction = opts.reduction ?? 'mean';
  if (logits.dtype !== 'f32' && logits.dtype !== 'f64') throw new TypeError(`${op}: logits must be f32 or f64, got ${logits.dtype}`);
  if (targets.dtype !== 'i32') throw new TypeError(`${op}: targets must be i32 class indices, got ${targets.dtype}`);
  if (logits.rank < 1 || !sameShape(logits.shape.slice(0, -1), targets.shape)) {
    throw new RangeError(`${op}: targets must have the shape of logits without its last (class) axis`);
  }
  if (!Number.isInteger(ignoreIndex)) throw new RangeError(`${op}: ignoreIndex must be an integer, got ${String(ignoreIndex)}`);
  if (typeof eps !== 'number' || !(eps >= 0 && eps <= 1)) throw new RangeError(`${op}: labelSmoothing must be in [0, 1], got ${String(eps)}`);
  checkReduction(op, reduction);
  const cols = logits.shape[logits.rank - 1]!, rows = targets.size;
  if (cols === 0) throw new RangeError(`${op}: there are no classes`);
  const t = targets.as('i32');
  let count = 0; // non-ignored rows: the 'mean' denominator
  for (let r = 0; r < rows; r++) {
    const v = t[r]!;
    if (v === ignoreIndex) continue;
    if (v < 0 || v >= cols) throw new RangeError(`${op}: target ${v} at flat position ${r} is outside [0, ${cols}) and is not ignoreIndex ${ignoreIndex}`);
    count++;
  }
  const x = logits.data as FloatArray;
  const { loss, lse } = kernel('crossEntropy')(x, t, rows, cols, ignoreIndex, eps);

  let out: Tensor;
  if (reduction === 'none') out = new Tensor(loss, targets.shape); // [...]
  else {
    let s = 0;
    for (let r = 0; r < rows; r++) s += loss[r]!;
    out = scalarOf(x, reduction === 'sum' ? s : s / count); // []
  }

  return recordOp('crossEntropy', out, [logits, targets], (g) => { // g [...] or []
    const gd = g.data as FloatArray;
    let gRows: FloatArray;                                              // [R]
    if (reduction === 'none') gRows = gd;
    else gRows = allocLike(x, rows).fill(reduction === 'sum' ? gd[0]! : gd[0]! / count);
    const dx = kernel('crossEntropyBackward')(x, t, lse, gRows, rows, cols, ignoreIndex, eps);
    return [new Tensor(dx, logits.shape), null]; // [..., C]
  });
}

// ---------------------------------------------------------------- regression losses

function regression(kind: RegressionKind, a: Tensor, b: Tensor, reduction: Reduction): Tensor {
  const name = kind === 'mse' ? 'mseLoss' : 'l1Loss';
  const op = `${name}(a ${fmtShape(a.shape)}, b ${fmtShape(b.shape)})`;
  if (a.dtype !== 'f32' && a.dtype !== 'f64') throw new TypeError(`${op}: a must be f32 or f64, got ${a.dtype}`);
  if (b.dtype !== a.dtype) throw new TypeError(`${op}: b must have a's dtype ${a.dtype}, got ${b.dtype}`);
  if (!sameShape(a.shape, b.shape)) throw new RangeError(`${op}: a and b must have the same shape`);
  checkReduction(op, reduction);
  const ad = a.data as FloatArray, bd = b.data as FloatArray;
  const e = kernel('regressionLoss')(ad, bd, kind); // [E]
  let out: Tensor;
  if (reduction === 'none') out = new Tensor(e, a.shape);
  else {
    let s = 0;
    for (let i = 0; i < e.length; i++) s += e[i]!;
    out = scalarOf(ad, reduction === 'sum' ? s : s / e.length); // [] (mean of nothing is NaN, as torch)
  }

  return recordOp(name, out, [a, b], (g) => { // g like out
    const scale = reduction === 'mean' ? 1 / a.size : 1;
    const da = kernel('regressionLossBackward')(ad, bd, g.data as FloatArray, scale, kind); // [E]
    const db = allocLike(da, da.length);
    for (let i = 0; i < da.length; i++) db[i] = -da[i]!;
    return [new Tensor(da, a.shape), new Tensor(db, b.shape)];
  });
}

/** Mean-squared error (a − b)² of two same-shape float tensors. */
export function mseLoss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  return regression('mse', a, b, reduction);
}

/** Absolute error |a − b| of two same-shape float tensors (gradient 0 where a = b, as torch). */
export function l1Loss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  return regression('l1', a, b, reduction);
}
