// Shape ops: views (reshape, unsqueeze, squeeze) and copies (permute, transpose, slice, expand,
// concat, split, pad). They only move elements, so they work on every dtype (f32, f64, bf16, i32).
// Legend: shapes are arbitrary; r = rank; "strides" are in elements, row-major.
//
// Every copy goes through two generic kernels: `stridedCopy` (gather: read x through arbitrary
// strides and an offset) and `stridedScatter` (the adjoint: write x into a filled array through
// strides). permute/slice/expand are gathers; pad is a scatter; their backwards are the other one.

import { allocStorage, dtypeOfStorage, f32ToBf16Bits, type Storage } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { broadcastStrides, fmtShape, inferReshape, normAxis, numel, sameShape, stridesOf, type Shape } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';
import { sumToShape } from './reduce.js';

declare module '../kernels.js' {
  interface KernelMap {
    /** out (shape outShape, contiguous)[i] = x[offset + Σ_k idx_k(i)·strides[k]]. Any dtype. */
    stridedCopy(x: Storage, offset: number, strides: Shape, outShape: Shape): Storage;
    /** out = fill repeated `size` times, then out[offset + Σ_k idx_k(i)·strides[k]] = x[i] for x of
     *  shape xShape (targets must not overlap). `fill` is the raw storage value (bf16: its bits). */
    stridedScatter(x: Storage, xShape: Shape, size: number, offset: number, strides: Shape, fill: number): Storage;
    /** Joins inputs along one axis: out is [outer, Σ chunks]; input i is [outer, chunks[i]]. */
    concat(xs: readonly Storage[], outer: number, chunks: readonly number[]): Storage;
  }
}

// ---------------------------------------------------------------- strided iteration helpers

/**
 * Merges adjacent dims that are contiguous under every stride list, and drops size-1 dims, so loops
 * run over few long rows (same-shape operands collapse to a single row). Always returns ≥ 1 dim.
 */
export function coalesceDims(shape: Shape, strides: ReadonlyArray<Shape>): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d]!;
    if (n === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k]![last] === s[d]! * n)) {
      outShape[last] = outShape[last]! * n;
      strides.forEach((s, k) => { outStrides[k]![last] = s[d]!; });
    } else {
      outShape.push(n);
      strides.forEach((s, k) => outStrides[k]!.push(s[d]!));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}

