// Fused scaled dot-product attention: softmax(q·kᵀ·scale + mask) · v, forward and backward.
// Legend: B batch, H heads, Sq query positions, Sk key positions, Dh query/key dim, Dv value dim,
// BH = B·H (batch and heads folded: every (b, h) pair is an independent attention problem).
//
// Mask semantics: mask[b, h, i, j] ≠ 0 means query i may attend to key j; forbidden scores become −∞
// before the softmax. A query row with NO allowed key has no defined softmax: by convention its
// probabilities and output are all zeros and it passes zero gradient to q, k and v (never NaN).
//
// Kernel mask layout (`AttentionMask`): a Uint8Array of 0/1, either [1, Sq, Sk] shared by every (b, h)
// (`shared: true`, the common causal / pattern case) or [BH, Sq, Sk]. The op broadcasts the user's
// i32 mask into one of these two layouts before calling the kernel.
//
// Mixed precision ('bf16'): the reference kernels round q, k, v (and the output gradient in backward)
// to bf16, then compute in f32 (JS doubles). probs are kept in the inputs' dtype for the backward.

import { allocLike, roundToBf16, type FloatArray } from '../dtype.js';
import { defineKernel, getPrecision, kernel, type Precision } from '../kernels.js';
import { broadcastShapes, broadcastStrides, fmtShape, sameShape } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';

export interface AttentionDims {
  bh: number; sq: number; sk: number; dh: number; dv: number;
  /** Multiplies q·kᵀ before the softmax. */
  scale: number;
}

/** A mask in kernel layout: 0/1 bytes, [1, Sq, Sk] when shared, else [BH, Sq, Sk]. */
export interface AttentionMask { data: Uint8Array; shared: boolean }

declare module '../kernels.js' {
  interface KernelMap {
    /**
     * out [BH, Sq, Dv] = softmax(q [BH, Sq, Dh] · k [BH, Sk, Dh]ᵀ · scale, masked) · v [BH, Sk, Dv];
     * probs [BH, Sq, Sk] (zeros where masked and on rows with no allowed key) are kept for backward.
     */
    attention(q: FloatArray, k: FloatArray, v: FloatArray, mask: AttentionMask | null, d: AttentionDims, precision: Precision): { out: FloatArray; probs: FloatArray };
    /** dq [BH, Sq, Dh], dk [BH, Sk, Dh], dv [BH, Sk, Dv] from g [BH, Sq, Dv] and the forward's probs. */
    attentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, probs: FloatArray, g: FloatArray, d: AttentionDims, precision: Precision): { dq: FloatArray; dk: FloatArray; dv: FloatArray };
  }
}

// ---------------------------------------------------------------- reference kernels

function maybeRound(a: FloatArray, precision: Precision): FloatArray {
  return precision === 'bf16' ? roundToBf16(a) : a;
}

defineKernel('attention', (q, k, v, mask, d, precision) => {
  const Q = maybeRound(q, precision), K = maybeRound(k, precision), V = maybeRound(v, precision);
  const { bh, sq, sk, dh, dv, scale } = d;
  const out = allocLike(q, bh * sq * dv);   // [BH, Sq, Dv]
  const probs = allocLike(q, bh * sq * sk); // [BH, Sq, Sk]
  const s = new Float64Array(sk);           // one row of scores, then of exp(scores − max)
  const acc = new Float64Array(dv);         // one output row
  for (let b = 0; b < bh; b++) {
    const qo = b * sq * dh, ko = b * sk * dh, vo = b * sk * dv;
    const mo = mask === null || mask.shared ? 0 : b * sq * sk;
    for (let i = 0; i < sq; i++) {
      const qi = qo + i * dh, mrow = mo + i * sk;
      let max = -Infinity;
      for (let j = 0; j < sk; j++) {
        if (mask !== null && mask.data[mrow + j] === 0) { s[j] = -Infinity; continue; }
        const kj = ko + j * dh;
        let dot = 0;
        for (let t = 0; t < dh; t++) dot += Q[qi + t]! * K[kj + t]!;
        s[j] = dot * scale;
        if (s[j]! > max) max = s[j]!;
      }
      if (max === -Infinity) continue; // no allowed key: probs and output stay zero
      let sum = 0;
      for (let j = 0; j < sk; j++) { const e = Math.exp(s[j]! - max); s[j] = e; sum += e; } // exp(−∞) = 0
      acc.fill(0);
      const po = (b * sq + i) * sk;
      for (let j = 0; j < sk; j++) {
        const p = s[j]! / sum;
        probs[po + j] = p;
        if (p === 0) continue;
        const vj = vo + j * dv;
        for (let t = 0; t < dv; t++) acc[t] += p * V[vj + t]!;
      }
      out.set(acc, (b * sq + i) * dv);
    }
  }
  return { out, probs };
});

