// WordPiece: normaliser, pre-tokeniser, greedy matching, decode, trainer, save/load.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DEFAULT_NORMALIZER, WordPieceTokenizer, fromHfTokenizerJson, loadTokenizer, normalizeBert, parseVocabText, preTokenizeBert,
  saveTokenizer, toHfTokenizerJson, trainWordPiece,
} from '../../src/data/text/index.js';
import { cldrCaptions } from './wordpiece-corpus.js';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

test('normaliser: control characters, whitespace, CJK, accents, case', () => {
  assert.equal(normalizeBert('a\u0000b\u200bc\ufffdd\u0007e'), 'abcde');
  assert.equal(normalizeBert('a\tb\nc\r\nd\u3000e\u00a0f'), 'a b c  d e f');
  assert.equal(normalizeBert('红色mug'), ' 红  色 mug');
  assert.equal(normalizeBert('Café NAÏVE Ñandú'), 'cafe naive nandu');
  const cased = { ...DEFAULT_NORMALIZER, lowercase: false };
  assert.equal(normalizeBert('Café NAÏVE', cased), 'Café NAÏVE', 'strip_accents follows lowercase');
  assert.equal(normalizeBert('Café', { ...cased, stripAccents: true }), 'Cafe');
  assert.equal(normalizeBert('Café', { ...DEFAULT_NORMALIZER, stripAccents: false }), 'café');
  // One code point at a time, as the Rust code lower-cases: a final capital sigma becomes σ, not ς.
  assert.equal(normalizeBert('ΟΔΟΣ'), 'οδοσ');
  assert.equal(normalizeBert('\u{20000}x'), ' \u{20000} x', 'astral CJK (extension B) is isolated too');
});

test('pre-tokeniser: whitespace dropped, every punctuation character alone', () => {
  assert.deepEqual(preTokenizeBert("hello, world! it's 3.5"), ['hello', ',', 'world', '!', 'it', "'", 's', '3', '.', '5']);
  assert.deepEqual(preTokenizeBert('  a\u2003b  '), ['a', 'b']);
  assert.deepEqual(preTokenizeBert('«x»—y…'), ['«', 'x', '»', '—', 'y', '…']);
  assert.deepEqual(preTokenizeBert('$5+3=8^2`~|'), ['$', '5', '+', '3', '=', '8', '^', '2', '`', '~', '|'], 'ASCII symbols count as punctuation');
  assert.deepEqual(preTokenizeBert('😀👍'), ['😀👍'], 'emoji are not punctuation');
});

const HAND_VOCAB = [...SPECIALS, 'un', '##aff', '##able', 'a', '##b', 'ab', 'want', '##ed', 'runn', '##ing', ',', '.', 'the', '红', "'", 's'];

test('WordPiece: greedy longest match, ## continuations, [UNK] for whole words', () => {
  const tok = new WordPieceTokenizer(HAND_VOCAB);
  assert.deepEqual(tok.tokenize('unaffable'), ['un', '##aff', '##able']);
  assert.deepEqual(tok.tokenize('UNwanted, running'), ['[UNK]', ',', 'runn', '##ing'], 'a word with an unmatched piece is one [UNK]');
  assert.deepEqual(tok.tokenize('ab abb'), ['ab', 'ab', '##b'], 'longest match first');
  assert.deepEqual(tok.tokenize('a' + 'b'.repeat(99)), ['ab', ...Array<string>(98).fill('##b')]);
  assert.deepEqual(tok.tokenize('a' + 'b'.repeat(100)), ['[UNK]'], 'over max_input_chars_per_word');
  assert.deepEqual(tok.tokenize('红x'), ['红', '[UNK]']);
  const e = tok.encode('the [MASK] ab.');
  assert.deepEqual(e.tokens, ['[CLS]', 'the', '[MASK]', 'ab', '.', '[SEP]'], 'special tokens in the text are kept whole');
  assert.deepEqual(e.ids, [2, 17, 4, 10, 16, 3]);
  assert.deepEqual(tok.encode('the ab', { addSpecialTokens: false }).ids, [17, 10]);
  assert.deepEqual(tok.encode('the ab the ab', { maxLength: 4 }).tokens, ['[CLS]', 'the', 'ab', '[SEP]']);
  assert.equal(tok.encode('', {}).ids.length, 2);
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId, tok.vocabSize], [0, 1, 2, 3, 4, HAND_VOCAB.length]);
  assert.equal(tok.tokenToId('##able'), 7);
  assert.equal(tok.idToToken(7), '##able');
  assert.equal(tok.tokenToId('nope'), undefined);
});

