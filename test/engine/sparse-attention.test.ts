// sparseAttention: finite-difference gradients (f64, reference), equality with scaledDotProductAttention
// under the pattern's dense mask (outputs and q/k/v gradients) for every ViLG pattern kind in both
// directions with and without key padding, empty rows, the native kernels against the reference (f32,
// bf16), and bad input. Legend: B batch, H heads, S sequence, Dh / Dv head dims, nnz pattern entries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, Tensor, isNativeAvailable, kernel, nativeAddon, randn, referenceKernel, scaledDotProductAttention, sparseAttention,
  tensor, withBackend, withPrecision, zeros, type CsrPattern, type SparseAttentionDims,
} from '../../src/engine/index.js';
import type { KernelMap, KernelName } from '../../src/engine/kernels.js';
import { buildPattern, patternToDense, type LayerAttention, type Segment } from '../../src/models/vilg/attention-pattern.js';
import { gradcheck, maxRelErr } from '../helpers/gradcheck.js';

const KINDS: readonly LayerAttention[] = ['dense', 'row', 'column', 'conv'];
const LAYOUTS: Record<string, Segment[]> = {
  t2i: [{ kind: 'text', length: 3, role: 'source' }, { kind: 'image', grid: [3, 4], role: 'target' }],
  i2t: [{ kind: 'image', grid: [3, 4], role: 'source' }, { kind: 'text', length: 3, role: 'target' }],
  vqa: [{ kind: 'image', grid: [2, 3], role: 'source' }, { kind: 'text', length: 2, role: 'source' }, { kind: 'text', length: 2, role: 'target' }],
};
const skipNative = nativeAddon() === null || !isNativeAvailable() ? 'native addon not loaded' : false;

/** The pattern ∧ keyValid as an i32 mask [B, 1, S, S] for scaledDotProductAttention. */
function denseMask(p: CsrPattern, keyValid: Tensor | null, b: number): Tensor {
  const s = p.seqLen, m = patternToDense(p);
  const out = new Int32Array(b * s * s);
  for (let n = 0; n < b; n++) for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
    out[(n * s + i) * s + j] = m[i * s + j]! & (keyValid === null ? 1 : (keyValid.data[n * s + j]! !== 0 ? 1 : 0));
  }
  return new Tensor(out, [b, 1, s, s]);
}

/** Output and q/k/v gradients of Σ fn(q, k, v)·W for a fixed W. */
function withGrads(fn: (q: Tensor, k: Tensor, v: Tensor) => Tensor, inputs: Tensor[], w: Tensor): number[][] {
  const leaves = inputs.map((t) => new Tensor(t.data, t.shape, true));
  const y = fn(leaves[0]!, leaves[1]!, leaves[2]!);
  y.backward(w);
  return [y.toArray(), ...leaves.map((l) => l.grad!.toArray())];
}

function qkv(g: Generator, b: number, h: number, s: number, dh: number, dv: number, dtype: 'f32' | 'f64'): Tensor[] {
  return [randn([b, h, s, dh], { dtype, generator: g, std: 1.5 }), randn([b, h, s, dh], { dtype, generator: g, std: 1.5 }), randn([b, h, s, dv], { dtype, generator: g })];
}

/** keyValid [B, S]: batch 0 all valid, batch 1 with the given padding positions. */
function padding(s: number, pads: number[]): Tensor {
  return tensor(Array.from({ length: 2 * s }, (_, x) => (x >= s && pads.includes(x - s) ? 0 : 1)), [2, s], 'i32');
}

test('sparseAttention gradcheck f64 (reference): t2i row pattern with a padded key', () => {
  const g = new Generator(1);
  const p = buildPattern([{ kind: 'text', length: 2, role: 'source' }, { kind: 'image', grid: [2, 3], role: 'target' }], 'row');
  const [q, k, v] = qkv(g, 2, 2, p.seqLen, 3, 2, 'f64').map((t) => new Tensor(t.data, t.shape, true));
  const keyValid = padding(p.seqLen, [1]);
  gradcheck((a, b, c) => sparseAttention(a!, b!, c!, p, { keyValid, scale: 0.8 }), [q!, k!, v!]);
});

