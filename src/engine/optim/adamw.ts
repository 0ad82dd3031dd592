// AdamW: Adam with decoupled weight decay, exactly torch.optim.AdamW (amsgrad=False, maximize=False).
// Legend: P number of parameters; every moment buffer has its parameter's shape and float type.
//
// Per parameter p with gradient g at its t-th update (t counts only steps where p had a gradient,
// as PyTorch's per-parameter `state['step']` does):
//   p ← p · (1 − lr·wd)                                  decoupled decay (skipped for noDecay params)
//   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)     ε outside the square root
// This is the one place in the engine that mutates tensors: parameter storage is updated in place so
// that every tensor sharing it (parameter(), detach()) sees the new values.

import type { FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { fmtShape, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';

/** The per-parameter constants of one AdamW update (β's, ε, the decay factor and both bias corrections). */
export interface AdamwHyper { b1: number; b2: number; eps: number; decay: number; stepSize: number; bc2Sqrt: number }

declare module '../kernels.js' {
  interface KernelMap {
    /** One AdamW update of x, m, v in place (same length and float type): the formula above, products in double. */
    adamwUpdate(x: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, h: AdamwHyper): void;
  }
}

defineKernel('adamwUpdate', (x, g, m, v, { b1, b2, eps, decay, stepSize, bc2Sqrt }) => {
  for (let j = 0; j < x.length; j++) {
    const gj = g[j]!;
    const mj = b1 * m[j]! + (1 - b1) * gj;
    const vj = b2 * v[j]! + (1 - b2) * gj * gj;
    m[j] = mj; v[j] = vj;
    x[j] = x[j]! * decay; // stored first (f32-rounded), as PyTorch's param.mul_ is
    // Read back the stored (possibly f32-rounded) values, as PyTorch's in-place buffers would be.
    x[j] = x[j]! - stepSize * m[j]! / (Math.sqrt(v[j]!) / bc2Sqrt + eps);
  }
});

export interface AdamWOptions {
  /** Learning rate; settable per step through `optimizer.lr` (schedules). */
  lr?: number;
  /** Decay rates of the first and second moment estimates, each in [0, 1). */
  betas?: readonly [number, number];
  /** Added to the bias-corrected √v for numerical stability. */
  eps?: number;
  /** Decoupled weight decay coefficient (PyTorch's default 0.01). */
  weightDecay?: number;
  /** Parameters for which this returns true get no weight decay (e.g. biases, norm gains). */
  noDecay?: (p: Tensor) => boolean;
}

/** The common rule "decay only matrices": rank < 2 tensors (biases, norm gains) are not decayed. */
export function isNotMatrix(p: Tensor): boolean { return p.rank < 2; }

/** Everything needed to resume: per-parameter update counts and both moments, in parameter order. */
export interface AdamWState {
  /** Number of updates each parameter has received (PyTorch's state['step']). */
  steps: number[];
  /** First moments m, one per parameter, same shape and dtype. */
  expAvg: Tensor[];
  /** Second moments v, one per parameter, same shape and dtype. */
  expAvgSq: Tensor[];
}

function checkNumber(what: string, v: number, lo: number, hi: number, hiOpen: boolean): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || (hiOpen ? v >= hi : v > hi)) {
    throw new RangeError(`AdamW: ${what} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${String(v)}`);
  }
}

/** Checks the parameter list shared by optimizers and EMA: distinct f32/f64 leaf tensors. */
export function checkParams(owner: string, params: readonly Tensor[]): void {
  if (!Array.isArray(params)) throw new TypeError(`${owner}: params must be an array of tensors`);
  const seen = new Set<Tensor>();
  params.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`${owner}: params[${i}] is not a Tensor`);
    if (p.dtype !== 'f32' && p.dtype !== 'f64') throw new TypeError(`${owner}: params[${i}] ${p.name ?? ''} must be f32 or f64, got ${p.dtype}`);
    if (p.node !== null) throw new TypeError(`${owner}: params[${i}] ${p.name ?? ''} is not a leaf tensor (it was produced by '${p.node.name}')`);
    if (seen.has(p)) throw new TypeError(`${owner}: params[${i}] ${p.name ?? ''} appears twice`);
    seen.add(p);
  });
}

function newLike(p: Tensor): FloatArray {
  return p.dtype === 'f64' ? new Float64Array(p.size) : new Float32Array(p.size);
}

export class AdamW {
  readonly params: readonly Tensor[];
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  private _lr: number;
  private readonly decays: boolean[];
  private readonly m: FloatArray[];   // per param, its shape
  private readonly v: FloatArray[];   // per param, its shape
  private readonly steps: number[];

  constructor(params: readonly Tensor[], opts: AdamWOptions = {}) {
    checkParams('AdamW', params);
    const lr = opts.lr ?? 1e-3;
    const betas = opts.betas ?? [0.9, 0.999];
    const eps = opts.eps ?? 1e-8;
    const weightDecay = opts.weightDecay ?? 0.01;
    checkNumber('lr', lr, 0, Infinity, true);
    if (!Array.isArray(betas) || betas.length !== 2) throw new TypeError('AdamW: betas must be a pair [beta1, beta2]');
    checkNumber('betas[0]', betas[0], 0, 1, true);
    checkNumber('betas[1]', betas[1], 0, 1, true);
    checkNumber('eps', eps, 0, Infinity, true);
    checkNumber('weightDecay', weightDecay, 0, Infinity, true);
    if (opts.noDecay !== undefined && typeof opts.noDecay !== 'function') throw new TypeError('AdamW: noDecay must be a function (p: Tensor) => boolean');

    this.params = Object.freeze([...params]);
    this._lr = lr;
    this.betas = Object.freeze([betas[0], betas[1]] as const);
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.decays = params.map((p) => !(opts.noDecay?.(p) ?? false));
    this.m = params.map(newLike);
    this.v = params.map(newLike);
    this.steps = params.map(() => 0);
  }

