// Builds a WordPiece vocabulary the way Hugging Face's WordPieceTrainer does: it is a BPE trainer
// whose pieces inside a word carry the `##` prefix. Start from the alphabet (a character is plain
// at the start of a word and `##c` elsewhere), then repeatedly merge the most frequent adjacent
// pair of pieces (weighted by word frequency) until the vocabulary has the requested size or no
// pair is frequent enough. Unlike HF (whose `##` ids and tie-breaks follow Rust HashMap order),
// every choice here is deterministic: alphabet by code point, ties by lowest pair of ids.

import { preTokenizeBert, splitOnSpecials } from './basic.js';
import { normalizeBert } from './normalize.js';
import { DEFAULT_WORDPIECE_CONFIG, SPECIAL_TOKEN_ORDER, WordPieceTokenizer, type WordPieceConfig } from './wordpiece.js';

export interface WordPieceTrainerOptions {
  /** Target vocabulary size, specials and alphabet included (the alphabet is never cut to fit). */
  readonly vocabSize: number;
  /** Stop merging when the best pair occurs fewer times than this (HF's default is 0, i.e. off). */
  readonly minFrequency?: number;
  /** Keep only the most frequent characters; words lose the others (as in HF). Default: keep all. */
  readonly limitAlphabet?: number;
  /** Normaliser, special tokens, prefix (defaults: DEFAULT_WORDPIECE_CONFIG). */
  readonly tokenizer?: Partial<WordPieceConfig>;
  /** Called now and then with (merges done, merges wanted at most). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface TrainingStats {
  words: number;
  distinctWords: number;
  alphabet: number;
  /** Characters dropped by limitAlphabet. */
  droppedChars: number;
  merges: number;
  /** Why merging stopped: the size was reached, or no pair was left at minFrequency. */
  stoppedBy: 'vocabSize' | 'minFrequency';
}

