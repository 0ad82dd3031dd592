// Elementwise ops: binary with NumPy broadcasting, and unary activations.
// Legend: shapes are arbitrary; outputs take the broadcast shape of the inputs. A plain number
// operand becomes a 0-d tensor of the other operand's dtype and broadcasts like any other.

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { broadcastShapes, broadcastStrides, fmtShape, numel, stridesOf, type Shape } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';
import { sumToShape } from './reduce.js';
import { coalesceDims, rowOffsets } from './shape.js';

export type BinaryKind = 'add' | 'sub' | 'mul' | 'div';
export type UnaryKind =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'abs' | 'tanh' | 'sigmoid' | 'relu'
  | 'gelu' /* erf form */ | 'gelu_tanh' | 'silu';

declare module '../kernels.js' {
  interface KernelMap {
    /** y = a ∘ b with broadcasting; a has shape aShape, b bShape, y outShape (their broadcast). */
    binary(kind: BinaryKind, a: FloatArray, aShape: Shape, b: FloatArray, bShape: Shape, outShape: Shape): FloatArray;
    /** y = f(x). */
    unary(kind: UnaryKind, x: FloatArray): FloatArray;
    /** dx = g · f'(x), given x, y = f(x) and the output gradient g (all the same length). */
    unaryBackward(kind: UnaryKind, x: FloatArray, y: FloatArray, g: FloatArray): FloatArray;
    /** y = x^p for a scalar exponent p. */
    powScalar(x: FloatArray, p: number): FloatArray;
    /** y = min(max(x, lo), hi). */
    clamp(x: FloatArray, lo: number, hi: number): FloatArray;
    /** dx = g where lo ≤ x ≤ hi, else 0. */
    clampBackward(x: FloatArray, g: FloatArray, lo: number, hi: number): FloatArray;
  }
}

// ---------------------------------------------------------------- reference kernels

defineKernel('binary', (kind, a, aShape, b, bShape, outShape) => {
  const out = allocLike(a, numel(outShape));
  if (out.length === 0) return out;
  // Collapse to few long rows: same-shape operands become one row, a scalar operand has stride 0.
  const c = coalesceDims(outShape, [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape), stridesOf(outShape)]);
  const r = c.shape.length - 1, len = c.shape[r]!;
  const [sa, sb] = [c.strides[0]![r]!, c.strides[1]![r]!];
  const offA = rowOffsets(c.shape, c.strides[0]!), offB = rowOffsets(c.shape, c.strides[1]!), offO = rowOffsets(c.shape, c.strides[2]!);
  for (let row = 0; row < offO.length; row++) {
    const ia = offA[row]!, ib = offB[row]!, io = offO[row]!;
    switch (kind) { // the switch sits outside the inner loops so each loop stays monomorphic
      case 'add': for (let j = 0; j < len; j++) out[io + j] = a[ia + j * sa]! + b[ib + j * sb]!; break;
      case 'sub': for (let j = 0; j < len; j++) out[io + j] = a[ia + j * sa]! - b[ib + j * sb]!; break;
      case 'mul': for (let j = 0; j < len; j++) out[io + j] = a[ia + j * sa]! * b[ib + j * sb]!; break;
      case 'div': for (let j = 0; j < len; j++) out[io + j] = a[ia + j * sa]! / b[ib + j * sb]!; break;
      default: throw new RangeError(`binary: unknown kind '${String(kind)}'`);
    }
  }
  return out;
});

// erf by W. J. Cody's rational Chebyshev approximations (CALERF, Math. Comp. 1969), ~1e-16 relative:
// erf on |x| ≤ 0.46875, erfc = exp(−x²)·R(x) on (0.46875, 4], and an asymptotic form beyond 4.
const ERF_A = [3.16112374387056560e0, 1.13864154151050156e2, 3.77485237685302021e2, 3.20937758913846947e3, 1.85777706184603153e-1];
const ERF_B = [2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3, 2.84423683343917062e3];
const ERF_C = [5.64188496988670089e-1, 8.88314979438837594e0, 6.61191906371416295e1, 2.98635138197400131e2,
  8.81952221241769090e2, 1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8];
const ERF_D = [1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2, 1.62138957456669019e3,
  3.29079923573345963e3, 4.36261909014324716e3, 3.43936767414372164e3, 1.23033935480374942e3];
const ERF_P = [3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
  6.58749161529837803e-4, 1.63153871373020978e-2];
const ERF_Q = [2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3];
const INV_SQRT_PI = 5.6418958354775628695e-1;

