// The generator's input embeddings: token + position + token type, summed per position.
//   text  position: text_tokens[id] + text_pos[j] (j = 0.. within its segment) + token_type[text × role]
//   image position: image_tokens[code] + image_row[r] + image_col[c] (2-D, raster order) + token_type[image × role]
//   [BOI]         : image_tokens[K] + token_type[image × target] (a unique token needs no position)
// The token type (modality × role) tells the shared layers which direction a sequence runs.
// Legend: B batch, S sequence, T text segment length, h×w image grid, n = h·w, D hidden, V text vocab, K codes.

import { add } from '../../engine/ops/elementwise.js';
import { embedding } from '../../engine/ops/embedding.js';
import { concat, slice } from '../../engine/ops/shape.js';
import type { Generator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor } from '../../engine/tensor.js';
import { Module } from '../../nn/module.js';
import type { Role } from './attention-pattern.js';
import { partLength, type Part } from './batch.js';
import type { VilgConfig } from './config.js';
import { initWeight } from './transformer.js';

/** A lookup table [N, D] (`weight`, as nn.Embedding), N(0, std) or zeros (g null). */
export class Table extends Module {
  readonly weight: Tensor; // [N, D]
  constructor(n: number, d: number, std: number, g: Generator | null) {
    super();
    this.weight = this.addParameter('weight', initWeight([n, d], std, g));
  }
  forward(ids: Tensor): Tensor { return embedding(ids, this.weight); } // i32 [...] → [..., D]
}

/** Rows of token_type: modality × role. */
export const TOKEN_TYPES = Object.freeze({ 'text-source': 0, 'text-target': 1, 'image-source': 2, 'image-target': 3 });

export function tokenTypeId(modality: 'text' | 'image', role: Role): number { return TOKEN_TYPES[`${modality}-${role}`]; }

export class VilgEmbeddings extends Module {
  readonly textTokens: Table;  // [V, D]
  readonly imageTokens: Table; // [K + 1, D], row K = [BOI]
  readonly textPos: Table;     // [T_max, D]
  readonly imageRow: Table;    // [h, D]
  readonly imageCol: Table;    // [w, D]
  readonly tokenType: Table;   // [4, D]
  private readonly gridIdx: { rows: Tensor; cols: Tensor }; // i32 [n] each: the row and column of every raster position

  constructor(readonly config: VilgConfig, g: Generator | null) {
    super();
    const c = config, D = c.hidden, std = c.initStd, [h, w] = c.imageGrid;
    this.textTokens = this.addModule('text_tokens', new Table(c.textVocab, D, std, g));
    this.imageTokens = this.addModule('image_tokens', new Table(c.numCodes + 1, D, std, g));
    this.textPos = this.addModule('text_pos', new Table(c.maxTextLen, D, std, g));
    this.imageRow = this.addModule('image_row', new Table(h, D, std, g));
    this.imageCol = this.addModule('image_col', new Table(w, D, std, g));
    this.tokenType = this.addModule('token_type', new Table(4, D, std, g));
    const rows = new Int32Array(h * w), cols = new Int32Array(h * w);
    for (let p = 0; p < h * w; p++) { rows[p] = Math.floor(p / w); cols[p] = p % w; }
    this.gridIdx = { rows: new Tensor(rows, [h * w]), cols: new Tensor(cols, [h * w]) };
  }

  /** tokens i32 [B, S] laid out as `parts` → [B, S, D]. */
  forward(parts: readonly Part[], tokens: Tensor): Tensor {
    return this.forwardRange(parts, tokens, 0);
  }

  /**
   * tokens i32 [B, m] of positions [start, start + m) of a sequence laid out as `parts` → [B, m, D]
   * (incremental decoding embeds only the new positions; forward is the whole range).
   */
  forwardRange(parts: readonly Part[], tokens: Tensor, start: number): Tensor {
    const c = this.config;
    const S = parts.reduce((s, p) => s + partLength(p), 0);
    if (tokens.dtype !== 'i32' || tokens.rank !== 2) throw new RangeError(`VilgEmbeddings: tokens must be i32 [B, m], got ${tokens.dtype} ${fmtShape(tokens.shape)}`);
    const B = tokens.shape[0]!, m = tokens.shape[1]!, td = tokens.data as Int32Array;
    if (!Number.isInteger(start) || start < 0 || m < 1 || start + m > S) {
      throw new RangeError(`VilgEmbeddings: positions [${start}, ${start + m}) of tokens ${fmtShape(tokens.shape)} do not fit the parts' ${S} positions`);
    }
    const pieces: Tensor[] = [];
    let at = 0; // the current part's first position
    for (const p of parts) {
      const len = partLength(p), lo = Math.max(at, start), hi = Math.min(at + len, start + m);
      if (p.kind === 'text' && len > c.maxTextLen) throw new RangeError(`VilgEmbeddings: a text segment of ${len} tokens exceeds maxTextLen ${c.maxTextLen}`);
      if (p.kind === 'image' && (p.grid[0] !== c.imageGrid[0] || p.grid[1] !== c.imageGrid[1])) {
        throw new RangeError(`VilgEmbeddings: image grid [${p.grid.join(', ')}] differs from the config's [${c.imageGrid.join(', ')}]`);
      }
      if (lo < hi) {
        const l = hi - lo, o = lo - at; // l positions of this part, from offset o inside it
        const ids = new Int32Array(B * l); // [B, l]: this part's column block of tokens
        for (let b = 0; b < B; b++) ids.set(td.subarray(b * m + lo - start, b * m + hi - start), b * l);
        const idt = new Tensor(ids, [B, l]);
        if (p.kind === 'text') {
          const pos = add(slice(this.textPos.weight, 0, o, o + l), this.typeRow('text', p.role));  // [l, D]
          pieces.push(add(this.textTokens.forward(idt), pos));                                   // [B, l, D]
        } else if (p.kind === 'image') {
          const rows = l === len ? this.gridIdx.rows : slice(this.gridIdx.rows, 0, o, o + l);     // [l]
          const cols = l === len ? this.gridIdx.cols : slice(this.gridIdx.cols, 0, o, o + l);     // [l]
          const pos = add(add(this.imageRow.forward(rows), this.imageCol.forward(cols)), this.typeRow('image', p.role)); // [l, D]
          pieces.push(add(this.imageTokens.forward(idt), pos));                                  // [B, l, D]
        } else {
          pieces.push(add(this.imageTokens.forward(idt), this.typeRow('image', 'target')));      // [B, 1, D]
        }
      }
      at += len;
    }
    return pieces.length === 1 ? pieces[0]! : concat(pieces, 1);                               // [B, m, D]
  }

  private typeRow(modality: 'text' | 'image', role: Role): Tensor {
    const id = tokenTypeId(modality, role);
    return embedding(new Tensor(Int32Array.of(id), [1]), this.tokenType.weight); // [1, D]
  }
}
