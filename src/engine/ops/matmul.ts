// Matrix multiply, plain and batched, with transposes.
// Legend: B batch (leading dims folded), M rows of op(a), K contraction, N columns of op(b).

import { allocLike, bf16ArrayToF32, roundToBf16, type FloatArray } from '../dtype.js';
import { sumToShape } from './reduce.js';
import { defineKernel, getPrecision, kernel, type Precision } from '../kernels.js';
import { fmtShape, numel } from '../shape.js';
import { Tensor, recordOp } from '../tensor.js';

/** Sizes of one (batched) matmul call. A batch stride of 0 broadcasts that operand over the batch. */
export interface MatmulDims {
  batch: number; m: number; k: number; n: number;
  transA: boolean; transB: boolean;
  /** Elements between consecutive batch items of a / b (0 = broadcast). */
  strideA: number; strideB: number;
}

/** Element storage a matmul may read: f32, f64 (reference only) or bf16 bits. */
export type MatmulInput = Float32Array | Float64Array | Uint16Array;

declare module '../kernels.js' {
  interface KernelMap {
    /** out[b] (M×N) = op(a[b]) · op(b[b]) (+ bias [N] on every row); op = transpose when trans*. f32 out (f64 when inputs are f64). */
    matmul(a: MatmulInput, b: MatmulInput, d: MatmulDims, precision: Precision, bias?: FloatArray | null): FloatArray;
    /** out[c] = Σ_r g[r, c] for row-major g [rows, cols] (a bias gradient), accumulated in f64; g's float type. */
    sumRows(g: FloatArray, rows: number, cols: number): FloatArray;
  }
}

function toFloat(x: MatmulInput, precision: Precision): FloatArray {
  if (x instanceof Uint16Array) return bf16ArrayToF32(x);
  return precision === 'bf16' ? roundToBf16(x) : x;
}

defineKernel('matmul', (a, b, d, precision, bias = null) => {
  const A = toFloat(a, precision); // [B, M, K] or [B, K, M]
  const Bm = toFloat(b, precision); // [B, K, N] or [B, N, K]
  const { batch, m, k, n, transA, transB, strideA, strideB } = d;
  const out = allocLike(A instanceof Float64Array && Bm instanceof Float64Array ? A : new Float32Array(0), batch * m * n);
  const acc = new Float64Array(n);
  for (let bi = 0; bi < batch; bi++) {
    const oa = bi * strideA, ob = bi * strideB, oo = bi * m * n;
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      for (let p = 0; p < k; p++) {
        const av = A[oa + (transA ? p * m + i : i * k + p)]!;
        if (av === 0) continue;
        if (transB) for (let j = 0; j < n; j++) acc[j] += av * Bm[ob + j * k + p]!;
        else { const row = ob + p * n; for (let j = 0; j < n; j++) acc[j] += av * Bm[row + j]!; }
      }
      for (let j = 0; j < n; j++) out[oo + i * n + j] = bias === null ? acc[j]! : acc[j]! + bias[j]!;
    }
  }
  return out;
});

defineKernel('sumRows', (g, rows, cols) => {
  const acc = new Float64Array(cols);
  for (let r = 0, o = 0; r < rows; r++, o += cols) for (let c = 0; c < cols; c++) acc[c] += g[o + c]!;
  const out = allocLike(g, cols);
  out.set(acc);
  return out;
});

export interface MatmulOptions { transA?: boolean; transB?: boolean }

