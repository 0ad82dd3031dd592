// The VQGAN tokenizer against the PyTorch reference of taming-transformers' VQModel
// (reference/vqgan.py → test/fixtures/vqgan/tiny.safetensors: 16 px, ch 8, ch_mult [1, 2], 16 codes),
// plus presets, configuration checks and model directories.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Generator, add, isNativeAvailable, loadSafetensors, mean, mseLoss, noGrad, rand, saveSafetensors, square, tensor, withBackend,
  zeros, type Tensor,
} from '../../src/engine/index.js';
import {
  VQGAN_PRESETS, VQModel, configFromJson, configToJson, downsampleFactor, fromTamingStateDict, loadVQModel, saveVQModel, tokenGrid,
  vqganConfig, vqganPreset,
} from '../../src/models/vqgan/index.js';
import { StateDictError } from '../../src/nn/module.js';

const FIXTURE_DIR = new URL('../../../test/fixtures/vqgan/', import.meta.url);
const file = await loadSafetensors(fileURLToPath(new URL('tiny.safetensors', FIXTURE_DIR)));
const fx = file.tensors;
const get = (name: string): Tensor => { const t = fx[name]; assert.ok(t, `fixture has ${name}`); return t; };
const init = (): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(fx).filter(([k]) => k.startsWith('init.')).map(([k, v]) => [k.slice(5), v]));
const TINY_JSON = JSON.parse(await readFile(fileURLToPath(new URL('tiny.json', FIXTURE_DIR)), 'utf8')) as unknown;
const TINY = configFromJson(TINY_JSON);

/**
 * max|a − b| ≤ tol · max|b| (element-wise relative error would punish round-off on near-zero values),
 * with an absolute floor for gradients that are zero in exact arithmetic (an attention block's k.bias
 * shifts every score of a query row equally, which the softmax ignores: PyTorch gets ~1e-19, f32 ~1e-11).
 */
function assertClose(a: Tensor, b: Tensor, what: string, tol = 1e-4): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  const x = a.toArray(), y = b.toArray();
  const scale = Math.max(...y.map(Math.abs));
  const err = Math.max(...x.map((v, i) => Math.abs(v - y[i]!)));
  assert.ok(err <= tol * scale + 1e-9, `${what}: max error ${err} vs scale ${scale}`);
}

function tinyModel(): VQModel {
  const m = new VQModel(TINY);
  m.loadStateDict(init());
  return m;
}

test('the fixture config is the `tiny` preset', () => {
  assert.deepEqual(TINY, VQGAN_PRESETS['tiny']);
});

test('state dict names, order and shapes are exactly the PyTorch (taming) VQModel\'s', () => {
  const m = new VQModel(TINY);
  const keys = JSON.parse(file.metadata['state_dict_keys']!) as string[];
  assert.deepEqual(Object.keys(m.stateDict()), keys);
  for (const [k, t] of Object.entries(m.stateDict())) assert.deepEqual(t.shape, get(`init.${k}`).shape, k);
  // taming's decoder levels: up.0 is the highest resolution (16 px, ch 8) and has no upsample.
  assert.ok(keys.includes('decoder.up.1.upsample.conv.weight') && !keys.some((k) => k.startsWith('decoder.up.0.upsample')));
  assert.deepEqual(get('init.decoder.up.0.block.0.conv1.weight').shape, [8, 16, 3, 3]);
  assert.equal(m.numParameters(), 46503);
});

