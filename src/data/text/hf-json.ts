// Hugging Face `tokenizer.json` for a WordPieceTokenizer: BertNormalizer, BertPreTokenizer, WordPiece
// model, `[CLS] $A [SEP]` TemplateProcessing, WordPiece decoder, specials as added tokens. The same
// layout `tokenizers` writes for bert-base-uncased, so `Tokenizer.fromFile` (Rust bindings) and
// `@huggingface/tokenizers` (pure JS) load it. Reading accepts that layout from any BERT-style file.

import type { BertNormalizerOptions } from './normalize.js';
import { SPECIAL_TOKEN_ORDER, WordPieceTokenizer, type SpecialTokens } from './wordpiece.js';

interface HfAddedToken {
  id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean;
}
type HfTemplatePiece = { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: 'A' | 'B'; type_id: number } };

export interface HfTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: { type: 'BertNormalizer'; clean_text: boolean; handle_chinese_chars: boolean; strip_accents: boolean | null; lowercase: boolean };
  pre_tokenizer: { type: 'BertPreTokenizer' };
  post_processor: {
    type: 'TemplateProcessing'; single: HfTemplatePiece[]; pair: HfTemplatePiece[];
    special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }>;
  };
  decoder: { type: 'WordPiece'; prefix: string; cleanup: boolean };
  model: { type: 'WordPiece'; unk_token: string; continuing_subword_prefix: string; max_input_chars_per_word: number; vocab: Record<string, number> };
}

