// Exponential moving average of parameters, for evaluating/sampling with smoothed weights.
// Legend: P parameters; each shadow buffer has its parameter's shape and float type.
//   shadow ← decay·shadow + (1 − decay)·param      after each optimizer step

import type { FloatArray } from '../dtype.js';
import { fmtShape, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { checkParams } from './adamw.js';

export interface EMAOptions {
  /** Weight of the old average per update, in [0, 1] (default 0.999). */
  decay?: number;
}

export interface EMAState {
  /** Number of update() calls so far. */
  updates: number;
  /** The averaged values, one per parameter, in parameter order. */
  shadow: Tensor[];
}

export class EMA {
  readonly params: readonly Tensor[];
  readonly decay: number;
  private readonly shadow: FloatArray[]; // per param, its shape
  private updates = 0;

  /** Starts the average at the parameters' current values. */
  constructor(params: readonly Tensor[], opts: EMAOptions = {}) {
    checkParams('EMA', params);
    const decay = opts.decay ?? 0.999;
    if (typeof decay !== 'number' || !(decay >= 0 && decay <= 1)) throw new RangeError(`EMA: decay must be in [0, 1], got ${String(decay)}`);
    this.params = Object.freeze([...params]);
    this.decay = decay;
    this.shadow = params.map((p) => (p.data as FloatArray).slice());
  }

  get numUpdates(): number { return this.updates; }

  /** shadow ← decay·shadow + (1 − decay)·param for every parameter. */
  update(): void {
    const d = this.decay, e = 1 - d;
    this.params.forEach((p, i) => {
      const x = p.data as FloatArray, s = this.shadow[i]!; // [p.shape]
      for (let j = 0; j < s.length; j++) s[j] = d * s[j]! + e * x[j]!;
    });
    this.updates++;
  }

  /** Writes the averaged values into `params` (same count and shapes as the tracked ones), in place. */
  copyTo(params: readonly Tensor[] = this.params): void {
    this.checkTargets('copyTo', params);
    params.forEach((p, i) => { (p.data as FloatArray).set(this.shadow[i]!); });
  }

  /** Exchanges parameter values and averages in place; calling it twice restores the original state. */
  swap(): void {
    this.params.forEach((p, i) => {
      const x = p.data as FloatArray, s = this.shadow[i]!; // [p.shape]
      for (let j = 0; j < s.length; j++) { const t = x[j]!; x[j] = s[j]!; s[j] = t; }
    });
  }

  /** Runs `fn` with the averaged weights in the parameters, restoring the live weights afterwards (also on throw). */
  withAveraged<T>(fn: () => T): T {
    this.swap();
    try { return fn(); } finally { this.swap(); }
  }

  /** A copy of the state (fresh tensors). */
  stateDict(): EMAState {
    return { updates: this.updates, shadow: this.params.map((p, i) => new Tensor(this.shadow[i]!.slice(), p.shape)) };
  }

  /** Restores stateDict() output; count, shapes and float dtypes must match. */
  loadStateDict(state: EMAState): void {
    if (!Number.isInteger(state?.updates) || state.updates < 0) throw new RangeError(`EMA.loadStateDict: updates must be a non-negative integer, got ${String(state?.updates)}`);
    if (!Array.isArray(state.shadow)) throw new TypeError('EMA.loadStateDict: state.shadow must be an array of tensors');
    this.checkTargets('loadStateDict', state.shadow);
    state.shadow.forEach((t, i) => { this.shadow[i]!.set(t.data as FloatArray); });
    this.updates = state.updates;
  }

  private checkTargets(what: string, ts: readonly Tensor[]): void {
    if (ts.length !== this.params.length) throw new RangeError(`EMA.${what}: got ${ts.length} tensors but the EMA tracks ${this.params.length}`);
    ts.forEach((t, i) => {
      const p = this.params[i]!;
      if (!(t instanceof Tensor)) throw new TypeError(`EMA.${what}: entry ${i} is not a Tensor`);
      if (!sameShape(t.shape, p.shape)) throw new RangeError(`EMA.${what}: entry ${i} has shape ${fmtShape(t.shape)} but parameter ${p.name ?? i} has ${fmtShape(p.shape)}`);
      if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`EMA.${what}: entry ${i} must be f32 or f64, got ${t.dtype}`);
    });
  }
}
