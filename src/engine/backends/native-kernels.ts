// Native (oneDNN) overrides of the engine's kernels: argument validation, then one addon call.
//
// Every argument is checked here before it reaches native code (TypedArray kinds, lengths against the
// dims, positive integer dims, finite eps, live buffers) and bad input throws TypeError/RangeError
// naming the kernel. Cases the addon does not cover run the reference kernel instead: f64 arrays
// (gradient checks), empty tensors (a size of 0), conv padding ≥ the kernel, binary broadcasts that
// expand both operands or need b ÷ a with swapped operands, ranks over 12.
// Legend: as in each op file (matmul: B, M, K, N; conv: N, H, W, CI, CO, KH, KW; norms: R, C / N, P, C, G).

import type { FloatArray } from '../dtype.js';
import { defineNativeKernel, referenceKernel, type KernelMap, type KernelName } from '../kernels.js';
import type { BinaryKind, UnaryKind } from '../ops/elementwise.js';
import type { AttentionDims } from '../ops/attention.js';
import { checkCsr, type SparseAttentionDims } from '../ops/sparse-attention.js';
import type { MatmulDims, MatmulInput } from '../ops/matmul.js';
import { broadcastShapes, fmtShape, numel, sameShape, type Shape } from '../shape.js';
import { coalesceDims } from '../ops/shape.js';
import type { NativeAddon } from './native.js';

const UNARY_KINDS: readonly UnaryKind[] = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'tanh', 'sigmoid', 'relu', 'gelu', 'gelu_tanh', 'silu'];
const BINARY_KINDS: readonly BinaryKind[] = ['add', 'sub', 'mul', 'div'];
const MAX_NATIVE_RANK = 12; // DNNL_MAX_NDIMS
const NATIVE_MIN_ELEMENTS = 4096; // copies, dropout, clipping: below this the JS loop beats the call overhead

// ---------------------------------------------------------------- checks

function typeName(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'object';
  return typeof x;
}

function isFloatArray(x: unknown): x is FloatArray {
  return x instanceof Float32Array || x instanceof Float64Array;
}

/**
 * Throws unless x is a Float32Array/Float64Array (plus Uint16Array bf16 bits when allowed). A view of a
 * detached buffer reads as length 0 (Node 20 has no ArrayBuffer#detached), so the length checks below
 * reject it; the addon checks detachment itself as well.
 */
function checkArray(k: string, name: string, x: unknown, allowBf16 = false): void {
  if (!isFloatArray(x) && !(allowBf16 && x instanceof Uint16Array)) {
    throw new TypeError(`native ${k}: ${name} must be a Float32Array or Float64Array${allowBf16 ? ' or Uint16Array (bf16)' : ''}, got ${typeName(x)}`);
  }
}

/** Throws unless x is a float array of exactly `len` elements. */
function checkLen(k: string, name: string, x: unknown, len: number): void {
  checkArray(k, name, x);
  const n = (x as FloatArray).length;
  if (n !== len) {
    const hint = n === 0 && len > 0 ? ' (empty or detached buffer)' : '';
    throw new RangeError(`native ${k}: ${name} has ${n} elements${hint}, expected ${len}`);
  }
}

/** A conv operand: a float array or bf16 bits (Uint16Array) of exactly `len` elements. */
function checkConvInput(k: string, name: string, x: unknown, len: number): void {
  checkArray(k, name, x, true);
  const n = (x as FloatArray | Uint16Array).length;
  if (n !== len) throw new RangeError(`native ${k}: ${name} has ${n} elements${n === 0 && len > 0 ? ' (empty or detached buffer)' : ''}, expected ${len}`);
}

function checkOptional(k: string, name: string, x: unknown, len: number): void {
  if (x !== null) checkLen(k, name, x, len);
}

