// The Tensor and its reverse-mode autograd tape.
//
// Ownership: a tensor owns a JS TypedArray (memory the GC accounts for), so nothing needs disposing.
// Ops never mutate their inputs; only optimizers write parameters in place. Each op records a
// GradNode {edges, backward}: edges lead to the inputs' producers, and the backward closure captures
// only the values it needs, so intermediate tensors no backward uses are not kept by the graph.
// `backward()` walks the nodes in reverse topological order, runs each with grad recording off,
// accumulates gradients across uses, and releases each node as soon as it has run.

import { allocStorage, bf16ArrayToF32, dtypeOfStorage, f32ArrayToBf16, isDType, type DType, type Storage, type StorageOf } from './dtype.js';
import { assertShape, fmtShape, numel, sameShape, type Shape } from './shape.js';
import { defaultGenerator, type Generator } from './random.js';
import { hasKernel, kernel } from './kernels.js';

/**
 * Where one input's gradient goes: the node that produced the input, the leaf tensor that collects it,
 * or nowhere (a constant). Edges hold no input data: the graph keeps alive only what each backward
 * captured (PyTorch's saved tensors), so an activation nobody's backward needs is freed as soon as the
 * caller drops it, not when the step's backward ends.
 */
export interface GradEdge {
  readonly shape: readonly number[];
  readonly to: GradNode | Tensor | null;
}

/** Maps the gradient of an op's output to gradients of its inputs; wanted[j]: whether input j's is used. */
export type BackwardFn = (grad: Tensor, wanted: readonly boolean[]) => ReadonlyArray<Tensor | null>;

/** One recorded op. `released` once its backward has run (or the graph was freed): it then reads as absent. */
export class GradNode {
  private fn: BackwardFn | null;
  private links: readonly GradEdge[];
  /** Set while gradWrt prunes the graph: a cut node reads as absent, so ops skip gradients towards it. */
  cut = false;
  constructor(readonly name: string, edges: readonly GradEdge[], backward: BackwardFn) { this.fn = backward; this.links = edges; }
  get edges(): readonly GradEdge[] { return this.links; }
  get released(): boolean { return this.fn === null; }
  /** Whether a gradient sent to this node is used now. */
  get live(): boolean { return this.fn !== null && !this.cut; }
  /** Runs the backward: one gradient (or null) per edge. */
  run(grad: Tensor, wanted: readonly boolean[]): ReadonlyArray<Tensor | null> {
    if (this.fn === null) throw new Error(`backward of '${this.name}' ran after its graph was freed`);
    return this.fn(grad, wanted);
  }
  /** Drops the backward closure (and with it the tensors it saved) and the edges. */
  release(): void { this.fn = null; this.links = []; }
}

