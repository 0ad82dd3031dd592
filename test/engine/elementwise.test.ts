import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, Tensor, abs, add, clamp, div, erf, exp, gelu, log, mul, neg, pow, rand, randn, relu, rsqrt, scalar,
  sigmoid, silu, sqrt, square, sub, swish, tanh, tensor,
} from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const f64 = (shape: number[], g: Generator, low = -2, high = 2): Tensor => rand(shape, { dtype: 'f64', generator: g, low, high, requiresGrad: true });

test('binary ops by hand, with broadcasting and number operands', () => {
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tensor([10, 20, 30], [3]);
  assert.deepEqual(add(a, b).toArray(), [11, 22, 33, 14, 25, 36]);
  assert.deepEqual(sub(a, b).toArray(), [-9, -18, -27, -6, -15, -24]);
  assert.deepEqual(mul(a, tensor([2, 3], [2, 1])).toArray(), [2, 4, 6, 12, 15, 18]);
  assert.deepEqual(div(b, 10).toArray(), [1, 2, 3]);
  assert.deepEqual(sub(1, a).toArray(), [0, -1, -2, -3, -4, -5]);
  assert.deepEqual(div(12, tensor([3, 4])).toArray(), [4, 3]);
  assert.deepEqual([...add(a, b).shape], [2, 3]);
  assert.deepEqual([...mul(tensor([1, 2, 3], [3, 1]), tensor([1, 2], [1, 2])).shape], [3, 2]);
  assert.equal(add(scalar(1, 'f64'), 2).dtype, 'f64');
});

test('erf matches known values to double precision', () => {
  close(erf(0), 0);
  close(erf(0.1), 0.1124629160182849);
  close(erf(0.5), 0.5204998778130465);
  close(erf(1), 0.8427007929497149);
  close(erf(-2), -0.9953222650189527);
  close(erf(3.5), 0.9999992569016276);
  close(erf(5), 0.9999999999984626);
  assert.equal(erf(30), 1);
  assert.equal(erf(-30), -1);
});

test('unary ops by hand', () => {
  const x = tensor([-1, 0, 1, 2], [4], 'f64');
  assert.deepEqual(neg(x).toArray(), [1, -0, -1, -2]);
  assert.deepEqual(abs(x).toArray(), [1, 0, 1, 2]);
  assert.deepEqual(relu(x).toArray(), [0, 0, 1, 2]);
  close(exp(x).toArray()[3]!, Math.E * Math.E);
  close(log(tensor([Math.E], [1], 'f64')).item(), 1);
  assert.deepEqual(sqrt(tensor([4, 9], [2], 'f64')).toArray(), [2, 3]);
  assert.deepEqual(rsqrt(tensor([4, 16], [2], 'f64')).toArray(), [0.5, 0.25]);
  close(tanh(x).toArray()[2]!, Math.tanh(1));
  assert.deepEqual(sigmoid(tensor([-1000, 0, 1000], [3], 'f64')).toArray(), [0, 0.5, 1]); // no overflow, no NaN
  close(silu(x).toArray()[2]!, 1 / (1 + Math.exp(-1)));
  assert.equal(swish, silu);
  // gelu(1) = Φ(1); the tanh form at 1 is 0.5·(1 + tanh(√(2/π)·1.044715)).
  const g = gelu(tensor([-1, 1], [2], 'f64')).toArray();
  close(g[1]!, 0.8413447460685429);
  close(g[0]!, -1 + 0.8413447460685429);
  close(gelu(tensor([1], [1], 'f64'), { approximate: 'tanh' }).item(), 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * 1.044715)));
  assert.deepEqual(pow(tensor([2, 3], [2], 'f64'), 3).toArray(), [8, 27]);
  assert.deepEqual(square(tensor([-3], [1], 'f64')).toArray(), [9]);
  assert.deepEqual(clamp(tensor([-2, 0.5, 3], [3], 'f64'), -1, 1).toArray(), [-1, 0.5, 1]);
  assert.deepEqual(clamp(tensor([-2, 3], [2], 'f64'), undefined, 1).toArray(), [-2, 1]);
});

test('f32 inputs give f32 outputs', () => {
  const x = randn([3, 4]);
  for (const y of [add(x, 1), mul(x, x), gelu(x), exp(x), pow(x, 2), clamp(x, 0, 1)]) assert.equal(y.dtype, 'f32');
});

const PAIRS: Array<[string, number[], number[] | 'number' | '0-d']> = [
  ['[2,3,4] with [3,1]', [2, 3, 4], [3, 1]],
  ['[2,3,4] with [1,4]', [2, 3, 4], [1, 4]],
  ['[2,3,4] with [2,3,4]', [2, 3, 4], [2, 3, 4]],
  ['[3,1] with [1,4]', [3, 1], [1, 4]],
  ['[2,3,4] with a 0-d tensor', [2, 3, 4], '0-d'],
  ['[2,3,4] with a number', [2, 3, 4], 'number'],
  ['0-d with [3,1]', [], [3, 1]],
];

