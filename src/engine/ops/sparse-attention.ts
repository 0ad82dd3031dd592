// Sparse (pattern) attention: softmax over a fixed set of allowed keys per query of q·kᵀ·scale, times v,
// forward and backward. Only the pattern's entries are computed: time O(BH·nnz·D), memory O(BH·nnz).
// Legend: B batch, H heads, S sequence (queries = keys), Dh query/key dim, Dv value dim, BH = B·H,
// nnz = allowed (query, key) pairs of the pattern (shared by every (b, h)); e indexes them in CSR order.
//
// Pattern (CSR, e.g. from src/models/vilg/attention-pattern.ts): query i may attend to keys
// cols[rowPtr[i] .. rowPtr[i+1]) (ascending). keyValid [B, S] (0 = padding) removes keys per batch row,
// for every head and query. A query with no allowed key outputs zeros and passes zero gradient (the
// convention of scaledDotProductAttention, which this op equals with the pattern as its mask).
//
// Mixed precision ('bf16'): the reference kernels round q, k, v (and g in backward) to bf16 and compute
// in JS doubles; probs [BH, nnz] are kept in the inputs' dtype for the backward.

import { allocLike, roundToBf16, type FloatArray } from '../dtype.js';
import { defineKernel, getPrecision, kernel, type Precision } from '../kernels.js';
import { fmtShape } from '../shape.js';
import { Tensor, needsGrad, recordOp } from '../tensor.js';

/** A CSR attention pattern over S positions (structurally the models' SparsePattern). */
export interface CsrPattern { readonly seqLen: number; readonly rowPtr: Int32Array; readonly cols: Int32Array; readonly nnz: number }

export interface SparseAttentionDims {
  b: number; h: number; s: number; dh: number; dv: number; nnz: number;
  /** Multiplies q·kᵀ before the softmax. */
  scale: number;
}

export interface SparseAttentionRowsDims {
  b: number; h: number;
  /** Query rows (new positions) and their first pattern row. */
  sq: number; q0: number;
  /** Key rows of the cache (its capacity). */
  sk: number;
  dh: number; dv: number; scale: number;
}

declare module '../kernels.js' {
  interface KernelMap {
    /**
     * out [BH, S, Dv] = softmax over the pattern's keys of q [BH, S, Dh] · k [BH, S, Dh]ᵀ · scale, times
     * v [BH, S, Dv]; keyValid [B, S] or null. probs [BH, nnz] (0 on invalid keys / empty rows) for backward.
     */
    sparseAttention(q: FloatArray, k: FloatArray, v: FloatArray, rowPtr: Int32Array, cols: Int32Array, keyValid: Int32Array | null,
      d: SparseAttentionDims, precision: Precision): { out: FloatArray; probs: FloatArray };
    /** dq [BH, S, Dh], dk [BH, S, Dh], dv [BH, S, Dv] from g [BH, S, Dv] and the forward's probs [BH, nnz]. */
    sparseAttentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, rowPtr: Int32Array, cols: Int32Array, probs: FloatArray,
      g: FloatArray, d: SparseAttentionDims, precision: Precision): { dq: FloatArray; dk: FloatArray; dv: FloatArray };
    /**
     * Inference over a KV cache: out [BH, Sq, Dv] for the pattern's query rows [q0, q0 + Sq), q [BH, Sq, Dh],
     * keys/values k [BH, Sk, Dh], v [BH, Sk, Dv] (the cache), keyValid [B, Sk] or null. Every key those
     * rows name is < q0 + Sq ≤ Sk (checked by the caller; native re-checks). No probs: nothing to backward.
     */
    sparseAttentionRows(q: FloatArray, k: FloatArray, v: FloatArray, rowPtr: Int32Array, cols: Int32Array, keyValid: Int32Array | null,
      d: SparseAttentionRowsDims, precision: Precision): FloatArray;
  }
}

// ---------------------------------------------------------------- CSR validation

const validated = new WeakSet<object>(); // pattern objects already checked (buildPattern's are frozen and cached)

/**
 * Throws unless rowPtr [S+1] / cols [nnz] form a CSR pattern over S positions: rowPtr[0] = 0, non-decreasing,
 * rowPtr[S] = nnz, every col in [0, S). Kernels index with them, so native code relies on this check.
 */
