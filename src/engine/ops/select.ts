// Selection: where, maskedFill, topk.
// Legend: S the broadcast output shape (E elements); R rows (leading dims folded), C last dim, K kept.
//
// Masks and conditions are i32 tensors where nonzero means true. where/maskedFill work on f32, f64
// and i32 values (i32 for ids and targets, e.g. replacing padding by ignoreIndex); only float values
// carry gradients. Broadcasting is NumPy's, done here with strides (0 on broadcast dims), so the
// gradient of a broadcast operand is a scatter-add through the same strides.

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { broadcastShapes, broadcastStrides, fmtShape, normAxis, numel, sameShape, type Shape } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';

/** Element storage where/maskedFill accept. */
export type SelectArray = Float32Array | Float64Array | Int32Array;

declare module '../kernels.js' {
  interface KernelMap {
    /** out [S] = cond ≠ 0 ? a : b, each operand read through its broadcast strides into S. */
    where(cond: Int32Array, a: SelectArray, b: SelectArray, shape: Shape,
      condStrides: readonly number[], aStrides: readonly number[], bStrides: readonly number[]): SelectArray;
    /** da [aSize], db [bSize]: g [S] routed by cond and summed back through the broadcast strides. */
    whereBackward(cond: Int32Array, g: FloatArray, shape: Shape, condStrides: readonly number[],
      aStrides: readonly number[], aSize: number, bStrides: readonly number[], bSize: number): { da: FloatArray; db: FloatArray };
    /** out [S] = mask ≠ 0 ? value : x, mask read through its broadcast strides (x has shape S). */
    maskedFill(x: SelectArray, mask: Int32Array, shape: Shape, maskStrides: readonly number[], value: number): SelectArray;
    /** The k largest (or smallest) of each row of C, sorted, ties by lower index; NaN counts as the largest. */
    topk(x: FloatArray, rows: number, cols: number, k: number, largest: boolean): { values: FloatArray; indices: Int32Array };
    /** dx [R, C]: g [R, K] scattered back to the selected columns, zeros elsewhere. */
    topkBackward(indices: Int32Array, g: FloatArray, rows: number, cols: number, k: number): FloatArray;
  }
}

// ---------------------------------------------------------------- reference kernels

/** Offset into an operand for every element of `shape` (row-major), given the operand's broadcast strides. */
function offsets(shape: Shape, strides: readonly number[]): Int32Array {
  const n = numel(shape), r = shape.length;
  const out = new Int32Array(n);
  const idx = new Array<number>(r).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let d = r - 1; d >= 0; d--) { // odometer increment
      idx[d]!++; off += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      off -= strides[d]! * shape[d]!; idx[d] = 0;
    }
  }
  return out;
}

function allocSame(like: SelectArray, n: number): SelectArray {
  return like instanceof Int32Array ? new Int32Array(n) : allocLike(like, n);
}

defineKernel('where', (cond, a, b, shape, cs, as, bs) => {
  const oc = offsets(shape, cs), oa = offsets(shape, as), ob = offsets(shape, bs);
  const out = allocSame(a, oc.length); // [S]
  for (let i = 0; i < oc.length; i++) out[i] = cond[oc[i]!] !== 0 ? a[oa[i]!]! : b[ob[i]!]!;
  return out;
});

defineKernel('whereBackward', (cond, g, shape, cs, as, aSize, bs, bSize) => {
  const oc = offsets(shape, cs), oa = offsets(shape, as), ob = offsets(shape, bs);
  const da = allocLike(g, aSize), db = allocLike(g, bSize); // a's and b's shapes
  for (let i = 0; i < oc.length; i++) {
    if (cond[oc[i]!] !== 0) da[oa[i]!] += g[i]!;
    else db[ob[i]!] += g[i]!;
  }
  return { da, db };
});

defineKernel('maskedFill', (x, mask, shape, ms, value) => {
  const om = offsets(shape, ms);
  const out = allocSame(x, x.length); // [S]
  for (let i = 0; i < x.length; i++) out[i] = mask[om[i]!] !== 0 ? value : x[i]!;
  return out;
});

defineKernel('topk', (x, rows, cols, k, largest) => {
  const values = allocLike(x, rows * k); // [R, K]
  const indices = new Int32Array(rows * k); // [R, K]
  const order = new Int32Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) order[c] = c;
    order.sort((i, j) => {
      const u = x[o + i]!, v = x[o + j]!;
      const un = Number.isNaN(u), vn = Number.isNaN(v);
      if (un || vn) return un && vn ? i - j : (un === largest ? -1 : 1); // NaN first when largest, last otherwise
      if (u !== v) return largest ? (u > v ? -1 : 1) : (u < v ? -1 : 1);
      return i - j;
    });
    for (let j = 0; j < k; j++) { indices[r * k + j] = order[j]!; values[r * k + j] = x[o + order[j]!]!; }
  }
  return { values, indices };
});

defineKernel('topkBackward', (indices, g, rows, cols, k) => {
  const dx = allocLike(g, rows * cols); // [R, C]
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) dx[r * cols + indices[r * k + j]!] += g[r * k + j]!;
  return dx;
});

