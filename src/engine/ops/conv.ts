// 2-D convolution in NHWC (oneDNN's fast layout) with PyTorch-layout weights, and nearest upsampling.
// Legend: N batch, H×W input, OH×OW output, CI in channels, CO out channels, KH×KW kernel, C channels.
// x [N, H, W, CI], weight [CO, CI, KH, KW] (OIHW, as PyTorch/taming store it), y [N, OH, OW, CO].
//
// Mixed precision ('bf16'): the reference kernels round x and w (and g in backward) to bf16 first,
// then compute in f32 (accumulating in JS doubles) — the executable spec of oneDNN's bf16 conv.
// The bias is never rounded. Outputs keep the dtype of the inputs (f64 stays f64 for gradchecks).

import { allocLike, bf16ArrayToF32, roundToBf16, type FloatArray } from '../dtype.js';
import { defineKernel, getPrecision, kernel, type Precision } from '../kernels.js';
import { fmtShape } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';

export interface Conv2dDims {
  n: number; h: number; w: number; ci: number; co: number; kh: number; kw: number;
  strideH: number; strideW: number;
  padTop: number; padLeft: number; padBottom: number; padRight: number;
  oh: number; ow: number;
}

/** Sizes of a nearest-neighbour 2× upsampling: the input is [N, H, W, C]. */
export interface Upsample2xDims { n: number; h: number; w: number; c: number }

/** What the conv kernels read: f32, f64 (reference only) or bf16 bits (as matmul; see MatmulInput). */
export type ConvInput = Float32Array | Float64Array | Uint16Array;

declare module '../kernels.js' {
  interface KernelMap {
    /** y [N, OH, OW, CO] = conv(x [N, H, W, CI], w [CO, CI, KH, KW]) + bias [CO]. */
    conv2d(x: ConvInput, w: ConvInput, bias: FloatArray | null, d: Conv2dDims, precision: Precision): FloatArray;
    /** dx [N, H, W, CI] from g [N, OH, OW, CO]. */
    conv2dBackwardData(g: ConvInput, w: ConvInput, d: Conv2dDims, precision: Precision): FloatArray;
    /** dw [CO, CI, KH, KW] and (when withBias) dbias [CO] from x and g. */
    conv2dBackwardWeights(x: ConvInput, g: ConvInput, d: Conv2dDims, withBias: boolean, precision: Precision): { dw: FloatArray; dbias: FloatArray | null };
    /** y [N, 2H, 2W, C]: every input pixel copied into a 2×2 block. */
    upsampleNearest2x(x: FloatArray, d: Upsample2xDims): FloatArray;
    /** dx [N, H, W, C]: each 2×2 block of g [N, 2H, 2W, C] summed. */
    upsampleNearest2xBackward(g: FloatArray, d: Upsample2xDims): FloatArray;
  }
}

// ---------------------------------------------------------------- reference kernels

/** Output storage for an input: f64 stays f64, f32 and bf16 inputs give f32. */
function outLike(a: ConvInput, n: number): FloatArray {
  return a instanceof Uint16Array ? new Float32Array(n) : allocLike(a, n);
}

function maybeRound(a: ConvInput, precision: Precision): FloatArray {
  if (a instanceof Uint16Array) return bf16ArrayToF32(a); // bf16 bits are already exact bf16 values
  return precision === 'bf16' ? roundToBf16(a) : a;
}

/** OIHW → HWIO in doubles, so the innermost loops run over CO contiguously. */
function toHWIO(w: FloatArray, d: Conv2dDims): Float64Array {
  const { ci, co, kh, kw } = d;
  const out = new Float64Array(w.length); // [KH, KW, CI, CO]
  for (let o = 0; o < co; o++) for (let c = 0; c < ci; c++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    out[((y * kw + x) * ci + c) * co + o] = w[((o * ci + c) * kh + y) * kw + x]!;
  }
  return out;
}

/**
 * Visits every (output pixel, valid kernel tap) pair: `tap(go, xo, wo)` gets the offsets of the output
 * pixel in [N, OH, OW, ·], of the input pixel in [N, H, W, CI] and of the tap in [KH, KW, CI, CO].
 * Taps that fall into the padding are skipped (padding is zeros), so no bounds checks run per element.
 */