/** The error function, accurate to double precision. */
export function erf(x: number): number {
  const y = Math.abs(x);
  if (y <= 0.46875) {
    const z = y > 1.11e-16 ? y * y : 0;
    let num = ERF_A[4]! * z, den = z;
    for (let i = 0; i < 3; i++) { num = (num + ERF_A[i]!) * z; den = (den + ERF_B[i]!) * z; }
    return x * (num + ERF_A[3]!) / (den + ERF_B[3]!);
  }
  let erfc: number;
  if (y >= 26.543) erfc = 0;
  else {
    let r: number;
    if (y <= 4) {
      let num = ERF_C[8]! * y, den = y;
      for (let i = 0; i < 7; i++) { num = (num + ERF_C[i]!) * y; den = (den + ERF_D[i]!) * y; }
      r = (num + ERF_C[7]!) / (den + ERF_D[7]!);
    } else {
      const z = 1 / (y * y);
      let num = ERF_P[5]! * z, den = z;
      for (let i = 0; i < 4; i++) { num = (num + ERF_P[i]!) * z; den = (den + ERF_Q[i]!) * z; }
      r = (INV_SQRT_PI - z * (num + ERF_P[4]!) / (den + ERF_Q[4]!)) / y;
    }
    // exp(−y²) split as exp(−t²)·exp(−(y−t)(y+t)) with t = y rounded down to 1/16, to keep y² exact.
    const t = Math.trunc(y * 16) / 16;
    erfc = Math.exp(-t * t) * Math.exp(-(y - t) * (y + t)) * r;
  }
  const e = (0.5 - erfc) + 0.5;
  return x < 0 ? -e : e;
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 0.3989422804014327; // 1/√(2π)
const GELU_TANH_C = 0.7978845608028654;  // √(2/π)
const GELU_TANH_K = 0.044715;

function sigmoidOf(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v); // no overflow for very negative v
  return e / (1 + e);
}

defineKernel('unary', (kind, x) => {
  const n = x.length, y = allocLike(x, n);
  switch (kind) {
    case 'neg': for (let i = 0; i < n; i++) y[i] = -x[i]!; break;
    case 'exp': for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]!); break;
    case 'log': for (let i = 0; i < n; i++) y[i] = Math.log(x[i]!); break;
    case 'sqrt': for (let i = 0; i < n; i++) y[i] = Math.sqrt(x[i]!); break;
    case 'rsqrt': for (let i = 0; i < n; i++) y[i] = 1 / Math.sqrt(x[i]!); break;
    case 'abs': for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]!); break;
    case 'tanh': for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]!); break;
    case 'sigmoid': for (let i = 0; i < n; i++) y[i] = sigmoidOf(x[i]!); break;
    case 'relu': for (let i = 0; i < n; i++) y[i] = x[i]! > 0 ? x[i]! : 0; break;
    case 'silu': for (let i = 0; i < n; i++) y[i] = x[i]! * sigmoidOf(x[i]!); break;
    case 'gelu': for (let i = 0; i < n; i++) { const v = x[i]!; y[i] = 0.5 * v * (1 + erf(v * SQRT1_2)); } break;
    case 'gelu_tanh':
      for (let i = 0; i < n; i++) { const v = x[i]!; y[i] = 0.5 * v * (1 + Math.tanh(GELU_TANH_C * (v + GELU_TANH_K * v * v * v))); }
      break;
    default: throw new RangeError(`unary: unknown kind '${String(kind)}'`);
  }
  return y;
});