export function checkCsr(where: string, s: number, rowPtr: unknown, cols: unknown): void {
  if (!(rowPtr instanceof Int32Array) || !(cols instanceof Int32Array)) throw new TypeError(`${where}: rowPtr and cols must be Int32Arrays`);
  if (rowPtr.length !== s + 1) throw new RangeError(`${where}: rowPtr has ${rowPtr.length} entries, expected S + 1 = ${s + 1}`);
  if (rowPtr[0] !== 0 || rowPtr[s] !== cols.length) throw new RangeError(`${where}: rowPtr must run from 0 to nnz = ${cols.length}, got ${rowPtr[0]}..${rowPtr[s]}`);
  for (let i = 0; i < s; i++) if (rowPtr[i + 1]! < rowPtr[i]!) throw new RangeError(`${where}: rowPtr decreases at row ${i}`);
  for (let e = 0; e < cols.length; e++) {
    const c = cols[e]!;
    if (c < 0 || c >= s) throw new RangeError(`${where}: cols[${e}] = ${c} is outside [0, ${s})`);
  }
}

// ---------------------------------------------------------------- reference kernels

function maybeRound(a: FloatArray, precision: Precision): FloatArray {
  return precision === 'bf16' ? roundToBf16(a) : a;
}

function maxRowLength(rowPtr: Int32Array): number {
  let m = 0;
  for (let i = 0; i + 1 < rowPtr.length; i++) m = Math.max(m, rowPtr[i + 1]! - rowPtr[i]!);
  return m;
}

defineKernel('sparseAttention', (q, k, v, rowPtr, cols, keyValid, d, precision) => {
  const Q = maybeRound(q, precision), K = maybeRound(k, precision), V = maybeRound(v, precision);
  const { b: nb, h, s, dh, dv, nnz, scale } = d;
  const out = allocLike(q, nb * h * s * dv); // [BH, S, Dv]
  const probs = allocLike(q, nb * h * nnz);  // [BH, nnz]
  const sc = new Float64Array(maxRowLength(rowPtr)); // one row of scores, then of exp(score − max)
  const acc = new Float64Array(dv);                  // one output row
  for (let bh = 0; bh < nb * h; bh++) {
    const kvOff = Math.floor(bh / h) * s; // keyValid row of this batch item
    const qo = bh * s * dh, vo = bh * s * dv;
    for (let i = 0; i < s; i++) {
      const e0 = rowPtr[i]!, e1 = rowPtr[i + 1]!, qi = qo + i * dh;
      let max = -Infinity;
      for (let e = e0; e < e1; e++) {
        const j = cols[e]!;
        if (keyValid !== null && keyValid[kvOff + j] === 0) { sc[e - e0] = -Infinity; continue; }
        const kj = qo + j * dh;
        let dot = 0;
        for (let t = 0; t < dh; t++) dot += Q[qi + t]! * K[kj + t]!;
        sc[e - e0] = dot * scale;
        if (sc[e - e0]! > max) max = sc[e - e0]!;
      }
      if (max === -Infinity) continue; // no allowed key: probs and output stay zero
      let sum = 0;
      for (let e = 0; e < e1 - e0; e++) { const x = Math.exp(sc[e]! - max); sc[e] = x; sum += x; }
      acc.fill(0);
      const po = bh * nnz;
      for (let e = e0; e < e1; e++) {
        const p = sc[e - e0]! / sum;
        probs[po + e] = p;
        if (p === 0) continue;
        const vj = vo + cols[e]! * dv;
        for (let t = 0; t < dv; t++) acc[t] += p * V[vj + t]!;
      }
      out.set(acc, vo + i * dv);
    }
  }
  return { out, probs };
});