  get lr(): number { return this._lr; }
  set lr(v: number) { checkNumber('lr', v, 0, Infinity, true); this._lr = v; }

  /** Whether `p` (one of this optimizer's parameters) receives weight decay. */
  hasWeightDecay(p: Tensor): boolean {
    const i = this.params.indexOf(p);
    if (i < 0) throw new RangeError(`AdamW.hasWeightDecay: ${p.toString()} is not one of this optimizer's parameters`);
    return this.decays[i]!;
  }

  /** One update of every parameter that has a gradient; parameters with grad === null are skipped. */
  step(): void {
    const [b1, b2] = this.betas;
    const lr = this._lr, eps = this.eps;
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (g === null) return;
      if (!sameShape(g.shape, p.shape)) throw new RangeError(`AdamW: grad ${fmtShape(g.shape)} does not match parameter ${p.name ?? i} ${fmtShape(p.shape)}`);
      if (g.dtype !== 'f32' && g.dtype !== 'f64') throw new TypeError(`AdamW: grad of parameter ${p.name ?? i} must be f32 or f64, got ${g.dtype}`);
      const t = ++this.steps[i]!;
      const decay = this.decays[i]! ? 1 - lr * this.weightDecay : 1;
      const stepSize = lr / (1 - b1 ** t);
      const bc2Sqrt = Math.sqrt(1 - b2 ** t);
      const x = p.data as FloatArray, gd = g.data as FloatArray; // [p.shape]
      kernel('adamwUpdate')(x, gd, this.m[i]!, this.v[i]!, { b1, b2, eps, decay, stepSize, bc2Sqrt }); // x, m, v in place
    });
  }

  /** Drops every gradient (sets p.grad = null), so the next backward starts fresh. */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** A copy of the optimizer state (moments are fresh tensors, not views of the live buffers). */
  stateDict(): AdamWState {
    return {
      steps: [...this.steps],
      expAvg: this.params.map((p, i) => new Tensor(this.m[i]!.slice(), p.shape)),
      expAvgSq: this.params.map((p, i) => new Tensor(this.v[i]!.slice(), p.shape)),
    };
  }

  /** Restores a state from stateDict(); the parameter count, shapes and dtypes must match. Hyperparameters stay as constructed. */
  loadStateDict(state: AdamWState): void {
    const n = this.params.length;
    for (const key of ['steps', 'expAvg', 'expAvgSq'] as const) {
      const arr: unknown = state?.[key];
      if (!Array.isArray(arr)) throw new TypeError(`AdamW.loadStateDict: state.${key} must be an array`);
      if (arr.length !== n) throw new RangeError(`AdamW.loadStateDict: state.${key} has ${arr.length} entries but the optimizer has ${n} parameters`);
    }
    state.steps.forEach((s, i) => {
      if (!Number.isInteger(s) || s < 0) throw new RangeError(`AdamW.loadStateDict: steps[${i}] must be a non-negative integer, got ${String(s)}`);
    });
    for (const key of ['expAvg', 'expAvgSq'] as const) {
      state[key].forEach((t, i) => {
        const p = this.params[i]!;
        if (!(t instanceof Tensor)) throw new TypeError(`AdamW.loadStateDict: ${key}[${i}] is not a Tensor`);
        if (!sameShape(t.shape, p.shape)) throw new RangeError(`AdamW.loadStateDict: ${key}[${i}] has shape ${fmtShape(t.shape)} but parameter ${p.name ?? i} has ${fmtShape(p.shape)}`);
        if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`AdamW.loadStateDict: ${key}[${i}] must be f32 or f64, got ${t.dtype}`);
      });
    }
    // Validated everything first, so a bad state leaves the optimizer untouched.
    for (let i = 0; i < n; i++) {
      this.steps[i] = state.steps[i]!;
      this.m[i]!.set(state.expAvg[i]!.data as FloatArray);
      this.v[i]!.set(state.expAvgSq[i]!.data as FloatArray);
    }
  }
}

/** Flattens an AdamW state into named tensors (e.g. for saveSafetensors): `${prefix}.steps` (i32 [P]), `${prefix}.exp_avg.${i}`, `${prefix}.exp_avg_sq.${i}`. */
export function adamwStateToTensors(state: AdamWState, prefix = 'optim'): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  out[`${prefix}.steps`] = new Tensor(Int32Array.from(state.steps), [state.steps.length]);
  state.expAvg.forEach((t, i) => { out[`${prefix}.exp_avg.${i}`] = t; });
  state.expAvgSq.forEach((t, i) => { out[`${prefix}.exp_avg_sq.${i}`] = t; });
  return out;
}

/** The inverse of adamwStateToTensors; throws when an entry is missing. */
export function adamwStateFromTensors(tensors: Readonly<Record<string, Tensor>>, prefix = 'optim'): AdamWState {
  const get = (name: string): Tensor => {
    const t = tensors[name];
    if (t === undefined) throw new RangeError(`adamwStateFromTensors: missing tensor '${name}'`);
    return t;
  };
  const stepsT = get(`${prefix}.steps`);
  if (stepsT.dtype !== 'i32' || stepsT.rank !== 1) throw new TypeError(`adamwStateFromTensors: '${prefix}.steps' must be a 1-D i32 tensor, got ${stepsT.dtype} ${fmtShape(stepsT.shape)}`);
  const steps = Array.from(stepsT.data);
  return {
    steps,
    expAvg: steps.map((_, i) => get(`${prefix}.exp_avg.${i}`)),
    expAvgSq: steps.map((_, i) => get(`${prefix}.exp_avg_sq.${i}`)),
  };
}
