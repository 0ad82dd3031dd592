// Sequences for the three tasks, built from text ids and image codes: token ids, the layout (parts →
// attention segments), which keys are padding, and where the logits are read with their labels.
// Legend: B batch, T text positions of a segment, h×w image grid, n = h·w, S sequence, P predicted positions.
//
// Layouts (UniLM: the source is seen whole, the target left to right):
//   t2i = [text T (source) | [BOI] (target) | z1..zn (target)]       predicts z1..zn, S = T + 1 + n
//   i2t = [z1..zn (source) | [CLS] t1..tm [SEP] [PAD].. (target)]    predicts t1..tm [SEP], S = n + T
//   vqa = [z1..zn (source) | question T_q (source) | answer T_a (target)]  predicts the answer
// Text rows are `[CLS] t1..tm [SEP] [PAD]..` (BERT's template, right-padded) in every role.
// Shifting (decided here, mirrored by reference/vilg.py): the input at target position j predicts
// target token j + 1, and the first target token is predicted from a BOS — [CLS] for text, a [BOI]
// token (image table row K) for images — never from the last source position (which may be padding).
// So every code z_k is an INPUT at its own grid position (row ⌊(k−1)/w⌋, column (k−1) mod w): the hidden
// state there "carries z_k" (end-to-end mode reads it), and z_n's own logits are not computed.

import type { Role, Segment } from './attention-pattern.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor } from '../../engine/tensor.js';
import type { VilgConfig } from './config.js';

export type Direction = 't2i' | 'i2t' | 'vqa';
/** One stretch of the sequence; 'boi' is the 1-token start-of-image (image table row K, image × target type). */
export type Part =
  | { readonly kind: 'text'; readonly length: number; readonly role: Role }
  | { readonly kind: 'image'; readonly grid: readonly [number, number]; readonly role: Role }
  | { readonly kind: 'boi' };

/** Label of positions that predict nothing (crossEntropy's ignoreIndex, as torch's default). */
export const IGNORE_INDEX = -100;

/** Special text ids (the tokenizer's; ours puts [PAD] [UNK] [CLS] [SEP] [MASK] at 0–4). */
export interface TextSpecials { readonly pad: number; readonly cls: number; readonly sep: number }

export interface VilgBatch {
  readonly direction: Direction;
  readonly parts: readonly Part[];
  /** The parts as attention segments ([BOI] is a 1-token target text segment there). */
  readonly segments: readonly Segment[];
  /** i32 [B, S]: text ids at text positions, codes (or K for [BOI]) at image positions. */
  readonly tokens: Tensor;
  /** i32 [B, S]: 0 at [PAD] keys. */
  readonly keyValid: Tensor;
  /** Whether keyValid has any 0. */
  readonly hasPadding: boolean;
  /** Logits are read at positions [targetStart, targetStart + P). */
  readonly targetStart: number;
  /** i32 [B, P]: the token each read position predicts, IGNORE_INDEX where none. */
  readonly labels: Tensor;
  /** Which output head scores the targets. */
  readonly head: 'text' | 'image';
}

type ShapeConfig = Pick<VilgConfig, 'textVocab' | 'numCodes' | 'imageGrid' | 'maxTextLen'>;

/** The parts as attention segments. */
export function partsToSegments(parts: readonly Part[]): Segment[] {
  return parts.map((p): Segment => (p.kind === 'boi' ? { kind: 'text', length: 1, role: 'target' } : p));
}

/** Positions a part occupies. */
export function partLength(p: Part): number {
  return p.kind === 'text' ? p.length : p.kind === 'image' ? p.grid[0] * p.grid[1] : 1;
}

/**
 * Captions (WordPiece ids without specials, as the token shards store them) → i32 [B, T] rows
 * `[CLS] t [SEP] [PAD]..`, truncated to T − 2 tokens; T = the longest row (or `length`), at most maxTextLen.
 */
export function textRows(captions: readonly (readonly number[])[], specials: TextSpecials, maxTextLen: number, length?: number): Tensor {
  const where = `textRows(${captions.length} captions, maxTextLen ${maxTextLen})`;
  if (captions.length === 0) throw new RangeError(`${where}: no captions`);
  if (!Number.isInteger(maxTextLen) || maxTextLen < 2) throw new RangeError(`${where}: maxTextLen must be an integer ≥ 2`);
  const longest = Math.min(maxTextLen, Math.max(...captions.map((c) => c.length + 2)));
  const T = length ?? longest;
  if (!Number.isInteger(T) || T < 2 || T > maxTextLen) throw new RangeError(`${where}: length must be an integer in [2, ${maxTextLen}], got ${T}`);
  const out = new Int32Array(captions.length * T).fill(specials.pad); // [B, T]
  captions.forEach((cap, b) => {
    const m = Math.min(cap.length, T - 2), o = b * T;
    out[o] = specials.cls;
    for (let j = 0; j < m; j++) out[o + 1 + j] = cap[j]!;
    out[o + 1 + m] = specials.sep;
  });
  return new Tensor(out, [captions.length, T]);
}