defineKernel('attentionBackward', (q, k, v, probs, g, d, precision) => {
  const Q = maybeRound(q, precision), K = maybeRound(k, precision), V = maybeRound(v, precision), G = maybeRound(g, precision);
  const { bh, sq, sk, dh, dv, scale } = d;
  const dq = allocLike(q, bh * sq * dh);  // [BH, Sq, Dh]
  const dk = allocLike(q, bh * sk * dh);  // [BH, Sk, Dh]
  const dvOut = allocLike(q, bh * sk * dv); // [BH, Sk, Dv]
  const dkAcc = new Float64Array(sk * dh); // [Sk, Dh] of one (b, h)
  const dvAcc = new Float64Array(sk * dv); // [Sk, Dv] of one (b, h)
  const dP = new Float64Array(sk);         // ∂L/∂probs of one row
  const dqAcc = new Float64Array(dh);      // one row of dq
  for (let b = 0; b < bh; b++) {
    const qo = b * sq * dh, ko = b * sk * dh, vo = b * sk * dv;
    dkAcc.fill(0); dvAcc.fill(0);
    for (let i = 0; i < sq; i++) {
      const qi = qo + i * dh, gi = (b * sq + i) * dv, po = (b * sq + i) * sk;
      // Entries with p = 0 (masked, underflowed, or a row with no allowed key) pass no gradient:
      // ∂L/∂v_j gets p·g and ∂L/∂score gets p·(dP − Σ p·dP), both zero there.
      let rowDot = 0;
      for (let j = 0; j < sk; j++) {
        const p = probs[po + j]!;
        if (p === 0) { dP[j] = 0; continue; }
        const vj = vo + j * dv;
        let dot = 0;
        for (let t = 0; t < dv; t++) { dot += G[gi + t]! * V[vj + t]!; dvAcc[j * dv + t] += p * G[gi + t]!; }
        dP[j] = dot;
        rowDot += p * dot;
      }
      dqAcc.fill(0);
      for (let j = 0; j < sk; j++) {
        const p = probs[po + j]!;
        if (p === 0) continue;
        const ds = p * (dP[j]! - rowDot) * scale; // ∂L/∂(q·k), softmax backward times the scale
        const kj = ko + j * dh, dkj = j * dh;
        for (let t = 0; t < dh; t++) { dqAcc[t] += ds * K[kj + t]!; dkAcc[dkj + t] += ds * Q[qi + t]!; }
      }
      dq.set(dqAcc, qi);
    }
    dk.set(dkAcc, ko);
    dvOut.set(dvAcc, vo);
  }
  return { dq, dk, dv: dvOut };
});

// ---------------------------------------------------------------- op

export interface AttentionOptions {
  /** i32, broadcastable to [B, H, Sq, Sk]; nonzero = may attend. Default: everything allowed. */
  mask?: Tensor;
  /** Score multiplier; default 1/√Dh. */
  scale?: number;
}

/**
 * Broadcasts an i32 mask to the kernel layout for attention of shape [B, H, Sq, Sk]:
 * shared [1, Sq, Sk] when the mask has no batch/head extent, else [B·H, Sq, Sk].
 */
