// The user-facing generation API (src/models/vilg/pipeline.ts) and its CLI (src/cli/commands/generate.ts)
// on the committed default model models/vilg-shapes (3.4M parameters, 8×8 codes, 32 px):
// load validation, reproducible seeds, reranking, row progress with partial decoding, cancellation, an
// event loop that keeps running, language-restricted captions, every image input form, completion, and
// CLI errors without stack traces.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeShapesSample, sceneConfig } from '../../src/data/shapes/prepare.js';
import { encodePng } from '../../src/data/image.js';
import { Tensor, noGrad } from '../../src/engine/index.js';
import { tensorToRgb } from '../../src/util/png.js';
import { VilgPipeline, textLogLikelihood, textRows, type GeneratedImage } from '../../src/models/vilg/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MODEL = join(ROOT, 'models/vilg-shapes');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const vilg = await VilgPipeline.load(MODEL);
const S = vilg.imageSize; // 32
const scene = makeShapesSample(0, 17, S, sceneConfig(2)); // a test-split scene
const PNG = await encodePng(scene.rgb, S, S);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

test('load: a model dir, a run dir holding model/, and errors that name what is missing', async () => {
  assert.equal(vilg.info.mode, 'end-to-end');
  assert.equal(S, 32);
  const tmp = mkdtempSync(join(tmpdir(), 'vilg-pipe-'));
  try {
    cpSync(MODEL, join(tmp, 'run', 'model'), { recursive: true });
    assert.equal((await VilgPipeline.load(join(tmp, 'run'))).dir, join(tmp, 'run', 'model'));
    rmSync(join(tmp, 'run', 'model', 'image-tokenizer'), { recursive: true });
    await assert.rejects(VilgPipeline.load(join(tmp, 'run')), /has no image-tokenizer/);
    await assert.rejects(VilgPipeline.load(join(tmp, 'nope')), /is not a directory/);
    cpSync(MODEL, join(tmp, 'bad'), { recursive: true });
    writeFileSync(join(tmp, 'bad', 'model.safetensors'), Buffer.alloc(100));
    await assert.rejects(VilgPipeline.load(join(tmp, 'bad')), /safetensors/i);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});

test('a two-stage model decodes through the codebook (VQModel.decodeCodes), not z_emb', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vilg-two-'));
  try {
    cpSync(MODEL, tmp, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(tmp, 'config.json'), 'utf8')) as { mode: string };
    writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...cfg, mode: 'two-stage' }));
    const two = await VilgPipeline.load(tmp);
    assert.equal(two.info.mode, 'two-stage');
    const r = await two.textToImage('a small red circle', { n: 2, seed: 3 });
    const e2e = await vilg.textToImage('a small red circle', { n: 2, seed: 3 });
    assert.deepEqual(r.images.map((im) => [...im.codes]), e2e.images.map((im) => [...im.codes]), 'same codes: only the decoder path differs');
    const viaCodebook = tensorToRgb(noGrad(() => two.imageTokenizer.decodeCodes(new Tensor(Int32Array.from(r.images[0]!.codes), [1, 8, 8]))))[0]!;
    assert.deepEqual(r.images[0]!.rgb, viaCodebook);
    assert.notDeepEqual(e2e.images[0]!.rgb, viaCodebook);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});

test('textToImage: N PNG candidates, the same seed gives the same images, rerank sorts by log P(prompt | image)', async () => {
  const a = await vilg.textToImage('a small red circle', { n: 3, seed: 5, topK: 32 });
  const b = await vilg.textToImage('a small red circle', { n: 3, seed: 5, topK: 32 });
  const c = await vilg.textToImage('a small red circle', { n: 3, seed: 6, topK: 32 });
  assert.equal(a.images.length, 3);
  for (const im of a.images) {
    assert.equal(im.width, S); assert.equal(im.height, S); assert.equal(im.rgb.length, S * S * 3); assert.equal(im.codes.length, 64);
    assert.deepEqual(im.png.subarray(0, 4), PNG_SIGNATURE);
    assert.equal(im.score, null);
  }
  assert.deepEqual(a.images.map((im) => [...im.codes]), b.images.map((im) => [...im.codes]));
  assert.notDeepEqual(a.images.map((im) => [...im.codes]), c.images.map((im) => [...im.codes]));
  const r = await vilg.textToImage('a small red circle', { n: 4, seed: 5, topK: 32, rerank: true });
  const scores = r.images.map((im) => im.score!);
  assert.deepEqual(scores, [...scores].sort((x, y) => y - x), 'best first');
  const codes = new Tensor(Int32Array.from(r.images.flatMap((im) => [...im.codes])), [4, 8, 8]);
  const { ids } = vilg.encodeText('a small red circle', 't');
  const ll = textLogLikelihood(vilg.model, codes, textRows([ids, ids, ids, ids], vilg.specials, vilg.model.config.maxTextLen), vilg.specials);
  // f32 sums over a batch of another composition: equal to ~1e-7 relative (not bit for bit).
  r.images.forEach((im, i) => assert.ok(Math.abs(im.score! - ll[i]!) <= 1e-6 * (1 + Math.abs(ll[i]!)), `score ${i}: ${im.score} vs ${ll[i]}`));
  assert.deepEqual(r.tokens, ['a', 'small', 'red', 'circle']);
});

