// The PatchGAN discriminator against taming-transformers' NLayerDiscriminator in PyTorch
// (reference/discriminator.py → test/fixtures/discriminator/tiny.safetensors: ndf 8, 2 layers, 16×16).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  AdamW, Generator, abs, add, conv2d, loadSafetensors, matmul, mean, mseLoss, mul, noGrad, rand, randn, square, sub, sum, tanh, tensor,
  type Tensor,
} from '../../src/engine/index.js';
import { batchNormTrain } from '../../src/nn/batchnorm.js';
import {
  DEFAULT_DISCRIMINATOR_CONFIG, DISCRIMINATOR_PRESETS, NLayerDiscriminator, discriminatorConfig, leakyRelu,
} from '../../src/models/vqgan/discriminator.js';
import {
  ADVERSARIAL_PRESETS, DEFAULT_ADVERSARIAL_CONFIG, adaptiveWeight, adoptWeight, adversarialLossConfig, generatorAdversarialLoss,
  gradNormWrt, gradWrt, hingeDLoss, perceptualTerm, softplus, vanillaDLoss, vqganDiscriminatorLoss, vqganGeneratorLoss,
  type PerceptualLoss,
} from '../../src/models/vqgan/losses.js';
import { maxRelErr } from '../helpers/gradcheck.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/discriminator/tiny.safetensors', import.meta.url));
const file = await loadSafetensors(FIXTURE);
const fx = file.tensors;
const get = (name: string): Tensor => { const t = fx[name]; assert.ok(t, `fixture has ${name}`); return t; };
const prefixed = (prefix: string): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(fx).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
const TINY = { ndf: 8, nLayers: 2, inChannels: 3 };

/** max|a − b| relative to max|b| below 1e-4 (element-wise relative error would punish f32 round-off on near-zero gradients). */
function assertClose(a: Tensor, b: Tensor, what: string): void {
  const x = a.toArray(), y = b.toArray();
  assert.equal(x.length, y.length, `${what}: size`);
  const scale = Math.max(...y.map(Math.abs));
  const err = Math.max(...x.map((v, i) => Math.abs(v - y[i]!)));
  assert.ok(err <= 1e-4 * scale, `${what}: max error ${err} vs scale ${scale}`);
}

test('state dict names and shapes are exactly taming\'s (main.{i} Sequential numbering)', () => {
  const d = new NLayerDiscriminator(TINY);
  const tamingKeys = JSON.parse(file.metadata['state_dict_keys']!) as string[];
  assert.deepEqual(Object.keys(d.stateDict()).sort(), [...tamingKeys].sort());
  assert.deepEqual(d.namedParameters().map(([n]) => n), tamingKeys.filter((k) => !/running_|num_batches/.test(k)), 'parameter order');
  for (const [k, t] of Object.entries(d.stateDict())) assert.deepEqual(t.shape, get(`init.${k}`).shape, k);
  // A taming checkpoint's keys load after stripping the prefix.
  const ckpt = Object.fromEntries(Object.entries(prefixed('init.')).map(([k, v]) => [`loss.discriminator.${k}`, v]));
  const stripped = Object.fromEntries(Object.entries(ckpt).map(([k, v]) => [k.replace(/^loss\.discriminator\./, ''), v]));
  assert.deepEqual(d.loadStateDict(stripped), { missing: [], unexpected: [], mismatched: [] });
});

test('the default (taming) configuration has taming\'s 2,765,633 parameters and maps 256 px to 30×30 logits', () => {
  const d = new NLayerDiscriminator();
  assert.deepEqual(d.config, DEFAULT_DISCRIMINATOR_CONFIG);
  assert.equal(d.numParameters(), 2_765_633);
  assert.deepEqual(d.outputSize(256, 256), [30, 30]);
  assert.deepEqual(new NLayerDiscriminator(DISCRIMINATOR_PRESETS['small']).outputSize(64, 64), [6, 6]);
});

