// Random ops: dropout, multinomial sampling, categorical sampling from logits.
// Legend: E elements; R rows (distributions), C categories, S samples per row.
//
// Reproducibility: every random number is drawn here, in JS, from a seeded Generator (../random.ts)
// and handed to the kernels as plain arrays, so one seed gives bit-identical masks and samples on
// every backend. Each op draws a fixed count of numbers (E for dropout, R·S for multinomial, R for
// sampleCategorical), so the generator's later stream does not depend on the data.

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { fmtShape } from '../shape.js';
import { defaultGenerator, type Generator } from '../random.js';
import { Tensor, recordOp } from '../tensor.js';

declare module '../kernels.js' {
  interface KernelMap {
    /** out [E] = keep[i] ? x[i]·scale : 0 (dropout forward, and its backward on the gradient). */
    dropout(x: FloatArray, keep: Uint8Array, scale: number): FloatArray;
    /**
     * S category indices per row of non-negative weights [R, C] (not necessarily normalised; rows are
     * pre-checked to be finite, ≥ 0, with enough positive entries), by inverse CDF on the uniforms
     * u [R, S] in [0, 1). Without replacement a drawn category's weight is removed for the row's later draws.
     */
    multinomial(weights: FloatArray, rows: number, cols: number, u: Float64Array, samples: number, replacement: boolean): Int32Array;
  }
}

// ---------------------------------------------------------------- reference kernels

defineKernel('dropout', (x, keep, scale) => {
  const out = allocLike(x, x.length); // [E]
  for (let i = 0; i < x.length; i++) if (keep[i] !== 0) out[i] = x[i]! * scale;
  return out;
});

defineKernel('multinomial', (w, rows, cols, u, samples, replacement) => {
  const out = new Int32Array(rows * samples); // [R, S]
  const left = new Float64Array(cols);        // the row's remaining weights
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) left[c] = w[r * cols + c]!;
    for (let s = 0; s < samples; s++) {
      let total = 0;
      for (let c = 0; c < cols; c++) total += left[c]!;
      // First category whose running sum exceeds u·total: zero-weight categories are never picked.
      const target = u[r * samples + s]! * total;
      let acc = 0, pick = -1, lastPositive = -1;
      for (let c = 0; c < cols; c++) {
        if (left[c]! <= 0) continue;
        lastPositive = c;
        acc += left[c]!;
        if (acc > target) { pick = c; break; }
      }
      if (pick < 0) pick = lastPositive; // rounding left acc ≤ target at the very end
      out[r * samples + s] = pick;
      if (!replacement) left[pick] = 0;
    }
  }
  return out;
});

// ---------------------------------------------------------------- dropout

export interface DropoutOptions {
  /** false (evaluation) returns x unchanged. */
  training?: boolean;
  generator?: Generator;
}

/**
 * Inverted dropout: each element is zeroed with probability p, survivors are scaled by 1/(1 − p).
 * p = 0 or training = false returns x itself. The mask comes from the generator (one uniform per element).
 */
export function dropout(x: Tensor, p: number, opts: DropoutOptions = {}): Tensor {
  const op = `dropout(x ${fmtShape(x.shape)}, p ${String(p)})`;
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new TypeError(`${op}: x must be f32 or f64, got ${x.dtype}`);
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new RangeError(`${op}: p must be in [0, 1)`);
  const training = opts.training ?? true;
  if (p === 0 || !training) return x;
  const gen = opts.generator ?? defaultGenerator;
  const keep = new Uint8Array(x.size); // [E]
  gen.fillKeepMask(keep, p);            // keep[i] = uniform_i ≥ p
  const scale = 1 / (1 - p);
  const out = new Tensor(kernel('dropout')(x.data as FloatArray, keep, scale), x.shape); // [...]
  const xShape = x.shape; // backward needs the mask, not x

  return recordOp('dropout', out, [x], (g) => { // g [...]
    return [new Tensor(kernel('dropout')(g.data as FloatArray, keep, scale), xShape)]; // same mask, same scale
  });
}

// ---------------------------------------------------------------- sampling

export interface MultinomialOptions {
  /** false (default): the S draws of a row are distinct categories, so S ≤ #positive weights. */
  replacement?: boolean;
  generator?: Generator;
}

/** Rows of weights as [R, C] plus whether the input was a single [C] distribution. */
function rowsOf(op: string, t: Tensor): { rows: number; cols: number; single: boolean } {
  if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`${op}: expected f32 or f64, got ${t.dtype}`);
  if (t.rank !== 1 && t.rank !== 2) throw new RangeError(`${op}: expected [C] or [R, C]`);
  const cols = t.shape[t.rank - 1]!;
  if (cols === 0) throw new RangeError(`${op}: there are no categories`);
  return { rows: t.rank === 2 ? t.shape[0]! : 1, cols, single: t.rank === 1 };
}