for (const [name, fn] of [['add', add], ['sub', sub], ['mul', mul], ['div', div]] as const) {
  for (const [what, sa, sb] of PAIRS) {
    test(`${name} gradcheck f64: ${what}, both operand orders`, () => {
      const g = new Generator(11);
      const a = f64(sa, g);
      // Denominators stay in [0.5, 2] so div's gradient is well conditioned.
      const a2 = name === 'div' ? f64(sa, g, 0.5, 2) : f64(sa, g);
      if (sb === 'number') {
        gradcheck((x) => fn(x!, 1.7), [a]);
        gradcheck((x) => fn(1.7, x!), [a2]);
        return;
      }
      const b = f64(sb === '0-d' ? [] : sb, g, 0.5, 2);
      gradcheck((x, y) => fn(x!, y!), [a, b]);
      gradcheck((y, x) => fn(y!, x!), [b, a2]);
    });
  }
}

test('number operand on the left keeps gradients correct', () => {
  const x = f64([2, 3], new Generator(3), 0.5, 2);
  gradcheck((t) => div(3, t!), [x]);
  gradcheck((t) => sub(3, t!), [x]);
});

test('mul with the same tensor on both sides accumulates both gradients', () => {
  const x = tensor([3], [1], 'f64'); x.requiresGrad = true;
  mul(x, x).backward();
  assert.deepEqual(x.grad!.toArray(), [6]);
});

const UNARY: Array<[string, (x: Tensor) => Tensor, number, number]> = [
  ['neg', neg, -2, 2], ['exp', exp, -2, 2], ['log', log, 0.3, 3], ['sqrt', sqrt, 0.3, 3], ['rsqrt', rsqrt, 0.3, 3],
  ['abs', abs, 0.1, 2], ['abs (negative side)', abs, -2, -0.1], ['tanh', tanh, -3, 3], ['sigmoid', sigmoid, -5, 5],
  ['relu (positive)', relu, 0.1, 2], ['relu (negative)', relu, -2, -0.1], ['silu', silu, -4, 4],
  ['gelu', (x) => gelu(x), -4, 4], ['gelu tanh', (x) => gelu(x, { approximate: 'tanh' }), -4, 4],
  ['pow 3', (x) => pow(x, 3), -2, 2], ['pow 0.5', (x) => pow(x, 0.5), 0.3, 3], ['pow -2', (x) => pow(x, -2), 0.5, 2],
  ['square', square, -2, 2], ['clamp (inside)', (x) => clamp(x, -3, 3), -2, 2],
];

for (const [name, fn, low, high] of UNARY) {
  test(`${name} gradcheck f64`, () => gradcheck((x) => fn(x!), [f64([3, 5], new Generator(5), low, high)]));
}

test('clamp, relu, abs and pow(·, 0) gradients by hand', () => {
  const x = tensor([-2, -0.5, 0, 0.5, 2], [5], 'f64'); x.requiresGrad = true;
  clamp(x, -1, 1).backward(tensor([1, 1, 1, 1, 1], [5], 'f64'));
  assert.deepEqual(x.grad!.toArray(), [0, 1, 1, 1, 0]);
  x.grad = null;
  relu(x).backward(tensor([1, 1, 1, 1, 1], [5], 'f64'));
  assert.deepEqual(x.grad!.toArray(), [0, 0, 0, 1, 1]);
  x.grad = null;
  abs(x).backward(tensor([1, 1, 1, 1, 1], [5], 'f64'));
  assert.deepEqual(x.grad!.toArray(), [-1, -1, 0, 1, 1]);
  x.grad = null;
  pow(x, 0).backward(tensor([1, 1, 1, 1, 1], [5], 'f64'));
  assert.deepEqual(x.grad!.toArray(), [0, 0, 0, 0, 0]);
});

test('elementwise ops reject bad inputs with clear errors', () => {
  assert.throws(() => add(randn([2, 3]), randn([4])), /do not broadcast/);
  assert.throws(() => mul(randn([2]), randn([2], { dtype: 'f64' })), TypeError);
  assert.throws(() => add(tensor([1, 2], [2], 'i32'), 1), /add: needs f32 or f64/);
  assert.throws(() => exp(tensor([1], [1], 'bf16')), /exp: needs f32 or f64/);
  assert.throws(() => add(1 as never, 2), /at least one operand must be a Tensor/);
  assert.throws(() => gelu(randn([2]), { approximate: 'fast' as never }), RangeError);
  assert.throws(() => clamp(randn([2]), 1, 0), /min 1 is greater than max 0/);
  assert.throws(() => pow(randn([2]), Number.NaN), TypeError);
});