test('train-mode logits, gradients and running statistics match PyTorch; eval logits use the running statistics', () => {
  const d = new NLayerDiscriminator(TINY);
  d.loadStateDict(prefixed('init.'));
  const x = get('input').to('f32');
  x.requiresGrad = true;
  const logits = d.forward(x);                                               // [2, 2, 2, 1]
  assert.deepEqual(logits.shape, [2, 2, 2, 1]);
  assert.ok(maxRelErr(logits.toArray(), get('logits_train').toArray()) < 1e-4, 'train logits');
  sum(mul(logits, get('grad_weight').to('f32'))).backward();
  assertClose(x.grad!, get('grad.input'), 'grad input');
  for (const [name, p] of d.namedParameters()) assertClose(p.grad!, get(`grad.${name}`), `grad ${name}`);
  for (const [name, b] of d.namedBuffers()) assertClose(b, get(`after.${name}`), `${name} after one train forward`);
  d.eval();
  assert.ok(maxRelErr(d.forward(get('input').to('f32')).toArray(), get('logits_eval').toArray()) < 1e-4, 'eval logits');
});

test('weights_init: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0; seeded and reproducible', () => {
  const d = new NLayerDiscriminator({ ndf: 16, nLayers: 3 }, { generator: new Generator(3) });
  const sd = d.stateDict();
  const stats = (t: Tensor): [number, number] => {
    const v = t.toArray(), m = v.reduce((s, a) => s + a, 0) / v.length;
    return [m, Math.sqrt(v.reduce((s, a) => s + (a - m) ** 2, 0) / v.length)];
  };
  const [cm, cs] = stats(sd['main.5.weight']!); // 32 → 64 conv, 32768 weights
  assert.ok(Math.abs(cm) < 1e-3 && Math.abs(cs - 0.02) < 1e-3, `conv weight mean ${cm} std ${cs}`);
  const [bm, bs] = stats(sd['main.6.weight']!);
  assert.ok(Math.abs(bm - 1) < 0.01 && bs > 0.005 && bs < 0.04, `BN weight mean ${bm} std ${bs}`);
  assert.ok(sd['main.6.bias']!.toArray().every((v) => v === 0));
  const again = new NLayerDiscriminator({ ndf: 16, nLayers: 3 }, { generator: new Generator(3) }).stateDict();
  for (const [k, t] of Object.entries(sd)) assert.deepEqual(t.toArray(), again[k]!.toArray(), k);
  const other = new NLayerDiscriminator({ ndf: 16, nLayers: 3 }, { generator: new Generator(4) }).stateDict();
  assert.notDeepEqual(sd['main.0.weight']!.toArray(), other['main.0.weight']!.toArray());
});

test('leakyRelu: x for x > 0, 0.2·x below, gradient 0.2 at 0 (as PyTorch)', () => {
  const x = tensor([-2, -0.5, 0, 0.5, 3]);
  x.requiresGrad = true;
  const y = leakyRelu(x);
  y.toArray().forEach((v, i) => assert.ok(Math.abs(v - [-0.4, -0.1, 0, 0.5, 3][i]!) < 1e-7));
  sum(y).backward();
  assert.deepEqual(x.grad!.toArray().map((v) => Math.round(v * 1e6) / 1e6), [0.2, 0.2, 0.2, 1, 1]);
});

test('config: unknown keys, bad values and too-small images give clear errors', () => {
  assert.throws(() => discriminatorConfig({ ndf: 8, layers: 2 } as never), /unknown key 'layers'/);
  assert.throws(() => discriminatorConfig({ ndf: 0 }), /ndf must be an integer ≥ 1/);
  assert.throws(() => discriminatorConfig({ nLayers: 1.5 }), /nLayers/);
  const d = new NLayerDiscriminator(TINY);
  assert.throws(() => d.forward(randn([1, 16, 16, 4])), /\[N, H, W, 3\]/);
  assert.throws(() => d.forward(randn([2, 6, 6, 3])), /too small/);
  assert.ok(Object.isFrozen(discriminatorConfig()));
});

