// `vilg data tokenizer` and the library call behind it, on a small prepared data set.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UsageError } from '../../src/cli/args.js';
import { commands } from '../../src/cli/commands/data-tokenizer.js';
import { DatasetWriter, type Split } from '../../src/data/format.js';
import { isChineseChar, loadTokenizer } from '../../src/data/text/index.js';
import { trainDatasetTokenizer } from '../../src/data/text/from-dataset.js';
import { cldrPairs } from './wordpiece-corpus.js';

const root = mkdtempSync(join(tmpdir(), 'vilg-wp-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

// 400 emoji as a tiny data set: 2×2 images (content is irrelevant here), every 5th sample in val.
const data = join(root, 'data');
const pairs = cldrPairs(400);
{
  const w = new DatasetWriter(data, 2, 2);
  pairs.forEach((p, i) => {
    const split: Split = i % 5 === 4 ? 'val' : 'train';
    w.add(new Uint8Array(12).fill(i % 256), { id: `e${i}`, split, group: p.key, captions: { en: p.en, zh: p.zh } });
  });
  w.finish({ name: 'tiny', description: 'tokenizer test', languages: ['en', 'zh'], licences: ['Unicode'], attribution: [], createdBy: 'test', skipped: {}, notes: [] });
}

test('trains on all train captions of the chosen languages and reports val [UNK] and lengths', () => {
  const out = join(root, 'tok-both');
  const r = trainDatasetTokenizer({ data, out, vocabSize: 1500, langs: ['en', 'zh'], minFrequency: 2, lowercase: true });
  const trainSamples = pairs.filter((_, i) => i % 5 !== 4);
  assert.equal(r.trainCaptions, trainSamples.reduce((n, p) => n + p.en.length + p.zh.length, 0));
  for (const f of ['vocab.txt', 'tokenizer.json', 'tokenizer-config.json']) assert.ok(existsSync(join(out, f)), f);
  const tok = loadTokenizer(out);
  assert.equal(tok.vocabSize, r.vocabSize);
  assert.ok(r.vocabSize <= 1500 || r.vocabSize === 5 + r.stats.alphabet);
  // The report's val numbers, recomputed by hand.
  let tokens = 0, unk = 0, caps = 0;
  pairs.forEach((p, i) => {
    if (i % 5 !== 4) return;
    for (const c of [...p.en, ...p.zh]) { const ids = tok.encode(c, { addSpecialTokens: false }).ids; tokens += ids.length; unk += ids.filter((x) => x === tok.unkId).length; caps++; }
  });
  assert.deepEqual([r.val.captions, r.val.tokens, r.val.unkTokens], [caps, tokens, unk]);
  assert.equal(r.train.unkTokens, 0, 'every train character is in the alphabet');
  assert.ok(r.val.meanTokens.en! > 1 && r.val.meanTokens.zh! > 1);
  const config = JSON.parse(readFileSync(join(out, 'tokenizer-config.json'), 'utf8')) as { training: { langs: string[]; captions: number } };
  assert.deepEqual(config.training.langs, ['en', 'zh']);
  assert.equal(config.training.captions, r.trainCaptions);
});

test('--lang en leaves Chinese out; --no-lowercase keeps capitals', () => {
  const r = trainDatasetTokenizer({ data, out: join(root, 'tok-en'), vocabSize: 600, langs: ['en'], minFrequency: 2, lowercase: false });
  const tok = loadTokenizer(join(root, 'tok-en'));
  assert.ok(!tok.vocab.some((t) => isChineseChar(t.codePointAt(0)!)));
  assert.ok(tok.vocab.some((t) => /^[A-Z]/.test(t)), 'cased vocabulary');
  assert.equal(tok.config.normalizer.lowercase, false);
  assert.equal(r.val.meanTokens.zh, undefined);
});

test('the command prints a summary and rejects bad options', async () => {
  const cmd = commands['data tokenizer']!;
  const out = join(root, 'tok-cli');
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => { chunks.push(String(s)); return true; }) as typeof process.stdout.write;
  try {
    await cmd.run([], { data, out, 'vocab-size': 800, lang: 'zh', 'min-frequency': 2 });
  } finally { process.stdout.write = write; }
  const text = chunks.join('');
  assert.match(text, /^vocabulary: \d+ tokens \(5 special, \d+ alphabet, \d+ merges\)/);
  assert.match(text, /val: \d+ captions, \d+ tokens, \[UNK\] \d+\.\d\d% of tokens/);
  assert.ok(existsSync(join(out, 'tokenizer.json')));
  await assert.rejects(cmd.run([], { data, out, 'vocab-size': 800, lang: 'fr', 'min-frequency': 2 }), UsageError);
  await assert.rejects(cmd.run([], { data, out, lang: 'en', 'min-frequency': 2 }), /--vocab-size/);
  await assert.rejects(cmd.run([], { data: join(root, 'nope'), out, 'vocab-size': 800, lang: 'en', 'min-frequency': 2 }), /not a prepared data set/);
});