/** Start offset (from `base`) of every innermost row of `shape` read through `strides`. */
export function rowOffsets(shape: Shape, strides: Shape, base = 0): Float64Array {
  const r = shape.length;
  const rows = r <= 1 ? 1 : numel(shape.slice(0, -1));
  const out = new Float64Array(rows);
  const idx = new Array<number>(Math.max(0, r - 1)).fill(0);
  let off = base;
  for (let row = 0; row < rows; row++) {
    out[row] = off;
    for (let d = r - 2; d >= 0; d--) { // odometer over the outer dims
      off += strides[d]!;
      if (++idx[d]! < shape[d]!) break;
      off -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function allocSame(x: Storage, n: number): Storage { return allocStorage(dtypeOfStorage(x), n); }

defineKernel('stridedCopy', (x, offset, strides, outShape) => {
  const n = numel(outShape);
  const out = allocSame(x, n);
  if (n === 0) return out;
  const c = coalesceDims(outShape, [strides, stridesOf(outShape)]);
  const len = c.shape[c.shape.length - 1]!;
  const src = rowOffsets(c.shape, c.strides[0]!, offset), dst = rowOffsets(c.shape, c.strides[1]!);
  const st = c.strides[0]![c.shape.length - 1]!;
  for (let row = 0; row < src.length; row++) {
    const s = src[row]!, o = dst[row]!;
    if (st === 1) out.set(x.subarray(s, s + len), o);
    else for (let j = 0; j < len; j++) out[o + j] = x[s + j * st]!;
  }
  return out;
});

defineKernel('stridedScatter', (x, xShape, size, offset, strides, fill) => {
  const out = allocSame(x, size);
  if (fill !== 0) out.fill(fill);
  if (x.length === 0) return out;
  const c = coalesceDims(xShape, [strides, stridesOf(xShape)]);
  const len = c.shape[c.shape.length - 1]!;
  const dst = rowOffsets(c.shape, c.strides[0]!, offset), src = rowOffsets(c.shape, c.strides[1]!);
  const st = c.strides[0]![c.shape.length - 1]!;
  for (let row = 0; row < dst.length; row++) {
    const o = dst[row]!, s = src[row]!;
    if (st === 1) out.set(x.subarray(s, s + len), o);
    else for (let j = 0; j < len; j++) out[o + j * st] = x[s + j]!;
  }
  return out;
});

defineKernel('concat', (xs, outer, chunks) => {
  const total = chunks.reduce((a, b) => a + b, 0);
  const out = allocSame(xs[0]!, outer * total);
  for (let o = 0; o < outer; o++) {
    let at = o * total;
    xs.forEach((x, i) => { const c = chunks[i]!; out.set(x.subarray(o * c, (o + 1) * c), at); at += c; });
  }
  return out;
});

// ---------------------------------------------------------------- views (zero-copy)

/** Same elements, new shape (one dim may be -1). Shares x's storage. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  if (!Array.isArray(shape as unknown)) throw new TypeError(`reshape: shape must be an array, got ${String(shape)}`);
  const target = inferReshape(x.size, shape);
  if (sameShape(target, x.shape)) return x;
  const out = new Tensor(x.data, target); // [...target], same storage
  return recordOp('reshape', out, [x], (g) => [reshape(g, x.shape)]);
}

/** Inserts a size-1 dim at `axis` (−(r+1) ≤ axis ≤ r). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Removes the size-1 dim `axis` (every size-1 dim when axis is omitted). */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis(axis, x.rank);
  if (x.shape[a] !== 1) throw new RangeError(`squeeze: axis ${axis} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

// ---------------------------------------------------------------- copies

/** Reorders dims: out.shape[k] = x.shape[dims[k]]. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (!Array.isArray(dims as unknown) || dims.length !== x.rank) {
    throw new RangeError(`permute: dims must list all ${x.rank} axes of ${fmtShape(x.shape)}, got [${String(dims)}]`);
  }
  const rank = x.rank;
  const p = dims.map((d) => normAxis(d, rank));
  if (new Set(p).size !== p.length) throw new RangeError(`permute: dims [${dims.join(', ')}] repeat an axis`);
  const xShape = x.shape, xs = stridesOf(xShape); // no closure may name x: backward needs none of its values
  const outShape = p.map((d) => xShape[d]!);                                        // [x.shape[p0], ...]
  const out = new Tensor(kernel('stridedCopy')(x.data, 0, p.map((d) => xs[d]!), outShape), outShape);
  const inv = new Array<number>(p.length);
  p.forEach((d, k) => { inv[d] = k; });
  return recordOp('permute', out, [x], (g) => [permute(g, inv)]);                  // g [...outShape] → [...x.shape]
}

/** Swaps two dims (the last two by default). */
export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normAxis(d0, x.rank), b = normAxis(d1, x.rank);
  const dims = x.shape.map((_, i) => i);
  dims[a] = b; dims[b] = a;
  return permute(x, dims);
}

function checkInt(v: unknown, what: string): asserts v is number {
  if (!Number.isInteger(v)) throw new TypeError(`${what} must be an integer, got ${String(v)}`);
}

/** x[..., start:end:step, ...] along `axis`, Python-style (negative start/end count from the end, clamped); step ≥ 1. */
export function slice(x: Tensor, axis: number, start = 0, end?: number, step = 1): Tensor {
  const a = normAxis(axis, x.rank), n = x.shape[a]!;
  checkInt(start, 'slice: start');
  if (end !== undefined) checkInt(end, 'slice: end');
  checkInt(step, 'slice: step');
  if (step < 1) throw new RangeError(`slice: step must be ≥ 1, got ${step}`);
  const clampIdx = (i: number): number => Math.min(n, Math.max(0, i < 0 ? i + n : i));
  const s = clampIdx(start), e = clampIdx(end ?? n);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const xs = stridesOf(x.shape);
  const outShape = x.shape.map((d, i) => (i === a ? len : d));                       // [..., len, ...]
  const strides = xs.map((st, i) => (i === a ? st * step : st));
  const offset = s * xs[a]!;
  const out = new Tensor(kernel('stridedCopy')(x.data, offset, strides, outShape), outShape);
  const xShape = x.shape, xSize = x.size; // backward needs no values of x
  return recordOp('slice', out, [x], (g) => [                                         // g [...outShape]
    new Tensor(kernel('stridedScatter')(g.data, outShape, xSize, offset, strides, 0), xShape), // [...x.shape], zeros elsewhere
  ]);
}

/** Broadcasts x to `shape` (NumPy rules; -1 keeps x's size for an existing dim). Copies. */
export function expand(x: Tensor, shape: Shape): Tensor {
  if (!Array.isArray(shape as unknown) || shape.length < x.rank) {
    throw new RangeError(`expand: cannot expand ${fmtShape(x.shape)} to ${Array.isArray(shape as unknown) ? fmtShape(shape) : String(shape)}`);
  }
  const xShape = x.shape, lead = shape.length - x.rank; // no closure may name x: backward needs none of its values
  const target = shape.map((d, i) => (d === -1 && i >= lead ? xShape[i - lead]! : d));
  target.forEach((d, i) => {
    const xd = i < lead ? 1 : xShape[i - lead]!;
    if (!Number.isInteger(d) || d < 0 || (xd !== 1 && xd !== d)) {
      throw new RangeError(`expand: cannot expand ${fmtShape(xShape)} to ${fmtShape(shape)}`);
    }
  });
  if (sameShape(target, xShape)) return x;
  const out = new Tensor(kernel('stridedCopy')(x.data, 0, broadcastStrides(xShape, target), target), target); // [...target]
  return recordOp('expand', out, [x], (g) => [sumToShape(g, xShape)]);             // g [...target] → [...x.shape]
}

/** Joins tensors of equal dtype and rank along `axis`; all other dims must match. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (!Array.isArray(xs as unknown) || xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  const first = xs[0]!;
  const a = normAxis(axis, first.rank);
  for (const t of xs) {
    if (t.dtype !== first.dtype) throw new TypeError(`concat: cannot mix ${first.dtype} and ${t.dtype}`);
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new RangeError(`concat: shapes ${xs.map((u) => fmtShape(u.shape)).join(', ')} differ outside axis ${axis}`);
    }
  }
  const outer = numel(first.shape.slice(0, a)), inner = numel(first.shape.slice(a + 1));
  const sizes = xs.map((t) => t.shape[a]!);
  const outShape = first.shape.map((d, i) => (i === a ? sizes.reduce((p, q) => p + q, 0) : d)); // [..., Σ sizes, ...]
  const out = new Tensor(kernel('concat')(xs.map((t) => t.data), outer, sizes.map((s) => s * inner)), outShape);
  return recordOp('concat', out, xs, (g, wanted) => {                                  // g [...outShape]
    let at = 0;
    return sizes.map((size, i) => {
      const from = at; at += size;
      return wanted[i] ? slice(g, a, from, at) : null;                                  // [...xs[i].shape]
    });
  });
}

/** Splits along `axis`: a number is a chunk size (last chunk may be smaller, like torch.split); an array lists the sizes. */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normAxis(axis, x.rank), n = x.shape[a]!;
  let parts: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes < 1) throw new RangeError(`split: chunk size must be a positive integer, got ${sizes}`);
    parts = [];
    for (let s = 0; s < n; s += sizes) parts.push(Math.min(sizes, n - s));
  } else {
    parts = [...sizes];
    if (parts.some((s) => !Number.isInteger(s) || s < 0) || parts.reduce((p, q) => p + q, 0) !== n) {
      throw new RangeError(`split: sizes [${parts.join(', ')}] do not add up to ${n} (axis ${axis} of ${fmtShape(x.shape)})`);
    }
  }
  let at = 0;
  return parts.map((s) => { const t = slice(x, a, at, at + s); at += s; return t; });
}

/**
 * Constant padding. pads[k] = [before, after] for axis k, listed from the FIRST axis; a list shorter
 * than the rank pads only the leading axes it names (later axes are untouched). Negative pads are errors.
 */
export function pad(x: Tensor, pads: ReadonlyArray<readonly [number, number]>, value = 0): Tensor {
  if (!Array.isArray(pads as unknown) || pads.length > x.rank) {
    throw new RangeError(`pad: pads must be a list of at most ${x.rank} [before, after] pairs for ${fmtShape(x.shape)}`);
  }
  pads.forEach((p, k) => {
    if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => Number.isInteger(v))) throw new TypeError(`pad: pads[${k}] must be an integer pair [before, after]`);
    if (p[0] < 0 || p[1] < 0) throw new RangeError(`pad: negative padding [${p.join(', ')}] on axis ${k}`);
  });
  if (typeof value !== 'number') throw new TypeError(`pad: value must be a number, got ${String(value)}`);
  if (x.dtype === 'i32' && !Number.isInteger(value)) throw new TypeError(`pad: value ${value} is not an integer (i32 tensor)`);
  const before = x.shape.map((_, k) => pads[k]?.[0] ?? 0);
  const outShape = x.shape.map((d, k) => d + before[k]! + (pads[k]?.[1] ?? 0));          // [..., d + before + after, ...]
  const os = stridesOf(outShape);
  const offset = before.reduce((acc, b, k) => acc + b * os[k]!, 0);
  const fill = x.dtype === 'bf16' ? f32ToBf16Bits(value) : value;
  const out = new Tensor(kernel('stridedScatter')(x.data, x.shape, numel(outShape), offset, os, fill), outShape);
  const xShape = x.shape; // backward needs no values of x
  return recordOp('pad', out, [x], (g) => [                                             // g [...outShape]
    new Tensor(kernel('stridedCopy')(g.data, offset, os, xShape), xShape),              // [...x.shape], the interior
  ]);
}
