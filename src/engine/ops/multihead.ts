// Multi-head self-attention on a packed projection: qkv [B, S, 3·D] as one Linear D → 3D writes it
// (q | k | v, heads contiguous within each) → [B, S, D] with the heads merged back.
// Legend: B batch, S sequence, D hidden, H heads, Dh = D / H.
//
// Why one op instead of reshape/permute/split around the attention kernel: the composed version keeps
// a head-first copy of q, k and v per layer and, in backward, scatters each of dq, dk, dv into a zeroed
// [3, B, H, S, Dh] tensor and sums the three (five 3·U-sized arrays per layer, U = B·S·D floats). Here
// forward makes one head-first copy (q, k, v are views of it, saved by the attention kernel as before)
// and backward stacks dq, dk, dv and gathers them once into the packed gradient (two native copies, one
// transient 3·U stack): the same values, far less memory traffic, and nothing for the GC to chase.
//
// The attention itself is any of the engine's attention ops (`attend`: scaledDotProductAttention with a
// mask, or sparseAttention over a pattern); this op runs its recorded backward directly.

import { allocLike, type FloatArray } from '../dtype.js';
import { kernel } from '../kernels.js';
import { fmtShape, stridesOf } from '../shape.js';
import { Tensor, isGradEnabled, needsGrad, recordOp, type GradNode } from '../tensor.js';

/** One attention op over head-first q, k, v [B, H, S, Dh] → [B, H, S, Dh]. */
export type AttendFn = (q: Tensor, k: Tensor, v: Tensor) => Tensor;

/** qkv [B, S, 3·D] → attention per head → [B, S, D]. `attend` must be differentiable in q, k and v. */
export function packedSelfAttention(qkv: Tensor, heads: number, attend: AttendFn): Tensor {
  const where = `packedSelfAttention(qkv ${fmtShape(qkv.shape)}, heads ${String(heads)})`;
  if (qkv.dtype !== 'f32' && qkv.dtype !== 'f64') throw new TypeError(`${where}: qkv must be f32 or f64, got ${qkv.dtype}`);
  if (qkv.rank !== 3 || qkv.shape[2]! % 3 !== 0) throw new RangeError(`${where}: qkv must be [B, S, 3·D]`);
  const [B, S, D3] = qkv.shape as [number, number, number];
  const D = D3 / 3;
  if (!Number.isInteger(heads) || heads < 1 || D % heads !== 0) throw new RangeError(`${where}: heads must be a positive divisor of D = ${D}`);
  const H = heads, Dh = D / H, part = B * H * S * Dh;

  // [B, S, 3, H, Dh] read as [3, B, H, S, Dh]: one head-first copy; q, k, v are views of its thirds.
  const [sB, sS, sT, sH] = stridesOf([B, S, 3, H, Dh]) as [number, number, number, number];
  const packed = kernel('stridedCopy')(qkv.data, 0, [sT, sB, sH, sS, 1], [3, B, H, S, Dh]) as FloatArray; // [3, B, H, S, Dh]
  const track = isGradEnabled() && needsGrad(qkv);
  const [q, k, v] = [0, 1, 2].map((t) => new Tensor(packed.subarray(t * part, (t + 1) * part), [B, H, S, Dh], track)); // [B, H, S, Dh]
  const o = attend(q!, k!, v!);                                                                       // [B, H, S, Dh]
  if (o.rank !== 4 || o.shape[0] !== B || o.shape[1] !== H || o.shape[2] !== S || o.shape[3] !== Dh) {
    throw new RangeError(`${where}: attend returned ${fmtShape(o.shape)}, expected [${B}, ${H}, ${S}, ${Dh}]`);
  }
  const out = new Tensor(mergeHeads(o.data as FloatArray, B, H, S, Dh), [B, S, D]);                  // [B, S, D]
  if (!track) return out;
  const inner = o.node;
  if (inner === null) throw new Error(`${where}: attend recorded no gradient for q, k and v`);
  return recordOp('selfAttention', out, [qkv], packedBackward(inner, B, H, S, Dh));
}

/** o [B, H, S, Dh] → [B, S, H·Dh]. */
function mergeHeads(o: FloatArray, B: number, H: number, S: number, Dh: number): FloatArray {
  const [sB, sH, sS] = stridesOf([B, H, S, Dh]) as [number, number, number];
  return kernel('stridedCopy')(o, 0, [sB, sS, sH, 1], [B, S, H, Dh]) as FloatArray; // [B, S, H, Dh]
}

/**
 * g [B, S, D] → the attention node's own backward on g per head → dqkv [B, S, 3·D].
 * A closure over sizes and the inner node only (which holds what the attention kernel saved).
 */
function packedBackward(inner: GradNode, B: number, H: number, S: number, Dh: number) {
  return (g: Tensor): Array<Tensor | null> => {                                     // g [B, S, D]
    const D = H * Dh;
    const [sB, sS, sH] = stridesOf([B, S, H, Dh]) as [number, number, number];
    const gHeads = new Tensor(kernel('stridedCopy')(g.data, 0, [sB, sH, sS, 1], [B, H, S, Dh]), [B, H, S, Dh]); // [B, H, S, Dh]
    const grads = inner.run(gHeads, [true, true, true]);                            // dq, dk, dv [B, H, S, Dh]
    // Stack dq | dk | dv head-first, then one gather into the packed layout (both native copies).
    const U = B * H * S * Dh, gd = g.data as FloatArray;
    const parts = grads.map((gt) => (gt === null ? allocLike(gd, U) : gt.data as FloatArray)); // 3 × [B, H, S, Dh] (zeros if unused)
    const stacked = kernel('concat')(parts, 1, [U, U, U]) as FloatArray;                       // [3, B, H, S, Dh]
    const [sT, sB2, sH2, sS2] = stridesOf([3, B, H, S, Dh]) as [number, number, number, number];
    const dqkv = kernel('stridedCopy')(stacked, 0, [sB2, sS2, sT, sH2, 1], [B, S, 3, H, Dh]);  // [B, S, 3, H, Dh]
    return [new Tensor(dqkv, [B, S, 3 * D])];
  };
}