/** Whether a gradient sent along `e` would be used. */
export function edgeWanted(e: GradEdge): boolean {
  return e.to === null ? false : e.to instanceof GradNode ? e.to.live : e.to.requiresGrad;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly data: Storage;
  /** Leaf tensors with requiresGrad get `.grad` filled by backward(). */
  requiresGrad: boolean;
  grad: Tensor | null = null;
  private producer: GradNode | null = null;
  /** The op that produced this tensor, while its graph is alive (null once released, or cut by gradWrt). */
  get node(): GradNode | null { const n = this.producer; return n !== null && n.live ? n : null; }
  set node(n: GradNode | null) { this.producer = n; }
  /** Optional name, used in error messages and state dicts. */
  name: string | undefined;

  constructor(data: Storage, shape: Shape, requiresGrad = false) {
    assertShape(shape);
    if (data.length !== numel(shape)) {
      throw new RangeError(`tensor data has ${data.length} elements but shape ${fmtShape(shape)} needs ${numel(shape)}`);
    }
    this.data = data;
    this.dtype = dtypeOfStorage(data);
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
  }

  get size(): number { return this.data.length; }
  get rank(): number { return this.shape.length; }

  /** Typed view of the storage; throws if the dtype differs. */
  as<D extends DType>(dtype: D): StorageOf[D] {
    if (this.dtype !== dtype) throw new TypeError(`expected a ${dtype} tensor, got ${this.dtype} ${fmtShape(this.shape)}`);
    return this.data as StorageOf[D];
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs exactly one element, tensor has shape ${fmtShape(this.shape)}`);
    return this.dtype === 'bf16' ? bf16ArrayToF32(this.data as Uint16Array)[0]! : this.data[0]!;
  }

  /** A copy of the values as plain numbers (bf16 decoded). */
  toArray(): number[] {
    return Array.from(this.dtype === 'bf16' ? bf16ArrayToF32(this.data as Uint16Array) : this.data);
  }

  /** Casts to another dtype (a new tensor; gradients flow between float types). */
  to(dtype: DType): Tensor {
    if (!isDType(dtype)) throw new TypeError(`unknown dtype ${String(dtype)}`);
    if (dtype === this.dtype) return this;
    const src = this.dtype === 'bf16' ? bf16ArrayToF32(this.data as Uint16Array) : this.data;
    let out: Storage;
    if (dtype === 'bf16') out = f32ArrayToBf16(src);
    else if (dtype === 'i32') out = Int32Array.from(src, Math.trunc);
    else { out = allocStorage(dtype, src.length); (out as Float32Array).set(src); }
    const t = new Tensor(out, this.shape);
    const from = this.dtype;
    return recordOp('cast', t, [this], (g) => [from === 'i32' ? null : g.to(from)]);
  }

  /** The same values, cut from the graph: the seed's stop-gradient sg[·]. Shares storage. */
  detach(): Tensor { return new Tensor(this.data, this.shape); }

  /** Reverse-mode differentiation from this tensor. A scalar needs no seed gradient. */
  backward(grad?: Tensor, opts: { retainGraph?: boolean } = {}): void { runBackward(this, grad, opts.retainGraph ?? false); }

  toString(): string { return `Tensor(${this.dtype} ${fmtShape(this.shape)}${this.requiresGrad ? ' requiresGrad' : ''})`; }
}

// ---------------------------------------------------------------- creation

export type DataLike = number[] | Storage;

/** A tensor from values; shape defaults to 1-D, dtype to f32 (or the storage's own type). */
export function tensor(values: DataLike, shape?: Shape, dtype?: DType): Tensor {
  const d: DType = dtype ?? (Array.isArray(values) ? 'f32' : dtypeOfStorage(values));
  const n = values.length;
  const s = shape ?? [n];
  let data: Storage;
  if (!Array.isArray(values) && dtypeOfStorage(values) === d) data = values;
  else if (d === 'bf16') data = f32ArrayToBf16(values as ArrayLike<number>);
  else { data = allocStorage(d, n); for (let i = 0; i < n; i++) data[i] = Number(values[i]); }
  return new Tensor(data, s);
}

export function scalar(v: number, dtype: DType = 'f32'): Tensor { return tensor([v], [], dtype); }
export function zeros(shape: Shape, dtype: DType = 'f32'): Tensor { assertShape(shape); return new Tensor(allocStorage(dtype, numel(shape)), shape); }
export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  const t = zeros(shape, dtype);
  t.data.fill(dtype === 'bf16' ? f32ArrayToBf16([value])[0]! : value);
  return t;
}
export function ones(shape: Shape, dtype: DType = 'f32'): Tensor { return full(shape, 1, dtype); }
export function zerosLike(t: Tensor): Tensor { return zeros(t.shape, t.dtype); }
export function onesLike(t: Tensor): Tensor { return ones(t.shape, t.dtype); }

/** [start, start+step, ...) below `end`. */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'i32'): Tensor {
  if (end === undefined) { end = start; start = 0; }
  if (step === 0 || !Number.isFinite(step)) throw new RangeError('arange: step must be a non-zero finite number');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const t = zeros([n], dtype);
  for (let i = 0; i < n; i++) t.data[i] = start + i * step;
  return t;
}

export interface RandomOptions { dtype?: 'f32' | 'f64'; generator?: Generator; requiresGrad?: boolean }

/** Normal(mean, std) from a seeded generator. */
export function randn(shape: Shape, opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  const t = zeros(shape, opts.dtype ?? 'f32');
  const g = opts.generator ?? defaultGenerator;
  const mean = opts.mean ?? 0, std = opts.std ?? 1;
  for (let i = 0; i < t.size; i++) t.data[i] = mean + std * g.normal();
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** Uniform[low, high) from a seeded generator. */
export function rand(shape: Shape, opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  const t = zeros(shape, opts.dtype ?? 'f32');
  const g = opts.generator ?? defaultGenerator;
  const low = opts.low ?? 0, high = opts.high ?? 1;
  for (let i = 0; i < t.size; i++) t.data[i] = low + (high - low) * g.uniform();
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** Marks a tensor as a trainable leaf. */
export function parameter(t: Tensor, name?: string): Tensor {
  if (t.dtype !== 'f32' && t.dtype !== 'f64') throw new TypeError(`parameters must be f32 or f64 (master weights), got ${t.dtype}`);
  const p = new Tensor(t.data, t.shape, true);
  p.name = name;
  return p;
}

// ---------------------------------------------------------------- autograd

let gradEnabled = true;

export function isGradEnabled(): boolean { return gradEnabled; }

/** Runs `fn` without recording a graph (inference, optimizer steps, backward itself). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}

/** Whether `t` takes part in differentiation. */
export function needsGrad(t: Tensor): boolean { return t.requiresGrad || t.node !== null; }

/**
 * Attaches `backward` to `out` when recording is on and some input needs a gradient.
 * Every op calls this once, right after computing its forward, so forward and backward sit together.
 * The node links to the inputs' producers (or leaves), not to the inputs: what backward needs of an
 * input's values it captures itself.
 */
export function recordOp(name: string, out: Tensor, inputs: readonly Tensor[], backward: BackwardFn): Tensor {
  if (gradEnabled && inputs.some(needsGrad)) {
    out.node = new GradNode(name, inputs.map((t) => ({ shape: t.shape, to: t.node ?? (t.requiresGrad ? t : null) })), backward);
  }
  return out;
}

/** The graph's nodes below `root` in post-order (every node after all nodes it sends gradients to). */
export function postOrder(root: GradNode, enter: (n: GradNode) => boolean = () => true): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>([root]);
  const stack: Array<[GradNode, number]> = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [n, i] = top;
    const edges = enter(n) ? n.edges : [];
    if (i < edges.length) {
      top[1]++;
      const to = edges[i]!.to;
      if (to instanceof GradNode && to.live && !seen.has(to)) { seen.add(to); stack.push([to, 0]); }
    } else {
      stack.pop();
      order.push(n);
    }
  }
  return order;
}

function runBackward(root: Tensor, seed: Tensor | undefined, retainGraph: boolean): void {
  if (!needsGrad(root)) throw new Error('backward(): this tensor does not require grad (no parameter or requiresGrad input reached it)');
  if (seed === undefined) {
    if (root.size !== 1) throw new RangeError(`backward(): a seed gradient is needed for non-scalar output ${fmtShape(root.shape)}`);
    seed = full(root.shape, 1, root.dtype);
  } else if (!sameShape(seed.shape, root.shape)) {
    throw new RangeError(`backward(): seed gradient ${fmtShape(seed.shape)} does not match output ${fmtShape(root.shape)}`);
  }
  const rootNode = root.node;
  if (rootNode === null) { root.grad = root.grad === null ? seed : addSameShape(root.grad, seed); return; } // a leaf

  const order = postOrder(rootNode);
  const grads = new Map<GradNode | Tensor, Tensor>([[rootNode, seed]]);
  const leaves: Tensor[] = [];
  noGrad(() => {
    // Reverse post-order: a node runs once every consumer has sent its gradient. Each node is released
    // right after it runs, so the tensors its backward saved can go while the rest of the graph runs.
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k]!;
      const g = grads.get(node);
      grads.delete(node);
      if (g !== undefined && node.live) {
        const edges = node.edges, wanted = edges.map(edgeWanted);
        const inGrads = node.run(g, wanted);
        edges.forEach((e, j) => {
          const gi = inGrads[j];
          if (gi === null || gi === undefined || !wanted[j]) return;
          if (!sameShape(gi.shape, e.shape)) {
            throw new Error(`backward of '${node.name}' returned grad ${fmtShape(gi.shape)} for input ${fmtShape(e.shape)}`);
          }
          const to = e.to!;
          const prev = grads.get(to);
          if (prev === undefined && !(to instanceof GradNode)) leaves.push(to);
          grads.set(to, prev === undefined ? gi : addSameShape(prev, gi));
        });
      }
      if (!retainGraph) node.release();
    }
    for (const t of leaves) {
      const g = grads.get(t)!;
      t.grad = t.grad === null ? g : addSameShape(t.grad, g);
    }
  });
}

/** Elementwise sum of two same-shape float tensors (gradient accumulation; dtype of `a`). */
function addSameShape(a: Tensor, b: Tensor): Tensor {
  const out = allocStorage(a.dtype, a.size);
  const x = a.dtype === 'bf16' ? bf16ArrayToF32(a.data as Uint16Array) : a.data;
  const y = b.dtype === 'bf16' ? bf16ArrayToF32(b.data as Uint16Array) : b.data;
  if (a.dtype === 'bf16') return new Tensor(f32ArrayToBf16(Array.from(x, (v, i) => v + y[i]!)), a.shape);
  // Large f32 sums (residual streams, shared weights) go through the backend's add kernel: the same
  // correctly rounded f32 sums as the loop below, without a JS pass over millions of elements.
  if (x instanceof Float32Array && y instanceof Float32Array && x.length >= 4096 && hasKernel('binary')) {
    return new Tensor(kernel('binary')('add', x, a.shape, y, a.shape, a.shape), a.shape);
  }
  for (let i = 0; i < out.length; i++) out[i] = x[i]! + y[i]!;
  return new Tensor(out, a.shape);
}