// ---------------------------------------------------------------- losses (src/models/vqgan/losses.ts)

const near = (a: number, b: number, tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`);

test('hinge, vanilla and generator losses by hand', () => {
  const real = tensor([2, 0.5, -1]), fake = tensor([-2, 0, 1.5]);
  // relu(1 − real) = [0, 0.5, 2] (mean 5/6); relu(1 + fake) = [0, 1, 2.5] (mean 7/6); ½·(5/6 + 7/6) = 1
  near(hingeDLoss(real, fake).item(), 1);
  const sp = (v: number): number => Math.log1p(Math.exp(v));
  near(vanillaDLoss(real, fake).item(), 0.5 * ((sp(-2) + sp(-0.5) + sp(1)) / 3 + (sp(-2) + sp(0) + sp(1.5)) / 3));
  near(generatorAdversarialLoss(fake).item(), 0.5 / 3); // −mean([−2, 0, 1.5])
  const x = tensor([-30, -1, 0.5, 40]);
  x.requiresGrad = true;
  const y = softplus(x);
  y.toArray().forEach((v, i) => near(v, sp(x.data[i]!), 1e-6));
  sum(y).backward();
  x.grad!.toArray().forEach((v, i) => near(v, 1 / (1 + Math.exp(-x.data[i]!)), 1e-6)); // d softplus = sigmoid
});

test('adoptWeight is 0 before the threshold and the weight from it on', () => {
  assert.equal(adoptWeight(0, 100), 0);
  assert.equal(adoptWeight(99, 100, 0.7), 0);
  assert.equal(adoptWeight(100, 100, 0.7), 0.7);
  assert.equal(adoptWeight(5, 0), 1);
});

/** A hand-computable G/D pair: "encoder" E, last layer W (linear), a linear "discriminator" v. */
function linearCase(): { x0: Tensor; E: Tensor; W: Tensor; v: Tensor; t: Tensor; x: Tensor; y: Tensor; rec: Tensor; g: Tensor } {
  const gen = new Generator(11);
  const x0 = randn([3, 4], { generator: gen }), t = randn([3, 2], { generator: gen });
  const E = randn([4, 4], { generator: gen, requiresGrad: true });
  const W = randn([2, 4], { generator: gen, requiresGrad: true });
  const v = randn([2, 1], { generator: gen, requiresGrad: true });
  const x = tanh(matmul(x0, E));                                           // [3, 4] encoder output
  const y = matmul(x, W, { transB: true });                                // [3, 2] last layer
  const rec = mseLoss(y, t);                                               // []
  const g = generatorAdversarialLoss(matmul(y, v));                        // [] −mean(y·v)
  return { x0, E, W, v, t, x, y, rec, g };
}

test('gradWrt matches the analytic gradient, leaves every .grad alone, and keeps the graph for backward()', () => {
  const c = linearCase();
  const X = c.x.toArray(), Y = c.y.toArray(), T = c.t.toArray(), V = c.v.toArray();
  // ∂rec/∂W[o][i] = (2/6)·Σn (y − t)[n][o]·x[n][i];  ∂g/∂W[o][i] = −(1/3)·v[o]·Σn x[n][i]
  const dRec: number[] = [], dG: number[] = [];
  for (let o = 0; o < 2; o++) for (let i = 0; i < 4; i++) {
    let r = 0, s = 0;
    for (let n = 0; n < 3; n++) { r += (Y[n * 2 + o]! - T[n * 2 + o]!) * X[n * 4 + i]!; s += X[n * 4 + i]!; }
    dRec.push((2 / 6) * r); dG.push(-(1 / 3) * V[o]! * s);
  }
  gradWrt(c.rec, c.W).toArray().forEach((v, i) => near(v, dRec[i]!, 1e-5));
  gradWrt(c.g, c.W).toArray().forEach((v, i) => near(v, dG[i]!, 1e-5));
  near(gradNormWrt(c.rec, c.W), Math.hypot(...dRec), 1e-5);
  for (const p of [c.E, c.W, c.v]) { assert.equal(p.grad, null, 'no .grad written'); assert.ok(p.requiresGrad, 'requiresGrad restored'); }
  assert.ok(c.x.node !== null && c.y.node !== null, 'graph nodes restored');
  add(c.rec, c.g).backward(); // the graph is still intact
  c.W.grad!.toArray().forEach((v, i) => near(v, dRec[i]! + dG[i]!, 1e-5));
  assert.ok(c.E.grad!.toArray().some((v) => v !== 0) && c.v.grad !== null, 'other parameters get their gradients');
});

test('gradWrt agrees with finite differences through conv, BatchNorm and leakyRelu (f64)', () => {
  const gen = new Generator(5);
  const x = randn([2, 5, 5, 2], { dtype: 'f64', generator: gen });
  const K = randn([3, 2, 3, 3], { dtype: 'f64', generator: gen, std: 0.5, requiresGrad: true });
  const K2 = randn([1, 3, 2, 2], { dtype: 'f64', generator: gen, requiresGrad: true });
  const lossOf = (): Tensor => {
    const h = leakyRelu(batchNormTrain(conv2d(x, K, null, { padding: 1 }), null, null).y); // [2, 5, 5, 3]
    return mean(square(conv2d(h, K2, null, { stride: 2 })));                               // []
  };
  const analytic = gradWrt(lossOf(), K).toArray();
  const eps = 1e-6;
  for (let i = 0; i < K.size; i++) {
    const orig = K.data[i]!;
    K.data[i] = orig + eps; const lp = noGrad(lossOf).item();
    K.data[i] = orig - eps; const lm = noGrad(lossOf).item();
    K.data[i] = orig;
    near(analytic[i]!, (lp - lm) / (2 * eps), 1e-6);
  }
});

test('gradWrt refuses losses without a graph or not depending on the target', () => {
  const c = linearCase();
  const unrelated = randn([2], { requiresGrad: true });
  assert.throws(() => gradWrt(c.rec, unrelated), /does not depend on the target/);
  assert.throws(() => gradWrt(noGrad(() => mseLoss(c.y, c.t)), c.W), /no graph/);
  assert.throws(() => gradWrt(c.y, c.W), /one element/);
  assert.throws(() => gradWrt(c.rec, c.t), /does not require grad/);
});

test('adaptiveWeight = clamp(‖∇rec‖ / (‖∇g‖ + 1e-4), 0, 1e4) · discWeight', () => {
  const c = linearCase();
  const a = gradNormWrt(c.rec, c.W), b = gradNormWrt(c.g, c.W);
  near(adaptiveWeight(c.rec, c.g, c.W, { discWeight: 0.8 }), (a / (b + 1e-4)) * 0.8, 1e-6);
  const gZero = mul(c.g, 0); // ‖∇g‖ = 0: the ratio is ‖∇rec‖ / 1e-4, then clamped
  near(adaptiveWeight(c.rec, gZero, c.W), Math.min(a / 1e-4, 1e4), 1e-6);
  near(adaptiveWeight(c.rec, gZero, c.W, { max: 10 }), 10, 1e-9);
});

test('vqganGeneratorLoss: adversarial term only from discStart, λ-weighted; its gradient is ∇nll + λ·factor·∇g + ∇q', () => {
  const config = adversarialLossConfig({ discStart: 10, discWeight: 0.5 });
  const before = linearCase();
  const q0 = mul(sum(square(before.E)), 0.01);
  const r0 = vqganGeneratorLoss({ rec: before.rec, q: q0, g: before.g, lastLayer: before.W, step: 9, config });
  assert.equal(r0.discFactor, 0);
  near(r0.total, before.rec.item() + q0.item());
  assert.ok(r0.dWeight > 0, 'λ is still computed for logging');
  const c = linearCase();
  const q = mul(sum(square(c.E)), 0.01);
  const lam = adaptiveWeight(c.rec, c.g, c.W, { discWeight: 0.5 });
  const expectW = gradWrt(c.rec, c.W).toArray().map((v, i) => v + lam * gradWrt(c.g, c.W).toArray()[i]!);
  const r = vqganGeneratorLoss({ rec: c.rec, q, g: c.g, lastLayer: c.W, step: 10, config });
  assert.equal(r.discFactor, 1);
  near(r.dWeight, lam);
  near(r.total, c.rec.item() + lam * c.g.item() + q.item());
  assert.deepEqual([r.rec, r.g, r.q, r.perceptual], [c.rec.item(), c.g.item(), q.item(), 0]);
  r.loss.backward();
  c.W.grad!.toArray().forEach((v, i) => near(v, expectW[i]!, 1e-5));
  const noG = vqganGeneratorLoss({ rec: linearCase().rec, q: tensor([0.5], []), lastLayer: c.W, step: 0, config });
  assert.equal(noG.dWeight, 0);
});

test('perceptual loss: off by default, a clear error (no LPIPS ships) when asked for, pluggable', () => {
  assert.equal(DEFAULT_ADVERSARIAL_CONFIG.perceptualWeight, 0);
  const c = linearCase();
  const config = adversarialLossConfig({ perceptualWeight: 1 });
  assert.throws(() => vqganGeneratorLoss({ rec: c.rec, q: c.rec, lastLayer: c.W, step: 0, config }), /no LPIPS weights/);
  assert.throws(() => perceptualTerm(null, c.x, c.x), /ships no LPIPS weights/);
  const l1: PerceptualLoss = (a, b) => mean(abs(sub(a, b)), [1]);       // [N] per image
  const p = perceptualTerm(l1, c.x, mul(c.x, 0.5));
  near(p.item(), c.x.toArray().reduce((s, v) => s + Math.abs(v) / 2, 0) / 12);
  const r = vqganGeneratorLoss({ rec: c.rec, perceptual: p, q: mul(c.rec, 0), lastLayer: c.W, step: 0, config });
  near(r.nll, c.rec.item() + p.item());
});

test('adversarial config: presets, unknown keys and bad values', () => {
  assert.equal(ADVERSARIAL_PRESETS['taming-imagenet']!.discStart, 250001);
  assert.throws(() => adversarialLossConfig({ disc_start: 5 } as never), /unknown key 'disc_start'/);
  assert.throws(() => adversarialLossConfig({ discLoss: 'wgan' as never }), /hinge/);
  assert.throws(() => adversarialLossConfig({ discStart: -1 }), /discStart/);
});

test('the discriminator trains from step 0 (no discStart gate) and learns to separate real from fake', () => {
  const config = adversarialLossConfig({ discStart: 1_000_000 });
  const gen = new Generator(2);
  const d = new NLayerDiscriminator({ ndf: 8, nLayers: 2 }, { generator: gen });
  const real = rand([4, 16, 16, 3], { low: 0.2, high: 1, generator: gen });   // bright images
  const fake = rand([4, 16, 16, 3], { low: -1, high: -0.2, generator: gen }); // dark "reconstructions"
  const opt = new AdamW(d.parameters(), { lr: 2e-3, weightDecay: 0 });
  const losses: number[] = [];
  for (let step = 0; step < 8; step++) {
    const r = vqganDiscriminatorLoss(d.forward(real), d.forward(fake), config);
    losses.push(r.loss.item());
    opt.zeroGrad(); r.loss.backward(); opt.step();
  }
  assert.ok(losses[0]! > 0.5, `starts near chance (${losses[0]})`);
  assert.ok(losses[7]! < losses[0]! * 0.5, `hinge loss falls: ${losses.map((v) => v.toFixed(3)).join(' ')}`);
});
