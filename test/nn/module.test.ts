import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Conv2d, Dropout, Embedding, Generator, GroupNorm, LayerNorm, Linear, Module, ModuleList, StateDictError,
  loadSafetensors, matmul, ones, randn, saveSafetensors, sum, tensor, type Tensor,
} from '../../src/index.js';

class Block extends Module {
  readonly norm: GroupNorm; readonly conv: Conv2d;
  constructor(g: Generator) {
    super();
    this.norm = this.addModule('norm1', new GroupNorm(2, 4));
    this.conv = this.addModule('conv1', new Conv2d(4, 4, 3, { padding: 1, generator: g }));
  }
  forward(x: Tensor): Tensor { return this.conv.forward(this.norm.forward(x)); }
}

class Net extends Module {
  readonly blocks: ModuleList<Block>; readonly head: Linear;
  constructor(seed: number) {
    super();
    const g = new Generator(seed);
    this.blocks = this.addModule('block', new ModuleList([new Block(g), new Block(g)]));
    this.head = this.addModule('head', new Linear(4, 3, { generator: g }));
  }
}

test('parameters get PyTorch-style dotted names and layouts', () => {
  const names = new Net(0).namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`);
  assert.deepEqual(names, [
    'block.0.norm1.weight 4', 'block.0.norm1.bias 4', 'block.0.conv1.weight 4x4x3x3', 'block.0.conv1.bias 4',
    'block.1.norm1.weight 4', 'block.1.norm1.bias 4', 'block.1.conv1.weight 4x4x3x3', 'block.1.conv1.bias 4',
    'head.weight 3x4', 'head.bias 3',
  ]);
  assert.equal(new Net(0).numParameters(), 2 * (4 + 4 + 144 + 4) + 12 + 3);
});

test('Linear computes x·Wᵀ + b and its default init is bounded by 1/√fan_in', () => {
  const lin = new Linear(4, 3, { generator: new Generator(1) });
  const x = randn([2, 4]);
  const y = lin.forward(x);
  const expected = matmul(x, lin.weight, { transB: true }).toArray().map((v, i) => v + lin.bias!.data[i % 3]!);
  y.toArray().forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-6));
  assert.ok(lin.weight.toArray().every((w) => Math.abs(w) <= 0.5));
  const big = new Linear(100, 100, { generator: new Generator(2) }).weight.toArray();
  assert.ok(Math.max(...big.map(Math.abs)) > 0.09, 'uses the whole ±0.1 range');
});

test('gradients reach every parameter of a module', () => {
  const net = new Net(3);
  let x = randn([1, 5, 5, 4]);
  for (const b of net.blocks.items) x = b.forward(x);
  sum(net.head.forward(x)).backward();
  for (const [name, p] of net.namedParameters()) assert.ok(p.grad && p.grad.toArray().some((v) => v !== 0), `${name} got a gradient`);
});

test('state dict round-trips through safetensors; a different seed gives different weights until loaded', async () => {
  const a = new Net(1), b = new Net(2);
  assert.notDeepEqual(a.head.weight.data, b.head.weight.data);
  const path = join(tmpdir(), `vilg-nn-${process.pid}.safetensors`);
  await saveSafetensors(path, a.stateDict());
  try { b.loadStateDict((await loadSafetensors(path)).tensors); } finally { rmSync(path, { force: true }); }
  for (const [n, p] of b.namedParameters()) assert.deepEqual(p.data, a.stateDict()[n]!.data, n);
});

test('loading reports missing, unexpected and mis-shaped names exactly, and changes nothing', () => {
  const net = new Net(0);
  const before = Float32Array.from(net.head.weight.data as Float32Array);
  const sd = { ...net.stateDict() };
  delete sd['block.1.conv1.bias'];
  sd['head.weight'] = ones([4, 3]);
  sd['extra.weight'] = ones([1]);
  try {
    net.loadStateDict(sd);
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof StateDictError);
    assert.deepEqual(e.report.missing, ['block.1.conv1.bias']);
    assert.deepEqual(e.report.unexpected, ['extra.weight']);
    assert.deepEqual(e.report.mismatched, ['head.weight (checkpoint [4, 3], model [3, 4])']);
    assert.match(e.message, /missing 1: block\.1\.conv1\.bias/);
  }
  assert.deepEqual(net.head.weight.data, before);
  const report = new Net(0).loadStateDict({ 'head.bias': tensor([1, 2, 3]) }, { strict: false });
  assert.equal(report.missing.length, 9);
});

test('train/eval toggles dropout through the whole tree', () => {
  class D extends Module { readonly d = this.addModule('d', new Dropout(0.5, new Generator(0))); }
  const m = new D();
  const x = ones([1000]);
  assert.ok(m.d.forward(x).toArray().some((v) => v === 0));
  m.eval();
  assert.deepEqual(m.d.forward(x).toArray(), x.toArray());
  assert.equal(m.d.training, false);
});

test('layers validate their configuration', () => {
  assert.throws(() => new Linear(0, 3), /inFeatures must be a positive integer/);
  assert.throws(() => new GroupNorm(3, 4), /do not split/);
  assert.throws(() => new Dropout(1), /\[0, 1\)/);
  assert.equal(new Embedding(10, 4).forward(tensor([1, 9], [2], 'i32')).shape.join('x'), '2x4');
  assert.equal(new LayerNorm(4).forward(randn([2, 4])).shape.join('x'), '2x4');
});