function forEachTap(d: Conv2dDims, tap: (go: number, xo: number, wo: number) => void, pixel?: (go: number) => void): void {
  const { n, h, w, ci, co, kh, kw, strideH, strideW, padTop, padLeft, oh, ow } = d;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * strideH - padTop;
      const ky0 = Math.max(0, -iy0), ky1 = Math.min(kh, h - iy0);
      for (let ox = 0; ox < ow; ox++) {
        const ix0 = ox * strideW - padLeft;
        const kx0 = Math.max(0, -ix0), kx1 = Math.min(kw, w - ix0);
        const go = ((b * oh + oy) * ow + ox) * co;
        for (let ky = ky0; ky < ky1; ky++) {
          const xrow = ((b * h + iy0 + ky) * w + ix0) * ci;
          for (let kx = kx0; kx < kx1; kx++) tap(go, xrow + kx * ci, (ky * kw + kx) * ci * co);
        }
        if (pixel) pixel(go);
      }
    }
  }
}

defineKernel('conv2d', (x, w, bias, d, precision) => {
  const X = maybeRound(x, precision);        // [N, H, W, CI]
  const Wt = toHWIO(maybeRound(w, precision), d); // [KH, KW, CI, CO]
  const { ci, co } = d;
  const out = outLike(x, d.n * d.oh * d.ow * co); // [N, OH, OW, CO]
  const acc = new Float64Array(co);
  forEachTap(d, (_go, xo, wo) => {
    for (let c = 0; c < ci; c++) {
      const xv = X[xo + c]!, wr = wo + c * co;
      for (let o = 0; o < co; o++) acc[o] += xv * Wt[wr + o]!;
    }
  }, (go) => {
    for (let o = 0; o < co; o++) out[go + o] = acc[o]! + (bias === null ? 0 : bias[o]!);
    acc.fill(0);
  });
  return out;
});

defineKernel('conv2dBackwardData', (g, w, d, precision) => {
  const G = maybeRound(g, precision);        // [N, OH, OW, CO]
  const Wt = toHWIO(maybeRound(w, precision), d); // [KH, KW, CI, CO]
  const { ci, co } = d;
  const dx = new Float64Array(d.n * d.h * d.w * ci); // [N, H, W, CI]
  // Scatter: each output pixel's gradient flows back through every tap that produced it.
  forEachTap(d, (go, xo, wo) => {
    for (let c = 0; c < ci; c++) {
      const wr = wo + c * co;
      let s = 0;
      for (let o = 0; o < co; o++) s += G[go + o]! * Wt[wr + o]!;
      dx[xo + c] += s;
    }
  });
  const out = outLike(g, dx.length);
  out.set(dx);
  return out;
});

defineKernel('conv2dBackwardWeights', (x, g, d, withBias, precision) => {
  const X = maybeRound(x, precision); // [N, H, W, CI]
  const G = maybeRound(g, precision); // [N, OH, OW, CO]
  const gExact = g instanceof Uint16Array ? G : g; // the bias gradient sums the unrounded g
  const { ci, co, kh, kw } = d;
  const acc = new Float64Array(kh * kw * ci * co); // [KH, KW, CI, CO]
  const accB = new Float64Array(co);             // [CO]
  forEachTap(d, (go, xo, wo) => {
    for (let c = 0; c < ci; c++) {
      const xv = X[xo + c]!, wr = wo + c * co;
      for (let o = 0; o < co; o++) acc[wr + o] += xv * G[go + o]!;
    }
  }, withBias ? (go) => { for (let o = 0; o < co; o++) accB[o] += gExact[go + o]!; } : undefined);
  const dw = outLike(x, acc.length); // [CO, CI, KH, KW]
  for (let o = 0; o < co; o++) for (let c = 0; c < ci; c++) for (let y = 0; y < kh; y++) for (let xk = 0; xk < kw; xk++) {
    dw[((o * ci + c) * kh + y) * kw + xk] = acc[((y * kw + xk) * ci + c) * co + o]!;
  }
  let dbias: FloatArray | null = null;
  if (withBias) { dbias = outLike(x, co); dbias.set(accB); } // the bias gradient is Σ g, never rounded
  return { dw, dbias };
});