/** Checks each row is finite and ≥ 0 with at least `need` positive entries (RangeError naming the row). */
function checkWeights(op: string, w: FloatArray, rows: number, cols: number, need: number, what: string): void {
  for (let r = 0; r < rows; r++) {
    let positive = 0;
    for (let c = 0; c < cols; c++) {
      const v = w[r * cols + c]!;
      if (!(v >= 0) || v === Infinity) throw new RangeError(`${op}: row ${r} has an invalid ${what} ${v} at category ${c}`);
      if (v > 0) positive++;
    }
    if (positive === 0) throw new RangeError(`${op}: row ${r} has no category with positive ${what}`);
    if (positive < need) throw new RangeError(`${op}: row ${r} has ${positive} positive categories, too few for ${need} draws without replacement`);
  }
}

/**
 * numSamples category indices per row of probs [R, C] (or [C]) → i32 [R, numSamples] (or [numSamples]).
 * probs need not sum to 1; negative, NaN or infinite entries and all-zero rows are RangeErrors. Not differentiable.
 */
export function multinomial(probs: Tensor, numSamples: number, opts: MultinomialOptions = {}): Tensor {
  const op = `multinomial(probs ${fmtShape(probs.shape)}, numSamples ${String(numSamples)})`;
  const { rows, cols, single } = rowsOf(op, probs);
  const replacement = opts.replacement ?? false;
  if (!Number.isInteger(numSamples) || numSamples < 0) throw new RangeError(`${op}: numSamples must be an integer ≥ 0`);
  if (!replacement && numSamples > cols) throw new RangeError(`${op}: cannot draw ${numSamples} of ${cols} categories without replacement`);
  const w = probs.data as FloatArray;
  checkWeights(op, w, rows, cols, replacement ? 0 : numSamples, 'probability');
  const gen = opts.generator ?? defaultGenerator;
  const u = new Float64Array(rows * numSamples); // [R, S]
  for (let i = 0; i < u.length; i++) u[i] = gen.uniform();
  const ids = kernel('multinomial')(w, rows, cols, u, numSamples, replacement);
  return new Tensor(ids, single ? [numSamples] : [rows, numSamples]); // [R, S] | [S]
}

export interface SampleCategoricalOptions {
  /** Divides the logits before the softmax; > 0, or exactly 0 for greedy argmax (ties → lower index). */
  temperature?: number;
  generator?: Generator;
}

/**
 * One category per row drawn from softmax(logits / temperature) of logits [R, C] (or [C]) → i32 [R] (or []).
 * −∞ logits are never drawn; NaN logits and rows of only −∞ are RangeErrors. Not differentiable.
 */
export function sampleCategorical(logits: Tensor, opts: SampleCategoricalOptions = {}): Tensor {
  const op = `sampleCategorical(logits ${fmtShape(logits.shape)})`;
  const { rows, cols, single } = rowsOf(op, logits);
  const temperature = opts.temperature ?? 1;
  if (typeof temperature !== 'number' || !(temperature >= 0) || temperature === Infinity) {
    throw new RangeError(`${op}: temperature must be a finite number ≥ 0, got ${String(temperature)}`);
  }
  const x = logits.data as FloatArray;
  // Unnormalised probabilities exp((x − max)/T): the max entry has weight 1, so no row underflows to all zeros.
  const w = new Float64Array(rows * cols); // [R, C]
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity, arg = -1;
    for (let c = 0; c < cols; c++) {
      const v = x[o + c]!;
      if (Number.isNaN(v) || v === Infinity) throw new RangeError(`${op}: row ${r} has an invalid logit ${v} at category ${c}`);
      if (v > max) { max = v; arg = c; }
    }
    if (arg < 0) throw new RangeError(`${op}: row ${r} has no finite logit (all −∞)`);
    if (temperature === 0) w[o + arg] = 1; // greedy: all weight on the first maximum
    else for (let c = 0; c < cols; c++) w[o + c] = Math.exp((x[o + c]! - max) / temperature);
  }
  const gen = opts.generator ?? defaultGenerator;
  const u = new Float64Array(rows); // [R]
  for (let i = 0; i < rows; i++) u[i] = gen.uniform();
  const ids = kernel('multinomial')(w, rows, cols, u, 1, true);
  return new Tensor(ids, single ? [] : [rows]); // [R] | []
}