/** Word frequencies of a corpus after normalisation and pre-tokenisation (special tokens left out). */
export function countWords(corpus: Iterable<string>, config: Partial<WordPieceConfig> = {}): Map<string, number> {
  const c = { ...DEFAULT_WORDPIECE_CONFIG, ...config };
  const specials = SPECIAL_TOKEN_ORDER.map((r) => c.specialTokens[r]);
  const counts = new Map<string, number>();
  for (const text of corpus) {
    for (const seg of splitOnSpecials(text, specials)) {
      if (seg.text === undefined) continue;
      for (const w of preTokenizeBert(normalizeBert(seg.text, c.normalizer))) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

export function trainWordPiece(corpus: Iterable<string>, opts: WordPieceTrainerOptions): { tokenizer: WordPieceTokenizer; stats: TrainingStats } {
  const config: WordPieceConfig = { ...DEFAULT_WORDPIECE_CONFIG, ...opts.tokenizer };
  const { vocab, stats } = trainVocab(countWords(corpus, config), config, opts);
  return { tokenizer: new WordPieceTokenizer(vocab, config), stats };
}

// Pairs of ids as one number: a * 2^26 + b stays exact in a double, and sorts as (a, b) does.
const PAIR = 2 ** 26;

/** The BPE merge loop over word counts; returns the vocabulary in id order. */
export function trainVocab(wordCounts: ReadonlyMap<string, number>, config: WordPieceConfig, opts: WordPieceTrainerOptions): { vocab: string[]; stats: TrainingStats } {
  const { vocabSize } = opts, minFrequency = opts.minFrequency ?? 0;
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize >= PAIR) throw new RangeError(`vocabSize must be an integer in [1, ${PAIR}), got ${vocabSize}`);
  if (!Number.isInteger(minFrequency) || minFrequency < 0) throw new RangeError(`minFrequency must be a non-negative integer, got ${minFrequency}`);
  if (opts.limitAlphabet !== undefined && (!Number.isInteger(opts.limitAlphabet) || opts.limitAlphabet < 0)) throw new RangeError(`limitAlphabet must be a non-negative integer, got ${opts.limitAlphabet}`);
  const prefix = config.continuingSubwordPrefix;
  const vocab: string[] = [];
  const ids = new Map<string, number>();
  const add = (t: string): number => {
    let id = ids.get(t);
    if (id === undefined) { id = vocab.length; vocab.push(t); ids.set(t, id); }
    return id;
  };
  for (const r of SPECIAL_TOKEN_ORDER) add(config.specialTokens[r]);

  // Alphabet: characters by total frequency; limitAlphabet keeps the most frequent (ties: lower code point).
  const charCount = new Map<string, number>();
  let words = 0;
  for (const [w, n] of wordCounts) {
    words += n;
    for (const ch of w) charCount.set(ch, (charCount.get(ch) ?? 0) + n);
  }
  const byCodePoint = (a: string, b: string): number => a.codePointAt(0)! - b.codePointAt(0)!;
  let alphabet = [...charCount.keys()];
  if (opts.limitAlphabet !== undefined && alphabet.length > opts.limitAlphabet) {
    alphabet.sort((a, b) => charCount.get(b)! - charCount.get(a)! || byCodePoint(a, b));
    alphabet = alphabet.slice(0, opts.limitAlphabet);
  }
  alphabet.sort(byCodePoint);
  const kept = new Set(alphabet);
  for (const ch of alphabet) add(ch);

  // Words as arrays of piece ids. `##c` pieces are added in code point order after the plain ones.
  const inner = new Set<string>();
  for (const w of wordCounts.keys()) Array.from(w).forEach((ch, i) => { if (i > 0 && kept.has(ch)) inner.add(ch); });
  for (const ch of [...inner].sort(byCodePoint)) add(prefix + ch);
  const initial = vocab.length;
  const symbols: number[][] = [], counts: number[] = [];
  for (const [w, n] of wordCounts) {
    const s: number[] = [];
    Array.from(w).forEach((ch, i) => { if (kept.has(ch)) s.push(ids.get(i > 0 ? prefix + ch : ch)!); });
    if (s.length > 0) { symbols.push(s); counts.push(n); }
  }

  // Pair counts, the words each pair occurs in (a superset: stale entries are harmless), a max-heap.
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  symbols.forEach((s, wi) => {
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i]! * PAIR + s[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + counts[wi]!);
      let set = where.get(key);
      if (!set) where.set(key, (set = new Set()));
      set.add(wi);
    }
  });
  const heap = new PairHeap();
  for (const [key, n] of pairCount) heap.push(n, key);

  const wanted = Math.max(0, vocabSize - vocab.length);
  let merges = 0, stoppedBy: TrainingStats['stoppedBy'] = 'minFrequency';
  while (true) {
    if (vocab.length >= vocabSize) { stoppedBy = 'vocabSize'; break; }
    const top = heap.pop();
    if (top === undefined) break;
    const current = pairCount.get(top.key) ?? 0;
    if (current !== top.count) { // stale entry: the count fell since it was pushed (rises push afresh)
      if (current > 0 && current < top.count) heap.push(current, top.key);
      continue;
    }
    if (current < Math.max(1, minFrequency)) break;
    const a = Math.floor(top.key / PAIR), b = top.key % PAIR;
    const right = vocab[b]!;
    const merged = add(vocab[a]! + (right.startsWith(prefix) ? right.slice(prefix.length) : right));
    merges++;
    const touched = new Set<number>();
    const bump = (key: number, delta: number, wi: number): void => {
      pairCount.set(key, (pairCount.get(key) ?? 0) + delta);
      if (delta > 0) {
        let set = where.get(key);
        if (!set) where.set(key, (set = new Set()));
        set.add(wi);
        touched.add(key);
      }
    };
    for (const wi of where.get(top.key) ?? []) {
      const s = symbols[wi]!, n = counts[wi]!;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] !== a || s[i + 1] !== b) continue;
        if (i > 0) { bump(s[i - 1]! * PAIR + a, -n, wi); bump(s[i - 1]! * PAIR + merged, n, wi); }
        if (i + 2 < s.length) { bump(b * PAIR + s[i + 2]!, -n, wi); bump(merged * PAIR + s[i + 2]!, n, wi); }
        s.splice(i, 2, merged);
      }
    }
    pairCount.delete(top.key);
    where.delete(top.key);
    for (const key of touched) {
      const n = pairCount.get(key) ?? 0;
      if (n > 0) heap.push(n, key);
    }
    if (opts.onProgress && (merges & 255) === 0) opts.onProgress(merges, wanted);
  }
  opts.onProgress?.(merges, wanted);
  return { vocab, stats: { words, distinctWords: wordCounts.size, alphabet: initial - SPECIAL_TOKEN_ORDER.length, droppedChars: charCount.size - kept.size, merges, stoppedBy } };
}

/** Binary max-heap on (count desc, pair key asc): the most frequent pair, ties to the lowest ids. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    return ci !== cj ? ci > cj : this.keys[i]! < this.keys[j]!;
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }

  push(count: number, key: number): void {
    this.counts.push(count); this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p); i = p;
    }
  }

  pop(): { count: number; key: number } | undefined {
    const n = this.counts.length;
    if (n === 0) return undefined;
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    this.swap(0, n - 1);
    this.counts.pop(); this.keys.pop();
    let i = 0;
    while (true) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < n - 1 && this.before(l, m)) m = l;
      if (r < n - 1 && this.before(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m); i = m;
    }
    return top;
  }
}
