// The shared transformer layers: multi-head self-attention under the UniLM masks (with DALL-E's sparse
// image attention: layer i uses layerAttentionKind(i, L, mode)), a GELU MLP, dropout on both residual
// branches, pre-LN (default) or post-LN. The same parameters serve every direction; only the layout
// (segments) and so the attention patterns change.
// Legend: B batch, S sequence, D hidden, H heads, Dh = D/H, M MLP width, L layers.
//
// Attention kernels: a 'row' / 'column' / 'conv' layer runs sparseAttention over the CSR pattern (work
// and memory O(nnz)); a 'dense' layer (attention mode 'dense') runs the fused scaledDotProductAttention
// with the pattern as an [S, S] mask (the plain dense baseline). Padding keys are masked in both
// (keyValid / the mask's batch rows). Attention probabilities get no dropout: neither kernel takes it.
//
// Memory: the layer is built from fused ops so its graph saves little beyond what backward needs —
// linear (bias inside the matmul), packedSelfAttention (one head-first copy of q, k, v; no split or
// merge tensors), geluMlp (saves the pre-activation only, recomputes gelu in backward).

import { add } from '../../engine/ops/elementwise.js';
import { geluMlp } from '../../engine/ops/mlp.js';
import { linear } from '../../engine/ops/matmul.js';
import { scaledDotProductAttention } from '../../engine/ops/attention.js';
import { sparseAttention, sparseAttentionRows } from '../../engine/ops/sparse-attention.js';
import { permute, reshape } from '../../engine/ops/shape.js';
import { packedSelfAttention } from '../../engine/ops/multihead.js';
import type { Generator } from '../../engine/random.js';
import { allocLike, type FloatArray } from '../../engine/dtype.js';
import { Tensor, randn, zeros } from '../../engine/tensor.js';
import { Dropout, LayerNorm } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { buildPattern, layerAttentionKind, patternToDense, type LayerAttention, type Segment, type SparsePattern } from './attention-pattern.js';
import type { VilgConfig } from './config.js';

/** N(0, std) from `g`, or zeros when g is null (a model about to load a checkpoint skips the draws). */
export function initWeight(shape: readonly number[], std: number, g: Generator | null): Tensor {
  return g === null ? zeros(shape) : randn(shape, { std, generator: g });
}

/** y = x·Wᵀ + b with weight [out, in] (PyTorch's Linear names), initialised N(0, std), bias 0. */
export class Projection extends Module {
  readonly weight: Tensor; // [out, in]
  readonly bias: Tensor;   // [out]
  constructor(inFeatures: number, outFeatures: number, std: number, g: Generator | null) {
    super();
    this.weight = this.addParameter('weight', initWeight([outFeatures, inFeatures], std, g));
    this.bias = this.addParameter('bias', zeros([outFeatures]));
  }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); } // [..., in] → [..., out]
}

/** What one layer's attention needs for one batch: its kind, pattern, and the padding. */
export interface LayerAttentionInput {
  readonly kind: LayerAttention;
  readonly pattern: SparsePattern;
  /** i32 [B, S] (0 = padding key), or null when nothing is padded. */
  readonly keyValid: Tensor | null;
  /** 'dense' layers: the dense kernel's mask (denseMask of pattern and keyValid), built once per batch. */
  readonly mask: Tensor | null;
}

const denseMasks = new WeakMap<SparsePattern, Tensor>(); // pattern → i32 [S, S]

/** The dense-kernel mask of a pattern: i32 [S, S], or [B, 1, S, S] with padding keys cleared. */
export function denseMask(pattern: SparsePattern, keyValid: Tensor | null): Tensor {
  let m = denseMasks.get(pattern);
  if (m === undefined) {
    m = new Tensor(Int32Array.from(patternToDense(pattern)), [pattern.seqLen, pattern.seqLen]); // [S, S]
    denseMasks.set(pattern, m);
  }
  if (keyValid === null) return m;
  const S = pattern.seqLen, B = keyValid.shape[0]!, kv = keyValid.data as Int32Array, md = m.data as Int32Array;
  const out = new Int32Array(B * S * S); // [B, 1, S, S]
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < S; i++) {
      const o = (b * S + i) * S;
      for (let j = 0; j < S; j++) out[o + j] = md[i * S + j]! & (kv[b * S + j]! !== 0 ? 1 : 0);
    }
  }
  return new Tensor(out, [B, 1, S, S]);
}

