// `data encode`: a prepared data set through the image tokenizer and the text tokenizer into shards that
// read back to exactly the codes tokenize() gives and the caption ids the tokenizer gives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../../src/engine/index.js';
import { DatasetWriter, openDataset } from '../../src/data/format.js';
import { encodeDataset } from '../../src/data/encode.js';
import { ShardReader } from '../../src/data/shards.js';
import { makeShapesSample, sceneConfig } from '../../src/data/shapes/prepare.js';
import { trainDatasetTokenizer } from '../../src/data/text/from-dataset.js';
import { loadTokenizer } from '../../src/data/text/io.js';
import { tokenize } from '../../src/models/vqgan/evaluate.js';
import { saveVQModel, VQModel } from '../../src/models/vqgan/vqmodel.js';
import { vqganPreset } from '../../src/models/vqgan/config.js';
import { Generator } from '../../src/engine/random.js';

const root = await mkdtemp(join(tmpdir(), 'encode-'));
test.after(async () => { await rm(root, { recursive: true, force: true }); });

function makeData(dir: string, size: number, n = 20): string {
  const w = new DatasetWriter(dir, size, size);
  for (let i = 0; i < n; i++) {
    const { rgb, record } = makeShapesSample(0, i, size, sceneConfig(2));
    w.add(rgb, { ...record, split: i < 14 ? 'train' : i < 17 ? 'val' : 'test' });
  }
  w.finish({ name: 'tiny-shapes', description: 'test', languages: ['en', 'zh'], licences: ['CC0-1.0'], attribution: [], createdBy: 'test', skipped: {}, notes: [] });
  return dir;
}

const data = makeData(join(root, 'data'), 16);
const textDir = join(root, 'text');
trainDatasetTokenizer({ data, out: textDir, vocabSize: 200, langs: ['en', 'zh'], minFrequency: 1, lowercase: true, showProgress: false });
const modelDir = join(root, 'tok');
const model = new VQModel(vqganPreset('tiny'), { generator: new Generator(3) });
await saveVQModel(modelDir, model);

test('encoded shards hold the tokenizer codes and the caption ids of every sample', async () => {
  const out = join(root, 'shards');
  const r = await encodeDataset({ data, imageTokenizer: modelDir, textTokenizer: textDir, out, batchSize: 3, samplesPerShard: 4 });
  assert.deepEqual(r.index.splits, { train: 14, val: 3, test: 3 });
  assert.equal(r.index.config.codebookSize, 16);
  assert.deepEqual([r.index.config.gridHeight, r.index.config.gridWidth], [8, 8]);
  assert.ok(r.codesUsed >= 1 && r.codesUsed <= 16);
  assert.equal(r.index.shards.filter((s) => s.split === 'train').length, 4); // 14 samples, 4 per shard

  const ds = openDataset(data);
  const text = loadTokenizer(textDir);
  const reader = ShardReader.open(out);
  const samples = [...reader.samples()];
  assert.equal(samples.length, 20);
  for (const s of samples) {
    const rec = ds.records[s.index]!;
    assert.equal(s.id, rec.id);
    assert.equal(s.split, rec.split);
    const want = tokenize(model, [ds.image(rec.index)]).codes[0]!;
    assert.deepEqual(Array.from(s.codes), Array.from(want), `codes of ${rec.id}`);
    const en = rec.captions.en ?? [];
    const got = s.captions.filter((c) => c.lang === 'en');
    assert.equal(got.length, en.length);
    got.forEach((c, i) => {
      assert.deepEqual(Array.from(c.ids), text.encode(en[c.variant]!, { addSpecialTokens: false }).ids, `${rec.id} en ${i}`);
      assert.ok(!Array.from(c.ids).includes(text.clsId), 'no [CLS] stored');
    });
    assert.ok(s.captions.some((c) => c.lang === 'zh'), 'Chinese captions too');
  }
});

test('truncation, split selection and bad input', async () => {
  const out = join(root, 'shards-trunc');
  const r = await encodeDataset({ data, imageTokenizer: modelDir, textTokenizer: textDir, out, splits: ['test'], maxTextTokens: 2 });
  assert.deepEqual(r.index.splits, { train: 0, val: 0, test: 3 });
  assert.ok(r.truncatedCaptions > 0);
  for (const s of ShardReader.open(out).samples()) for (const c of s.captions) assert.ok(c.ids.length <= 2);

  const wrongSize = makeData(join(root, 'data32'), 32, 4);
  await assert.rejects(encodeDataset({ data: wrongSize, imageTokenizer: modelDir, textTokenizer: textDir, out: join(root, 'x') }), /32×32 images, the image tokenizer takes 16×16/);
  await assert.rejects(encodeDataset({ data, imageTokenizer: join(root, 'nope'), textTokenizer: textDir, out: join(root, 'x') }), /does not exist/);
  await assert.rejects(encodeDataset({ data, imageTokenizer: modelDir, textTokenizer: textDir, out: join(root, 'x'), splits: ['dev' as 'test'] }), /unknown split 'dev'/);
  await assert.rejects(encodeDataset({ data, imageTokenizer: modelDir, textTokenizer: textDir, out: join(root, 'x'), batchSize: 0 }), /batchSize/);
});
