// Trains the text tokenizer of a prepared data set (what `vilg data tokenizer` runs): every caption
// of the selected languages in the train split, then a report measured on the val split.

import type { Lang, SampleRecord } from '../format.js';
import { openDataset } from '../format.js';
import { progress, type Progress } from '../../util/progress.js';
import { saveTokenizer } from './io.js';
import { DEFAULT_NORMALIZER } from './normalize.js';
import { trainWordPiece, type TrainingStats } from './trainer.js';
import type { WordPieceTokenizer } from './wordpiece.js';

export interface DatasetTokenizerOptions {
  /** A prepared data set directory (src/data/format.ts). */
  readonly data: string;
  /** Where vocab.txt, tokenizer.json and tokenizer-config.json go. */
  readonly out: string;
  readonly vocabSize: number;
  /** Caption languages to train on. */
  readonly langs: readonly Lang[];
  readonly minFrequency: number;
  readonly lowercase: boolean;
  readonly limitAlphabet?: number;
  /** Print a progress line for the merges (default false). */
  readonly showProgress?: boolean;
}

export interface SplitTextStats {
  captions: number;
  tokens: number;
  unkTokens: number;
  /** Captions with at least one [UNK]. */
  captionsWithUnk: number;
  /** Mean tokens per caption (no [CLS]/[SEP]), by language. */
  meanTokens: Partial<Record<Lang, number>>;
}

export interface DatasetTokenizerReport {
  vocabSize: number;
  requestedVocabSize: number;
  trainCaptions: number;
  stats: TrainingStats;
  seconds: number;
  train: SplitTextStats;
  val: SplitTextStats;
  files: string[];
}

/**
 * Every text the generator reads or writes: captions, and the VQA questions and answers (a tokenizer trained
 * on captions alone left the shapes questions' words — "how", "many", "what", "?" — as [UNK]).
 */
function captionsOf(records: readonly SampleRecord[], langs: readonly Lang[]): { lang: Lang; text: string }[] {
  const out: { lang: Lang; text: string }[] = [];
  const add = (lang: Lang, text: string | undefined): void => { if (text !== undefined && text.trim() !== '') out.push({ lang, text }); };
  for (const r of records) {
    for (const lang of langs) {
      for (const text of r.captions[lang] ?? []) add(lang, text);
      for (const q of r.vqa ?? []) { add(lang, q.question[lang]); add(lang, q.answer[lang]); }
    }
  }
  return out;
}

/** Token counts of a list of captions under `tok`. */
export function measureCaptions(tok: WordPieceTokenizer, caps: readonly { lang: Lang; text: string }[]): SplitTextStats {
  let tokens = 0, unkTokens = 0, captionsWithUnk = 0;
  const perLang = new Map<Lang, { n: number; tokens: number }>();
  for (const { lang, text } of caps) {
    const ids = tok.encode(text, { addSpecialTokens: false }).ids;
    const unk = ids.filter((id) => id === tok.unkId).length;
    tokens += ids.length; unkTokens += unk; if (unk > 0) captionsWithUnk++;
    const p = perLang.get(lang) ?? { n: 0, tokens: 0 };
    p.n++; p.tokens += ids.length; perLang.set(lang, p);
  }
  const meanTokens: Partial<Record<Lang, number>> = {};
  for (const [lang, p] of perLang) meanTokens[lang] = p.tokens / p.n;
  return { captions: caps.length, tokens, unkTokens, captionsWithUnk, meanTokens };
}

export function trainDatasetTokenizer(o: DatasetTokenizerOptions): DatasetTokenizerReport {
  if (o.langs.length === 0) throw new RangeError('no caption language selected');
  const ds = openDataset(o.data);
  const trainCaps = captionsOf(ds.split('train'), o.langs);
  if (trainCaps.length === 0) throw new RangeError(`${o.data}: the train split has no ${o.langs.join('/')} captions`);
  const t0 = performance.now();
  let bar: Progress | undefined, last = 0;
  const onProgress = (done: number, total: number): void => {
    bar ??= progress('wordpiece merges', total);
    if (done === last) return;
    bar.tick(done - last);
    last = done;
  };
  const { tokenizer, stats } = trainWordPiece(trainCaps.map((c) => c.text), {
    vocabSize: o.vocabSize, minFrequency: o.minFrequency, ...(o.limitAlphabet !== undefined ? { limitAlphabet: o.limitAlphabet } : {}),
    tokenizer: { normalizer: { ...DEFAULT_NORMALIZER, lowercase: o.lowercase, stripAccents: null } },
    ...(o.showProgress ? { onProgress } : {}),
  });
  const seconds = (performance.now() - t0) / 1000;
  bar?.done(`${stats.merges} merges`);
  const files = saveTokenizer(tokenizer, o.out, {
    data: o.data, dataset: ds.card.name, split: 'train', langs: o.langs, captions: trainCaps.length,
    requestedVocabSize: o.vocabSize, minFrequency: o.minFrequency, lowercase: o.lowercase,
    ...(o.limitAlphabet !== undefined ? { limitAlphabet: o.limitAlphabet } : {}), stats,
  });
  return {
    vocabSize: tokenizer.vocabSize, requestedVocabSize: o.vocabSize, trainCaptions: trainCaps.length, stats, seconds,
    train: measureCaptions(tokenizer, trainCaps), val: measureCaptions(tokenizer, captionsOf(ds.split('val'), o.langs)), files,
  };
}

function pct(a: number, b: number): string { return b > 0 ? `${((100 * a) / b).toFixed(2)}%` : 'n/a'; }

function splitLine(name: string, s: SplitTextStats): string {
  const means = Object.entries(s.meanTokens).map(([l, m]) => `${l} ${m.toFixed(2)}`).join(', ');
  const mean = s.captions > 0 ? (s.tokens / s.captions).toFixed(2) : 'n/a';
  return `${name}: ${s.captions} captions, ${s.tokens} tokens, [UNK] ${pct(s.unkTokens, s.tokens)} of tokens (${s.captionsWithUnk} captions with [UNK]), ${mean} tokens per caption${means ? ` (${means})` : ''}`;
}

export function formatTokenizerReport(r: DatasetTokenizerReport): string {
  const s = r.stats;
  const lines = [
    `vocabulary: ${r.vocabSize} tokens (5 special, ${s.alphabet} alphabet, ${s.merges} merges) from ${r.trainCaptions} train captions, ${s.distinctWords} distinct words, in ${r.seconds.toFixed(2)} s`,
  ];
  if (r.vocabSize > r.requestedVocabSize) lines.push(`note: the alphabet alone needs ${5 + s.alphabet} entries, more than the ${r.requestedVocabSize} asked for (use --limit-alphabet to cap it)`);
  else if (r.vocabSize < r.requestedVocabSize) lines.push(`note: stopped at ${r.vocabSize} < ${r.requestedVocabSize}: no pair left with the minimum frequency`);
  if (s.droppedChars > 0) lines.push(`note: limit-alphabet dropped ${s.droppedChars} rare characters`);
  lines.push(splitLine('train', r.train), splitLine('val', r.val), `wrote ${r.files.join(', ')}`);
  return lines.join('\n');
}