// Both backends when the native addon is built: the reference one is the executable spec.
for (const backend of isNativeAvailable() ? ['reference', 'native'] as const : ['reference'] as const) {
  test(`forward matches PyTorch on the ${backend} backend: z, codes, zq, reconstruction and loss terms`, () => withBackend(backend, () => {
    const m = tinyModel();
    const out = m.forward(get('input'));
    assertClose(out.z, get('out.z'), 'z');
    assert.deepEqual(out.codes.toArray(), get('out.codes').toArray(), 'codes');
    assert.equal(out.codes.dtype, 'i32');
    assert.deepEqual(out.codes.shape, [2, 8, 8]);
    assertClose(out.zq, get('out.zq'), 'zq');
    assertClose(out.xRec, get('out.xRec'), 'xRec');
    for (const [name, v] of [['q_loss', out.qLoss], ['codebook_loss', out.codebookLoss], ['commitment_loss', out.commitmentLoss]] as const) {
      assert.deepEqual(v.shape, [], name);
      const want = get(`out.${name}`).item();
      assert.ok(Math.abs(v.item() - want) <= 1e-4 * Math.abs(want), `${name}: ${v.item()} vs ${want}`);
    }
  }));

  test(`gradients of rec_loss + q_loss match PyTorch for the input and every parameter on the ${backend} backend`, () => withBackend(backend, () => {
    const m = tinyModel();
    const x = get('input').to('f32');
    const xg = tensor(x.data as Float32Array, x.shape);
    xg.requiresGrad = true;
    const out = m.forward(xg);
    const rec = mseLoss(out.xRec, xg);
    for (const [name, v] of [['rec_loss', rec], ['q_loss', out.qLoss], ['codebook_loss', out.codebookLoss], ['commitment_loss', out.commitmentLoss]] as const) {
      assert.ok(Math.abs(v.item() - get(`out.${name}`).item()) <= 1e-4 * Math.abs(get(`out.${name}`).item()), `${name}: ${v.item()} vs ${get(`out.${name}`).item()}`);
    }
    add(rec, out.qLoss).backward();
    assertClose(xg.grad!, get('grad.input'), 'grad input');
    for (const [name, p] of m.namedParameters()) {
      assert.ok(p.grad, `${name} got a gradient`);
      assertClose(p.grad, get(`grad.${name}`), `grad ${name}`);
    }
  }));
}

test('decodeCodes(codes) equals decode(zq); tokenize gives the same codes without a graph', () => {
  const m = tinyModel().eval();
  const x = get('input');
  const e = m.encode(x);
  assertClose(m.decodeCodes(e.codes), m.decode(e.zq), 'decodeCodes vs decode', 1e-5); // zq = z + (e − z) rounds
  const codes = m.tokenize(x);
  assert.deepEqual(codes.toArray(), get('out.codes').toArray());
  assert.equal(codes.node, null);
  // decode also takes any z_emb-like tensor (the end-to-end path) and passes gradients into it.
  const zEmb = rand([1, 8, 8, 4], { generator: new Generator(5), requiresGrad: true });
  mean(square(m.decode(zEmb))).backward();
  assert.ok(zEmb.grad && zEmb.grad.toArray().some((v) => v !== 0));
  assert.throws(() => m.decode(zeros([1, 8, 8, 3])), /decode: expected \[N, h, w, 4\]/);
  assert.throws(() => m.decodeCodes(tensor([0, 16], [1, 1, 2], 'i32')), /outside \[0, 16\)/);
  assert.throws(() => m.encode(zeros([1, 15, 16, 3])), /divisible by the downsampling factor 2/);
  assert.throws(() => m.encode(zeros([1, 16, 16, 4])), /\[N, H, W, 3\]/);
});