/**
 * a [..., M, K] · b [..., K, N] → [..., M, N] (transA/transB read a as [..., K, M], b as [..., N, K]).
 * Leading dims must match, or one side is 2-D (broadcast over the other's batch).
 * bf16 tensors are read directly; with precision 'bf16' f32 inputs are rounded to bf16 (f32 accumulate).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  if (a.dtype === 'i32' || b.dtype === 'i32') throw new TypeError('matmul: integer tensors are not supported');
  if ((a.dtype === 'f64') !== (b.dtype === 'f64')) throw new TypeError(`matmul: cannot mix ${a.dtype} and ${b.dtype}`);
  if (a.rank < 2 || b.rank < 2) throw new RangeError(`matmul needs rank ≥ 2 operands, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const m = transA ? ac : ar, k = transA ? ar : ac;
  const kb = transB ? bc : br, n = transB ? br : bc;
  if (k !== kb) throw new RangeError(`matmul: inner sizes differ: ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} · ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`);
  const lead = batchShape(a, b);
  const batch = numel(lead);
  const aBatched = a.rank > 2, bBatched = b.rank > 2;

  let dims: MatmulDims;
  if (!bBatched && aBatched && !transA) {
    // Fold a's leading dims into M: one large GEMM instead of many small ones.
    dims = { batch: 1, m: batch * m, k, n, transA, transB, strideA: 0, strideB: 0 };
  } else {
    dims = { batch, m, k, n, transA, transB, strideA: aBatched ? m * k : 0, strideB: bBatched ? k * n : 0 };
  }
  const outShape = [...lead, m, n];
  const out = new Tensor(kernel('matmul')(a.data as MatmulInput, b.data as MatmulInput, dims, getPrecision()), outShape);

  return recordOp('matmul', out, [a, b], (g) => { // g [..., M, N]
    if (aBatched && !bBatched) {
      // b was broadcast over the batch: fold the batch into rows so each gradient is one GEMM.
      const a2 = new Tensor(a.data, [batch * ar, ac]); // [B·rows(a), cols(a)]
      const g2 = new Tensor(g.data, [batch * m, n]);   // [B·M, N]
      if (!transA) {
        const ga = matmul(g2, b, { transB: !transB });                                          // [B·M, K]
        const gb = transB ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true }); // [N, K] | [K, N]
        return [new Tensor(ga.data, a.shape), gb];
      }
    }
    const ga = transA ? matmul(b, g, { transA: transB, transB: true }) // [..., K, M]
                      : matmul(g, b, { transB: !transB });             // [..., M, K]
    const gb = transB ? matmul(g, a, { transA: true, transB: transA }) // [..., N, K]
                      : matmul(a, g, { transA: !transA });             // [..., K, N]
    return [sumToShape(ga, a.shape), sumToShape(gb, b.shape)];
  });
}

function batchShape(a: Tensor, b: Tensor): number[] {
  const la = a.shape.slice(0, -2), lb = b.shape.slice(0, -2);
  if (la.length === 0) return lb;
  if (lb.length === 0) return la;
  if (la.length !== lb.length || la.some((d, i) => d !== lb[i])) {
    throw new RangeError(`matmul: batch dims ${fmtShape(la)} and ${fmtShape(lb)} differ (expand one side first)`);
  }
  return la;
}

/**
 * x [..., K] · weightᵀ + bias → [..., N] with weight [N, K] and bias [N] or null (PyTorch's F.linear).
 * One op rather than add(matmul(·), bias): the bias is added inside the matmul kernel (oneDNN's bias
 * operand), so there is no bias-free [..., N] product at all, and the graph saves x and weight only.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const where = `linear(x ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}${bias === null ? '' : `, bias ${fmtShape(bias.shape)}`})`;
  if (x.dtype === 'i32' || weight.dtype === 'i32') throw new TypeError(`${where}: integer tensors are not supported`);
  if (x.dtype !== weight.dtype || (bias !== null && bias.dtype !== x.dtype)) throw new TypeError(`${where}: x, weight and bias must share a dtype`);
  if (x.dtype === 'bf16') throw new TypeError(`${where}: x must be f32 or f64 (bf16 storage is for weights read by matmul)`);
  if (x.rank < 1 || weight.rank !== 2) throw new RangeError(`${where}: needs x [..., K] and weight [N, K]`);
  const [n, k] = weight.shape as [number, number];
  if (x.shape[x.rank - 1] !== k) throw new RangeError(`${where}: x's last dim must be K = ${k}`);
  if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== n)) throw new RangeError(`${where}: bias must be [N] = [${n}]`);
  const rows = x.size / k;
  const dims: MatmulDims = { batch: 1, m: rows, k, n, transA: false, transB: true, strideA: 0, strideB: 0 };
  const y = kernel('matmul')(x.data as MatmulInput, weight.data as MatmulInput, dims, getPrecision(), bias === null ? null : bias.data as FloatArray); // [R, N]
  const xShape = x.shape, outShape = [...xShape.slice(0, -1), n];
  const out = new Tensor(y, outShape); // [..., N]

  return recordOp('linear', out, bias === null ? [x, weight] : [x, weight, bias], (g, wanted) => { // g [..., N]
    const g2 = new Tensor(g.data, [rows, n]);                                                     // [R, N]
    const gx = wanted[0] ? new Tensor(matmul(g2, weight).data, xShape) : null;                    // [..., K] = g·W
    const gw = wanted[1] ? matmul(g2, new Tensor(x.data, [rows, k]), { transA: true }) : null;    // [N, K] = gᵀ·x
    let gb: Tensor | null = null;                                                                  // [N] = Σ_rows g
    if (bias !== null && wanted[2]) {
      gb = new Tensor(kernel('sumRows')(g.data as FloatArray, rows, n), [n]);
    }
    return bias === null ? [gx, gw] : [gx, gw, gb];
  });
}