test('textToImage: progress once per row with decodable partial images, AbortSignal, a running event loop', async () => {
  const rows: number[] = [];
  const partial: { ims: GeneratedImage[] | null } = { ims: null };
  const pending: Promise<void>[] = [];
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 1);
  await vilg.textToImage('a large blue square', {
    n: 2, seed: 1, onProgress: (p) => {
      rows.push(p.row);
      if (p.row === 3) pending.push(p.decode().then((ims) => { partial.ims = ims; }));
    },
  });
  clearInterval(timer);
  await Promise.all(pending);
  assert.deepEqual(rows, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(ticks >= 5, `the event loop ran timers during generation (${ticks} ticks)`);
  assert.ok(partial.ims !== null);
  const im = partial.ims[0]!;
  const grey = im.rgb.subarray(Math.round((3 / 8) * S) * S * 3);
  assert.ok(grey.every((v) => v === 128), 'rows not yet generated are grey');
  const ac = new AbortController();
  await assert.rejects(vilg.textToImage('a large blue square', { n: 2, signal: ac.signal, onProgress: (p) => { if (p.row === 2) ac.abort(); } }), { name: 'AbortError' });
});

test('textToImage: long prompts are truncated with a warning; bad options are RangeErrors', async () => {
  const long = Array.from({ length: 40 }, () => 'red').join(' ');
  const r = await vilg.textToImage(long, { n: 1, temperature: 0 });
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /truncated/);
  assert.equal(r.tokens.length, vilg.model.config.maxTextLen - 2);
  await assert.rejects(vilg.textToImage('a red circle', { n: 0 }), /n must be an integer in \[1, 64\]/);
  await assert.rejects(vilg.textToImage('a red circle', { topP: 2 }), /topP/);
  await assert.rejects(vilg.textToImage('a red circle', { colour: 'red' } as never), /unknown option\(s\) colour/);
  await assert.rejects(vilg.textToImage('   '), /non-empty/);
});

test('caption / answer: every image input form gives the same caption; languages; bad images are clear errors', async () => {
  const fromPng = await vilg.caption(PNG);
  const fromRaw = await vilg.caption({ rgb: scene.rgb, width: S, height: S });
  const tmp = mkdtempSync(join(tmpdir(), 'vilg-cap-'));
  try {
    writeFileSync(join(tmp, 's.png'), PNG);
    assert.equal((await vilg.caption(join(tmp, 's.png'))).text, fromPng.text);
    writeFileSync(join(tmp, 'broken.png'), PNG.subarray(0, 40));
    await assert.rejects(vilg.caption(join(tmp, 'broken.png')), RangeError);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
  assert.equal(fromRaw.text, fromPng.text);
  assert.ok(fromPng.text.length > 0 && fromPng.logprob < 0);
  const en = await vilg.caption(PNG, { lang: 'en', beams: 3 });
  const zh = await vilg.caption(PNG, { lang: 'zh', beams: 3 });
  assert.doesNotMatch(en.text, /[\u4e00-\u9fff]/);
  assert.match(zh.text, /[\u4e00-\u9fff]/);
  assert.doesNotMatch(zh.text, /[A-Za-z]/);
  assert.doesNotMatch(zh.text, /[\u4e00-\u9fff] [\u4e00-\u9fff]/, 'no spaces between Chinese characters');
  await assert.rejects(vilg.caption({ rgb: new Uint8Array(10), width: 4, height: 4 }), /width·height·3/);
  await assert.rejects(vilg.caption(PNG, { beams: 0 }), /beams/);
  await assert.rejects(vilg.caption(PNG, { lang: 'fr' } as never), /lang/);
  const a = await vilg.answer(PNG, 'how many objects are there?', { lang: 'en' });
  assert.ok(a.answer.length > 0);
});

test('complete: the kept rows are the image\'s own codes', async () => {
  const codes = vilg.tokenize([scene.rgb]).toArray(); // [1, 8, 8]
  const r = await vilg.complete(PNG, scene.record.captions.en![0]!, { rows: 3, n: 2, seed: 2 });
  for (const im of r.images) assert.deepEqual([...im.codes.subarray(0, 24)], codes.slice(0, 24));
  await assert.rejects(vilg.complete(PNG, 'a red circle', { rows: 8 }), /rows must be an integer in \[1, 7\]/);
});

test('CLI: generate/caption/vqa/complete write and print results; bad input exits 2 with a message and no stack trace', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vilg-cli-'));
  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp, env: { ...process.env, OMP_NUM_THREADS: '1' } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  try {
    writeFileSync(join(tmp, 's.png'), PNG);
    const g = run('generate', 'a small red circle', '-n', '2', '--rerank', '--json', '--out', 'gen');
    assert.equal(g.status, 0, g.stderr);
    const doc = JSON.parse(g.stdout) as { images: { file: string; score: number }[]; sheet: string };
    assert.equal(doc.images.length, 2);
    assert.ok(doc.images.every((im) => typeof im.score === 'number'));
    const c = run('caption', 's.png', '--beams', '2', '--lang', 'en', '--json');
    assert.equal(c.status, 0, c.stderr);
    assert.equal((JSON.parse(c.stdout) as { caption: string }[])[0]!.caption.length > 0, true);
    assert.equal(run('vqa', 's.png', 'how many objects are there?').status, 0);
    assert.equal(run('complete', 's.png', 'a small red circle', '--rows', '4', '-n', '1', '--out', 'cmp').status, 0);
    for (const [args, msg] of [
      [['generate', 'a red circle', '--colour', 'red'], /unknown option --colour/],
      [['generate', 'a red circle', '-n', '0'], /n must be an integer/],
      [['generate'], /give one prompt/],
      [['caption', 'missing.png'], /no such file/],
      [['caption', 's.png', '--lang', 'fr'], /--lang must be en, zh or any/],
      [['generate', 'a red circle', '--model', 'nowhere'], /not a directory/],
    ] as const) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});