function checkText(where: string, name: string, t: Tensor, c: ShapeConfig, padId: number, batch?: number): [number, number] {
  if (!(t instanceof Tensor) || t.dtype !== 'i32' || t.rank !== 2) throw new TypeError(`${where}: ${name} must be i32 [B, T]`);
  const [b, T] = t.shape as [number, number];
  if (batch !== undefined && b !== batch) throw new RangeError(`${where}: ${name} has batch ${b}, the codes ${batch}`);
  if (T < 1 || T > c.maxTextLen) throw new RangeError(`${where}: ${name} ${fmtShape(t.shape)} has T = ${T}, must be 1..maxTextLen ${c.maxTextLen}`);
  checkTextIds(where, name, t.data as Int32Array, T, c.textVocab, padId);
  return [b, T];
}

/** Rows of T ids (row-major): each in [0, vocab), right-padded with padId (no token after a [PAD]). */
export function checkTextIds(where: string, name: string, d: Int32Array, T: number, vocab: number, padId: number): void {
  for (let i = 0; i * T < d.length; i++) {
    let padded = false;
    for (let j = 0; j < T; j++) {
      const v = d[i * T + j]!;
      if (v < 0 || v >= vocab) throw new RangeError(`${where}: ${name}[${i}, ${j}] = ${v} is outside the text vocabulary [0, ${vocab})`);
      if (v === padId) padded = true;
      else if (padded) throw new RangeError(`${where}: ${name} row ${i} has a token after [PAD] at ${j} (rows are right-padded)`);
    }
  }
}

function checkCodes(where: string, codes: Tensor, c: ShapeConfig): number {
  const [h, w] = c.imageGrid;
  if (!(codes instanceof Tensor) || codes.dtype !== 'i32' || codes.rank !== 3 || codes.shape[1] !== h || codes.shape[2] !== w) {
    throw new TypeError(`${where}: codes must be i32 [B, ${h}, ${w}], got ${codes instanceof Tensor ? `${codes.dtype} ${fmtShape(codes.shape)}` : typeof codes}`);
  }
  const d = codes.data as Int32Array;
  for (let i = 0; i < d.length; i++) {
    if (d[i]! < 0 || d[i]! >= c.numCodes) throw new RangeError(`${where}: code ${d[i]} at flat position ${i} is outside [0, ${c.numCodes})`);
  }
  return codes.shape[0]!;
}

/** Concatenates per-part [B, len] id blocks into tokens/keyValid [B, S]. */
function assemble(b: number, blocks: ReadonlyArray<{ ids: (i: number, j: number) => number; len: number; valid: (id: number) => boolean }>): { tokens: Tensor; keyValid: Tensor; hasPadding: boolean } {
  const S = blocks.reduce((s, k) => s + k.len, 0);
  const tok = new Int32Array(b * S), kv = new Int32Array(b * S); // [B, S]
  let hasPadding = false;
  for (let i = 0; i < b; i++) {
    let at = i * S;
    for (const blk of blocks) {
      for (let j = 0; j < blk.len; j++, at++) {
        const id = blk.ids(i, j);
        tok[at] = id;
        kv[at] = blk.valid(id) ? 1 : 0;
        if (kv[at] === 0) hasPadding = true;
      }
    }
  }
  return { tokens: new Tensor(tok, [b, S]), keyValid: new Tensor(kv, [b, S]), hasPadding };
}

/** Labels of a text target row: position j predicts row[j + 1]; [PAD] and the last position predict nothing. */
function textLabels(where: string, t: Tensor, padId: number): Tensor {
  const [b, T] = t.shape as [number, number];
  const d = t.data as Int32Array;
  const out = new Int32Array(b * (T - 1)).fill(IGNORE_INDEX); // [B, T − 1]
  let count = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j + 1 < T; j++) {
      const next = d[i * T + j + 1]!;
      if (next !== padId) { out[i * (T - 1) + j] = next; count++; }
    }
  }
  if (count === 0) throw new RangeError(`${where}: no text target token to predict (every row is shorter than 2 tokens)`);
  return new Tensor(out, [b, T - 1]);
}