test('a taming checkpoint\'s state dict loads once loss.* is dropped; mismatches are reported exactly', () => {
  const m = new VQModel(TINY);
  const withLoss = { ...init(), 'loss.discriminator.main.0.weight': zeros([8, 3, 4, 4]), 'loss.logvar': zeros([]) };
  const { stateDict, dropped } = fromTamingStateDict(withLoss);
  assert.deepEqual(dropped.sort(), ['loss.discriminator.main.0.weight', 'loss.logvar']);
  assert.deepEqual(m.loadStateDict(stateDict), { missing: [], unexpected: [], mismatched: [] });

  const bad = init();
  delete bad['decoder.up.1.upsample.conv.bias'];
  bad['encoder.conv_in.weight'] = zeros([8, 3, 3, 1]);
  bad['quantize.embed'] = zeros([16, 4]);
  const before = m.stateDict()['decoder.conv_out.weight']!.toArray();
  assert.throws(() => m.loadStateDict(bad), (e: unknown) => {
    assert.ok(e instanceof StateDictError);
    assert.deepEqual(e.report, {
      missing: ['decoder.up.1.upsample.conv.bias'],
      unexpected: ['quantize.embed'],
      mismatched: ['encoder.conv_in.weight (checkpoint [8, 3, 3, 1], model [8, 3, 3, 3])'],
    });
    return true;
  });
  assert.deepEqual(m.stateDict()['decoder.conv_out.weight']!.toArray(), before, 'nothing changed');
});