/**
 * One attention input per layer (1-based layer i → element i − 1) for a layout: the kind from DALL-E's
 * schedule, its pattern (built once per kind and cached by buildPattern), the padding.
 */
export function layerAttentionInputs(segments: readonly Segment[], c: Pick<VilgConfig, 'numLayers' | 'attention' | 'convKernel'>,
  keyValid: Tensor | null): LayerAttentionInput[] {
  const byKind = new Map<LayerAttention, LayerAttentionInput>();
  const out: LayerAttentionInput[] = [];
  for (let i = 1; i <= c.numLayers; i++) {
    const kind = layerAttentionKind(i, c.numLayers, c.attention);
    let a = byKind.get(kind);
    if (a === undefined) {
      const pattern = buildPattern(segments, kind, { convKernel: c.convKernel });
      a = { kind, pattern, keyValid, mask: kind === 'dense' ? denseMask(pattern, keyValid) : null };
      byKind.set(kind, a);
    }
    out.push(a);
  }
  return out;
}

/**
 * One layer's KV cache for incremental decoding (src/models/vilg/kv-cache.ts): keys and values of every
 * position fed so far, the layer's pattern over the whole layout, and the padding of the keys.
 */
export interface LayerCache {
  readonly k: Tensor;                // [B, H, S, Dh], positions [0, pos) filled
  readonly v: Tensor;                // [B, H, S, Dh]
  readonly pattern: SparsePattern;   // this layer's kind over the full layout (dense = the UniLM mask itself)
  readonly keyValid: Tensor | null;  // i32 [B, S] or null
}

export class SelfAttention extends Module {
  readonly qkv: Projection;  // D → 3D (q, k, v in that order, heads contiguous)
  readonly proj: Projection; // D → D
  readonly drop: Dropout;
  constructor(readonly config: VilgConfig, g: Generator | null, dropoutGenerator: Generator) {
    super();
    const D = config.hidden;
    this.qkv = this.addModule('qkv', new Projection(D, 3 * D, config.initStd, g));
    this.proj = this.addModule('proj', new Projection(D, D, config.initStd / Math.sqrt(2 * config.numLayers), g));
    this.drop = this.addModule('drop', new Dropout(config.dropout, dropoutGenerator)); // no parameters; registered so train()/eval() reach it
  }

  forward(x: Tensor, att: LayerAttentionInput): Tensor { // x [B, S, D]
    const attend = att.kind === 'dense'
      ? (q: Tensor, k: Tensor, v: Tensor): Tensor => scaledDotProductAttention(q, k, v, { mask: att.mask ?? denseMask(att.pattern, att.keyValid) })
      : (q: Tensor, k: Tensor, v: Tensor): Tensor => sparseAttention(q, k, v, att.pattern, att.keyValid === null ? {} : { keyValid: att.keyValid });
    const merged = packedSelfAttention(this.qkv.forward(x), this.config.heads, attend); // [B, S, 3D] → heads [B, H, S, Dh] → [B, S, D]
    return this.drop.forward(this.proj.forward(merged));                                // [B, S, D]
  }