defineKernel('sparseAttentionBackward', (q, k, v, rowPtr, cols, probs, g, d, precision) => {
  const Q = maybeRound(q, precision), K = maybeRound(k, precision), V = maybeRound(v, precision), G = maybeRound(g, precision);
  const { b: nb, h, s, dh, dv, nnz, scale } = d;
  const dq = allocLike(q, nb * h * s * dh);    // [BH, S, Dh]
  const dk = allocLike(q, nb * h * s * dh);    // [BH, S, Dh]
  const dvOut = allocLike(q, nb * h * s * dv); // [BH, S, Dv]
  const dkAcc = new Float64Array(s * dh);      // [S, Dh] of one (b, h)
  const dvAcc = new Float64Array(s * dv);      // [S, Dv] of one (b, h)
  const dP = new Float64Array(maxRowLength(rowPtr)); // ∂L/∂probs of one row
  const dqAcc = new Float64Array(dh);          // one row of dq
  for (let bh = 0; bh < nb * h; bh++) {
    const qo = bh * s * dh, vo = bh * s * dv, po = bh * nnz;
    dkAcc.fill(0); dvAcc.fill(0);
    for (let i = 0; i < s; i++) {
      const e0 = rowPtr[i]!, e1 = rowPtr[i + 1]!, qi = qo + i * dh, gi = vo + i * dv;
      // p = 0 (padding key, underflow, empty row) passes no gradient: p·g to v and p·(dP − Σp·dP) to the score.
      let rowDot = 0;
      for (let e = e0; e < e1; e++) {
        const p = probs[po + e]!;
        if (p === 0) { dP[e - e0] = 0; continue; }
        const vj = vo + cols[e]! * dv, dvj = cols[e]! * dv;
        let dot = 0;
        for (let t = 0; t < dv; t++) { dot += G[gi + t]! * V[vj + t]!; dvAcc[dvj + t] += p * G[gi + t]!; }
        dP[e - e0] = dot;
        rowDot += p * dot;
      }
      dqAcc.fill(0);
      for (let e = e0; e < e1; e++) {
        const p = probs[po + e]!;
        if (p === 0) continue;
        const ds = p * (dP[e - e0]! - rowDot) * scale; // ∂L/∂(q·k): softmax backward times the scale
        const kj = qo + cols[e]! * dh, dkj = cols[e]! * dh;
        for (let t = 0; t < dh; t++) { dqAcc[t] += ds * K[kj + t]!; dkAcc[dkj + t] += ds * Q[qi + t]!; }
      }
      dq.set(dqAcc, qi);
    }
    dk.set(dkAcc, qo);
    dvOut.set(dvAcc, vo);
  }
  return { dq, dk, dv: dvOut };
});

defineKernel('sparseAttentionRows', (q, k, v, rowPtr, cols, keyValid, d, precision) => {
  const Q = maybeRound(q, precision), K = maybeRound(k, precision), V = maybeRound(v, precision);
  const { b: nb, h, sq, q0, sk, dh, dv, scale } = d;
  const out = allocLike(q, nb * h * sq * dv); // [BH, Sq, Dv]
  const sc = new Float64Array(Math.max(1, maxRowLength(rowPtr.subarray(q0, q0 + sq + 1)))); // one row's scores
  const acc = new Float64Array(dv);
  for (let bh = 0; bh < nb * h; bh++) {
    const kvOff = Math.floor(bh / h) * sk, ko = bh * sk * dh, vo = bh * sk * dv;
    for (let r = 0; r < sq; r++) {
      const i = q0 + r, e0 = rowPtr[i]!, e1 = rowPtr[i + 1]!, qi = (bh * sq + r) * dh;
      let max = -Infinity;
      for (let e = e0; e < e1; e++) {
        const j = cols[e]!;
        if (keyValid !== null && keyValid[kvOff + j] === 0) { sc[e - e0] = -Infinity; continue; }
        let dot = 0;
        for (let t = 0; t < dh; t++) dot += Q[qi + t]! * K[ko + j * dh + t]!;
        sc[e - e0] = dot * scale;
        if (sc[e - e0]! > max) max = sc[e - e0]!;
      }
      if (max === -Infinity) continue; // no allowed key: output stays zero
      let sum = 0;
      for (let e = 0; e < e1 - e0; e++) { const x = Math.exp(sc[e]! - max); sc[e] = x; sum += x; }
      acc.fill(0);
      for (let e = e0; e < e1; e++) {
        const p = sc[e - e0]! / sum;
        if (p === 0) continue;
        const vj = vo + cols[e]! * dv;
        for (let t = 0; t < dv; t++) acc[t] += p * V[vj + t]!;
      }
      out.set(acc, (bh * sq + r) * dv);
    }
  }
  return out;
});

// ---------------------------------------------------------------- op

export interface SparseAttentionOptions {
  /** i32 [B, S]; 0 = padding key, masked for every query and head of that batch row. Default: all valid. */
  keyValid?: Tensor;
  /** Score multiplier; default 1/√Dh. */
  scale?: number;
}

/**
 * softmax over the pattern's allowed keys of q·kᵀ·scale, times v: q [B, H, S, Dh], k [B, H, S, Dh],
 * v [B, H, S, Dv] → [B, H, S, Dv], computing only the pattern's entries. Equals scaledDotProductAttention
 * with patternToDense(pattern) (and keyValid) as the mask; a query with no allowed key outputs zeros.
 */
