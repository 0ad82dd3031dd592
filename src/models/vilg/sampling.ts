// What the samplers share (src/models/vilg/generate.ts: text → image; src/models/vilg/decode-text.ts:
// image → text and VQA): the one-position step, inference mode, argument checks, the token picker, and the
// drivers of the step generators. The rules are those of docs/decoding.md.
// Legend: B batch, T text positions, S sequence, D hidden, C classes.

import { reshape, slice } from '../../engine/ops/shape.js';
import { Generator as Rng, defaultGenerator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor, noGrad } from '../../engine/tensor.js';
import { checkTextIds, type TextSpecials, type VilgBatch } from './batch.js';
import type { VilgConfig } from './config.js';
import { ErnieVilg } from './model.js';

/** How one logits row becomes a token. */
export interface Sampler { readonly temperature: number; readonly topK: number; readonly topP: number }

// ---------------------------------------------------------------- the incremental step

/**
 * Logits [B, C] of predicted position j of a batch (the column j of batch.labels: read at sequence
 * position targetStart + j) — one position scored, not all P. The step of every sampler here.
 */
export function logitsAt(model: ErnieVilg, batch: VilgBatch, j: number): Tensor {
  const P = batch.labels.shape[1]!;
  if (!Number.isInteger(j) || j < 0 || j >= P) throw new RangeError(`logitsAt: position ${String(j)} must be an integer in [0, ${P})`);
  const hidden = model.hidden(batch);                                            // [B, S, D]
  const B = hidden.shape[0]!, at = batch.targetStart + j;
  const logits = model.head(batch.head, slice(hidden, 1, at, at + 1));           // [B, 1, C]
  return reshape(logits, [B, logits.shape[2]!]);                                 // [B, C]
}

/** Runs `fn` without a graph and with dropout off, restoring the model's previous train/eval mode. */
export function inference<T>(model: ErnieVilg, fn: () => T): T {
  const wasTraining = model.training;
  model.eval();
  try { return noGrad(fn); } finally { model.train(wasTraining); }
}

// ---------------------------------------------------------------- validation

export function checkModel(where: string, model: unknown): VilgConfig {
  if (!(model instanceof ErnieVilg)) throw new RangeError(`${where}: model must be an ErnieVilg`);
  return model.config;
}

export function checkOptions(where: string, o: unknown, known: readonly string[]): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new RangeError(`${where}: options must be an object`);
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new RangeError(`${where}: unknown option(s) ${extra.join(', ')} (known: ${known.join(', ')})`);
}

export function checkId(where: string, name: string, v: unknown, vocab: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocab) throw new RangeError(`${where}: ${name} must be an id in [0, ${vocab}), got ${String(v)}`);
  return v;
}

export function checkSpecials(where: string, s: unknown, c: VilgConfig, withText: boolean): TextSpecials {
  if (s === null || typeof s !== 'object') throw new RangeError(`${where}: specials must be an object`);
  const o = s as Record<string, unknown>;
  const pad = checkId(where, 'specials.pad', o['pad'], c.textVocab);
  if (!withText) return { pad, cls: -1, sep: -1 };
  const cls = checkId(where, 'specials.cls', o['cls'], c.textVocab), sep = checkId(where, 'specials.sep', o['sep'], c.textVocab);
  if (new Set([pad, cls, sep]).size !== 3) throw new RangeError(`${where}: specials pad ${pad}, cls ${cls}, sep ${sep} must differ`);
  return { pad, cls, sep };
}

/** Text rows i32 [B, T]: ids in the vocabulary, right-padded, a non-[PAD] first token; → [B, T]. */
export function checkTextRows(where: string, name: string, t: unknown, c: VilgConfig, pad: number, batch?: number): [number, number] {
  if (!(t instanceof Tensor) || t.dtype !== 'i32' || t.rank !== 2) {
    throw new RangeError(`${where}: ${name} must be i32 [B, T], got ${t instanceof Tensor ? `${t.dtype} ${fmtShape(t.shape)}` : typeof t}`);
  }
  const [b, T] = t.shape as [number, number];
  if (b < 1) throw new RangeError(`${where}: ${name} has no rows`);
  if (batch !== undefined && b !== batch) throw new RangeError(`${where}: ${name} has ${b} rows, the codes ${batch}`);
  if (T < 1 || T > c.maxTextLen) throw new RangeError(`${where}: ${name} ${fmtShape(t.shape)} has T = ${T}, must be in 1..maxTextLen ${c.maxTextLen}`);
  const d = t.data as Int32Array;
  // An all-[PAD] row leaves its source queries no key at all (the rows are [CLS] t [SEP] [PAD]..).
  for (let i = 0; i < b; i++) if (d[i * T] === pad) throw new RangeError(`${where}: ${name} row ${i} starts with [PAD] (rows are [CLS] t [SEP] [PAD]..)`);
  checkTextIds(where, name, d, T, c.textVocab, pad);
  return [b, T];
}

/** Codes i32 [B, h, w] in [0, K); → B. */
export function checkCodes(where: string, codes: unknown, c: VilgConfig): number {
  const [h, w] = c.imageGrid;
  if (!(codes instanceof Tensor) || codes.dtype !== 'i32' || codes.rank !== 3 || codes.shape[1] !== h || codes.shape[2] !== w || codes.shape[0]! < 1) {
    throw new RangeError(`${where}: codes must be i32 [B ≥ 1, ${h}, ${w}], got ${codes instanceof Tensor ? `${codes.dtype} ${fmtShape(codes.shape)}` : typeof codes}`);
  }
  const d = codes.data as Int32Array;
  for (let i = 0; i < d.length; i++) {
    if (d[i]! < 0 || d[i]! >= c.numCodes) throw new RangeError(`${where}: code ${d[i]} at flat position ${i} is outside [0, ${c.numCodes})`);
  }
  return codes.shape[0]!;
}

