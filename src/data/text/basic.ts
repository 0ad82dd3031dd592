// Splitting before WordPiece: special tokens first (matched in the raw text, as HF's added tokens
// with normalized=false are), then BertPreTokenizer — split on whitespace (dropped) and on
// punctuation (each punctuation character is a word of its own).

import { isPunctuation, isWhitespace } from './unicode.js';

/** BertPreTokenizer: whitespace-separated words with every punctuation character split off. */
export function preTokenizeBert(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (isWhitespace(cp)) {
      if (cur) { words.push(cur); cur = ''; }
    } else if (isPunctuation(cp)) {
      if (cur) { words.push(cur); cur = ''; }
      words.push(ch);
    } else cur += ch;
  }
  if (cur) words.push(cur);
  return words;
}

/** A piece of input text: plain text to normalise and tokenise, or a special token found verbatim. */
export type Segment = { text: string; special?: undefined } | { special: string; text?: undefined };

/**
 * Splits `text` around verbatim occurrences of `specials`, leftmost-longest first (HF uses an
 * Aho–Corasick automaton with the same semantics). Empty text segments are dropped.
 */
export function splitOnSpecials(text: string, specials: readonly string[]): Segment[] {
  const live = specials.filter((s) => s.length > 0);
  if (live.length === 0 || !live.some((s) => text.includes(s))) return text ? [{ text }] : [];
  const out: Segment[] = [];
  let start = 0, i = 0;
  while (i < text.length) {
    let best = '';
    for (const s of live) if (s.length > best.length && text.startsWith(s, i)) best = s;
    if (best) {
      if (i > start) out.push({ text: text.slice(start, i) });
      out.push({ special: best });
      i += best.length;
      start = i;
    } else i++;
  }
  if (start < text.length) out.push({ text: text.slice(start) });
  return out;
}
