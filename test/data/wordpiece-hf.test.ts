// Our WordPiece against Hugging Face's: the native `tokenizers` bindings (the Rust library behind
// transformers) and the pure-JS `@huggingface/tokenizers` load our tokenizer.json and must produce
// exactly our ids; and we load a vocabulary HF trained and must produce exactly HF's ids.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Tokenizer as JsTokenizer } from '@huggingface/tokenizers';
import { Tokenizer as HfTokenizer, WordPiece, bertNormalizer, bertPreTokenizer, templateProcessing, wordPieceDecoder } from 'tokenizers';
import { fromHfTokenizerJson, loadTokenizer, saveTokenizer, trainWordPiece, type WordPieceTokenizer } from '../../src/data/text/index.js';
import { cldrCaptions } from './wordpiece-corpus.js';

const dir = mkdtempSync(join(tmpdir(), 'vilg-wp-hf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const captions = cldrCaptions(1800);
// Extra training text so that accented, Greek and astral-CJK characters are in the vocabulary.
const EXTRA_TRAIN = ['Café au lait, naïve résumé, ÉCOLE, Ñandú', 'ΟΔΟΣ οδος σς', 'İstanbul Straße', '𠀀𠀁 古文', 'ﬁne ① ｆｕｌｌ'];

/** Hand-written probes: accents, punctuation, mixed CJK + Latin, emoji, unknown words, specials, controls. */
const PROBES = [
  'A red circle to the LEFT of a blue square.', 'Smiling face with heart-eyes 😍!', '👩‍👩‍👧 family: woman, woman, girl',
  'Café naïve résumé — “quoted” «guillemets» (brackets) [x] {y}', "don't stop, it's fine . ok ?", '红色的圆在蓝色方块的左边。',
  '笑脸 with 红心 and a 🐱 cat', 'xylophonequartzjumbo zzyzx', 'a [MASK] b[SEP]c [CLS]', 'tab\there\u0000nul\u200bzw\u3000ideographic space',
  'supercalifragilistic'.repeat(6), '  ', '', '100% #1 @home $5 ^_^ ~tilde~ |pipe|', 'ﬁne ① ｆｕｌｌｗｉｄｔｈ', 'İstanbul Straße',
];
/**
 * Where the pure-JS package departs from the Rust library (we follow Rust): it looks for CJK one UTF-16
 * unit at a time, so it misses Ext-B ideographs; it lower-cases whole strings, so a word-final Σ
 * becomes ς where Rust (one code point at a time) gives σ.
 */
const RUST_ONLY = ['𠀀𠀁 ext-b 古文', 'ΟΔΟΣ ΣΟΦΟΣ'];

const texts = [...PROBES, ...RUST_ONLY, ...captions.slice(1500, 1800)];

let ours: WordPieceTokenizer;
let jsonPath: string;

test('setup: train ours on CLDR captions and save', () => {
  ours = trainWordPiece([...captions.slice(0, 1500), ...EXTRA_TRAIN], { vocabSize: 1500, minFrequency: 1 }).tokenizer;
  saveTokenizer(ours, dir);
  jsonPath = join(dir, 'tokenizer.json');
  assert.equal(ours.vocabSize, 1500);
});

test('native tokenizers (Tokenizer.fromFile) encodes and decodes exactly as we do', async () => {
  const hf = HfTokenizer.fromFile(jsonPath);
  assert.equal(hf.getVocabSize(true), ours.vocabSize);
  for (const [i, s] of SPECIALS.entries()) assert.equal(hf.tokenToId(s), i);
  for (const text of texts) {
    for (const addSpecialTokens of [true, false]) {
      const e = await hf.encode(text, null, { addSpecialTokens });
      const o = ours.encode(text, { addSpecialTokens });
      assert.deepEqual(o.ids, e.getIds(), `${JSON.stringify(text)} addSpecialTokens=${addSpecialTokens}`);
      assert.deepEqual(o.tokens, e.getTokens());
    }
    const ids = ours.encode(text).ids;
    assert.equal(ours.decode(ids), await hf.decode(ids, true), `decode ${JSON.stringify(text)}`);
    assert.equal(ours.decode(ids, { skipSpecialTokens: false }), await hf.decode(ids, false));
  }
  assert.ok(texts.some((t) => ours.encode(t).ids.includes(ours.unkId)), 'probes include unknown words');
});

test('native tokenizers: truncation to a maximum length agrees', async () => {
  const hf = HfTokenizer.fromFile(jsonPath);
  hf.setTruncation(7);
  for (const text of [...PROBES, ...captions.slice(1500, 1550)]) {
    const e = await hf.encode(text, null);
    assert.deepEqual(ours.encode(text, { maxLength: 7 }).ids, e.getIds(), text);
  }
});

test('@huggingface/tokenizers (pure JS) encodes and decodes exactly as we do', () => {
  const js = new JsTokenizer(JSON.parse(readFileSync(jsonPath, 'utf8')) as object, {});
  for (const text of [...PROBES, ...captions.slice(1500, 1800)]) {
    for (const add of [true, false]) {
      const e = js.encode(text, { add_special_tokens: add });
      const o = ours.encode(text, { addSpecialTokens: add });
      assert.deepEqual(o.ids, e.ids, `${JSON.stringify(text)} add_special_tokens=${add}`);
      assert.deepEqual(o.tokens, e.tokens);
    }
    const ids = ours.encode(text).ids;
    // The JS package adds a second, whole-string cleanup unless told not to; the decoder's own matches ours.
    if (ids.length > 0) assert.equal(ours.decode(ids), js.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }), text);
  }
});

