// The WordPiece tokenizer of BERT/ERNIE, matching Hugging Face `tokenizers` (BertNormalizer,
// BertPreTokenizer, WordPiece model, `[CLS] $A [SEP]` template, WordPiece decoder) token for token.

import { preTokenizeBert, splitOnSpecials } from './basic.js';
import { DEFAULT_NORMALIZER, normalizeBert, type BertNormalizerOptions } from './normalize.js';

/** The special tokens a tokenizer needs, by role. */
export interface SpecialTokens {
  readonly pad: string;
  readonly unk: string;
  readonly cls: string;
  readonly sep: string;
  readonly mask: string;
}

export const BERT_SPECIAL_TOKENS: SpecialTokens = Object.freeze({ pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' });

/** The order in which our trainer puts the specials first (ids 0–4). */
export const SPECIAL_TOKEN_ORDER: readonly (keyof SpecialTokens)[] = Object.freeze(['pad', 'unk', 'cls', 'sep', 'mask']);

export interface WordPieceConfig {
  readonly normalizer: BertNormalizerOptions;
  readonly specialTokens: SpecialTokens;
  /** Marks a piece that continues a word. */
  readonly continuingSubwordPrefix: string;
  /** Longer words become a single [UNK] without being tried. */
  readonly maxInputCharsPerWord: number;
}

export const DEFAULT_WORDPIECE_CONFIG: WordPieceConfig = Object.freeze({
  normalizer: DEFAULT_NORMALIZER, // uncased, accents stripped, CJK split
  specialTokens: BERT_SPECIAL_TOKENS, // [PAD] [UNK] [CLS] [SEP] [MASK]
  continuingSubwordPrefix: '##', // BERT's and HF's
  maxInputCharsPerWord: 100, // BERT's and HF's
});

export interface Encoding {
  ids: number[];
  tokens: string[];
}

export interface EncodeOptions {
  /** Wrap as `[CLS] text [SEP]` (default true, as HF). */
  addSpecialTokens?: boolean;
  /** Truncate to at most this many ids, specials included (HF truncation, longest-first). */
  maxLength?: number;
}

export interface DecodeOptions {
  /** Leave out special tokens (default true). */
  skipSpecialTokens?: boolean;
  /** HF's WordPiece-decoder cleanup (" ." → "." and friends), default true. */
  cleanup?: boolean;
}

export class WordPieceTokenizer {
  readonly config: WordPieceConfig;
  private readonly vocabList: readonly string[];
  private readonly ids: Map<string, number>;
  private readonly specialIds: ReadonlySet<number>;
  private readonly specialStrings: readonly string[];
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number;

  /** `vocab[i]` is the token of id i. Every special token must be in it. */
  constructor(vocab: readonly string[], config: Partial<WordPieceConfig> = {}) {
    this.config = Object.freeze({ ...DEFAULT_WORDPIECE_CONFIG, ...config });
    const c = this.config;
    if (!Number.isInteger(c.maxInputCharsPerWord) || c.maxInputCharsPerWord < 1) throw new RangeError(`maxInputCharsPerWord must be a positive integer, got ${c.maxInputCharsPerWord}`);
    if (!c.continuingSubwordPrefix) throw new RangeError('continuingSubwordPrefix must not be empty');
    this.vocabList = Object.freeze([...vocab]);
    this.ids = new Map();
    vocab.forEach((t, i) => {
      if (t === '') throw new RangeError(`vocabulary entry ${i} is empty`);
      const prev = this.ids.get(t);
      if (prev !== undefined) throw new RangeError(`vocabulary has '${t}' twice (ids ${prev} and ${i})`);
      this.ids.set(t, i);
    });
    const need = (role: keyof SpecialTokens): number => {
      const tok = c.specialTokens[role];
      const id = this.ids.get(tok);
      if (id === undefined) throw new RangeError(`vocabulary has no ${role} token '${tok}'`);
      return id;
    };
    this.padId = need('pad'); this.unkId = need('unk'); this.clsId = need('cls'); this.sepId = need('sep'); this.maskId = need('mask');
    this.specialIds = new Set([this.padId, this.unkId, this.clsId, this.sepId, this.maskId]);
    this.specialStrings = Object.freeze(SPECIAL_TOKEN_ORDER.map((r) => c.specialTokens[r]));
  }

  get vocabSize(): number { return this.vocabList.length; }
  /** The vocabulary in id order. */
  get vocab(): readonly string[] { return this.vocabList; }
  /** Special token strings in [PAD] [UNK] [CLS] [SEP] [MASK] order. */
  get specialTokenList(): readonly string[] { return this.specialStrings; }

  tokenToId(token: string): number | undefined { return this.ids.get(token); }
  idToToken(id: number): string | undefined { return this.vocabList[id]; }
  isSpecialId(id: number): boolean { return this.specialIds.has(id); }

  normalize(text: string): string { return normalizeBert(text, this.config.normalizer); }

  /** Normalised, pre-tokenised words (special tokens in the text kept whole). */
  words(text: string): string[] {
    const out: string[] = [];
    for (const seg of splitOnSpecials(text, this.specialStrings)) {
      if (seg.special !== undefined) out.push(seg.special);
      else out.push(...preTokenizeBert(this.normalize(seg.text)));
    }
    return out;
  }

  /** Greedy longest-match-first WordPiece of one pre-tokenised word. */
  wordPieces(word: string): string[] {
    const chars = Array.from(word);
    if (chars.length > this.config.maxInputCharsPerWord) return [this.config.specialTokens.unk];
    const prefix = this.config.continuingSubwordPrefix;
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length, found: string | undefined;
      while (start < end) {
        const sub = (start > 0 ? prefix : '') + chars.slice(start, end).join('');
        if (this.ids.has(sub)) { found = sub; break; }
        end--;
      }
      if (found === undefined) return [this.config.specialTokens.unk];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  /** Tokens of `text` without [CLS]/[SEP]. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const seg of splitOnSpecials(text, this.specialStrings)) {
      if (seg.special !== undefined) { out.push(seg.special); continue; }
      for (const w of preTokenizeBert(this.normalize(seg.text))) out.push(...this.wordPieces(w));
    }
    return out;
  }

  encode(text: string, opts: EncodeOptions = {}): Encoding {
    const add = opts.addSpecialTokens ?? true;
    let tokens = this.tokenize(text);
    if (opts.maxLength !== undefined) {
      if (!Number.isInteger(opts.maxLength) || opts.maxLength < (add ? 2 : 0)) throw new RangeError(`maxLength must be an integer ≥ ${add ? 2 : 0}, got ${opts.maxLength}`);
      tokens = tokens.slice(0, opts.maxLength - (add ? 2 : 0));
    }
    if (add) tokens = [this.config.specialTokens.cls, ...tokens, this.config.specialTokens.sep];
    return { ids: tokens.map((t) => this.ids.get(t) ?? this.unkId), tokens };
  }

  /** Joins pieces back into text the way HF's WordPiece decoder does. Ids must be in the vocabulary. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecialTokens ?? true, cleanup = opts.cleanup ?? true;
    const prefix = this.config.continuingSubwordPrefix;
    const tokens: string[] = [];
    for (const id of ids) {
      const t = this.vocabList[id];
      if (t === undefined) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.vocabList.length})`);
      if (!(skip && this.specialIds.has(id))) tokens.push(t);
    }
    return tokens.map((t, i) => {
      let s = i === 0 ? t : t.startsWith(prefix) ? t.slice(prefix.length) : ' ' + t;
      if (cleanup) s = cleanupPiece(s);
      return s;
    }).join('');
  }
}

/** HF's `cleanup` of the WordPiece decoder, applied to each piece (with its leading space) in turn. */
export function cleanupPiece(s: string): string {
  return s.replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',').replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(' do not', " don't").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}