/** A size (≥ 0 by default: empty tensors are legal and run on the reference kernel). */
function checkDim(k: string, name: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`native ${k}: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

function checkBool(k: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`native ${k}: ${name} must be a boolean, got ${typeName(v)}`);
  return v;
}

function checkEps(k: string, eps: unknown): number {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw new RangeError(`native ${k}: eps must be a finite number ≥ 0, got ${String(eps)}`);
  return eps;
}

function checkPrecision(k: string, p: unknown): boolean {
  if (p !== 'fp32' && p !== 'bf16') throw new RangeError(`native ${k}: precision must be 'fp32' or 'bf16', got ${String(p)}`);
  return p === 'bf16';
}

function checkKind<T extends string>(k: string, kind: unknown, kinds: readonly T[]): T {
  if (typeof kind !== 'string' || !(kinds as readonly string[]).includes(kind)) {
    throw new RangeError(`native ${k}: unknown kind '${String(kind)}' (one of ${kinds.join(', ')})`);
  }
  return kind as T;
}

function checkShape(k: string, name: string, s: unknown): Shape {
  if (!Array.isArray(s) || !s.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(`native ${k}: ${name} must be an array of integers ≥ 0, got ${String(s)}`);
  }
  return s as Shape;
}

/** True when any argument is f64: those run on the reference kernel (gradient checks). */
function anyF64(...xs: unknown[]): boolean {
  return xs.some((x) => x instanceof Float64Array);
}

function ref<K extends KernelName>(name: K): KernelMap[K] { return referenceKernel(name); }

// ---------------------------------------------------------------- matmul and conv

function checkMatmulDims(d: unknown): MatmulDims {
  if (typeof d !== 'object' || d === null) throw new TypeError(`native matmul: dims must be an object, got ${typeName(d)}`);
  const o = d as Record<string, unknown>;
  for (const f of ['batch', 'm', 'k', 'n', 'strideA', 'strideB'] as const) checkDim('matmul', f, o[f]);
  checkBool('matmul', 'transA', o['transA']);
  checkBool('matmul', 'transB', o['transB']);
  return d as MatmulDims;
}

/** Elements an operand of `rows × cols` per batch item spans with batch stride `stride` (0 = broadcast). */
function spanOf(batch: number, rows: number, cols: number, stride: number): number {
  if (batch === 0 || rows * cols === 0) return 0;
  return stride === 0 ? rows * cols : (batch - 1) * stride + rows * cols;
}

function checkMatmulInput(name: string, x: unknown, need: number): MatmulInput {
  checkArray('matmul', name, x, true);
  const n = (x as MatmulInput).length;
  if (n < need) throw new RangeError(`native matmul: ${name} has ${n} elements${n === 0 ? ' (empty or detached buffer)' : ''}, the dims need ${need}`);
  return x as MatmulInput;
}

const CONV_FIELDS = ['n', 'h', 'w', 'ci', 'co', 'kh', 'kw', 'strideH', 'strideW', 'padTop', 'padLeft', 'padBottom', 'padRight', 'oh', 'ow'] as const;

/** Validates conv dims (N, H, W, pads ≥ 0, the rest ≥ 1, OH/OW consistent) in the addon's order. */
function convDims(k: string, d: unknown): number[] {
  if (typeof d !== 'object' || d === null) throw new TypeError(`native ${k}: dims must be an object, got ${typeName(d)}`);
  const o = d as Record<string, unknown>;
  const v = CONV_FIELDS.map((f) => checkDim(k, f, o[f], f.startsWith('pad') || f === 'n' || f === 'h' || f === 'w' ? 0 : 1));
  const [, h, w, , , kh, kw, sh, sw, pt, pl, pb, pr, oh, ow] = v as [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];
  if (h + pt + pb < kh || w + pl + pr < kw) throw new RangeError(`native ${k}: the padded input is smaller than the ${kh}×${kw} kernel`);
  if (oh !== Math.floor((h + pt + pb - kh) / sh) + 1 || ow !== Math.floor((w + pl + pr - kw) / sw) + 1) {
    throw new RangeError(`native ${k}: oh/ow ${oh}×${ow} do not match input ${h}×${w}, kernel ${kh}×${kw}, stride ${sh}×${sw}, padding [${pt}, ${pl}, ${pb}, ${pr}]`);
  }
  return v;
}

/** Conv shapes the addon handles: non-empty, padding smaller than the kernel on every side (as the op requires). */
function convSupported(v: readonly number[]): boolean {
  const [kh, kw, pt, pl, pb, pr] = [v[5]!, v[6]!, v[9]!, v[10]!, v[11]!, v[12]!];
  return v[0]! * v[1]! * v[2]! > 0 && pt < kh && pb < kh && pl < kw && pr < kw;
}

function convLens(v: readonly number[]): { x: number; y: number; w: number } {
  const [n, h, w, ci, co, kh, kw, , , , , , , oh, ow] = v as [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];
  return { x: n * h * w * ci, y: n * oh * ow * co, w: co * ci * kh * kw };
}

function checkAttentionDims(k: string, d: unknown): AttentionDims {
  if (typeof d !== 'object' || d === null) throw new TypeError(`native ${k}: dims must be an object, got ${typeName(d)}`);
  const o = d as Record<string, unknown>;
  for (const f of ['bh', 'sq', 'sk', 'dh', 'dv'] as const) checkDim(k, f, o[f]);
  const scale = o['scale'];
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`native ${k}: scale must be a finite number, got ${String(scale)}`);
  return d as AttentionDims;
}

// ---------------------------------------------------------------- registration

/** Registers every kernel the addon accelerates as a native override. */
export function registerNativeKernels(addon: NativeAddon): void {
  defineNativeKernel('matmul', (a, b, d, precision, bias = null) => {
    const { batch, m, k, n, transA, transB, strideA, strideB } = checkMatmulDims(d);
    const bf16 = checkPrecision('matmul', precision);
    const A = checkMatmulInput('a', a, spanOf(batch, m, k, strideA));
    const B = checkMatmulInput('b', b, spanOf(batch, k, n, strideB));
    if (bias !== null && (!(bias instanceof Float32Array || bias instanceof Float64Array) || bias.length !== n)) {
      throw new RangeError(`matmul: bias must be a float array of n = ${n} elements`);
    }
    if (anyF64(A, B) || bias instanceof Float64Array || batch * m * n * k === 0) return ref('matmul')(A, B, d, precision, bias);
    return addon.matmul(A as Float32Array | Uint16Array, B as Float32Array | Uint16Array, batch, m, k, n, transA, transB, strideA, strideB, bf16,
      bias as Float32Array | null);
  });

  defineNativeKernel('sumRows', (g, rows, cols) => {
    checkDim('sumRows', 'rows', rows); checkDim('sumRows', 'cols', cols);
    checkLen('sumRows', 'g', g, rows * cols);
    if (anyF64(g) || rows * cols === 0) return ref('sumRows')(g, rows, cols);
    return addon.sumRows(g as Float32Array, rows, cols);
  });

  // Gathers (permute, slice, expand, head split): natively for f32 from 4096 elements, where the
  // per-call cost is repaid; other dtypes, small or empty copies and negative strides stay in JS.
  defineNativeKernel('stridedCopy', (x, offset, strides, outShape) => {
    const n = numel(outShape);
    if (!(x instanceof Float32Array) || n < NATIVE_MIN_ELEMENTS || strides.some((s) => s < 0) || strides.length !== outShape.length) {
      return ref('stridedCopy')(x, offset, strides, outShape);
    }
    const c = coalesceDims(outShape, [strides]);
    if (c.shape.length > MAX_NATIVE_RANK) return ref('stridedCopy')(x, offset, strides, outShape);
    const st = c.strides[0]!;
    checkDim('stridedCopy', 'offset', offset);
    const last = c.shape.reduce((a, d, i) => a + (d - 1) * st[i]!, offset);
    if (last >= x.length) throw new RangeError(`native stridedCopy: reading ${fmtShape(outShape)} through strides [${strides.join(', ')}] from offset ${offset} needs ${last + 1} elements, x has ${x.length}`);
    return addon.stridedCopy(x, offset, c.shape.length, c.shape, st);
  });

  // Training's elementwise loops: bit-identical to the reference (double products, same order).
  defineNativeKernel('adamwUpdate', (x, g, m, v, h) => {
    const n = x.length;
    if (g.length !== n || m.length !== n || v.length !== n) throw new RangeError(`native adamwUpdate: x, g, m, v must have one length, got ${n}, ${g.length}, ${m.length}, ${v.length}`);
    for (const k of ['b1', 'b2', 'eps', 'decay', 'stepSize', 'bc2Sqrt'] as const) {
      if (typeof h?.[k] !== 'number' || !Number.isFinite(h[k])) throw new RangeError(`native adamwUpdate: ${k} must be a finite number, got ${String(h?.[k])}`);
    }
    if (!(x instanceof Float32Array && g instanceof Float32Array && m instanceof Float32Array && v instanceof Float32Array) || n === 0) {
      ref('adamwUpdate')(x, g, m, v, h);
      return;
    }
    addon.adamwUpdate(x, g, m, v, h.b1, h.b2, h.eps, h.decay, h.stepSize, h.bc2Sqrt);
  });

  defineNativeKernel('dropout', (x, keep, scale) => {
    if (!(keep instanceof Uint8Array) || keep.length !== x.length) throw new RangeError(`native dropout: keep must be a Uint8Array of ${x.length} entries, got ${typeName(keep)}`);
    if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`native dropout: scale must be a finite number, got ${String(scale)}`);
    if (!(x instanceof Float32Array) || x.length < NATIVE_MIN_ELEMENTS) return ref('dropout')(x, keep, scale);
    return addon.dropout(x, keep, scale);
  });

  defineNativeKernel('sumSquares', (x) => (x instanceof Float32Array && x.length >= NATIVE_MIN_ELEMENTS ? addon.sumSquares(x) : ref('sumSquares')(x)));
  defineNativeKernel('scale', (x, c) => {
    if (typeof c !== 'number' || !Number.isFinite(c)) throw new RangeError(`native scale: c must be a finite number, got ${String(c)}`);
    return x instanceof Float32Array && x.length >= NATIVE_MIN_ELEMENTS ? addon.scale(x, c) : ref('scale')(x, c);
  });

  // Cross-entropy: f32 logits of at least NATIVE_MIN_ELEMENTS go native (the same double arithmetic, row-parallel).
  const ceNative = (x: unknown, t: unknown, rows: number, cols: number, ignoreIndex: number, eps: number): boolean => {
    checkDim('crossEntropy', 'rows', rows, 0); checkDim('crossEntropy', 'cols', cols);
    if (!(t instanceof Int32Array) || t.length !== rows) throw new RangeError(`native crossEntropy: targets must be an Int32Array of ${rows} entries, got ${typeName(t)}`);
    if (typeof eps !== 'number' || !(eps >= 0 && eps <= 1)) throw new RangeError(`native crossEntropy: labelSmoothing must be in [0, 1], got ${String(eps)}`);
    // An ignoreIndex outside int32 matches no target: the reference handles it (the addon takes int32-range values).
    return x instanceof Float32Array && rows * cols >= NATIVE_MIN_ELEMENTS && Number.isInteger(ignoreIndex) && Math.abs(ignoreIndex) < 2 ** 31;
  };
  defineNativeKernel('crossEntropy', (x, t, rows, cols, ignoreIndex, eps) => {
    const native = ceNative(x, t, rows, cols, ignoreIndex, eps);
    checkLen('crossEntropy', 'x', x, rows * cols);
    if (!native) return ref('crossEntropy')(x, t, rows, cols, ignoreIndex, eps);
    return addon.crossEntropy(x as Float32Array, t, rows, cols, ignoreIndex, eps);
  });
  defineNativeKernel('crossEntropyBackward', (x, t, lse, g, rows, cols, ignoreIndex, eps) => {
    const native = ceNative(x, t, rows, cols, ignoreIndex, eps);
    checkLen('crossEntropyBackward', 'x', x, rows * cols);
    checkLen('crossEntropyBackward', 'lse', lse, rows);
    checkLen('crossEntropyBackward', 'g', g, rows);
    if (!native || !(lse instanceof Float32Array) || !(g instanceof Float32Array)) {
      return ref('crossEntropyBackward')(x, t, lse, g, rows, cols, ignoreIndex, eps);
    }
    return addon.crossEntropyBackward(x as Float32Array, t, lse, g, rows, cols, ignoreIndex, eps);
  });

  defineNativeKernel('conv2d', (x, w, bias, d, precision) => {
    const v = convDims('conv2d', d), len = convLens(v);
    const bf16 = checkPrecision('conv2d', precision);
    checkConvInput('conv2d', 'x', x, len.x);
    checkConvInput('conv2d', 'w', w, len.w);
    checkOptional('conv2d', 'bias', bias, v[4]!);
    if (anyF64(x, w, bias) || !convSupported(v)) return ref('conv2d')(x, w, bias, d, precision);
    return addon.conv2d(x as Float32Array | Uint16Array, w as Float32Array | Uint16Array, bias as Float32Array | null, v, bf16);
  });

  defineNativeKernel('conv2dBackwardData', (g, w, d, precision) => {
    const v = convDims('conv2dBackwardData', d), len = convLens(v);
    const bf16 = checkPrecision('conv2dBackwardData', precision);
    checkConvInput('conv2dBackwardData', 'g', g, len.y);
    checkConvInput('conv2dBackwardData', 'w', w, len.w);
    if (anyF64(g, w) || !convSupported(v)) return ref('conv2dBackwardData')(g, w, d, precision);
    return addon.conv2dBackwardData(g as Float32Array | Uint16Array, w as Float32Array | Uint16Array, v, bf16);
  });

  defineNativeKernel('conv2dBackwardWeights', (x, g, d, withBias, precision) => {
    const v = convDims('conv2dBackwardWeights', d), len = convLens(v);
    const bf16 = checkPrecision('conv2dBackwardWeights', precision);
    checkConvInput('conv2dBackwardWeights', 'x', x, len.x);
    checkConvInput('conv2dBackwardWeights', 'g', g, len.y);
    checkBool('conv2dBackwardWeights', 'withBias', withBias);
    if (anyF64(x, g) || !convSupported(v)) return ref('conv2dBackwardWeights')(x, g, d, withBias, precision);
    return addon.conv2dBackwardWeights(x as Float32Array | Uint16Array, g as Float32Array | Uint16Array, v, withBias, bf16);
  });

  // ---- normalisation

  defineNativeKernel('layerNorm', (x, gamma, beta, rows, cols, eps) => {
    checkDim('layerNorm', 'rows', rows); checkDim('layerNorm', 'cols', cols); checkEps('layerNorm', eps);
    checkLen('layerNorm', 'x', x, rows * cols);
    checkOptional('layerNorm', 'gamma', gamma, cols);
    checkOptional('layerNorm', 'beta', beta, cols);
    if (anyF64(x, gamma, beta) || rows * cols === 0) return ref('layerNorm')(x, gamma, beta, rows, cols, eps);
    return addon.layerNorm(x as Float32Array, gamma as Float32Array | null, beta as Float32Array | null, rows, cols, eps);
  });

  defineNativeKernel('layerNormBackward', (x, gamma, mean, rstd, g, rows, cols, hasBeta) => {
    const k = 'layerNormBackward';
    checkDim(k, 'rows', rows); checkDim(k, 'cols', cols); checkBool(k, 'hasBeta', hasBeta);
    checkLen(k, 'x', x, rows * cols); checkLen(k, 'g', g, rows * cols);
    checkOptional(k, 'gamma', gamma, cols);
    checkLen(k, 'mean', mean, rows); checkLen(k, 'rstd', rstd, rows);
    if (anyF64(x, gamma, mean, rstd, g) || rows * cols === 0) return ref(k)(x, gamma, mean, rstd, g, rows, cols, hasBeta);
    return addon.layerNormBackward(x as Float32Array, gamma as Float32Array | null, mean as Float32Array, rstd as Float32Array,
      g as Float32Array, rows, cols, hasBeta);
  });

  const checkGroups = (k: string, n: number, p: number, c: number, groups: number): void => {
    checkDim(k, 'n', n); checkDim(k, 'p', p); checkDim(k, 'c', c, 1); checkDim(k, 'groups', groups, 1);
    if (c % groups !== 0) throw new RangeError(`native ${k}: c = ${c} is not divisible by groups = ${groups}`);
  };

  defineNativeKernel('groupNorm', (x, gamma, beta, n, p, c, groups, eps) => {
    checkGroups('groupNorm', n, p, c, groups); checkEps('groupNorm', eps);
    checkLen('groupNorm', 'x', x, n * p * c);
    checkOptional('groupNorm', 'gamma', gamma, c);
    checkOptional('groupNorm', 'beta', beta, c);
    if (anyF64(x, gamma, beta) || n * p === 0) return ref('groupNorm')(x, gamma, beta, n, p, c, groups, eps);
    return addon.groupNorm(x as Float32Array, gamma as Float32Array | null, beta as Float32Array | null, n, p, c, groups, eps);
  });

  defineNativeKernel('groupNormBackward', (x, gamma, mean, rstd, g, n, p, c, groups, hasBeta) => {
    const k = 'groupNormBackward';
    checkGroups(k, n, p, c, groups); checkBool(k, 'hasBeta', hasBeta);
    checkLen(k, 'x', x, n * p * c); checkLen(k, 'g', g, n * p * c);
    checkOptional(k, 'gamma', gamma, c);
    checkLen(k, 'mean', mean, n * groups); checkLen(k, 'rstd', rstd, n * groups);
    if (anyF64(x, gamma, mean, rstd, g) || n * p === 0) return ref(k)(x, gamma, mean, rstd, g, n, p, c, groups, hasBeta);
    return addon.groupNormBackward(x as Float32Array, gamma as Float32Array | null, mean as Float32Array, rstd as Float32Array,
      g as Float32Array, n, p, c, groups, hasBeta);
  });

  // ---- softmax

  defineNativeKernel('softmax', (x, rows, cols, log) => {
    checkDim('softmax', 'rows', rows); checkDim('softmax', 'cols', cols); checkBool('softmax', 'log', log);
    checkLen('softmax', 'x', x, rows * cols);
    if (anyF64(x) || rows * cols === 0) return ref('softmax')(x, rows, cols, log);
    return addon.softmax(x as Float32Array, rows, cols, log);
  });

  defineNativeKernel('softmaxBackward', (y, g, rows, cols, log) => {
    const k = 'softmaxBackward';
    checkDim(k, 'rows', rows); checkDim(k, 'cols', cols); checkBool(k, 'log', log);
    checkLen(k, 'y', y, rows * cols); checkLen(k, 'g', g, rows * cols);
    if (anyF64(y, g) || rows * cols === 0) return ref(k)(y, g, rows, cols, log);
    return addon.softmaxBackward(y as Float32Array, g as Float32Array, rows, cols, log);
  });

  // ---- elementwise

  defineNativeKernel('unary', (kind, x) => {
    checkKind('unary', kind, UNARY_KINDS);
    checkArray('unary', 'x', x);
    if (anyF64(x) || x.length === 0) return ref('unary')(kind, x);
    return addon.unary(kind, x as Float32Array);
  });

  defineNativeKernel('unaryBackward', (kind, x, y, g) => {
    checkKind('unaryBackward', kind, UNARY_KINDS);
    checkArray('unaryBackward', 'x', x);
    checkLen('unaryBackward', 'y', y, x.length);
    checkLen('unaryBackward', 'g', g, x.length);
    if (anyF64(x, y, g) || x.length === 0) return ref('unaryBackward')(kind, x, y, g);
    return addon.unaryBackward(kind, x as Float32Array, y as Float32Array, g as Float32Array);
  });

  defineNativeKernel('binary', (kind, a, aShape, b, bShape, outShape) => {
    checkKind('binary', kind, BINARY_KINDS);
    checkShape('binary', 'aShape', aShape); checkShape('binary', 'bShape', bShape); checkShape('binary', 'outShape', outShape);
    checkLen('binary', 'a', a, numel(aShape));
    checkLen('binary', 'b', b, numel(bShape));
    const expect = broadcastShapes(aShape, bShape);
    if (!sameShape(expect, outShape)) {
      throw new RangeError(`native binary: outShape ${fmtShape(outShape)} is not the broadcast ${fmtShape(expect)} of ${fmtShape(aShape)} and ${fmtShape(bShape)}`);
    }
    const rank = Math.max(1, outShape.length);
    if (anyF64(a, b) || numel(outShape) === 0 || rank > MAX_NATIVE_RANK) return ref('binary')(kind, a, aShape, b, bShape, outShape);
    const pad = (s: Shape): number[] => [...new Array<number>(rank - s.length).fill(1), ...s];
    // oneDNN broadcasts its second operand only: keep a first when it has the output's shape, else swap.
    if (numel(aShape) === numel(outShape)) {
      return addon.binary(kind, a as Float32Array, pad(outShape), b as Float32Array, pad(bShape), false);
    }
    if (numel(bShape) === numel(outShape) && kind !== 'div') {
      return addon.binary(kind, b as Float32Array, pad(outShape), a as Float32Array, pad(aShape), kind === 'sub');
    }
    return ref('binary')(kind, a, aShape, b, bShape, outShape);
  });

  registerAttention(addon);
  registerSparseAttention(addon);
}

function registerAttention(addon: NativeAddon): void {
  defineNativeKernel('attention', (q, k, v, mask, d, precision) => {
    const { bh, sq, sk, dh, dv, scale } = checkAttentionDims('attention', d);
    const bf16 = checkPrecision('attention', precision);
    checkLen('attention', 'q', q, bh * sq * dh); checkLen('attention', 'k', k, bh * sk * dh); checkLen('attention', 'v', v, bh * sk * dv);
    if (mask !== null) {
      if (typeof mask !== 'object' || !(mask.data instanceof Uint8Array)) throw new TypeError(`native attention: mask.data must be a Uint8Array, got ${typeName(mask?.data)}`);
      checkBool('attention', 'mask.shared', mask.shared);
      const want = (mask.shared ? 1 : bh) * sq * sk;
      if (mask.data.length !== want) throw new RangeError(`native attention: mask has ${mask.data.length} entries, expected ${want}`);
    }
    if (anyF64(q, k, v) || bh * sq * sk * dh * dv === 0) return ref('attention')(q, k, v, mask, d, precision);
    return addon.attention(q as Float32Array, k as Float32Array, v as Float32Array, mask === null ? null : mask.data,
      mask === null ? false : mask.shared, bh, sq, sk, dh, dv, scale, bf16);
  });

  defineNativeKernel('attentionBackward', (q, k, v, probs, g, d, precision) => {
    const name = 'attentionBackward';
    const { bh, sq, sk, dh, dv, scale } = checkAttentionDims(name, d);
    const bf16 = checkPrecision(name, precision);
    checkLen(name, 'q', q, bh * sq * dh); checkLen(name, 'k', k, bh * sk * dh); checkLen(name, 'v', v, bh * sk * dv);
    checkLen(name, 'probs', probs, bh * sq * sk); checkLen(name, 'g', g, bh * sq * dv);
    if (anyF64(q, k, v, probs, g) || bh * sq * sk * dh * dv === 0) return ref(name)(q, k, v, probs, g, d, precision);
    return addon.attentionBackward(q as Float32Array, k as Float32Array, v as Float32Array, probs as Float32Array, g as Float32Array,
      bh, sq, sk, dh, dv, scale, bf16);
  });
}

function checkSparseDims(k: string, d: unknown): SparseAttentionDims {
  if (typeof d !== 'object' || d === null) throw new TypeError(`native ${k}: dims must be an object, got ${typeName(d)}`);
  const o = d as Record<string, unknown>;
  for (const f of ['b', 'h', 's', 'dv', 'nnz'] as const) checkDim(k, f, o[f], 0);
  checkDim(k, 'dh', o['dh'], 1);
  const scale = o['scale'];
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`native ${k}: scale must be a finite number, got ${String(scale)}`);
  return d as SparseAttentionDims;
}

// CSR arrays already validated (cols → rowPtr it was checked with); the addon re-checks them anyway.
const checkedCsr = new WeakMap<Int32Array, Int32Array>();

function checkSparsePattern(k: string, d: SparseAttentionDims, rowPtr: unknown, cols: unknown): void {
  const known = cols instanceof Int32Array && rowPtr instanceof Int32Array && checkedCsr.get(cols) === rowPtr && rowPtr.length === d.s + 1;
  if (!known) {
    checkCsr(`native ${k}`, d.s, rowPtr, cols);
    checkedCsr.set(cols as Int32Array, rowPtr as Int32Array);
  }
  if ((cols as Int32Array).length !== d.nnz) throw new RangeError(`native ${k}: cols has ${(cols as Int32Array).length} entries, dims.nnz is ${d.nnz}`);
}

function registerSparseAttention(addon: NativeAddon): void {
  defineNativeKernel('sparseAttention', (q, k, v, rowPtr, cols, keyValid, d, precision) => {
    const name = 'sparseAttention';
    const { b, h, s, dh, dv, nnz, scale } = checkSparseDims(name, d);
    const bf16 = checkPrecision(name, precision);
    checkSparsePattern(name, d, rowPtr, cols);
    checkLen(name, 'q', q, b * h * s * dh); checkLen(name, 'k', k, b * h * s * dh); checkLen(name, 'v', v, b * h * s * dv);
    if (keyValid !== null && (!(keyValid instanceof Int32Array) || keyValid.length !== b * s)) {
      throw new RangeError(`native ${name}: keyValid must be an Int32Array of B·S = ${b * s} entries or null, got ${typeName(keyValid)}`);
    }
    if (anyF64(q, k, v) || b * h * s * dv * nnz === 0) return ref(name)(q, k, v, rowPtr, cols, keyValid, d, precision);
    return addon.sparseAttention(q as Float32Array, k as Float32Array, v as Float32Array, rowPtr, cols, keyValid, b, h, s, dh, dv, scale, bf16);
  });

  defineNativeKernel('sparseAttentionBackward', (q, k, v, rowPtr, cols, probs, g, d, precision) => {
    const name = 'sparseAttentionBackward';
    const { b, h, s, dh, dv, nnz, scale } = checkSparseDims(name, d);
    const bf16 = checkPrecision(name, precision);
    checkSparsePattern(name, d, rowPtr, cols);
    checkLen(name, 'q', q, b * h * s * dh); checkLen(name, 'k', k, b * h * s * dh); checkLen(name, 'v', v, b * h * s * dv);
    checkLen(name, 'probs', probs, b * h * nnz); checkLen(name, 'g', g, b * h * s * dv);
    if (anyF64(q, k, v, probs, g) || b * h * s * dv * nnz === 0) return ref(name)(q, k, v, rowPtr, cols, probs, g, d, precision);
    return addon.sparseAttentionBackward(q as Float32Array, k as Float32Array, v as Float32Array, rowPtr, cols, probs as Float32Array,
      g as Float32Array, b, h, s, dh, dv, scale, bf16);
  });

  defineNativeKernel('sparseAttentionRows', (q, k, v, rowPtr, cols, keyValid, d, precision) => {
    const name = 'sparseAttentionRows';
    const bf16 = checkPrecision(name, precision);
    for (const key of ['b', 'h', 'sq', 'q0', 'sk', 'dv'] as const) {
      if (!Number.isInteger(d[key]) || d[key] < 0) throw new RangeError(`native ${name}: dims.${key} must be an integer ≥ 0, got ${String(d[key])}`);
    }
    if (!Number.isInteger(d.dh) || d.dh < 1) throw new RangeError(`native ${name}: dims.dh must be an integer ≥ 1, got ${String(d.dh)}`);
    if (!Number.isFinite(d.scale)) throw new RangeError(`native ${name}: dims.scale must be finite`);
    const { b, h, sq, q0, sk, dh, dv, scale } = d;
    if (!(rowPtr instanceof Int32Array) || !(cols instanceof Int32Array)) throw new TypeError(`native ${name}: rowPtr and cols must be Int32Arrays`);
    checkLen(name, 'q', q, b * h * sq * dh); checkLen(name, 'k', k, b * h * sk * dh); checkLen(name, 'v', v, b * h * sk * dv);
    if (keyValid !== null && (!(keyValid instanceof Int32Array) || keyValid.length !== b * sk)) {
      throw new RangeError(`native ${name}: keyValid must be an Int32Array of B·Sk = ${b * sk} entries or null, got ${typeName(keyValid)}`);
    }
    if (anyF64(q, k, v)) return ref(name)(q, k, v, rowPtr, cols, keyValid, d, precision);
    return addon.sparseAttentionRows(q as Float32Array, k as Float32Array, v as Float32Array, rowPtr, cols, keyValid, b, h, sq, sk, q0, dh, dv, scale, bf16);
  });
}

/** Names of the kernels registered above (for tests and `vilg info`). */
export const NATIVE_KERNELS: readonly KernelName[] = [
  'matmul', 'sumRows', 'stridedCopy', 'adamwUpdate', 'dropout', 'sumSquares', 'scale', 'crossEntropy', 'crossEntropyBackward', 'conv2d', 'conv2dBackwardData', 'conv2dBackwardWeights', 'layerNorm', 'layerNormBackward',
  'groupNorm', 'groupNormBackward', 'softmax', 'softmaxBackward', 'unary', 'unaryBackward', 'binary',
  'attention', 'attentionBackward', 'sparseAttention', 'sparseAttentionBackward', 'sparseAttentionRows',
];