test('we load a vocabulary trained by HF (vocab.txt, BERT layout) and encode exactly as HF does', async () => {
  // HF's WordPieceTrainer through the native bindings (its default trainer: no size cap, no specials).
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, captions.slice(0, 1500).join('\n') + '\n');
  const trained = new HfTokenizer(WordPiece.empty());
  trained.setNormalizer(bertNormalizer());
  trained.setPreTokenizer(bertPreTokenizer());
  trained.train([corpus]);
  const hfVocab = Object.entries(trained.getVocab()).sort((a, b) => a[1] - b[1]).map(([t]) => t);
  assert.ok(hfVocab.length > 1000 && hfVocab.some((t) => t.startsWith('##')));
  const vocabPath = join(dir, 'hf-vocab.txt');
  writeFileSync(vocabPath, [...SPECIALS, ...hfVocab].join('\n') + '\n');

  const hf = new HfTokenizer(await WordPiece.fromFile(vocabPath, { unkToken: '[UNK]' }));
  hf.setNormalizer(bertNormalizer());
  hf.setPreTokenizer(bertPreTokenizer());
  hf.setDecoder(wordPieceDecoder());
  hf.addSpecialTokens(SPECIALS);
  hf.setPostProcessor(templateProcessing('[CLS] $A [SEP]', null, [['[CLS]', 2], ['[SEP]', 3]]));
  const mine = loadTokenizer(vocabPath);
  assert.equal(mine.vocabSize, hf.getVocabSize(true));
  for (const text of texts) {
    for (const addSpecialTokens of [true, false]) {
      const e = await hf.encode(text, null, { addSpecialTokens });
      assert.deepEqual(mine.encode(text, { addSpecialTokens }).ids, e.getIds(), `${JSON.stringify(text)} addSpecialTokens=${addSpecialTokens}`);
    }
    const ids = mine.encode(text).ids;
    assert.equal(mine.decode(ids), await hf.decode(ids, true));
  }
});

test("we load HF's own tokenizer.json (specials added after training, at the end) and agree", async () => {
  const corpus = join(dir, 'corpus-small.txt');
  writeFileSync(corpus, captions.slice(0, 400).join('\n') + '\n');
  const hf = new HfTokenizer(WordPiece.empty());
  hf.setNormalizer(bertNormalizer());
  hf.setPreTokenizer(bertPreTokenizer());
  hf.setDecoder(wordPieceDecoder());
  hf.train([corpus]);
  const n = hf.getVocabSize();
  hf.addSpecialTokens(SPECIALS);
  hf.setPostProcessor(templateProcessing('[CLS] $A [SEP]', null, [['[CLS]', n + 2], ['[SEP]', n + 3]]));
  const path = join(dir, 'hf-tokenizer.json');
  hf.save(path);
  const mine = fromHfTokenizerJson(JSON.parse(readFileSync(path, 'utf8')), path);
  assert.deepEqual([mine.padId, mine.unkId, mine.clsId, mine.sepId, mine.maskId], [n, n + 1, n + 2, n + 3, n + 4]);
  let compared = 0;
  for (const text of [...captions.slice(0, 400), ...captions.slice(1500, 1700)]) {
    const o = mine.encode(text);
    // With [UNK] outside its model vocabulary, HF refuses words it cannot piece together; we give [UNK].
    const e = await hf.encode(text, null).catch((err: Error) => err);
    if (e instanceof Error) { assert.match(e.message, /Missing \[UNK\]/); assert.ok(o.ids.includes(mine.unkId), text); continue; }
    assert.deepEqual(o.ids, e.getIds(), text);
    compared++;
  }
  assert.ok(compared >= 400, `compared ${compared}`);
});