export function sparseAttention(q: Tensor, k: Tensor, v: Tensor, pattern: CsrPattern, opts: SparseAttentionOptions = {}): Tensor {
  const where = `sparseAttention(q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)})`;
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (!(t instanceof Tensor)) throw new TypeError(`${where}: ${name} must be a Tensor`);
    if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`${where}: ${name} must be f32 or f64, got ${t.dtype}`);
    if (t.rank !== 4) throw new RangeError(`${where}: ${name} must be rank 4 [B, H, S, D]`);
  }
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) throw new TypeError(`${where}: q, k and v must share a dtype`);
  const [b, h, s, dh] = q.shape as [number, number, number, number];
  const dv = v.shape[3]!;
  if (k.shape[0] !== b || v.shape[0] !== b || k.shape[1] !== h || v.shape[1] !== h) throw new RangeError(`${where}: batch and head dims must match`);
  if (k.shape[2] !== s || v.shape[2] !== s) throw new RangeError(`${where}: q, k and v must have the same sequence length (self-attention over the pattern)`);
  if (k.shape[3] !== dh) throw new RangeError(`${where}: q and k head dims differ (${dh} vs ${k.shape[3]})`);
  if (dh < 1) throw new RangeError(`${where}: the head dim must be ≥ 1`);
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${where}: opts must be an object`);
  const extra = Object.keys(opts).filter((key) => key !== 'keyValid' && key !== 'scale');
  if (extra.length > 0) throw new RangeError(`${where}: unknown option(s) ${extra.join(', ')}`);
  if (typeof pattern !== 'object' || pattern === null) throw new TypeError(`${where}: pattern must be a SparsePattern`);
  if (pattern.seqLen !== s) throw new RangeError(`${where}: the pattern covers ${String(pattern.seqLen)} positions, the sequence has S = ${s}`);
  if (!validated.has(pattern)) {
    checkCsr(where, s, pattern.rowPtr, pattern.cols);
    if (pattern.nnz !== pattern.cols.length) throw new RangeError(`${where}: pattern.nnz ${pattern.nnz} ≠ cols.length ${pattern.cols.length}`);
    if (Object.isFrozen(pattern)) validated.add(pattern); // a frozen pattern cannot swap its arrays later
  }
  const scale = opts.scale ?? 1 / Math.sqrt(dh);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`${where}: scale must be a finite number, got ${String(scale)}`);
  let keyValid: Int32Array | null = null;
  if (opts.keyValid !== undefined) {
    const kv = opts.keyValid;
    if (!(kv instanceof Tensor) || kv.dtype !== 'i32') throw new TypeError(`${where}: keyValid must be an i32 tensor [B, S]`);
    if (kv.rank !== 2 || kv.shape[0] !== b || kv.shape[1] !== s) throw new RangeError(`${where}: keyValid ${fmtShape(kv.shape)} must be [B, S] = [${b}, ${s}]`);
    keyValid = kv.data as Int32Array;
  }

  const d: SparseAttentionDims = { b, h, s, dh, dv, nnz: pattern.nnz, scale };
  const precision = getPrecision();
  const qd = q.data as FloatArray, kd = k.data as FloatArray, vd = v.data as FloatArray;
  const { rowPtr, cols } = pattern;
  const { out: o, probs } = kernel('sparseAttention')(qd, kd, vd, rowPtr, cols, keyValid, d, precision);
  const out = new Tensor(o, [b, h, s, dv]); // [B, H, S, Dv]
  const qShape = q.shape, kShape = k.shape, vShape = v.shape; // saved: q, k, v values and probs (not out)

  return recordOp('sparseAttention', out, [q, k, v], (g, wanted) => { // g [B, H, S, Dv]
    if (g.dtype !== 'f32' && g.dtype !== 'f64') throw new TypeError(`sparseAttention backward: expected a float gradient, got ${g.dtype}`);
    const gr = kernel('sparseAttentionBackward')(qd, kd, vd, rowPtr, cols, probs, g.data as FloatArray, d, precision);
    return [
      wanted[0] ? new Tensor(gr.dq, qShape) : null, // [B, H, S, Dh]
      wanted[1] ? new Tensor(gr.dk, kShape) : null, // [B, H, S, Dh]
      wanted[2] ? new Tensor(gr.dv, vShape) : null, // [B, H, S, Dv]
    ];
  });
}

/**
 * Attention of new query positions over a KV cache, under a pattern: q [B, H, Sq, Dh] holds the queries of
 * positions [q0, q0 + Sq) of the pattern; kCache [B, H, Sk, Dh] and vCache [B, H, Sk, Dv] hold the keys and
 * values of positions [0, Sk) (only [0, q0 + Sq) need be filled: the pattern rows must name no later key,
 * which holds for causal targets and a source fed whole). → [B, H, Sq, Dv], equal to rows [q0, q0 + Sq) of
 * sparseAttention over the full sequence. Inference only (no graph): incremental decoding's attention.
 */
export function sparseAttentionRows(q: Tensor, kCache: Tensor, vCache: Tensor, pattern: CsrPattern, q0: number,
  opts: SparseAttentionOptions = {}): Tensor {
  const where = `sparseAttentionRows(q ${fmtShape(q.shape)}, k ${fmtShape(kCache.shape)}, v ${fmtShape(vCache.shape)}, q0 ${String(q0)})`;
  for (const [name, t] of [['q', q], ['kCache', kCache], ['vCache', vCache]] as const) {
    if (!(t instanceof Tensor)) throw new TypeError(`${where}: ${name} must be a Tensor`);
    if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`${where}: ${name} must be f32 or f64, got ${t.dtype}`);
    if (t.rank !== 4) throw new RangeError(`${where}: ${name} must be rank 4 [B, H, S, D]`);
    if (needsGrad(t)) throw new RangeError(`${where}: inference only — ${name} requires grad (run it under noGrad)`);
  }
  if (kCache.dtype !== q.dtype || vCache.dtype !== q.dtype) throw new TypeError(`${where}: q and the cache must share a dtype`);
  const [b, h, sq, dh] = q.shape as [number, number, number, number];
  const sk = kCache.shape[2]!, dv = vCache.shape[3]!;
  if (kCache.shape[0] !== b || vCache.shape[0] !== b || kCache.shape[1] !== h || vCache.shape[1] !== h) throw new RangeError(`${where}: batch and head dims must match`);
  if (vCache.shape[2] !== sk) throw new RangeError(`${where}: kCache and vCache must hold the same positions`);
  if (kCache.shape[3] !== dh) throw new RangeError(`${where}: q and k head dims differ (${dh} vs ${kCache.shape[3]})`);
  if (dh < 1) throw new RangeError(`${where}: the head dim must be ≥ 1`);
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${where}: opts must be an object`);
  const extra = Object.keys(opts).filter((key) => key !== 'keyValid' && key !== 'scale');
  if (extra.length > 0) throw new RangeError(`${where}: unknown option(s) ${extra.join(', ')}`);
  if (typeof pattern !== 'object' || pattern === null) throw new TypeError(`${where}: pattern must be a SparsePattern`);
  if (!Number.isInteger(q0) || q0 < 0 || q0 + sq > pattern.seqLen || q0 + sq > sk) {
    throw new RangeError(`${where}: rows [q0, q0 + Sq) must lie inside the pattern's ${String(pattern.seqLen)} positions and the cache's ${sk}`);
  }
  if (!validated.has(pattern)) {
    checkCsr(where, pattern.seqLen, pattern.rowPtr, pattern.cols);
    if (pattern.nnz !== pattern.cols.length) throw new RangeError(`${where}: pattern.nnz ${pattern.nnz} ≠ cols.length ${pattern.cols.length}`);
    if (Object.isFrozen(pattern)) validated.add(pattern);
  }
  const { rowPtr, cols } = pattern;
  for (let e = rowPtr[q0]!; e < rowPtr[q0 + sq]!; e++) {
    if (cols[e]! >= q0 + sq) throw new RangeError(`${where}: pattern row ${q0}..${q0 + sq - 1} names key ${cols[e]}, which is not cached yet (the rows must be causal)`);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(dh);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`${where}: scale must be a finite number, got ${String(scale)}`);
  let keyValid: Int32Array | null = null;
  if (opts.keyValid !== undefined) {
    const kv = opts.keyValid;
    if (!(kv instanceof Tensor) || kv.dtype !== 'i32') throw new TypeError(`${where}: keyValid must be an i32 tensor [B, Sk]`);
    if (kv.rank !== 2 || kv.shape[0] !== b || kv.shape[1] !== sk) throw new RangeError(`${where}: keyValid ${fmtShape(kv.shape)} must be [B, Sk] = [${b}, ${sk}]`);
    keyValid = kv.data as Int32Array;
  }
  const d: SparseAttentionRowsDims = { b, h, sq, q0, sk, dh, dv, scale };
  const out = kernel('sparseAttentionRows')(q.data as FloatArray, kCache.data as FloatArray, vCache.data as FloatArray, rowPtr, cols, keyValid, d, getPrecision());
  return new Tensor(out, [b, h, sq, dv]); // [B, H, Sq, Dv]
}
