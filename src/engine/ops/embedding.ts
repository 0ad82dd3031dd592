// Embedding lookup: rows of a weight table picked by integer ids.
// Legend: L lookups (all id dims folded), V vocabulary size, D embedding dim.

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { fmtShape } from '../shape.js';
import { Tensor, recordOp } from '../tensor.js';

declare module '../kernels.js' {
  interface KernelMap {
    /** out[l, :] = weight[ids[l], :] for L ids into a [V, D] table; ids are already checked to lie in [0, V). */
    embedding(ids: Int32Array, weight: FloatArray, v: number, d: number): FloatArray;
    /** dweight [V, D]: dweight[ids[l], :] += g[l, :] (a scatter-add: repeated ids accumulate). */
    embeddingBackward(ids: Int32Array, g: FloatArray, v: number, d: number): FloatArray;
  }
}

// ---------------------------------------------------------------- reference kernels

defineKernel('embedding', (ids, weight, _v, d) => {
  const out = allocLike(weight, ids.length * d); // [L, D]
  for (let l = 0; l < ids.length; l++) out.set(weight.subarray(ids[l]! * d, ids[l]! * d + d), l * d);
  return out;
});

defineKernel('embeddingBackward', (ids, g, v, d) => {
  const dw = allocLike(g, v * d); // [V, D]
  for (let l = 0; l < ids.length; l++) {
    const o = ids[l]! * d, go = l * d;
    for (let k = 0; k < d; k++) dw[o + k] += g[go + k]!;
  }
  return dw;
});

// ---------------------------------------------------------------- differentiable op

/** weight [V, D] looked up at ids (i32 [...]) → [..., D]. Gradients flow to weight only. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  const op = `embedding(ids ${fmtShape(ids.shape)}, weight ${fmtShape(weight.shape)})`;
  if (ids.dtype !== 'i32') throw new TypeError(`${op}: ids must be i32, got ${ids.dtype}`);
  if (weight.dtype !== 'f32' && weight.dtype !== 'f64') throw new TypeError(`${op}: weight must be f32 or f64, got ${weight.dtype}`);
  if (weight.rank !== 2) throw new RangeError(`${op}: weight must be [V, D]`);
  const [v, d] = weight.shape as [number, number];
  const idd = ids.as('i32');
  // Checked here, before any kernel: native code never sees an out-of-range row.
  for (let l = 0; l < idd.length; l++) {
    const id = idd[l]!;
    if (id < 0 || id >= v) throw new RangeError(`${op}: id ${id} at flat position ${l} is outside [0, ${v})`);
  }
  const out = new Tensor(kernel('embedding')(idd, weight.data as FloatArray, v, d), [...ids.shape, d]); // [..., D]

  return recordOp('embedding', out, [ids, weight], (g) => { // g [..., D]
    const dw = kernel('embeddingBackward')(idd, g.data as FloatArray, v, d); // [V, D]
    return [null, new Tensor(dw, weight.shape)];
  });
}
