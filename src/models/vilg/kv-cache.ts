// Incremental decoding with a KV cache: feed a layout's positions a few at a time and get the last
// layer's hidden states of just those positions, each layer keeping the keys and values of everything fed.
// Legend: B batch, S sequence (the full layout), m positions fed in one call, D hidden, H heads, Dh = D/H.
//
// Why it equals a full forward: target positions are causal under the UniLM mask (and DALL-E's row /
// column / conv patterns are causal subsets of it), the source sees only the source, and everything but
// attention is per position. So position p's hidden state depends on positions ≤ p only — provided the
// source is fed whole in the first call (its rows see later source positions). Each new query attends to
// exactly the keys its layer's pattern row allows (sparseAttentionRows refuses a row naming an uncached
// key), so a sparse layer stays sparse and a 'dense' layer attends under the UniLM mask itself.
// test/models/vilg-decode.test.ts pins the cached logits to the one-shot forward for every layout.

import { fmtShape } from '../../engine/shape.js';
import { Tensor, zeros } from '../../engine/tensor.js';
import { partLength, partsToSegments, type Part } from './batch.js';
import type { ErnieVilg } from './model.js';
import { layerAttentionInputs, type LayerCache } from './transformer.js';

export class KvCache {
  /** Positions fed so far: the next call feeds positions [position, position + m). */
  private pos = 0;
  private layers: LayerCache[];
  private rows: number;
  readonly seqLen: number;

  /**
   * A cache for `batch` sequences laid out as `parts`. keyValid [batch, S] (0 = a [PAD] key) must be known
   * up front for the whole layout (only sources carry padding when decoding; null = nothing padded).
   */
  constructor(readonly model: ErnieVilg, readonly parts: readonly Part[], batch: number, keyValid: Tensor | null = null) {
    const c = model.config;
    this.seqLen = parts.reduce((s, p) => s + partLength(p), 0);
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`KvCache: batch must be an integer ≥ 1, got ${String(batch)}`);
    if (keyValid !== null && (keyValid.dtype !== 'i32' || keyValid.rank !== 2 || keyValid.shape[0] !== batch || keyValid.shape[1] !== this.seqLen)) {
      throw new RangeError(`KvCache: keyValid must be i32 [${batch}, ${this.seqLen}], got ${keyValid.dtype} ${fmtShape(keyValid.shape)}`);
    }
    this.rows = batch;
    const atts = layerAttentionInputs(partsToSegments(parts), c, null); // one pattern per kind, shared
    const Dh = c.hidden / c.heads;
    this.layers = atts.map((a) => ({
      k: zeros([batch, c.heads, this.seqLen, Dh]), // [B, H, S, Dh]
      v: zeros([batch, c.heads, this.seqLen, Dh]), // [B, H, S, Dh]
      pattern: a.pattern,
      keyValid,
    }));
  }

  get position(): number { return this.pos; }
  get batch(): number { return this.rows; }

  /**
   * Feeds tokens i32 [B, m] at positions [position, position + m) → the last layer's hidden states
   * [B, m, D] there (after ln_f in pre-LN). Run it under noGrad with the model in eval mode.
   */
  feed(tokens: Tensor): Tensor {
    const m = tokens.shape[1] ?? 0;
    if (tokens.dtype !== 'i32' || tokens.rank !== 2 || tokens.shape[0] !== this.rows || m < 1 || this.pos + m > this.seqLen) {
      throw new RangeError(`KvCache.feed: tokens must be i32 [${this.rows}, m ≥ 1] with position ${this.pos} + m ≤ ${this.seqLen}, got ${tokens.dtype} ${fmtShape(tokens.shape)}`);
    }
    const model = this.model;
    let x = model.embeddings.forwardRange(this.parts, tokens, this.pos);  // [B, m, D]
    if (model.lnEmb !== null) x = model.lnEmb.forward(x);                 // [B, m, D]
    x = model.drop.forward(x);                                            // [B, m, D] (identity in eval)
    model.layers.items.forEach((block, i) => { x = block.forwardCached(x, this.layers[i]!, this.pos); }); // [B, m, D]
    this.pos += m;
    return model.lnF === null ? x : model.lnF.forward(x);                 // [B, m, D]
  }

  /**
   * Reorders (and resizes) the batch: new row i continues old row from[i] (beam search keeps the
   * hypotheses that survive; a prompt's cache is copied to N candidates). Cost O(layers · B · H · S · Dh).
   */
  select(from: readonly number[]): void {
    if (from.length < 1 || from.some((r) => !Number.isInteger(r) || r < 0 || r >= this.rows)) {
      throw new RangeError(`KvCache.select: rows must be ≥ 1 indices in [0, ${this.rows}), got [${from.join(', ')}]`);
    }
    const B = from.length;
    if (B === this.rows && from.every((r, i) => r === i)) return; // nothing moves
    const gather = (t: Tensor): Tensor => {
      const per = t.size / this.rows, src = t.data as Float32Array;
      const out = new (src.constructor as Float32ArrayConstructor)(B * per); // [B, ...] (Int32Array for keyValid)
      from.forEach((r, i) => out.set(src.subarray(r * per, (r + 1) * per), i * per));
      return new Tensor(out, [B, ...t.shape.slice(1)]);
    };
    const kv = this.layers[0]?.keyValid ?? null, keyValid = kv === null ? null : gather(kv); // shared by every layer
    this.layers = this.layers.map((l) => ({ k: gather(l.k), v: gather(l.v), pattern: l.pattern, keyValid }));
    this.rows = B;
  }
}