// ---------------------------------------------------------------- differentiable ops

function checkValues(op: string, name: string, t: Tensor): void {
  if (t.dtype === 'bf16') throw new TypeError(`${op}: ${name} must be f32, f64 or i32, got bf16`);
}

/** cond (i32, nonzero = true) ? a : b, all three broadcast to a common shape. a and b share a dtype. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const op = `where(cond ${fmtShape(cond.shape)}, a ${fmtShape(a.shape)}, b ${fmtShape(b.shape)})`;
  if (cond.dtype !== 'i32') throw new TypeError(`${op}: cond must be i32 (nonzero = true), got ${cond.dtype}`);
  checkValues(op, 'a', a);
  if (b.dtype !== a.dtype) throw new TypeError(`${op}: a is ${a.dtype} but b is ${b.dtype}`);
  let shape: number[];
  try { shape = broadcastShapes(broadcastShapes(cond.shape, a.shape), b.shape); } catch {
    throw new RangeError(`${op}: the shapes do not broadcast to a common shape`);
  }
  const cs = broadcastStrides(cond.shape, shape), as = broadcastStrides(a.shape, shape), bs = broadcastStrides(b.shape, shape);
  const c = cond.as('i32');
  const out = new Tensor(kernel('where')(c, a.data as SelectArray, b.data as SelectArray, shape, cs, as, bs), shape); // [S]

  return recordOp('where', out, [cond, a, b], (g) => { // g [S]
    const r = kernel('whereBackward')(c, g.data as FloatArray, shape, cs, as, a.size, bs, b.size);
    return [null, needsGrad(a) ? new Tensor(r.da, a.shape) : null, needsGrad(b) ? new Tensor(r.db, b.shape) : null];
  });
}

/** x with `value` wherever mask (i32, broadcastable to x) is nonzero; those positions get no gradient. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const op = `maskedFill(x ${fmtShape(x.shape)}, mask ${fmtShape(mask.shape)})`;
  checkValues(op, 'x', x);
  if (mask.dtype !== 'i32') throw new TypeError(`${op}: mask must be i32 (nonzero = fill), got ${mask.dtype}`);
  let bshape: number[] | null = null;
  try { bshape = broadcastShapes(x.shape, mask.shape); } catch { bshape = null; }
  if (bshape === null || !sameShape(bshape, x.shape)) throw new RangeError(`${op}: mask must broadcast to the shape of x`);
  if (typeof value !== 'number') throw new TypeError(`${op}: value must be a number, got ${typeof value}`);
  if (x.dtype === 'i32' && !(Number.isInteger(value) && value >= -2147483648 && value <= 2147483647)) {
    throw new RangeError(`${op}: an i32 x needs an int32 fill value, got ${value}`);
  }
  const ms = broadcastStrides(mask.shape, x.shape);
  const m = mask.as('i32');
  const out = new Tensor(kernel('maskedFill')(x.data as SelectArray, m, x.shape, ms, value), x.shape); // [S]

  return recordOp('maskedFill', out, [x, mask], (g) => { // g [S]
    // The gradient is g with the filled positions zeroed: the same kernel with value 0.
    return [new Tensor(kernel('maskedFill')(g.data as FloatArray, m, x.shape, ms, 0), x.shape), null]; // [S]
  });
}

export interface TopkOptions {
  /** Only the last axis is supported (−1 or rank − 1). */
  axis?: number;
  /** true: the k largest, in descending order; false: the k smallest, ascending. */
  largest?: boolean;
}

/** The k largest (or smallest) entries along the last axis of x [..., C] → values [..., K] and i32 indices [..., K]. */
export function topk(x: Tensor, k: number, opts: TopkOptions = {}): { values: Tensor; indices: Tensor } {
  const op = `topk(x ${fmtShape(x.shape)}, k ${String(k)})`;
  const axis = opts.axis ?? -1, largest = opts.largest ?? true;
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${op}: x must be f32 or f64, got ${x.dtype}`);
  if (x.rank === 0) throw new RangeError(`${op}: x must have rank ≥ 1`);
  if (normAxis(axis, x.rank) !== x.rank - 1) throw new RangeError(`${op}: only the last axis is supported, got axis ${axis}`);
  const cols = x.shape[x.rank - 1]!;
  if (!Number.isInteger(k) || k < 0 || k > cols) throw new RangeError(`${op}: k must be an integer in [0, ${cols}]`);
  const rows = cols === 0 ? numel(x.shape.slice(0, -1)) : x.size / cols;
  const r = kernel('topk')(x.data as FloatArray, rows, cols, k, largest === true);
  const outShape = [...x.shape.slice(0, -1), k];
  const values = new Tensor(r.values, outShape);   // [..., K]
  const indices = new Tensor(r.indices, outShape); // [..., K]

  recordOp('topk', values, [x], (g) => { // g [..., K]
    return [new Tensor(kernel('topkBackward')(r.indices, g.data as FloatArray, rows, cols, k), x.shape)]; // [..., C]
  });
  return { values, indices };
}
