// Reductions: sum, mean, max/min (with their arg-extreme indices), argmax/argmin, and sumToShape,
// the adjoint of broadcasting that every broadcasting op's backward uses.
// Legend: shapes are arbitrary; for single-axis reductions x is viewed as [O, S, I] — O outer
// (dims before the axis), S the reduced axis, I inner (dims after it).

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { fmtShape, normAxis, numel, sameShape, stridesOf, type Shape } from '../shape.js';
import { Tensor, recordOp } from '../tensor.js';
import { mul } from './elementwise.js';
import { coalesceDims, expand, reshape, rowOffsets } from './shape.js';

export type ArgReduceKind = 'max' | 'min';

declare module '../kernels.js' {
  interface KernelMap {
    /** Sums x (shape `shape`) over `axes` (sorted, unique, non-negative); out is x's shape without them. */
    reduceSum(x: FloatArray, shape: Shape, axes: readonly number[]): FloatArray;
    /** Max/min of x [O, S, I] over S (S ≥ 1) and the index of the FIRST extreme element; both [O, I]. NaN wins. */
    argReduce(kind: ArgReduceKind, x: FloatArray, outer: number, size: number, inner: number): { values: FloatArray; indices: Int32Array };
    /** dx [O, S, I]: g [O, I] placed at the recorded indices, zeros elsewhere. */
    argReduceBackward(g: FloatArray, indices: Int32Array, outer: number, size: number, inner: number): FloatArray;
  }
}

defineKernel('reduceSum', (x, shape, axes) => {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const acc = new Float64Array(numel(outShape)); // accumulate in f64 whatever the storage
  if (x.length > 0) {
    // Read x contiguously; the output stride is 0 along reduced axes, so elements pile up.
    const os = stridesOf(outShape).map((s, i) => (axes.includes(i) ? 0 : s));
    const c = coalesceDims(shape, [stridesOf(shape), os]);
    const len = c.shape[c.shape.length - 1]!, ost = c.strides[1]![c.shape.length - 1]!;
    const src = rowOffsets(c.shape, c.strides[0]!), dst = rowOffsets(c.shape, c.strides[1]!);
    for (let row = 0; row < src.length; row++) {
      const s = src[row]!, o = dst[row]!;
      if (ost === 0) { let t = 0; for (let j = 0; j < len; j++) t += x[s + j]!; acc[o] += t; }
      else for (let j = 0; j < len; j++) acc[o + j * ost] += x[s + j]!;
    }
  }
  const out = allocLike(x, acc.length);
  out.set(acc);
  return out;
});

defineKernel('argReduce', (kind, x, outer, size, inner) => {
  const values = allocLike(x, outer * inner);
  const indices = new Int32Array(outer * inner);
  const isMax = kind === 'max';
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * size * inner + i;
      let best = x[base]!, at = 0;
      for (let s = 1; s < size && best === best; s++) { // best !== best: NaN already found, it propagates
        const v = x[base + s * inner]!;
        if (v !== v || (isMax ? v > best : v < best)) { best = v; at = s; }
      }
      values[o * inner + i] = best;
      indices[o * inner + i] = at;
    }
  }
  return { values, indices };
});

defineKernel('argReduceBackward', (g, indices, outer, size, inner) => {
  const dx = allocLike(g, outer * size * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) dx[(o * size + indices[o * inner + i]!) * inner + i] = g[o * inner + i]!;
  }
  return dx;
});

// ---------------------------------------------------------------- helpers