export function checkTemperature(where: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0) || v === Infinity) throw new RangeError(`${where}: temperature must be a finite number ≥ 0, got ${String(v)}`);
  return v;
}

export function checkTopK(where: string, v: unknown, classes: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > classes) throw new RangeError(`${where}: topK must be an integer in [0, ${classes}] (0 = off), got ${String(v)}`);
  return v;
}

export function checkFlag(where: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new RangeError(`${where}: ${name} must be true or false, got ${String(v)}`);
  return v;
}

export function checkGenerator(where: string, g: unknown): Rng {
  if (g === undefined) return defaultGenerator;
  if (!(g instanceof Rng)) throw new RangeError(`${where}: generator must be a Generator`);
  return g;
}

// ---------------------------------------------------------------- one logits row → one token

/**
 * The token drawn from logits x[o .. o + C) with uniform u ∈ [0, 1): greedy (first maximum) when the
 * temperature is 0 or topK is 1; else top-k, then top-p over softmax(x / temperature), then the inverse
 * CDF. `banned` ids are never chosen.
 */
export function pickToken(where: string, x: ArrayLike<number>, o: number, C: number, s: Sampler, u: number, banned: ReadonlySet<number>): number {
  let best = -1;
  for (let c = 0; c < C; c++) {
    const v = x[o + c]!;
    if (!Number.isFinite(v)) throw new RangeError(`${where}: the model produced a non-finite logit ${v} at class ${c}`);
    if (!banned.has(c) && (best < 0 || v > x[o + best]!)) best = c;
  }
  if (best < 0) throw new RangeError(`${where}: every class is banned`);
  if (s.temperature === 0 || s.topK === 1) return best;
  let kept: number[] = [];
  for (let c = 0; c < C; c++) if (!banned.has(c)) kept.push(c);
  if ((s.topK > 0 && s.topK < kept.length) || s.topP < 1) {
    kept.sort((a, b) => x[o + b]! - x[o + a]! || a - b); // most likely first, ties → lower id
    if (s.topK > 0) kept = kept.slice(0, s.topK);
  }
  const max = x[o + best]!;
  const w = kept.map((c) => Math.exp((x[o + c]! - max) / s.temperature)); // unnormalised; the best has weight 1
  let total = w.reduce((a, b) => a + b, 0);
  if (s.topP < 1) {
    let cum = 0, m = 0;
    while (m < w.length && cum < s.topP * total) cum += w[m++]!; // smallest prefix reaching p (always ≥ 1)
    kept = kept.slice(0, m);
    w.length = m;
    total = cum;
  }
  const target = u * total;
  let cum = 0;
  for (let i = 0; i < kept.length; i++) {
    cum += w[i]!;
    if (target < cum) return kept[i]!;
  }
  return kept[kept.length - 1]!; // u·total rounded up to the total
}

export function floatData(t: Tensor): ArrayLike<number> {
  return t.dtype === 'f32' || t.dtype === 'f64' ? (t.data as Float32Array | Float64Array) : t.toArray();
}

export function draws(g: Rng, count: number): Float64Array {
  const u = new Float64Array(count);
  for (let i = 0; i < count; i++) u[i] = g.uniform();
  return u;
}

// ---------------------------------------------------------------- driving the step generators

/** Drains a step generator synchronously and returns its result. */
export function runSteps<R>(steps: Generator<unknown, R, void>): R {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export interface StepDriverOptions<S> {
  /** Checked before every step; an aborted signal throws its reason (an AbortError by default). */
  signal?: AbortSignal;
  /** Called with every step's report. */
  onStep?: (step: S) => void;
}

/** Drains a step generator, yielding to the event loop between steps (a host stays responsive). */
export async function runStepsAsync<S, R>(steps: Generator<S, R, void>, o: StepDriverOptions<S> = {}): Promise<R> {
  try {
    for (;;) {
      o.signal?.throwIfAborted();
      const r = steps.next();
      if (r.done) return r.value;
      o.onStep?.(r.value);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    steps.return(undefined as never); // runs the generator's cleanup when aborted
  }
}

/** The last position of hidden [B, m, D] scored by a head → logits [B, C]. */
export function lastLogits(model: ErnieVilg, which: 'text' | 'image', hidden: Tensor): Tensor {
  const [B, m] = hidden.shape as [number, number, number];
  const logits = model.head(which, slice(hidden, 1, m - 1, m)); // [B, 1, C]
  return reshape(logits, [B, logits.shape[2]!]);                // [B, C]
}

/** Text rows' padding as the keyValid of a layout: i32 [B, S], 0 at [PAD] keys of `rows` placed at `at`. */
export function layoutKeyValid(B: number, S: number, rows: { data: Int32Array; T: number; at: number }[], pad: number): Tensor | null {
  const kv = new Int32Array(B * S).fill(1); // [B, S]
  let padded = false;
  for (const r of rows) {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < r.T; j++) if (r.data[b * r.T + j] === pad) { kv[b * S + r.at + j] = 0; padded = true; }
    }
  }
  return padded ? new Tensor(kv, [B, S]) : null;
}