defineKernel('unaryBackward', (kind, x, y, g) => {
  const n = x.length, dx = allocLike(x, n);
  switch (kind) {
    case 'neg': for (let i = 0; i < n; i++) dx[i] = -g[i]!; break;
    case 'exp': for (let i = 0; i < n; i++) dx[i] = g[i]! * y[i]!; break;
    case 'log': for (let i = 0; i < n; i++) dx[i] = g[i]! / x[i]!; break;
    case 'sqrt': for (let i = 0; i < n; i++) dx[i] = (0.5 * g[i]!) / y[i]!; break;
    case 'rsqrt': for (let i = 0; i < n; i++) { const v = y[i]!; dx[i] = -0.5 * g[i]! * v * v * v; } break;
    case 'abs': for (let i = 0; i < n; i++) dx[i] = x[i]! > 0 ? g[i]! : x[i]! < 0 ? -g[i]! : 0; break; // sign(0) = 0, as PyTorch
    case 'tanh': for (let i = 0; i < n; i++) { const v = y[i]!; dx[i] = g[i]! * (1 - v * v); } break;
    case 'sigmoid': for (let i = 0; i < n; i++) { const v = y[i]!; dx[i] = g[i]! * v * (1 - v); } break;
    case 'relu': for (let i = 0; i < n; i++) dx[i] = x[i]! > 0 ? g[i]! : 0; break;
    case 'silu': // d/dx x·s(x) = s·(1 + x·(1 − s))
      for (let i = 0; i < n; i++) { const v = x[i]!, s = sigmoidOf(v); dx[i] = g[i]! * s * (1 + v * (1 - s)); }
      break;
    case 'gelu': // Φ(x) + x·φ(x)
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        dx[i] = g[i]! * (0.5 * (1 + erf(v * SQRT1_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
      }
      break;
    case 'gelu_tanh': // ½(1 + t) + ½x(1 − t²)·c(1 + 3k x²), t = tanh(c(x + k x³))
      for (let i = 0; i < n; i++) {
        const v = x[i]!, t = Math.tanh(GELU_TANH_C * (v + GELU_TANH_K * v * v * v));
        dx[i] = g[i]! * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_TANH_C * (1 + 3 * GELU_TANH_K * v * v));
      }
      break;
    default: throw new RangeError(`unaryBackward: unknown kind '${String(kind)}'`);
  }
  return dx;
});

defineKernel('powScalar', (x, p) => {
  const y = allocLike(x, x.length);
  if (p === 2) for (let i = 0; i < x.length; i++) y[i] = x[i]! * x[i]!; // exact and fast for the common square
  else for (let i = 0; i < x.length; i++) y[i] = Math.pow(x[i]!, p);
  return y;
});

defineKernel('clamp', (x, lo, hi) => {
  const y = allocLike(x, x.length);
  for (let i = 0; i < x.length; i++) { const v = x[i]!; y[i] = v < lo ? lo : v > hi ? hi : v; }
  return y;
});

defineKernel('clampBackward', (x, g, lo, hi) => {
  const dx = allocLike(x, x.length);
  for (let i = 0; i < x.length; i++) { const v = x[i]!; dx[i] = v >= lo && v <= hi ? g[i]! : 0; }
  return dx;
});

// ---------------------------------------------------------------- helpers

function floatData(x: Tensor, op: string): FloatArray {
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: expected a Tensor, got ${String(x)}`);
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${op}: needs f32 or f64 tensors, got ${x.dtype} ${fmtShape(x.shape)} (cast with .to())`);
  return x.data as FloatArray;
}

/** A 0-d tensor holding `v` in the dtype of `like` (broadcasts against anything). */
function scalarLike(v: number, like: Tensor): Tensor {
  const d = allocLike(like.data as FloatArray, 1);
  d[0] = v;
  return new Tensor(d, []);
}

type Operand = Tensor | number;

function operands(a: Operand, b: Operand, op: string): [Tensor, Tensor] {
  const isNum = (v: Operand): v is number => typeof v === 'number';
  if (isNum(a) && isNum(b)) throw new TypeError(`${op}: at least one operand must be a Tensor`);
  const ta = isNum(a) ? scalarLike(a, b as Tensor) : a;
  const tb = isNum(b) ? scalarLike(b, ta) : b;
  floatData(ta, op); floatData(tb, op);
  if (ta.dtype !== tb.dtype) throw new TypeError(`${op}: cannot mix ${ta.dtype} and ${tb.dtype}`);
  return [ta, tb];
}

function binaryForward(kind: BinaryKind, a: Tensor, b: Tensor): Tensor {
  const outShape = broadcastShapes(a.shape, b.shape); // throws a RangeError naming both shapes
  return new Tensor(kernel('binary')(kind, a.data as FloatArray, a.shape, b.data as FloatArray, b.shape, outShape), outShape);
}

// ---------------------------------------------------------------- binary ops

/** a + b, broadcasting. */
export function add(a: Operand, b: Operand): Tensor {
  const [x, y] = operands(a, b, 'add');
  const out = binaryForward('add', x, y);                                           // [...broadcast]
  const xShape = x.shape, yShape = y.shape; // backward needs no input values: the graph keeps none
  return recordOp('add', out, [x, y], (g, wanted) => [                              // g [...broadcast]
    wanted[0] ? sumToShape(g, xShape) : null,                                       // [...x.shape]
    wanted[1] ? sumToShape(g, yShape) : null,                                       // [...y.shape]
  ]);
}

/** a − b, broadcasting. */
export function sub(a: Operand, b: Operand): Tensor {
  const [x, y] = operands(a, b, 'sub');
  const out = binaryForward('sub', x, y);                                           // [...broadcast]
  const xShape = x.shape, yShape = y.shape; // backward needs no input values: the graph keeps none
  return recordOp('sub', out, [x, y], (g, wanted) => [
    wanted[0] ? sumToShape(g, xShape) : null,                                       // [...x.shape]
    wanted[1] ? sumToShape(neg(g), yShape) : null,                                  // [...y.shape]
  ]);
}