test('sparseAttention = scaledDotProductAttention with the dense mask: every kind, both directions, with and without padding', () => {
  const g = new Generator(2);
  withBackend('reference', () => {
    for (const [name, segs] of Object.entries(LAYOUTS)) for (const kind of KINDS) for (const padded of [false, true]) {
      const p = buildPattern(segs, kind, { convKernel: 3 });
      const s = p.seqLen;
      // Padding drops key 0 (a text or image source key, the first of every row) and the last key.
      const keyValid = padded ? padding(s, [0, s - 1]) : null;
      const inputs = qkv(g, 2, 2, s, 4, 3, 'f64');
      const w = randn([2, 2, s, 3], { dtype: 'f64', generator: g });
      const opts = keyValid === null ? {} : { keyValid };
      const sparse = withGrads((a, b, c) => sparseAttention(a, b, c, p, opts), inputs, w);
      const dense = withGrads((a, b, c) => scaledDotProductAttention(a, b, c, { mask: denseMask(p, keyValid, 2) }), inputs, w);
      ['out', 'dq', 'dk', 'dv'].forEach((what, x) => {
        const err = maxRelErr(sparse[x]!, dense[x]!, 1e-6);
        assert.ok(err < 1e-10, `${name}/${kind}${padded ? '/padded' : ''} ${what}: ${err}`);
      });
    }
  });
});

test('sparseAttention = dense attention on the active backend in f32 (4×8 grid, conv k=5, Dh = 16)', () => {
  const g = new Generator(3);
  const p = buildPattern([{ kind: 'text', length: 5, role: 'source' }, { kind: 'image', grid: [4, 8], role: 'target' }], 'conv', { convKernel: 5 });
  const inputs = qkv(g, 1, 3, p.seqLen, 16, 16, 'f32');
  const w = randn([1, 3, p.seqLen, 16], { generator: g });
  const sparse = withGrads((a, b, c) => sparseAttention(a, b, c, p), inputs, w);
  const dense = withGrads((a, b, c) => scaledDotProductAttention(a, b, c, { mask: denseMask(p, null, 1) }), inputs, w);
  ['out', 'dq', 'dk', 'dv'].forEach((what, x) => assert.ok(maxRelErr(sparse[x]!, dense[x]!, 1e-2) < 1e-4, what));
});

test('a query with no allowed key outputs zeros and gets zero gradient (empty CSR row and all keys padded)', () => {
  const g = new Generator(4);
  // 4 positions: row 1 is empty; row 3 sees keys 1 and 2 only, which batch 1 pads away.
  const p: CsrPattern = Object.freeze({ seqLen: 4, rowPtr: Int32Array.from([0, 2, 2, 4, 6]), cols: Int32Array.from([0, 3, 0, 2, 1, 2]), nnz: 6 });
  const keyValid = tensor([1, 1, 1, 1, 1, 0, 0, 1], [2, 4], 'i32');
  const [q, k, v] = qkv(g, 2, 2, 4, 3, 2, 'f64').map((t) => new Tensor(t.data, t.shape, true));
  const f = (a: Tensor, b: Tensor, c: Tensor): Tensor => sparseAttention(a, b, c, p, { keyValid });
  const y = f(q!, k!, v!).toArray(); // [2, 2, 4, 2]
  for (const bh of [0, 1, 2, 3]) assert.deepEqual(y.slice(bh * 8 + 2, bh * 8 + 4), [0, 0], `(b, h) ${bh}: row 1`);
  for (const bh of [2, 3]) assert.deepEqual(y.slice(bh * 8 + 6, bh * 8 + 8), [0, 0], `(b, h) ${bh}: row 3 fully padded`);
  assert.ok(y.every(Number.isFinite));
  gradcheck((a, b, c) => f(a!, b!, c!), [q!, k!, v!]);
  const dq = q!.grad!.toArray(); // [2, 2, 4, 3]
  for (const bh of [0, 1, 2, 3]) assert.deepEqual(dq.slice(bh * 12 + 3, bh * 12 + 6), [0, 0, 0]);
  for (const bh of [2, 3]) assert.deepEqual(dq.slice(bh * 12 + 9, bh * 12 + 12), [0, 0, 0]);
  // k/v of padded keys 1 and 2 in batch 1 get no gradient.
  for (const t of [k!, v!]) {
    const d = t.shape[3]!, gr = t.grad!.toArray();
    for (const bh of [2, 3]) assert.ok(gr.slice((bh * 4 + 1) * d, (bh * 4 + 3) * d).every((x) => x === 0));
  }
  withBackend('reference', () => {
    const r = referenceKernel('sparseAttention')(q!.data as Float64Array, k!.data as Float64Array, v!.data as Float64Array, p.rowPtr, p.cols,
      keyValid.data as Int32Array, { b: 2, h: 2, s: 4, dh: 3, dv: 2, nnz: 6, scale: 1 }, 'fp32');
    assert.equal(r.probs.length, 2 * 2 * 6, 'probs are [BH, nnz], not [BH, S, S]');
  });
});

