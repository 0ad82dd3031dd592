// Our character classes (src/data/text/unicode.ts) against the native Hugging Face library, code
// point by code point: the normaliser (clean_text, CJK spacing, accents, case) and the pre-tokeniser.
// Planes 0–3 and 14 are checked in full; the unassigned planes 4–13 and the private-use planes 15–16
// are sampled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bertNormalizer, bertPreTokenizer } from 'tokenizers';
import { DEFAULT_NORMALIZER, normalizeBert, preTokenizeBert } from '../../src/data/text/index.js';

function* codePoints(): Generator<number> {
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const plane = cp >> 16;
    if (plane <= 3 || plane === 14 || cp % 97 === 0) yield cp;
  }
}

const hex = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;

test('normaliser agrees with HF BertNormalizer on every code point', () => {
  const cleanOnly = { ...DEFAULT_NORMALIZER, stripAccents: false, lowercase: false };
  const hfClean = bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: false, lowercase: false });
  const hfFull = bertNormalizer();
  const bad: string[] = [];
  let n = 0;
  for (const cp of codePoints()) {
    const s = `a${String.fromCodePoint(cp)}A`;
    if (normalizeBert(s, cleanOnly) !== hfClean.normalizeString(s)) bad.push(`${hex(cp)} clean`);
    if (normalizeBert(s) !== hfFull.normalizeString(s)) bad.push(`${hex(cp)} full`);
    n++;
  }
  assert.ok(n > 300_000);
  assert.deepEqual(bad.slice(0, 20), [], `${bad.length} code points differ`);
});

test('pre-tokeniser agrees with HF BertPreTokenizer on every code point', () => {
  const hf = bertPreTokenizer();
  const bad: string[] = [];
  for (const cp of codePoints()) {
    const s = `a${String.fromCodePoint(cp)}b`;
    const want = hf.preTokenizeString(s).map(([w]) => w);
    if (JSON.stringify(preTokenizeBert(s)) !== JSON.stringify(want)) bad.push(hex(cp));
  }
  assert.deepEqual(bad.slice(0, 20), [], `${bad.length} code points differ`);
});