function floatData(x: Tensor, op: string): FloatArray {
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${op}: needs an f32 or f64 tensor, got ${x.dtype} ${fmtShape(x.shape)} (cast with .to())`);
  return x.data as FloatArray;
}

/** Normalised, sorted, unique axes; undefined = all axes. */
function resolveAxes(x: Tensor, axes: number | readonly number[] | undefined, op: string): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  if (!Array.isArray(list)) throw new TypeError(`${op}: axes must be a number or an array of numbers`);
  const norm = list.map((a) => normAxis(a, x.rank)).sort((p, q) => p - q);
  if (new Set(norm).size !== norm.length) throw new RangeError(`${op}: axes [${list.join(', ')}] repeat an axis of ${fmtShape(x.shape)}`);
  return norm;
}

interface ReducedShapes { keep: number[]; out: number[] }
function reducedShapes(shape: Shape, axes: readonly number[], keepDims: boolean): ReducedShapes {
  const keep = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return { keep, out: keepDims ? keep : shape.filter((_, i) => !axes.includes(i)) };
}

// ---------------------------------------------------------------- ops

/**
 * Σ over `axes` (a number, a list, or undefined = every axis; negative axes count from the end;
 * an empty list reduces nothing). keepDims leaves reduced axes as size 1.
 */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const xd = floatData(x, 'sum');
  const ax = resolveAxes(x, axes, 'sum');
  const { keep, out: outShape } = reducedShapes(x.shape, ax, keepDims);
  const out = new Tensor(kernel('reduceSum')(xd, x.shape, ax), outShape);            // [...outShape]
  const xShape = x.shape; // backward needs no values of x
  return recordOp('sum', out, [x], (g) => [expand(reshape(g, keep), xShape)]);       // g [...outShape] → [...x.shape]
}

/** Arithmetic mean over `axes` (same axis rules as sum). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const xd = floatData(x, 'mean');
  const ax = resolveAxes(x, axes, 'mean');
  const { keep, out: outShape } = reducedShapes(x.shape, ax, keepDims);
  const xShape = x.shape; // no closure may name x: backward needs none of its values
  const count = ax.reduce((n, a) => n * xShape[a]!, 1);
  const data = kernel('reduceSum')(xd, xShape, ax);
  for (let i = 0; i < data.length; i++) data[i] = data[i]! / count;                // our fresh array: scale in place
  const out = new Tensor(data, outShape);                                             // [...outShape]
  return recordOp('mean', out, [x], (g) => [mul(expand(reshape(g, keep), xShape), 1 / count)]); // [...x.shape]
}

/** [O, S, I] view of x around `axis` (undefined: the whole tensor flattened). */
function around(x: Tensor, axis: number | undefined, keepDims: boolean, op: string): { outer: number; size: number; inner: number; outShape: number[] } {
  if (axis === undefined) {
    if (x.size === 0) throw new RangeError(`${op}: empty tensor ${fmtShape(x.shape)}`);
    return { outer: 1, size: x.size, inner: 1, outShape: keepDims ? x.shape.map(() => 1) : [] };
  }
  if (typeof axis !== 'number') throw new TypeError(`${op}: axis must be a number, got ${String(axis)}`);
  const a = normAxis(axis, x.rank);
  const size = x.shape[a]!;
  if (size === 0) throw new RangeError(`${op}: axis ${axis} of ${fmtShape(x.shape)} is empty`);
  const { out } = reducedShapes(x.shape, [a], keepDims);
  return { outer: numel(x.shape.slice(0, a)), size, inner: numel(x.shape.slice(a + 1)), outShape: out };
}

function extreme(kind: ArgReduceKind, x: Tensor, axis: number | undefined, keepDims: boolean): Tensor {
  const xd = floatData(x, kind);
  const { outer, size, inner, outShape } = around(x, axis, keepDims, kind);
  const { values, indices } = kernel('argReduce')(kind, xd, outer, size, inner);
  const out = new Tensor(values, outShape);                                           // [...outShape] = [O, I]
  return recordOp(kind, out, [x], (g) => [                                            // g [O, I]
    new Tensor(kernel('argReduceBackward')(g.data as FloatArray, indices, outer, size, inner), x.shape), // [O, S, I]
  ]);
}

/** Maximum over one axis (undefined: over everything). The gradient goes to the first maximal element. */
export function max(x: Tensor, axis?: number, keepDims = false): Tensor { return extreme('max', x, axis, keepDims); }

/** Minimum over one axis (undefined: over everything). The gradient goes to the first minimal element. */
export function min(x: Tensor, axis?: number, keepDims = false): Tensor { return extreme('min', x, axis, keepDims); }

function argExtreme(kind: ArgReduceKind, x: Tensor, axis: number | undefined, keepDims: boolean): Tensor {
  const xd = floatData(x, kind === 'max' ? 'argmax' : 'argmin');
  const { outer, size, inner, outShape } = around(x, axis, keepDims, kind === 'max' ? 'argmax' : 'argmin');
  return new Tensor(kernel('argReduce')(kind, xd, outer, size, inner).indices, outShape); // i32 [...outShape]
}

/** Index of the first maximum along `axis` (undefined: into the flattened tensor). i32, not differentiable. */
export function argmax(x: Tensor, axis?: number, keepDims = false): Tensor { return argExtreme('max', x, axis, keepDims); }

/** Index of the first minimum along `axis` (undefined: into the flattened tensor). i32, not differentiable. */
export function argmin(x: Tensor, axis?: number, keepDims = false): Tensor { return argExtreme('min', x, axis, keepDims); }

/**
 * Sums g down to `shape`, the shape of an operand that NumPy broadcasting stretched to g's shape:
 * g's extra leading dims and the dims where `shape` has 1 are summed away. Differentiable.
 */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const bad = (): RangeError => new RangeError(`sumToShape: ${fmtShape(shape)} does not broadcast to ${fmtShape(g.shape)}`);
  if (lead < 0) throw bad();
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead) { axes.push(i); return; }
    const s = shape[i - lead]!;
    if (s === 1 && d !== 1) axes.push(i);
    else if (s !== d) throw bad();
  });
  return reshape(sum(g, axes), shape);                                                // [...shape]
}
