// A taming-transformers Lightning checkpoint converted by reference/convert_taming.py (its --self-test
// writes test/fixtures/vqgan/taming-converted/: a tiny VQModel with loss.* entries dropped) loads with
// loadVQModel and reproduces PyTorch's codes and reconstruction.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadSafetensors, noGrad } from '../../src/engine/index.js';
import { loadVQModel } from '../../src/models/vqgan/vqmodel.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/vqgan/taming-converted/', import.meta.url));

test('a converted taming checkpoint loads and matches PyTorch codes and reconstruction', async () => {
  const model = await loadVQModel(DIR);
  assert.equal(model.config.nEmbed, 16);
  assert.deepEqual(model.config.chMult, [1, 2]);
  const { tensors } = await loadSafetensors(`${DIR}/expected.safetensors`);
  const x = tensors['x']!, codes = tensors['codes']!, xRec = tensors['xRec']!;
  const out = noGrad(() => model.forward(x));
  assert.deepEqual(Array.from(out.codes.data), Array.from(codes.data));
  const a = out.xRec.data as Float32Array, b = xRec.data as Float32Array;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  console.log(`converted taming model: xRec max |Δ| ${max.toExponential(2)}`);
  assert.ok(max < 1e-4, `xRec max |Δ| ${max}`);
});
