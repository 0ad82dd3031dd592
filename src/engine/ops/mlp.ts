// The transformer's GELU MLP as one op: y = gelu(x·W1ᵀ + b1)·W2ᵀ + b2.
// Legend: R rows (all leading dims of x), D in, M hidden (MLP width), N out.
//
// Why fused: composed from linear → gelu → linear, the graph saves both the pre-activation (gelu's
// backward needs it) and the activation (the second linear's backward needs it): 2·M floats per row,
// the largest share of a transformer layer's activations. This op saves only the pre-activation and
// recomputes gelu from it in backward (one elementwise pass over [R, M]), so a layer keeps M floats per
// row less. Values and gradients equal the composed ops'; the test checks both.

import type { FloatArray } from '../dtype.js';
import { getPrecision, kernel } from '../kernels.js';
import { fmtShape } from '../shape.js';
import { Tensor, recordOp } from '../tensor.js';
import { matmul, type MatmulDims, type MatmulInput } from './matmul.js';

/** x [..., D] → gelu(x·W1ᵀ + b1)·W2ᵀ + b2 [..., N] with W1 [M, D], b1 [M], W2 [N, M], b2 [N] (biases may be null). */
export function geluMlp(x: Tensor, w1: Tensor, b1: Tensor | null, w2: Tensor, b2: Tensor | null): Tensor {
  const where = `geluMlp(x ${fmtShape(x.shape)}, w1 ${fmtShape(w1.shape)}, w2 ${fmtShape(w2.shape)})`;
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${where}: x must be f32 or f64, got ${x.dtype}`);
  for (const t of [w1, b1, w2, b2]) if (t !== null && t.dtype !== x.dtype) throw new TypeError(`${where}: weights and biases must have x's dtype ${x.dtype}`);
  if (x.rank < 1 || w1.rank !== 2 || w2.rank !== 2) throw new RangeError(`${where}: needs x [..., D], w1 [M, D] and w2 [N, M]`);
  const [m, d] = w1.shape as [number, number], [n, m2] = w2.shape as [number, number];
  if (x.shape[x.rank - 1] !== d) throw new RangeError(`${where}: x's last dim must be D = ${d}`);
  if (m2 !== m) throw new RangeError(`${where}: w2 must be [N, M] with M = ${m}`);
  if (b1 !== null && (b1.rank !== 1 || b1.shape[0] !== m)) throw new RangeError(`${where}: b1 must be [M] = [${m}]`);
  if (b2 !== null && (b2.rank !== 1 || b2.shape[0] !== n)) throw new RangeError(`${where}: b2 must be [N] = [${n}]`);
  const rows = x.size / d, precision = getPrecision();
  const gemm = (a: FloatArray, b: FloatArray, bias: Tensor | null, mm: number, k: number, nn: number): FloatArray => { // a [mm, k] · b[nn, k]ᵀ + bias
    const dims: MatmulDims = { batch: 1, m: mm, k, n: nn, transA: false, transB: true, strideA: 0, strideB: 0 };
    return kernel('matmul')(a as MatmulInput, b as MatmulInput, dims, precision, bias === null ? null : bias.data as FloatArray);
  };
  const xd = x.data as FloatArray;
  const pre = gemm(xd, w1.data as FloatArray, b1, rows, d, m);          // [R, M]
  const act = kernel('unary')('gelu', pre);                              // [R, M], not saved
  const y = gemm(act, w2.data as FloatArray, b2, rows, m, n);            // [R, N]
  const xShape = x.shape;
  const out = new Tensor(y, [...xShape.slice(0, -1), n]);                // [..., N]

  const iW2 = b1 === null ? 2 : 3; // input order: x, w1, [b1], w2, [b2]
  const at = { w1: 1, b1: b1 === null ? -1 : 2, w2: iW2, b2: b2 === null ? -1 : iW2 + 1 };
  const inputs = [x, w1, ...(b1 === null ? [] : [b1]), w2, ...(b2 === null ? [] : [b2])];
  return recordOp('geluMlp', out, inputs, (g, wanted) => {               // g [..., N]; saved: x, pre
    const want = (t: keyof typeof at): boolean => at[t] >= 0 && wanted[at[t]] === true;
    const gd = g.data as FloatArray;
    const g2 = new Tensor(gd, [rows, n]);                                 // [R, N]
    const actT = new Tensor(kernel('unary')('gelu', pre), [rows, m]);     // [R, M], recomputed
    const dw2 = want('w2') ? matmul(g2, actT, { transA: true }) : null;    // [N, M] = gᵀ·act
    const db2 = want('b2') ? new Tensor(kernel('sumRows')(gd, rows, n), [n]) : null; // [N]
    const dact = matmul(g2, w2).data as FloatArray;                       // [R, M] = g·W2
    const dpre = kernel('unaryBackward')('gelu', pre, actT.data as FloatArray, dact); // [R, M]
    const dpreT = new Tensor(dpre, [rows, m]);                            // [R, M]
    const dw1 = want('w1') ? matmul(dpreT, new Tensor(xd, [rows, d]), { transA: true }) : null; // [M, D] = dpreᵀ·x
    const db1 = want('b1') ? new Tensor(kernel('sumRows')(dpre, rows, m), [m]) : null; // [M]
    const dx = wanted[0] ? new Tensor(matmul(dpreT, w1).data, xShape) : null; // [..., D] = dpre·W1
    return [dx, dw1, ...(b1 === null ? [] : [db1]), dw2, ...(b2 === null ? [] : [db2])];
  });
}