test('decode: ## merging, specials skipped, HF cleanup per piece', () => {
  const tok = new WordPieceTokenizer(HAND_VOCAB);
  const ids = tok.encode('the unaffable, running.').ids;
  assert.equal(tok.decode(ids), 'the unaffable, running.');
  assert.equal(tok.decode(ids, { skipSpecialTokens: false }), '[CLS] the unaffable, running. [SEP]');
  assert.equal(tok.decode(ids, { cleanup: false }), 'the unaffable , running .');
  const unk = tok.encode('the runnings').ids;
  assert.equal(tok.decode(unk), 'the', '[UNK] is a special token too (as in HF)');
  assert.equal(tok.decode(unk, { skipSpecialTokens: false }), '[CLS] the [UNK] [SEP]');
  assert.equal(tok.decode(tok.encode("the ' s").ids), "the ' s", "cleanup works piece by piece, like the Rust decoder");
  assert.equal(tok.decode([]), '');
  assert.throws(() => tok.decode([HAND_VOCAB.length]), /outside the vocabulary/);
});

test('bad vocabularies are refused with the reason', () => {
  assert.throws(() => new WordPieceTokenizer([...SPECIALS, 'a', 'a']), /'a' twice \(ids 5 and 6\)/);
  assert.throws(() => new WordPieceTokenizer(['[PAD]', '[CLS]', '[SEP]', '[MASK]']), /no unk token '\[UNK\]'/);
  assert.throws(() => new WordPieceTokenizer([...SPECIALS, '']), /entry 5 is empty/);
  assert.throws(() => parseVocabText('[PAD]\nx\n\ny\n', 'v.txt'), /v.txt line 3: empty token/);
  assert.throws(() => parseVocabText('x\ny\nx\n', 'v.txt'), /v.txt line 3: duplicate token 'x' \(first on line 1\)/);
  assert.deepEqual(parseVocabText('a\r\nb \nc'), ['a', 'b', 'c']);
});

const CORPUS = ['a red circle left of a blue square', 'a blue square above a green triangle', 'the red circle is small', 'a small green circle',
  '红色的圆在蓝色方块的左边', '绿色的三角形', 'Café au lait, naïve résumé!', 'smiling face with heart-eyes'];

