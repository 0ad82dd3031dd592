// Modules: named parameters and buffers, children, state dicts, train/eval mode.
// Names follow PyTorch's dotted convention (`encoder.down.0.block.1.norm1.weight`) so state dicts of
// PyTorch models (taming-transformers VQGAN, ...) map onto ours name for name, shape for shape.

import { fmtShape, sameShape } from '../engine/shape.js';
import { Tensor, parameter } from '../engine/tensor.js';

export interface LoadReport { missing: string[]; unexpected: string[]; mismatched: string[] }

export class StateDictError extends Error {
  constructor(readonly report: LoadReport) {
    const parts: string[] = [];
    if (report.missing.length) parts.push(`missing ${report.missing.length}: ${report.missing.join(', ')}`);
    if (report.unexpected.length) parts.push(`unexpected ${report.unexpected.length}: ${report.unexpected.join(', ')}`);
    if (report.mismatched.length) parts.push(`mis-shaped ${report.mismatched.length}: ${report.mismatched.join(', ')}`);
    super(`state dict does not match the model — ${parts.join('; ')}`);
  }
}

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers a trainable parameter (a leaf with requiresGrad) under `name`. */
  protected addParameter(name: string, t: Tensor): Tensor {
    const p = t.requiresGrad ? t : parameter(t);
    this.params.set(name, p);
    return p;
  }

  /** Registers non-trainable state that belongs in the state dict (running statistics, EMA counts). */
  protected addBuffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, t);
    return t;
  }

  /** Replaces a buffer's tensor (buffers are updated by assignment, parameters in place). */
  protected setBuffer(name: string, t: Tensor): void {
    const old = this.buffers.get(name);
    if (old === undefined) throw new Error(`no buffer '${name}'`);
    if (!sameShape(old.shape, t.shape)) throw new RangeError(`buffer '${name}': shape ${fmtShape(t.shape)} differs from ${fmtShape(old.shape)}`);
    this.buffers.set(name, t);
  }

  protected addModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Parameters with their dotted names, depth first in registration order. */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  namedBuffers(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [n, b] of this.buffers) out.push([prefix + n, b]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] { return this.namedParameters().map(([, p]) => p); }

  /** Number of scalar parameters. */
  numParameters(): number { return this.parameters().reduce((s, p) => s + p.size, 0); }

  /** Parameters and buffers by dotted name (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values from `sd` into this module's parameters and buffers (f32/bf16/f64 converted to the
   * target dtype). Checks every name and shape first and changes nothing unless all match
   * (strict) — the error lists exactly what is missing, unexpected or mis-shaped.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadReport {
    const strict = opts.strict ?? true;
    const own = new Map([...this.namedParameters(), ...this.namedBuffers()]);
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    for (const name of own.keys()) if (!(name in sd)) report.missing.push(name);
    for (const name of Object.keys(sd)) if (!own.has(name)) report.unexpected.push(name);
    for (const [name, t] of own) {
      const src = sd[name];
      if (src && !sameShape(src.shape, t.shape)) report.mismatched.push(`${name} (checkpoint ${fmtShape(src.shape)}, model ${fmtShape(t.shape)})`);
    }
    if (report.mismatched.length || (strict && (report.missing.length || report.unexpected.length))) throw new StateDictError(report);
    for (const [name, t] of own) {
      const src = sd[name];
      if (src === undefined) continue;
      const v = src.dtype === t.dtype ? src : src.to(t.dtype);
      (t.data as Float32Array).set(v.data as Float32Array);
    }
    return report;
  }

  train(on = true): this {
    this.training = on;
    for (const c of this.children.values()) c.train(on);
    return this;
  }

  eval(): this { return this.train(false); }
}

/** A list of modules registered under '0', '1', ... (PyTorch's nn.ModuleList naming). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.addModule(String(i), m));
  }
  get length(): number { return this.items.length; }
  at(i: number): M {
    const m = this.items[i];
    if (m === undefined) throw new RangeError(`ModuleList index ${i} out of range (${this.items.length} items)`);
    return m;
  }
}