defineKernel('upsampleNearest2x', (x, d) => {
  const { n, h, w, c } = d;
  const out = allocLike(x, n * 4 * h * w * c); // [N, 2H, 2W, C]
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      const src = ((b * h + y) * w + xx) * c;
      const row = x.subarray(src, src + c);
      const o0 = ((b * 2 * h + 2 * y) * 2 * w + 2 * xx) * c; // top-left of the 2×2 block
      const o1 = o0 + 2 * w * c;                          // bottom-left
      out.set(row, o0); out.set(row, o0 + c); out.set(row, o1); out.set(row, o1 + c);
    }
  }
  return out;
});

defineKernel('upsampleNearest2xBackward', (g, d) => {
  const { n, h, w, c } = d;
  const out = allocLike(g, n * h * w * c); // [N, H, W, C]
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      const dst = ((b * h + y) * w + xx) * c;
      const o0 = ((b * 2 * h + 2 * y) * 2 * w + 2 * xx) * c, o1 = o0 + 2 * w * c;
      for (let k = 0; k < c; k++) out[dst + k] = g[o0 + k]! + g[o0 + c + k]! + g[o1 + k]! + g[o1 + c + k]!;
    }
  }
  return out;
});

// ---------------------------------------------------------------- ops

/**
 * Padding in pixels: one number for all sides, [ph, pw] for top=bottom and left=right, or
 * [top, left, bottom, right]. (PyTorch's F.pad(x, (l, r, t, b)) on NCHW is [t, l, b, r] here, so
 * taming's Downsample pad (0, 1, 0, 1) is [0, 0, 1, 1].)
 */
export type Conv2dPadding = number | readonly [number, number] | readonly [number, number, number, number];

export interface Conv2dOptions {
  /** Stride, one number or [sh, sw]; default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding, see Conv2dPadding; default 0. Each side must be smaller than the kernel. */
  padding?: Conv2dPadding;
}

function floatData(t: Tensor, what: string): FloatArray {
  if (t.dtype === 'f32' || t.dtype === 'f64') return t.data as FloatArray;
  if (t.dtype === 'bf16') return bf16ArrayToF32(t.data as Uint16Array);
  throw new TypeError(`${what}: expected a float tensor, got ${t.dtype} ${fmtShape(t.shape)}`);
}

function checkFloat(op: string, name: string, t: Tensor): void {
  if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`${op}: ${name} must be f32 or f64, got ${t.dtype} ${fmtShape(t.shape)}`);
}

function resolveConvDims(x: Tensor, w: Tensor, opts: Conv2dOptions): Conv2dDims {
  const where = `conv2d(x ${fmtShape(x.shape)}, weight ${fmtShape(w.shape)})`;
  if (x.rank !== 4) throw new RangeError(`${where}: x must be [N, H, W, CI] (NHWC)`);
  if (w.rank !== 4) throw new RangeError(`${where}: weight must be [CO, CI, KH, KW] (OIHW)`);
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [co, wci, kh, kw] = w.shape as [number, number, number, number];
  if (wci !== ci) throw new RangeError(`${where}: x has ${ci} channels but the weight expects ${wci}`);
  if (kh < 1 || kw < 1 || co < 1 || ci < 1) throw new RangeError(`${where}: kernel and channel sizes must be ≥ 1`);

  const s = opts.stride ?? 1;
  const strides: readonly unknown[] = typeof s === 'number' ? [s, s] : Array.isArray(s) && s.length === 2 ? s : [];
  const [strideH, strideW] = strides;
  if (!isIntAtLeast(strideH, 1) || !isIntAtLeast(strideW, 1)) {
    throw new RangeError(`${where}: stride must be an integer ≥ 1 or [sh, sw] of such, got ${JSON.stringify(s)}`);
  }
  const p = opts.padding ?? 0;
  let pads: readonly number[];
  if (typeof p === 'number') pads = [p, p, p, p];
  else if (Array.isArray(p) && p.length === 2) pads = [p[0]!, p[1]!, p[0]!, p[1]!];
  else if (Array.isArray(p) && p.length === 4) pads = p;
  else throw new RangeError(`${where}: padding must be a number, [ph, pw] or [top, left, bottom, right], got ${JSON.stringify(p)}`);
  const [padTop, padLeft, padBottom, padRight] = pads as [number, number, number, number];
  if (!pads.every((v) => isIntAtLeast(v, 0))) throw new RangeError(`${where}: padding must be integers ≥ 0, got ${JSON.stringify(p)}`);
  if (padTop >= kh || padBottom >= kh || padLeft >= kw || padRight >= kw) {
    throw new RangeError(`${where}: padding ${JSON.stringify(p)} must be smaller than the ${kh}×${kw} kernel on every side`);
  }
  const oh = Math.floor((h + padTop + padBottom - kh) / strideH) + 1;
  const ow = Math.floor((wd + padLeft + padRight - kw) / strideW) + 1;
  if (h + padTop + padBottom < kh || wd + padLeft + padRight < kw) {
    throw new RangeError(`${where}: the padded input is smaller than the kernel (output would be empty)`);
  }
  return { n, h, w: wd, ci, co, kh, kw, strideH, strideW, padTop, padLeft, padBottom, padRight, oh, ow };
}