test('trainer: specials first, sorted alphabet, exact size, deterministic and order-independent', () => {
  const { tokenizer: tok, stats } = trainWordPiece(CORPUS, { vocabSize: 120 });
  assert.deepEqual(tok.vocab.slice(0, 5), SPECIALS);
  assert.equal(tok.vocabSize, 120);
  assert.equal(stats.stoppedBy, 'vocabSize');
  const plain = tok.vocab.slice(5, 5 + stats.alphabet).filter((t) => !t.startsWith('##'));
  assert.deepEqual(plain, [...plain].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  assert.ok(plain.includes('é') === false && plain.includes('e'), 'accents stripped before training');
  assert.ok(tok.vocab.includes('##e') && tok.vocab.includes('红') && !tok.vocab.includes('##红'), 'CJK characters are words of their own');
  const again = trainWordPiece([...CORPUS].reverse(), { vocabSize: 120 }).tokenizer;
  assert.deepEqual(again.vocab, tok.vocab, 'corpus order does not matter');
  // Every training caption encodes without [UNK] and decodes to its normalised words.
  for (const s of CORPUS) {
    const ids = tok.encode(s, { addSpecialTokens: false }).ids;
    assert.ok(!ids.includes(tok.unkId), s);
    assert.equal(tok.decode(ids, { cleanup: false }), tok.words(s).join(' '));
  }
  assert.ok(tok.encode('circle', { addSpecialTokens: false }).ids.length === 1, 'frequent words become one token');
});

test('trainer: minFrequency stops early, limitAlphabet drops rare characters', () => {
  const { tokenizer, stats } = trainWordPiece(CORPUS, { vocabSize: 10_000, minFrequency: 2 });
  assert.equal(stats.stoppedBy, 'minFrequency');
  assert.ok(tokenizer.vocabSize < 10_000 && stats.merges > 0);
  const full = trainWordPiece(CORPUS, { vocabSize: 10_000, minFrequency: 0 });
  assert.ok(full.stats.merges > stats.merges);
  for (const s of CORPUS) for (const w of full.tokenizer.words(s)) assert.equal(full.tokenizer.wordPieces(w).length, 1, `with no floor every word ends whole: ${w}`);
  const limited = trainWordPiece(CORPUS, { vocabSize: 100, limitAlphabet: 10 });
  const initial = limited.tokenizer.vocab.slice(5, 5 + limited.stats.alphabet);
  assert.equal(initial.filter((t) => !t.startsWith('##')).length, 10, 'ten plain characters');
  assert.ok(limited.stats.droppedChars > 0);
  assert.throws(() => trainWordPiece(CORPUS, { vocabSize: 0 }), /vocabSize/);
  assert.throws(() => trainWordPiece(CORPUS, { vocabSize: 100, minFrequency: -1 }), /minFrequency/);
});

test('trainer: thousands of real captions (CLDR en + zh) in well under a second', () => {
  const caps = cldrCaptions(4000);
  const t0 = performance.now();
  const { tokenizer, stats } = trainWordPiece(caps, { vocabSize: 4000, minFrequency: 2 });
  const ms = performance.now() - t0;
  assert.equal(tokenizer.vocabSize, 4000);
  assert.ok(stats.merges > 500);
  assert.ok(ms < 3000, `training took ${ms.toFixed(0)} ms`);
});

test('save and load: vocab.txt + config, tokenizer.json, bare vocab.txt give the same tokenizer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vilg-wp-'));
  try {
    const { tokenizer } = trainWordPiece(CORPUS, { vocabSize: 90, tokenizer: { normalizer: { ...DEFAULT_NORMALIZER, lowercase: false } } });
    saveTokenizer(tokenizer, dir, { note: 'test' });
    assert.equal(readFileSync(join(dir, 'vocab.txt'), 'utf8'), tokenizer.vocab.join('\n') + '\n');
    const text = 'A red Circle, naïve 红色! [MASK] zebra';
    const want = tokenizer.encode(text);
    for (const path of [dir, join(dir, 'tokenizer.json')]) {
      const t = loadTokenizer(path);
      assert.deepEqual(t.vocab, tokenizer.vocab);
      assert.deepEqual(t.config.normalizer, tokenizer.config.normalizer);
      assert.deepEqual(t.encode(text), want, path);
    }
    const bare = loadTokenizer(join(dir, 'vocab.txt'));
    assert.equal(bare.config.normalizer.lowercase, true, 'a bare vocab.txt gets uncased defaults');
    writeFileSync(join(dir, 'vocab.txt'), tokenizer.vocab.slice(0, 50).join('\n'));
    assert.throws(() => loadTokenizer(dir), /vocabSize 90 but .*vocab.txt has 50 tokens/);
    assert.throws(() => loadTokenizer(join(dir, 'missing')), /does not exist/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('tokenizer.json: BERT layout, and unsupported files are refused clearly', () => {
  const { tokenizer } = trainWordPiece(CORPUS, { vocabSize: 80 });
  const json = toHfTokenizerJson(tokenizer);
  assert.equal(json.model.vocab['[CLS]'], 2);
  assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special, t.normalized]), SPECIALS.map((s, i) => [i, s, true, false]));
  assert.equal(json.normalizer.strip_accents, null);
  assert.deepEqual(fromHfTokenizerJson(JSON.parse(JSON.stringify(json))).vocab, tokenizer.vocab);
  const bad = (patch: (j: Record<string, unknown>) => void): unknown => { const j = JSON.parse(JSON.stringify(json)) as Record<string, unknown>; patch(j); return j; };
  assert.throws(() => fromHfTokenizerJson(bad((j) => { (j.model as Record<string, unknown>).type = 'BPE'; }), 'x.json'), /x.json: model.type is BPE/);
  assert.throws(() => fromHfTokenizerJson(bad((j) => { j.pre_tokenizer = { type: 'Whitespace' }; })), /pre_tokenizer Whitespace is not supported/);
  assert.throws(() => fromHfTokenizerJson(bad((j) => { delete (j.model as { vocab: Record<string, number> }).vocab['##e']; })), /no token has id \d+ \(ids must be contiguous\)/);
  assert.throws(() => fromHfTokenizerJson(bad((j) => { (j.model as { vocab: Record<string, number> }).vocab['zz'] = 7; })), /id 7 is both/);
});
