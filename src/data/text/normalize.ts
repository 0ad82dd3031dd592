// BertNormalizer, step for step as Hugging Face `tokenizers` runs it: clean_text, then spaces around
// CJK ideographs, then accent stripping (NFD, drop non-spacing marks), then lower-casing one code
// point at a time (so a final capital sigma becomes σ, not ς, exactly as the Rust code does).

import { isChineseChar, isControl, isNonspacingMark, isWhitespace, nfdLikeHf } from './unicode.js';

export interface BertNormalizerOptions {
  /** Remove control characters, U+0000 and U+FFFD; map every whitespace character to a space. */
  readonly cleanText: boolean;
  /** Put spaces around every CJK ideograph so that each becomes a word of its own. */
  readonly handleChineseChars: boolean;
  /** Strip accents; null follows `lowercase` (HF's default, as in bert-base-uncased). */
  readonly stripAccents: boolean | null;
  /** Lower-case everything. */
  readonly lowercase: boolean;
}

export const DEFAULT_NORMALIZER: BertNormalizerOptions = Object.freeze({
  cleanText: true, // as BERT: captions scraped from anywhere carry stray control characters
  handleChineseChars: true, // ERNIE is Chinese-first: one token per hanzi
  stripAccents: null, // follow lowercase, HF's default
  lowercase: true, // uncased vocabularies are smaller and suit short captions
});

export function normalizeBert(text: string, o: BertNormalizerOptions = DEFAULT_NORMALIZER): string {
  let s = text;
  if (o.cleanText) {
    let out = '';
    for (const ch of s) {
      const cp = ch.codePointAt(0)!;
      if (cp === 0 || cp === 0xfffd || isControl(cp)) continue;
      out += isWhitespace(cp) ? ' ' : ch;
    }
    s = out;
  }
  if (o.handleChineseChars) {
    let out = '';
    for (const ch of s) out += isChineseChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
    s = out;
  }
  if (o.stripAccents ?? o.lowercase) {
    let out = '';
    for (const ch of nfdLikeHf(s)) if (!isNonspacingMark(ch.codePointAt(0)!)) out += ch;
    s = out;
  }
  if (o.lowercase) {
    let out = '';
    for (const ch of s) out += ch.toLowerCase();
    s = out;
  }
  return s;
}