/** a · b (elementwise), broadcasting. */
export function mul(a: Operand, b: Operand): Tensor {
  const [x, y] = operands(a, b, 'mul');
  const out = binaryForward('mul', x, y);                                           // [...broadcast]
  return recordOp('mul', out, [x, y], (g) => [
    needsGrad(x) ? sumToShape(mul(g, y), x.shape) : null,                           // [...x.shape]
    needsGrad(y) ? sumToShape(mul(g, x), y.shape) : null,                           // [...y.shape]
  ]);
}

/** a / b (elementwise), broadcasting. */
export function div(a: Operand, b: Operand): Tensor {
  const [x, y] = operands(a, b, 'div');
  const out = binaryForward('div', x, y);                                           // [...broadcast]
  return recordOp('div', out, [x, y], (g) => [
    needsGrad(x) ? sumToShape(div(g, y), x.shape) : null,                           // [...x.shape]   g / b
    needsGrad(y) ? sumToShape(neg(div(mul(g, out), y)), y.shape) : null,            // [...y.shape]  −g·(a/b) / b
  ]);
}

// ---------------------------------------------------------------- unary ops

function unaryOp(kind: UnaryKind, x: Tensor, op: string = kind): Tensor {
  const xd = floatData(x, op);
  const out = new Tensor(kernel('unary')(kind, xd), x.shape);                      // [...x.shape]
  return recordOp(op, out, [x], (g) => [                                            // g [...x.shape]
    new Tensor(kernel('unaryBackward')(kind, xd, out.data as FloatArray, g.data as FloatArray), x.shape),
  ]);
}

export function neg(x: Tensor): Tensor { return unaryOp('neg', x); }
export function exp(x: Tensor): Tensor { return unaryOp('exp', x); }
export function log(x: Tensor): Tensor { return unaryOp('log', x); }
export function sqrt(x: Tensor): Tensor { return unaryOp('sqrt', x); }
/** 1 / √x. */
export function rsqrt(x: Tensor): Tensor { return unaryOp('rsqrt', x); }
/** |x|; the gradient at 0 is 0. */
export function abs(x: Tensor): Tensor { return unaryOp('abs', x); }
export function tanh(x: Tensor): Tensor { return unaryOp('tanh', x); }
export function sigmoid(x: Tensor): Tensor { return unaryOp('sigmoid', x); }
/** max(x, 0); the gradient at 0 is 0. */
export function relu(x: Tensor): Tensor { return unaryOp('relu', x); }
/** x · sigmoid(x). */
export function silu(x: Tensor): Tensor { return unaryOp('silu', x); }
export const swish = silu;

export interface GeluOptions { /** 'none' (default): exact x·Φ(x) via erf; 'tanh': the tanh approximation. */ approximate?: 'none' | 'tanh' }

/** Gaussian error linear unit, x·Φ(x) (or its tanh approximation). */
export function gelu(x: Tensor, opts: GeluOptions = {}): Tensor {
  const approx = opts.approximate ?? 'none';
  if (approx !== 'none' && approx !== 'tanh') throw new RangeError(`gelu: approximate must be 'none' or 'tanh', got '${String(approx)}'`);
  return unaryOp(approx === 'tanh' ? 'gelu_tanh' : 'gelu', x, 'gelu');
}

/** x^p for a scalar exponent (negative x needs an integer p, as in Math.pow). */
export function pow(x: Tensor, p: number): Tensor {
  const xd = floatData(x, 'pow');
  if (typeof p !== 'number' || Number.isNaN(p)) throw new TypeError(`pow: exponent must be a number, got ${String(p)}`);
  const out = new Tensor(kernel('powScalar')(xd, p), x.shape);                     // [...x.shape]
  return recordOp('pow', out, [x], (g) => [                                         // g [...x.shape]
    p === 0 ? mul(g, 0) : mul(g, mul(pow(x, p - 1), p)),                            // p·x^(p−1)·g (0 for p = 0, as PyTorch)
  ]);
}

/** x². */
export function square(x: Tensor): Tensor { return pow(x, 2); }

/** Limits x to [min, max] (either bound may be omitted); the gradient is 0 where x lies outside. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  const xd = floatData(x, 'clamp');
  const lo = min ?? -Infinity, hi = max ?? Infinity;
  if (typeof lo !== 'number' || typeof hi !== 'number' || Number.isNaN(lo) || Number.isNaN(hi)) throw new TypeError('clamp: bounds must be numbers');
  if (lo > hi) throw new RangeError(`clamp: min ${lo} is greater than max ${hi}`);
  const out = new Tensor(kernel('clamp')(xd, lo, hi), x.shape);                    // [...x.shape]
  return recordOp('clamp', out, [x], (g) => [                                       // g [...x.shape]
    new Tensor(kernel('clampBackward')(xd, g.data as FloatArray, lo, hi), x.shape),
  ]);
}