function isIntAtLeast(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min;
}

/**
 * 2-D cross-correlation (PyTorch's conv2d): x [N, H, W, CI] (NHWC), weight [CO, CI, KH, KW] (OIHW),
 * bias [CO] or null → [N, OH, OW, CO], OH = ⌊(H + top + bottom − KH) / sh⌋ + 1 (likewise OW).
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  checkFloat('conv2d', 'x', x);
  checkFloat('conv2d', 'weight', weight);
  if (x.dtype !== weight.dtype) throw new TypeError(`conv2d: cannot mix ${x.dtype} x and ${weight.dtype} weight`);
  const d = resolveConvDims(x, weight, opts);
  if (bias !== null) {
    checkFloat('conv2d', 'bias', bias);
    if (bias.dtype !== x.dtype) throw new TypeError(`conv2d: cannot mix ${x.dtype} x and ${bias.dtype} bias`);
    if (bias.rank !== 1 || bias.shape[0] !== d.co) throw new RangeError(`conv2d: bias must be [${d.co}], got ${fmtShape(bias.shape)}`);
  }
  const precision = getPrecision();
  const xd = x.data as FloatArray, wdata = weight.data as FloatArray;
  const out = new Tensor(kernel('conv2d')(xd, wdata, bias === null ? null : bias.data as FloatArray, d, precision), [d.n, d.oh, d.ow, d.co]); // [N, OH, OW, CO]

  const inputs = bias === null ? [x, weight] : [x, weight, bias];
  return recordOp('conv2d', out, inputs, (g) => { // g [N, OH, OW, CO]
    const gd = floatData(g, 'conv2d backward');
    const dx = needsGrad(x) ? new Tensor(kernel('conv2dBackwardData')(gd, wdata, d, precision), x.shape) : null; // [N, H, W, CI]
    const wantW = needsGrad(weight) || (bias !== null && needsGrad(bias));
    if (!wantW) return [dx, null, null];
    const r = kernel('conv2dBackwardWeights')(xd, gd, d, bias !== null, precision);
    const dw = new Tensor(r.dw, weight.shape);                                  // [CO, CI, KH, KW]
    const db = r.dbias === null ? null : new Tensor(r.dbias, [d.co]);           // [CO]
    return [dx, dw, db];
  });
}

/** Nearest-neighbour 2× upsampling: x [N, H, W, C] → [N, 2H, 2W, C] (taming's Upsample before its conv). */
export function upsampleNearest2x(x: Tensor): Tensor {
  checkFloat('upsampleNearest2x', 'x', x);
  if (x.rank !== 4) throw new RangeError(`upsampleNearest2x: x must be [N, H, W, C], got ${fmtShape(x.shape)}`);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const d: Upsample2xDims = { n, h, w, c };
  const out = new Tensor(kernel('upsampleNearest2x')(x.data as FloatArray, d), [n, 2 * h, 2 * w, c]); // [N, 2H, 2W, C]
  const xShape = x.shape; // backward needs no values of x
  return recordOp('upsampleNearest2x', out, [x], (g) => [ // g [N, 2H, 2W, C]
    new Tensor(kernel('upsampleNearest2xBackward')(floatData(g, 'upsampleNearest2x backward'), d), xShape), // [N, H, W, C]
  ]);
}