export function toHfTokenizerJson(tok: WordPieceTokenizer): HfTokenizerJson {
  const c = tok.config, st = c.specialTokens;
  const specials = SPECIAL_TOKEN_ORDER.map((r) => ({ content: st[r], id: tok.tokenToId(st[r])! })).sort((x, y) => x.id - y.id);
  // A null-prototype object, so that no token (not even "__proto__") is taken for anything but a key.
  const vocab = Object.create(null) as Record<string, number>;
  tok.vocab.forEach((t, i) => { vocab[t] = i; });
  const special = (id: string, typeId: number): HfTemplatePiece => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number): HfTemplatePiece => ({ Sequence: { id, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map(({ id, content }) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: c.normalizer.cleanText, handle_chinese_chars: c.normalizer.handleChineseChars, strip_accents: c.normalizer.stripAccents, lowercase: c.normalizer.lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(st.cls, 0), seq('A', 0), special(st.sep, 0)],
      pair: [special(st.cls, 0), seq('A', 0), special(st.sep, 0), seq('B', 1), special(st.sep, 1)],
      special_tokens: {
        [st.cls]: { id: st.cls, ids: [tok.clsId], tokens: [st.cls] },
        [st.sep]: { id: st.sep, ids: [tok.sepId], tokens: [st.sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: c.continuingSubwordPrefix, cleanup: true },
    model: { type: 'WordPiece', unk_token: st.unk, continuing_subword_prefix: c.continuingSubwordPrefix, max_input_chars_per_word: c.maxInputCharsPerWord, vocab },
  };
}

export class HfJsonError extends Error {}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HfJsonError(`${where} must be an object`);
  return v as Record<string, unknown>;
}

function typeOf(v: unknown): unknown { return typeof v === 'object' && v !== null ? (v as Record<string, unknown>).type : undefined; }

/** Reads a BERT-style tokenizer.json (parsed); `source` names it in errors. */
export function fromHfTokenizerJson(json: unknown, source = 'tokenizer.json'): WordPieceTokenizer {
  const root = obj(json, source);
  const model = obj(root.model, `${source}: model`);
  if (model.type !== 'WordPiece') throw new HfJsonError(`${source}: model.type is ${String(model.type)}; only WordPiece is supported`);
  if (typeOf(root.pre_tokenizer) !== 'BertPreTokenizer') throw new HfJsonError(`${source}: pre_tokenizer ${String(typeOf(root.pre_tokenizer) ?? root.pre_tokenizer)} is not supported (BertPreTokenizer only)`);
  let normalizer: BertNormalizerOptions = { cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false };
  if (root.normalizer !== null && root.normalizer !== undefined) {
    const n = obj(root.normalizer, `${source}: normalizer`);
    if (n.type !== 'BertNormalizer') throw new HfJsonError(`${source}: normalizer ${String(n.type)} is not supported (BertNormalizer only)`);
    const flag = (k: string, dflt: boolean): boolean => (n[k] === undefined ? dflt : Boolean(n[k]));
    normalizer = { cleanText: flag('clean_text', true), handleChineseChars: flag('handle_chinese_chars', true), stripAccents: n.strip_accents === null || n.strip_accents === undefined ? null : Boolean(n.strip_accents), lowercase: flag('lowercase', true) };
  }

  // Ids: the model vocabulary plus the added tokens; together they must cover 0..n-1 exactly once.
  const byId: (string | undefined)[] = [];
  const put = (tok: string, id: unknown, where: string): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new HfJsonError(`${source}: ${where}: id of '${tok}' is not a non-negative integer`);
    const prev = byId[id];
    if (prev !== undefined && prev !== tok) throw new HfJsonError(`${source}: ${where}: id ${id} is both '${prev}' and '${tok}'`);
    byId[id] = tok;
  };
  for (const [tok, id] of Object.entries(obj(model.vocab, `${source}: model.vocab`))) put(tok, id, 'model.vocab');
  const added = root.added_tokens === undefined ? [] : root.added_tokens;
  if (!Array.isArray(added)) throw new HfJsonError(`${source}: added_tokens must be an array`);
  added.forEach((a: unknown, i) => {
    const t = obj(a, `${source}: added_tokens[${i}]`);
    if (typeof t.content !== 'string') throw new HfJsonError(`${source}: added_tokens[${i}].content must be a string`);
    if (t.single_word === true || t.lstrip === true || t.rstrip === true || t.normalized === true) throw new HfJsonError(`${source}: added_tokens[${i}] '${t.content}' uses single_word/lstrip/rstrip/normalized, which are not supported`);
    put(t.content, t.id, `added_tokens[${i}]`);
  });
  const vocab = Array.from(byId, (t, i) => { if (t === undefined) throw new HfJsonError(`${source}: no token has id ${i} (ids must be contiguous)`); return t; });

  // [CLS]/[SEP] from the post-processor; [PAD]/[MASK] by their BERT names.
  let cls = '[CLS]', sep = '[SEP]';
  const pp = root.post_processor;
  if (typeOf(pp) === 'TemplateProcessing') {
    const single = obj(pp, `${source}: post_processor`).single;
    const parts = Array.isArray(single) ? single.map((p) => obj(p, `${source}: post_processor.single[]`)) : [];
    const sp = (p: Record<string, unknown> | undefined): string | undefined => { const s = p?.SpecialToken; return typeof s === 'object' && s !== null ? String((s as Record<string, unknown>).id) : undefined; };
    if (parts.length !== 3 || sp(parts[0]) === undefined || parts[1]!.Sequence === undefined || sp(parts[2]) === undefined) throw new HfJsonError(`${source}: post_processor.single must be '<cls> $A <sep>'`);
    cls = sp(parts[0])!; sep = sp(parts[2])!;
  } else if (typeOf(pp) === 'BertProcessing') {
    const p = obj(pp, `${source}: post_processor`);
    if (Array.isArray(p.cls)) cls = String(p.cls[0]);
    if (Array.isArray(p.sep)) sep = String(p.sep[0]);
  } else throw new HfJsonError(`${source}: post_processor ${String(typeOf(pp))} is not supported (TemplateProcessing '[CLS] $A [SEP]' or BertProcessing)`);
  const specialTokens: SpecialTokens = { pad: '[PAD]', unk: String(model.unk_token ?? '[UNK]'), cls, sep, mask: '[MASK]' };

  const prefix = model.continuing_subword_prefix ?? '##', maxChars = model.max_input_chars_per_word ?? 100;
  if (typeof prefix !== 'string' || typeof maxChars !== 'number') throw new HfJsonError(`${source}: model.continuing_subword_prefix / max_input_chars_per_word have the wrong type`);
  try {
    return new WordPieceTokenizer(vocab, { normalizer, specialTokens, continuingSubwordPrefix: prefix, maxInputCharsPerWord: maxChars });
  } catch (e) {
    throw new HfJsonError(`${source}: ${(e as Error).message}`);
  }
}