test('bf16 precision = fp32 sparse attention of bf16-rounded q, k, v (reference)', () => {
  const g = new Generator(5);
  const p = buildPattern(LAYOUTS['i2t']!, 'column');
  const inputs = qkv(g, 1, 2, p.seqLen, 4, 4, 'f32');
  withBackend('reference', () => {
    const y = withPrecision('bf16', () => sparseAttention(inputs[0]!, inputs[1]!, inputs[2]!, p)).toArray();
    const r = inputs.map((t) => t.to('bf16').to('f32'));
    assert.ok(maxRelErr(y, sparseAttention(r[0]!, r[1]!, r[2]!, p).toArray()) < 1e-5);
  });
});

/** The native implementation of a kernel (captured under the native backend). */
function nat<K extends KernelName>(name: K): KernelMap[K] { return withBackend('native', () => kernel(name)); }

/** max |a − b| / (|b| + 10% of max |b|) ≤ tol (f32 vs double accumulation moves near-zero sums). */
function near(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  const err = maxRelErr(a, b, 0.1 * scale + 1e-6);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

test('native sparse kernels = reference kernels (f32 and bf16, padding, an empty row)', { skip: skipNative }, () => {
  const g = new Generator(6);
  const segs: Segment[] = [{ kind: 'text', length: 7, role: 'source' }, { kind: 'image', grid: [6, 6], role: 'target' }];
  // Head dims: a generic pair, and Dh = Dv = 16 / 32 (the compile-time specialisations of the addon).
  for (const [dh, dv] of [[16, 12], [16, 16], [32, 32]] as const) for (const kind of KINDS) for (const precision of ['fp32', 'bf16'] as const) {
    const p = buildPattern(segs, kind, { convKernel: 3 });
    const d: SparseAttentionDims = { b: 2, h: 3, s: p.seqLen, dh, dv, nnz: p.nnz, scale: 0.3 };
    const [q, k, v] = qkv(g, 2, 3, p.seqLen, dh, dv, 'f32').map((t) => t.data as Float32Array);
    const gy = randn([2, 3, p.seqLen, dv], { generator: g }).data as Float32Array;
    const pads = Array.from({ length: 7 }, (_, j) => j); // batch 1 pads every text key: text queries have no key left
    const keyValid = padding(p.seqLen, pads).data as Int32Array;
    for (const kv of [null, keyValid]) {
      const what = `${kind} ${precision} Dh=${dh} Dv=${dv} ${kv === null ? '' : 'padded'}`;
      const n = nat('sparseAttention')(q!, k!, v!, p.rowPtr, p.cols, kv, d, precision);
      const r = referenceKernel('sparseAttention')(q!, k!, v!, p.rowPtr, p.cols, kv, d, precision);
      const tol = precision === 'fp32' ? 1e-5 : 1e-4;
      near(n.out, r.out, tol, `${what} out`);
      near(n.probs, r.probs, tol, `${what} probs`);
      const nb = nat('sparseAttentionBackward')(q!, k!, v!, p.rowPtr, p.cols, n.probs, gy, d, precision);
      const rb = referenceKernel('sparseAttentionBackward')(q!, k!, v!, p.rowPtr, p.cols, r.probs, gy, d, precision);
      for (const f of ['dq', 'dk', 'dv'] as const) near(nb[f], rb[f], tol, `${what} ${f}`);
      if (kv !== null) assert.ok(n.out.subarray(3 * p.seqLen * dv, (3 * p.seqLen + 7) * dv).every((x) => x === 0), 'padded-out text rows are zero');
    }
  }
});

test('sparseAttention rejects bad inputs with clear errors', () => {
  const p = buildPattern(LAYOUTS['t2i']!, 'row');
  const s = p.seqLen;
  const q = zeros([1, 2, s, 4]), k = zeros([1, 2, s, 4]), v = zeros([1, 2, s, 3]);
  assert.throws(() => sparseAttention(zeros([2, s, 4]), k, v, p), /q must be rank 4/);
  assert.throws(() => sparseAttention(q, zeros([1, 2, s, 5]), v, p), /head dims differ/);
  assert.throws(() => sparseAttention(q, k, zeros([1, 2, s + 1, 3]), p), /same sequence length/);
  assert.throws(() => sparseAttention(q, zeros([1, 3, s, 4]), v, p), /batch and head dims must match/);
  assert.throws(() => sparseAttention(q, k, zeros([1, 2, s, 3], 'f64'), p), /share a dtype/);
  assert.throws(() => sparseAttention(zeros([1, 2, s, 4], 'i32'), k, v, p), /q must be f32 or f64/);
  assert.throws(() => sparseAttention(q, k, v, buildPattern(LAYOUTS['vqa']!, 'row')), /pattern covers 10 positions, the sequence has S = 15/);
  assert.throws(() => sparseAttention(q, k, v, p, { keyValid: zeros([1, s]) }), /keyValid must be an i32 tensor/);
  assert.throws(() => sparseAttention(q, k, v, p, { keyValid: zeros([2, s], 'i32') }), /keyValid \[2, 15\] must be \[B, S\] = \[1, 15\]/);
  assert.throws(() => sparseAttention(q, k, v, p, { scale: Infinity }), /scale must be a finite number/);
  assert.throws(() => sparseAttention(q, k, v, p, { mask: zeros([s, s], 'i32') } as never), /unknown option\(s\) mask/);
  const bad = (rowPtr: number[], cols: number[]): CsrPattern => ({ seqLen: 2, rowPtr: Int32Array.from(rowPtr), cols: Int32Array.from(cols), nnz: cols.length });
  const q2 = zeros([1, 1, 2, 2]);
  assert.throws(() => sparseAttention(q2, q2, q2, bad([0, 1, 2], [0, 2])), /cols\[1\] = 2 is outside \[0, 2\)/);
  assert.throws(() => sparseAttention(q2, q2, q2, bad([0, 2, 1], [0, 1])), /rowPtr must run from 0 to nnz/);
  assert.throws(() => sparseAttention(q2, q2, q2, bad([0, 2, 1, 2], [0, 1])), /rowPtr has 4 entries, expected S \+ 1 = 3/);
  assert.throws(() => sparseAttention(q2, q2, q2, { ...bad([0, 1, 2], [0, 1]), nnz: 5 }), /pattern.nnz 5/);
});

test('native sparse kernels and the addon itself reject bad CSR input (never crash)', { skip: skipNative }, () => {
  const f4 = new Float32Array(4), d: SparseAttentionDims = { b: 1, h: 1, s: 2, dh: 2, dv: 2, nnz: 2, scale: 1 };
  const rp = Int32Array.from([0, 1, 2]);
  assert.throws(() => nat('sparseAttention')(f4, f4, f4, rp, Int32Array.from([0, 7]), null, d, 'fp32'), /cols\[1\] = 7 is outside/);
  assert.throws(() => nat('sparseAttention')(f4, f4, f4, rp, Int32Array.from([0, 1]), new Int32Array(3), d, 'fp32'), /keyValid must be/);
  assert.throws(() => nat('sparseAttention')(f4, f4, new Float32Array(3), rp, Int32Array.from([0, 1]), null, d, 'fp32'), /v has 3 elements/);
  assert.throws(() => nat('sparseAttentionBackward')(f4, f4, f4, rp, Int32Array.from([0, 1]), new Float32Array(1), f4, d, 'fp32'), /probs has 1/);
  const addon = nativeAddon()!;
  assert.throws(() => addon.sparseAttention(f4, f4, f4, rp, Int32Array.from([0, -1]), null, 1, 1, 2, 2, 2, 1, false), /cols\[1\] is outside/);
  assert.throws(() => addon.sparseAttention(f4, f4, f4, Int32Array.from([0, 2, 1]), Int32Array.from([0, 1]), null, 1, 1, 2, 2, 2, 1, false), RangeError);
  assert.throws(() => addon.sparseAttention(f4, f4, f4, rp, Int32Array.from([0, 1]), new Int32Array(1), 1, 1, 2, 2, 2, 1, false), /keyValid/);
  assert.throws(() => addon.sparseAttentionBackward(f4, f4, f4, rp, Int32Array.from([0, 1]), f4, new Float32Array(1), 1, 1, 2, 2, 2, 1, false), /g has 1/);
  // The KV-cache kernel: rows [q0, q0 + sq) must stay in the pattern and the cache, and name only cached keys.
  const f2 = new Float32Array(2), causal = Int32Array.from([0, 1, 3]), cc = Int32Array.from([0, 0, 1]); // row 0: {0}, row 1: {0, 1}
  assert.ok(addon.sparseAttentionRows(f2, f4, f4, causal, cc, null, 1, 1, 1, 2, 1, 2, 2, 1, false).length === 2);
  assert.throws(() => addon.sparseAttentionRows(f2, f4, f4, causal, cc, null, 1, 1, 1, 2, 2, 2, 2, 1, false), /inside the pattern and the cache/);
  assert.throws(() => addon.sparseAttentionRows(f2, f4, f4, rp, Int32Array.from([1, 0]), null, 1, 1, 1, 2, 0, 2, 2, 1, false), /outside the cached/);
  assert.throws(() => addon.sparseAttentionRows(f2, f4, f4, causal, Int32Array.from([0, 0, 9]), null, 1, 1, 1, 2, 1, 2, 2, 1, false), /outside the cached/);
  assert.throws(() => addon.sparseAttentionRows(f2, new Float32Array(3), f4, causal, cc, null, 1, 1, 1, 2, 1, 2, 2, 1, false), /k/);
  assert.throws(() => addon.sparseAttentionRows(f2, f4, f4, causal, cc, new Int32Array(1), 1, 1, 1, 2, 1, 2, 2, 1, false), /keyValid/);
});