export function packAttentionMask(mask: Tensor, target: readonly [number, number, number, number]): AttentionMask {
  if (mask.dtype !== 'i32') throw new TypeError(`attention mask must be i32 (nonzero = may attend), got ${mask.dtype} ${fmtShape(mask.shape)}`);
  let ok = mask.rank <= 4;
  if (ok) { try { ok = sameShape(broadcastShapes(mask.shape, target), target); } catch { ok = false; } }
  if (!ok) throw new RangeError(`attention mask ${fmtShape(mask.shape)} does not broadcast to [B, H, Sq, Sk] = ${fmtShape(target)}`);
  const [b, h, sq, sk] = target;
  const lead = mask.shape.slice(0, Math.max(0, mask.rank - 2));
  const shared = lead.every((x) => x === 1);
  const to = shared ? [1, 1, sq, sk] : [b, h, sq, sk];
  const st = broadcastStrides(mask.shape, to); // 0 on broadcast dims
  const src = mask.data as Int32Array;
  const data = new Uint8Array(to[0]! * to[1]! * sq * sk); // [1 | B·H, Sq, Sk]
  let o = 0;
  for (let i0 = 0; i0 < to[0]!; i0++) for (let i1 = 0; i1 < to[1]!; i1++) {
    for (let i2 = 0; i2 < sq; i2++) {
      const base = i0 * st[0]! + i1 * st[1]! + i2 * st[2]!;
      for (let i3 = 0; i3 < sk; i3++) data[o++] = src[base + i3 * st[3]!] !== 0 ? 1 : 0;
    }
  }
  return { data, shared };
}

/**
 * softmax(q·kᵀ·scale, masked) · v with q [B, H, Sq, Dh], k [B, H, Sk, Dh], v [B, H, Sk, Dv] → [B, H, Sq, Dv].
 * Rows whose mask allows no key output zeros and get zero gradient (see the file header).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const where = `scaledDotProductAttention(q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)})`;
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`${where}: ${name} must be f32 or f64, got ${t.dtype}`);
    if (t.rank !== 4) throw new RangeError(`${where}: ${name} must be rank 4 [B, H, S, D]`);
  }
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) throw new TypeError(`${where}: q, k and v must share a dtype`);
  const [b, h, sq, dh] = q.shape as [number, number, number, number];
  const [kb, kh, sk, kdh] = k.shape as [number, number, number, number];
  const [vb, vh, vsk, dv] = v.shape as [number, number, number, number];
  if (kb !== b || vb !== b || kh !== h || vh !== h) throw new RangeError(`${where}: batch and head dims must match`);
  if (kdh !== dh) throw new RangeError(`${where}: q and k head dims differ (${dh} vs ${kdh})`);
  if (vsk !== sk) throw new RangeError(`${where}: k and v have different key counts (${sk} vs ${vsk})`);
  if (dh < 1) throw new RangeError(`${where}: the head dim must be ≥ 1`);
  const scale = opts.scale ?? 1 / Math.sqrt(dh);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`${where}: scale must be a finite number, got ${String(scale)}`);
  const mask = opts.mask === undefined ? null : packAttentionMask(opts.mask, [b, h, sq, sk]);

  const d: AttentionDims = { bh: b * h, sq, sk, dh, dv, scale };
  const precision = getPrecision();
  const qd = q.data as FloatArray, kd = k.data as FloatArray, vd = v.data as FloatArray;
  const { out: o, probs } = kernel('attention')(qd, kd, vd, mask, d, precision);
  const out = new Tensor(o, [b, h, sq, dv]); // [B, H, Sq, Dv]
  const qShape = q.shape, kShape = k.shape, vShape = v.shape; // saved: q, k, v values and probs (not out)

  return recordOp('attention', out, [q, k, v], (g, wanted) => { // g [B, H, Sq, Dv]
    if (g.dtype !== 'f32' && g.dtype !== 'f64') throw new TypeError(`attention backward: expected a float gradient, got ${g.dtype}`);
    const gr = kernel('attentionBackward')(qd, kd, vd, probs, g.data as FloatArray, d, precision);
    return [
      wanted[0] ? new Tensor(gr.dq, qShape) : null, // [B, H, Sq, Dh]
      wanted[1] ? new Tensor(gr.dk, kShape) : null, // [B, H, Sk, Dh]
      wanted[2] ? new Tensor(gr.dv, vShape) : null, // [B, H, Sk, Dv]
    ];
  });
}
