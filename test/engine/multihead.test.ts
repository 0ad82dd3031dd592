// packedSelfAttention: finite-difference gradients (f64, reference backend), equality with the composed
// reshape → permute → split → attention → permute chain (outputs and the qkv gradient) for the dense
// kernel with a mask and the sparse kernel over a pattern, on the active backend, no graph under noGrad,
// and bad input. Legend: B batch, S sequence, D hidden, H heads, Dh = D / H.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, Tensor, noGrad, packedSelfAttention, permute, randn, reshape, scaledDotProductAttention, sparseAttention, split,
  type AttendFn,
} from '../../src/engine/index.js';
import { buildPattern, patternToDense, type LayerAttention } from '../../src/models/vilg/attention-pattern.js';
import { gradcheck } from '../helpers/gradcheck.js';

const LAYOUT = [{ kind: 'text' as const, length: 3, role: 'source' as const }, { kind: 'image' as const, grid: [2, 3] as [number, number], role: 'target' as const }];

function attendOf(kind: LayerAttention): AttendFn {
  const p = buildPattern(LAYOUT, kind, { convKernel: 3 });
  if (kind === 'dense') {
    const mask = new Tensor(Int32Array.from(patternToDense(p)), [p.seqLen, p.seqLen]); // [S, S]
    return (q, k, v) => scaledDotProductAttention(q, k, v, { mask });
  }
  return (q, k, v) => sparseAttention(q, k, v, p);
}

/** The chain packedSelfAttention replaces: [B, S, 3D] → [3, B, H, S, Dh] → q, k, v → attend → [B, S, D]. */
function composed(qkv: Tensor, heads: number, attend: AttendFn): Tensor {
  const [B, S, D3] = qkv.shape as [number, number, number];
  const D = D3 / 3, Dh = D / heads;
  const packed = permute(reshape(qkv, [B, S, 3, heads, Dh]), [2, 0, 3, 1, 4]);                  // [3, B, H, S, Dh]
  const [q, k, v] = split(packed, 1, 0).map((t) => reshape(t, [B, heads, S, Dh])) as [Tensor, Tensor, Tensor]; // [B, H, S, Dh]
  return reshape(permute(attend(q, k, v), [0, 2, 1, 3]), [B, S, D]);                            // [B, S, D]
}

test('packedSelfAttention gradcheck f64 (reference): sparse row and dense kernels', () => {
  for (const kind of ['row', 'dense'] as const) {
    const qkv = randn([2, 9, 12], { dtype: 'f64', generator: new Generator(3), requiresGrad: true }); // [B 2, S 9, 3D 12], H 2
    gradcheck((x) => packedSelfAttention(x!, 2, attendOf(kind)), [qkv]);
  }
});

test('packedSelfAttention = the composed permute/split/attention chain: values and qkv gradients, every kind', () => {
  const g = new Generator(4);
  for (const kind of ['dense', 'row', 'column', 'conv'] as const) {
    const data = randn([2, 9, 24], { generator: g, std: 1.5 });  // [B 2, S 9, 3D 24], H 4, Dh 2
    const w = randn([2, 9, 8], { generator: g });                 // [B, S, D]
    const run = (f: (x: Tensor) => Tensor): number[][] => {
      const x = new Tensor(data.data, data.shape, true);
      const y = f(x);
      y.backward(w);
      return [y.toArray(), x.grad!.toArray()];
    };
    const a = run((x) => packedSelfAttention(x, 4, attendOf(kind)));
    const b = run((x) => composed(x, 4, attendOf(kind)));
    a.forEach((got, i) => got.forEach((v, j) => assert.ok(Math.abs(v - b[i]![j]!) <= 1e-5 * (1 + Math.abs(v)), `${kind} tensor ${i}[${j}]: ${v} vs ${b[i]![j]}`)));
  }
});

test('packedSelfAttention records nothing under noGrad or for a constant qkv', () => {
  const qkv = randn([1, 9, 12], { generator: new Generator(5), requiresGrad: true }); // [1, 9, 12]
  assert.equal(noGrad(() => packedSelfAttention(qkv, 2, attendOf('row'))).node, null);
  assert.equal(packedSelfAttention(qkv.detach(), 2, attendOf('row')).node, null);
  assert.notEqual(packedSelfAttention(qkv, 2, attendOf('row')).node, null);
});

test('packedSelfAttention rejects bad shapes and head counts with clear errors', () => {
  const attend = attendOf('row');
  assert.throws(() => packedSelfAttention(randn([2, 9, 13]), 2, attend), /must be \[B, S, 3·D\]/);
  assert.throws(() => packedSelfAttention(randn([9, 12]), 2, attend), /must be \[B, S, 3·D\]/);
  assert.throws(() => packedSelfAttention(randn([2, 9, 12]), 3, attend), /positive divisor of D = 4/);
  assert.throws(() => packedSelfAttention(randn([2, 9, 12], { requiresGrad: true }), 2, (q) => q.detach()), /recorded no gradient/);
  assert.throws(() => packedSelfAttention(randn([2, 9, 12]), 2, () => randn([1, 1, 1, 1])), /attend returned \[1, 1, 1, 1\]/);
});
