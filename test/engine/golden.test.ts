// Golden values from PyTorch (reference/make_fixtures.py → test/fixtures/golden/ops.json): every op's
// outputs and gradients, checked on the active backend in f32 and on the reference backend in f64.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';

interface Arr { shape: number[]; dtype: 'f64' | 'i32'; data: number[] }
interface Case { name: string; op: string; attrs: Record<string, unknown>; inputs: Arr[]; outputs: Arr[]; gradWeight?: Arr; grads?: Array<Arr | null> }

const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../../../test/fixtures/golden/ops.json', import.meta.url)), 'utf8')) as { cases: Case[] };

type OpFn = (xs: Tensor[], a: Record<string, any>) => Tensor | Tensor[];
/** How each fixture op maps onto our API. */
const OPS: Record<string, OpFn> = {
  matmul: ([a, b], o) => E.matmul(a!, b!, { transA: o.transA, transB: o.transB }),
  add: ([a, b]) => E.add(a!, b!), sub: ([a, b]) => E.sub(a!, b!), mul: ([a, b]) => E.mul(a!, b!), div: ([a, b]) => E.div(a!, b!),
  neg: ([x]) => E.neg(x!), exp: ([x]) => E.exp(x!), log: ([x]) => E.log(x!), sqrt: ([x]) => E.sqrt(x!), rsqrt: ([x]) => E.rsqrt(x!),
  abs: ([x]) => E.abs(x!), tanh: ([x]) => E.tanh(x!), sigmoid: ([x]) => E.sigmoid(x!), relu: ([x]) => E.relu(x!), silu: ([x]) => E.silu(x!),
  gelu: ([x]) => E.gelu(x!), gelu_tanh: ([x]) => E.gelu(x!, { approximate: 'tanh' }), pow: ([x], o) => E.pow(x!, o.p),
  sum: ([x], o) => E.sum(x!, o.axes, o.keepDims), mean: ([x], o) => E.mean(x!, o.axes, o.keepDims),
  max: ([x], o) => E.max(x!, o.axis, o.keepDims), min: ([x], o) => E.min(x!, o.axis, o.keepDims),
  argmax: ([x], o) => E.argmax(x!, o.axis), argmin: ([x], o) => E.argmin(x!, o.axis),
  permute: ([x], o) => E.permute(x!, o.dims), slice: ([x], o) => E.slice(x!, o.axis, o.start, o.end),
  expand: ([x], o) => E.expand(x!, o.shape), concat: (xs, o) => E.concat(xs, o.axis), pad: ([x], o) => E.pad(x!, o.pads, o.value),
  softmax: ([x]) => E.softmax(x!), logSoftmax: ([x]) => E.logSoftmax(x!),
  layerNorm: ([x, g, b], o) => E.layerNorm(x!, g!, b!, o.eps), groupNorm: ([x, g, b], o) => E.groupNorm(x!, o.groups, g!, b!, o.eps),
  embedding: ([ids, w]) => E.embedding(ids!, w!),
  conv2d: ([x, w, b], o) => E.conv2d(x!, w!, b ?? null, { stride: o.stride, padding: o.padding }),
  upsampleNearest2x: ([x]) => E.upsampleNearest2x(x!),
  crossEntropy: ([l, t], o) => E.crossEntropy(l!, t!, o), mseLoss: ([a, b]) => E.mseLoss(a!, b!), l1Loss: ([a, b]) => E.l1Loss(a!, b!),
  where: ([c, a, b]) => E.where(c!, a!, b!), maskedFill: ([x, m], o) => E.maskedFill(x!, m!, o.value),
  topk: ([x], o) => { const r = E.topk(x!, o.k); return [r.values, r.indices]; },
  attention: ([q, k, v, m]) => E.scaledDotProductAttention(q!, k!, v!, { mask: m! }),
  codebookArgmin: ([z, c]) => E.codebookArgmin(z!, c!).indices,
};

function build(a: Arr, dtype: 'f32' | 'f64'): Tensor {
  const t = E.tensor(a.data, a.shape, a.dtype === 'i32' ? 'i32' : dtype);
  if (a.dtype !== 'i32') t.requiresGrad = true;
  return t;
}

function close(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!, a = actual[i]!;
    assert.ok(Math.abs(a - e) <= tol * (1 + Math.abs(e)), `${what}[${i}]: got ${a}, PyTorch ${e}`);
  }
}

function check(c: Case, dtype: 'f32' | 'f64', tol: number): void {
  const fn = OPS[c.op];
  assert.ok(fn, `no mapping for fixture op '${c.op}'`);
  const xs = c.inputs.map((a) => build(a, dtype));
  const res = fn(xs, c.attrs);
  const outs = Array.isArray(res) ? res : [res];
  c.outputs.forEach((o, i) => {
    assert.deepEqual([...outs[i]!.shape], o.shape, `${c.name} output ${i} shape`);
    close(outs[i]!.toArray(), o.data, o.dtype === 'i32' ? 0 : tol, `${c.name} output ${i}`);
  });
  if (c.gradWeight && c.grads) {
    outs[0]!.backward(E.tensor(c.gradWeight.data, c.gradWeight.shape, dtype));
    c.grads.forEach((g, i) => {
      if (g === null) return;
      assert.ok(xs[i]!.grad, `${c.name}: input ${i} got no gradient`);
      close(xs[i]!.grad!.toArray(), g.data, tol, `${c.name} grad ${i}`);
    });
  }
}

for (const c of fixture.cases) {
  test(`golden ${c.name}: f32 on the active backend matches PyTorch`, () => check(c, 'f32', 2e-5));
  test(`golden ${c.name}: f64 on the reference backend matches PyTorch`, () => E.withBackend('reference', () => check(c, 'f64', 1e-9)));
}