  /**
   * forward for the new positions [pos, pos + m) only (inference): their keys and values go into the
   * cache, their queries attend to the cached keys their pattern rows allow (sparseAttentionRows).
   */
  forwardCached(x: Tensor, cache: LayerCache, pos: number): Tensor { // x [B, m, D]
    const [B, m, D] = x.shape as [number, number, number];
    const H = this.config.heads, Dh = D / H, S = cache.k.shape[2]!;
    const qkv = this.qkv.forward(x);                                       // [B, m, 3D]
    const src = qkv.data as FloatArray, kc = cache.k.data as FloatArray, vc = cache.v.data as FloatArray;
    const q = allocLike(src, B * H * m * Dh);                              // [B, H, m, Dh]
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < m; t++) {
        const row = (b * m + t) * 3 * D; // q | k | v of position pos + t, heads contiguous
        for (let hd = 0; hd < H; hd++) {
          const o = hd * Dh, c = ((b * H + hd) * S + pos + t) * Dh;
          q.set(src.subarray(row + o, row + o + Dh), ((b * H + hd) * m + t) * Dh);
          kc.set(src.subarray(row + D + o, row + D + o + Dh), c);
          vc.set(src.subarray(row + 2 * D + o, row + 2 * D + o + Dh), c);
        }
      }
    }
    const o = sparseAttentionRows(new Tensor(q, [B, H, m, Dh]), cache.k, cache.v, cache.pattern, pos,
      cache.keyValid === null ? {} : { keyValid: cache.keyValid });     // [B, H, m, Dh]
    const merged = reshape(permute(o, [0, 2, 1, 3]), [B, m, D]);           // [B, m, D]
    return this.drop.forward(this.proj.forward(merged));                   // [B, m, D]
  }
}

export class Mlp extends Module {
  readonly fc: Projection;   // D → M
  readonly proj: Projection; // M → D
  readonly drop: Dropout;
  constructor(config: VilgConfig, g: Generator | null, dropoutGenerator: Generator) {
    super();
    const D = config.hidden, M = config.mlpRatio * D;
    this.fc = this.addModule('fc', new Projection(D, M, config.initStd, g));
    this.proj = this.addModule('proj', new Projection(M, D, config.initStd / Math.sqrt(2 * config.numLayers), g));
    this.drop = this.addModule('drop', new Dropout(config.dropout, dropoutGenerator)); // no parameters; registered so train()/eval() reach it
  }
  /** [B, S, D] → [B, S, M] → [B, S, D]; one op that recomputes gelu in backward rather than saving [B, S, M] twice. */
  forward(x: Tensor): Tensor { return this.drop.forward(geluMlp(x, this.fc.weight, this.fc.bias, this.proj.weight, this.proj.bias)); }
}

/** pre-LN: x + attn(ln_1(x)), then + mlp(ln_2(·)); post-LN: ln_1(x + attn(x)), then ln_2(· + mlp(·)). */
export class Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: SelfAttention;
  readonly ln2: LayerNorm;
  readonly mlp: Mlp;
  constructor(readonly config: VilgConfig, g: Generator | null, dropoutGenerator: Generator) {
    super();
    this.ln1 = this.addModule('ln_1', new LayerNorm(config.hidden));
    this.attn = this.addModule('attn', new SelfAttention(config, g, dropoutGenerator));
    this.ln2 = this.addModule('ln_2', new LayerNorm(config.hidden));
    this.mlp = this.addModule('mlp', new Mlp(config, g, dropoutGenerator));
  }

  forward(x: Tensor, att: LayerAttentionInput): Tensor { // x [B, S, D] → [B, S, D]
    if (this.config.preLN) {
      const h = add(x, this.attn.forward(this.ln1.forward(x), att)); // [B, S, D]
      return add(h, this.mlp.forward(this.ln2.forward(h)));          // [B, S, D]
    }
    const h = this.ln1.forward(add(x, this.attn.forward(x, att)));   // [B, S, D]
    return this.ln2.forward(add(h, this.mlp.forward(h)));            // [B, S, D]
  }

  /** forward over the new positions [pos, pos + m) with the layer's KV cache (inference). */
  forwardCached(x: Tensor, cache: LayerCache, pos: number): Tensor { // x [B, m, D] → [B, m, D]
    if (this.config.preLN) {
      const h = add(x, this.attn.forwardCached(this.ln1.forward(x), cache, pos)); // [B, m, D]
      return add(h, this.mlp.forward(this.ln2.forward(h)));                      // [B, m, D]
    }
    const h = this.ln1.forward(add(x, this.attn.forwardCached(x, cache, pos)));   // [B, m, D]
    return this.ln2.forward(add(h, this.mlp.forward(h)));                        // [B, m, D]
  }
}