test('model directories: save → load round trip; clear errors for missing files, bad config, wrong weights', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vqgan-'));
  try {
    const m = tinyModel();
    await saveVQModel(join(dir, 'ok'), m);
    const back = await loadVQModel(join(dir, 'ok'));
    assert.equal(back.training, false);
    assert.deepEqual(back.config, TINY);
    for (const [k, t] of Object.entries(m.stateDict())) assert.deepEqual(back.stateDict()[k]!.toArray(), t.toArray(), k);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'ok', 'config.json'), 'utf8')), configToJson(TINY));

    await assert.rejects(loadVQModel(join(dir, 'nope')), /is not a directory \(a VQGAN model directory holds config.json and model.safetensors\)/);
    await saveVQModel(join(dir, 'noweights'), m);
    await rm(join(dir, 'noweights', 'model.safetensors'));
    await assert.rejects(loadVQModel(join(dir, 'noweights')), /model.safetensors is missing/);
    await saveVQModel(join(dir, 'badcfg'), m);
    await writeFile(join(dir, 'badcfg', 'config.json'), JSON.stringify({ ...configToJson(TINY), chMul: [1, 2] }));
    await assert.rejects(loadVQModel(join(dir, 'badcfg')), /config.json: VQGAN config: unknown key 'chMul' \(known: resolution, inChannels, ch, chMult,/);
    await saveVQModel(join(dir, 'wrong'), m);
    await writeFile(join(dir, 'wrong', 'config.json'), JSON.stringify({ ...configToJson(TINY), nEmbed: 32 }));
    await assert.rejects(loadVQModel(join(dir, 'wrong')),
      /does not fit .*config.json: state dict does not match the model — mis-shaped 1: quantize.embedding.weight \(checkpoint \[16, 4\], model \[32, 4\]\)/);
    // A converted taming checkpoint (with loss.* weights) in a directory loads.
    await saveVQModel(join(dir, 'taming'), m);
    await saveSafetensors(join(dir, 'taming', 'model.safetensors'), { ...init(), 'loss.logvar': zeros([1]) });
    assert.ok(await loadVQModel(join(dir, 'taming')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config: validation names the field; presets, factors and token grids', () => {
  assert.throws(() => vqganConfig({ chMul: [1] } as never), /unknown key 'chMul' \(known: resolution, inChannels, ch, chMult, numResBlocks/);
  assert.throws(() => vqganConfig({ quantizer: { emaDecy: 0.9 } } as never), /quantizer: unknown key 'emaDecy' \(known: l2Normalised, kmeansInit/);
  assert.throws(() => vqganConfig({ ch: 48 }), /48 channels \(ch 48 × 1\) do not split into normGroups 32/);
  assert.throws(() => vqganConfig({ resolution: 100 }), /resolution 100 is not divisible by the downsampling factor 8/);
  assert.throws(() => vqganConfig({ attnResolutions: [30] }), /attnResolutions 30 matches no level \(level sizes 256, 128, 64, 32\)/);
  assert.throws(() => vqganConfig({ chMult: [] }), /chMult must be a non-empty list/);
  assert.throws(() => vqganConfig({ dropout: 1 }), /dropout must be in \[0, 1\)/);
  assert.throws(() => vqganConfig({ quantizer: { emaDecay: 1 } }), /emaDecay must be in \(0, 1\)/);
  assert.throws(() => vqganPreset('emoji'), /unknown VQGAN preset 'emoji' \(known: paper, emoji-64, emoji-32, shapes-32, tiny\)/);
  assert.ok(Object.isFrozen(VQGAN_PRESETS['paper']) && Object.isFrozen(VQGAN_PRESETS['paper']!.chMult) && Object.isFrozen(VQGAN_PRESETS['paper']!.quantizer));
  const expected: Record<string, [number, [number, number]]> = {
    paper: [8, [32, 32]], 'emoji-64': [8, [8, 8]], 'emoji-32': [4, [8, 8]], 'shapes-32': [4, [8, 8]], tiny: [2, [8, 8]],
  };
  for (const [name, [f, grid]] of Object.entries(expected)) {
    const c = vqganPreset(name);
    assert.deepEqual(vqganConfig(c), c, `${name} validates`);
    assert.equal(downsampleFactor(c), f, name);
    assert.deepEqual(tokenGrid(c), grid, name);
    assert.deepEqual(configFromJson(JSON.stringify(configToJson(c))), c, `${name} JSON round trip`);
  }
  assert.equal(vqganPreset('paper').nEmbed, 8192);
});

test('small presets construct and run a forward pass at their resolution', () => {
  // Parameter counts as reference/vqgan.py's PyTorch model counts them for the same configs.
  const params: Record<string, number> = { 'emoji-64': 4_257_891, 'emoji-32': 3_075_683, 'shapes-32': 2_971_139 };
  for (const name of ['emoji-64', 'emoji-32', 'shapes-32']) {
    const c = vqganPreset(name);
    const m = new VQModel(c).eval();
    assert.equal(m.numParameters(), params[name], name);
    const x = rand([1, c.resolution, c.resolution, 3], { low: -1, high: 1, generator: new Generator(2) });
    const out = noGrad(() => m.forward(x));
    assert.deepEqual(out.codes.shape, [1, ...tokenGrid(c)], name);
    assert.deepEqual(out.xRec.shape, x.shape, name);
  }
});

test('the paper preset (256 px, f = 8, 8192 codes) constructs and runs a forward pass with batch 1', { timeout: 600_000 }, (t) => {
  const c = vqganPreset('paper');
  const t0 = performance.now();
  const m = new VQModel(c).eval();
  const tBuild = performance.now() - t0;
  // 256 px is ~0.5 TFLOP: seconds on the native backend, most of an hour on the reference one. Without
  // the native addon, every layer still runs, on a 16 px image (2×2 codes; ~8 s on the reference backend).
  const native = isNativeAvailable();
  const size = native ? 256 : 16;
  const x = rand([1, size, size, 3], { low: -1, high: 1, generator: new Generator(3) });
  const t1 = performance.now();
  const out = withBackend(native ? 'native' : 'reference', () => noGrad(() => m.forward(x)));
  const tFwd = performance.now() - t1;
  assert.deepEqual(out.codes.shape, [1, size / 8, size / 8]);
  assert.deepEqual(out.xRec.shape, [1, size, size, 3]);
  assert.ok(out.xRec.toArray().every(Number.isFinite));
  assert.ok(out.codes.toArray().every((k) => k >= 0 && k < 8192));
  assert.equal(m.numParameters(), 72_203_139); // reference/vqgan.py's PyTorch model with this config: the same
  t.diagnostic(`paper preset: ${(m.numParameters() / 1e6).toFixed(1)}M parameters, built in ${(tBuild / 1e3).toFixed(1)} s, ` +
    `forward at batch 1, ${size} px on the ${native ? 'native' : 'reference'} backend: ${(tFwd / 1e3).toFixed(1)} s`);
});