/** Text → image: [text (source) | [BOI] | z1..zn (target)], predicting every code. */
export function textToImageBatch(c: ShapeConfig, text: Tensor, codes: Tensor, specials: Pick<TextSpecials, 'pad'>): VilgBatch {
  const where = `textToImageBatch(text ${fmtShape(text.shape)}, codes ${fmtShape(codes.shape)})`;
  const b = checkCodes(where, codes, c);
  const [, T] = checkText(where, 'text', text, c, specials.pad, b);
  const n = c.imageGrid[0] * c.imageGrid[1], td = text.data as Int32Array, cd = codes.data as Int32Array;
  const parts: Part[] = [{ kind: 'text', length: T, role: 'source' }, { kind: 'boi' }, { kind: 'image', grid: c.imageGrid, role: 'target' }];
  const a = assemble(b, [
    { len: T, ids: (i, j) => td[i * T + j]!, valid: (id) => id !== specials.pad },
    { len: 1, ids: () => c.numCodes, valid: () => true },
    { len: n, ids: (i, j) => cd[i * n + j]!, valid: () => true },
  ]);
  const labels = new Tensor(Int32Array.from(cd), [b, n]); // [B, n]: [BOI] predicts z1, z_k predicts z_{k+1}
  return { direction: 't2i', parts, segments: partsToSegments(parts), ...a, targetStart: T, labels, head: 'image' };
}

/** Image → text: [z1..zn (source) | [CLS] t.. [SEP] (target)], predicting t1..tm [SEP]. */
export function imageToTextBatch(c: ShapeConfig, codes: Tensor, text: Tensor, specials: Pick<TextSpecials, 'pad'>): VilgBatch {
  const where = `imageToTextBatch(codes ${fmtShape(codes.shape)}, text ${fmtShape(text.shape)})`;
  const b = checkCodes(where, codes, c);
  const [, T] = checkText(where, 'text', text, c, specials.pad, b);
  if (T < 2) throw new RangeError(`${where}: a text target needs T ≥ 2 ([CLS] and one token)`);
  const n = c.imageGrid[0] * c.imageGrid[1], td = text.data as Int32Array, cd = codes.data as Int32Array;
  const parts: Part[] = [{ kind: 'image', grid: c.imageGrid, role: 'source' }, { kind: 'text', length: T, role: 'target' }];
  const a = assemble(b, [
    { len: n, ids: (i, j) => cd[i * n + j]!, valid: () => true },
    { len: T, ids: (i, j) => td[i * T + j]!, valid: (id) => id !== specials.pad },
  ]);
  return { direction: 'i2t', parts, segments: partsToSegments(parts), ...a, targetStart: n, labels: textLabels(where, text, specials.pad), head: 'text' };
}

/** Generative VQA: [z1..zn | question (source) | answer (target)], predicting the answer's tokens. */
export function vqaBatch(c: ShapeConfig, codes: Tensor, question: Tensor, answer: Tensor, specials: Pick<TextSpecials, 'pad'>): VilgBatch {
  const where = `vqaBatch(codes ${fmtShape(codes.shape)}, question ${fmtShape(question.shape)}, answer ${fmtShape(answer.shape)})`;
  const b = checkCodes(where, codes, c);
  const [, Tq] = checkText(where, 'question', question, c, specials.pad, b);
  const [, Ta] = checkText(where, 'answer', answer, c, specials.pad, b);
  if (Ta < 2) throw new RangeError(`${where}: an answer needs T ≥ 2 ([CLS] and one token)`);
  const n = c.imageGrid[0] * c.imageGrid[1], qd = question.data as Int32Array, ad = answer.data as Int32Array, cd = codes.data as Int32Array;
  const parts: Part[] = [
    { kind: 'image', grid: c.imageGrid, role: 'source' }, { kind: 'text', length: Tq, role: 'source' }, { kind: 'text', length: Ta, role: 'target' },
  ];
  const a = assemble(b, [
    { len: n, ids: (i, j) => cd[i * n + j]!, valid: () => true },
    { len: Tq, ids: (i, j) => qd[i * Tq + j]!, valid: (id) => id !== specials.pad },
    { len: Ta, ids: (i, j) => ad[i * Ta + j]!, valid: (id) => id !== specials.pad },
  ]);
  return { direction: 'vqa', parts, segments: partsToSegments(parts), ...a, targetStart: n + Tq, labels: textLabels(where, answer, specials.pad), head: 'text' };
}
