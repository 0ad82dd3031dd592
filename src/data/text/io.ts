// A tokenizer directory holds three files, written atomically (temporary name, then rename):
//   vocab.txt              one token per line in id order (BERT's format)
//   tokenizer.json         the same tokenizer for Hugging Face `tokenizers` / `@huggingface/tokenizers`
//   tokenizer-config.json  our options (normaliser, specials, prefix) and how it was trained
// loadTokenizer reads the config + vocab.txt when present, else tokenizer.json, else a bare vocab.txt
// with BERT-uncased defaults.

import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHfTokenizerJson, toHfTokenizerJson } from './hf-json.js';
import type { BertNormalizerOptions } from './normalize.js';
import { WordPieceTokenizer, type SpecialTokens, type WordPieceConfig } from './wordpiece.js';

export interface TokenizerConfigFile {
  format: 'vilg-wordpiece';
  version: 1;
  vocabSize: number;
  normalizer: BertNormalizerOptions;
  specialTokens: SpecialTokens;
  continuingSubwordPrefix: string;
  maxInputCharsPerWord: number;
  /** What it was trained on and with which options (free-form, written by the trainer's caller). */
  training?: Record<string, unknown>;
  createdAt: string;
}

export const VOCAB_FILE = 'vocab.txt';
export const HF_FILE = 'tokenizer.json';
export const CONFIG_FILE = 'tokenizer-config.json';

export class TokenizerFileError extends Error {}

/** vocab.txt text: one token per line (tokens never contain line breaks: they are split on whitespace). */
export function vocabText(tok: WordPieceTokenizer): string {
  return tok.vocab.join('\n') + '\n';
}

/** Parses vocab.txt text (line i is id i; trailing whitespace trimmed as HF does). */
export function parseVocabText(text: string, source = VOCAB_FILE): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const seen = new Map<string, number>();
  return lines.map((raw, i) => {
    const t = raw.trimEnd();
    if (t === '') throw new TokenizerFileError(`${source} line ${i + 1}: empty token`);
    const first = seen.get(t);
    if (first !== undefined) throw new TokenizerFileError(`${source} line ${i + 1}: duplicate token '${t}' (first on line ${first + 1})`);
    seen.set(t, i);
    return t;
  });
}

export function saveTokenizer(tok: WordPieceTokenizer, dir: string, training?: Record<string, unknown>): string[] {
  mkdirSync(dir, { recursive: true });
  const c = tok.config;
  const config: TokenizerConfigFile = {
    format: 'vilg-wordpiece', version: 1, vocabSize: tok.vocabSize, normalizer: c.normalizer, specialTokens: c.specialTokens,
    continuingSubwordPrefix: c.continuingSubwordPrefix, maxInputCharsPerWord: c.maxInputCharsPerWord,
    ...(training ? { training } : {}), createdAt: new Date().toISOString(),
  };
  const files: [string, string][] = [
    [VOCAB_FILE, vocabText(tok)],
    [HF_FILE, JSON.stringify(toHfTokenizerJson(tok), null, 2) + '\n'],
    [CONFIG_FILE, JSON.stringify(config, null, 2) + '\n'],
  ];
  for (const [name, text] of files) {
    const tmp = join(dir, `${name}.tmp-${process.pid}`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(dir, name));
  }
  return files.map(([name]) => join(dir, name));
}

function readJson(path: string): unknown {
  try { return JSON.parse(readFileSync(path, 'utf8')) as unknown; } catch (e) { throw new TokenizerFileError(`${path}: ${(e as Error).message}`); }
}

/** Loads a tokenizer from a directory (see above), a tokenizer.json file, or a vocab.txt file. */
export function loadTokenizer(path: string): WordPieceTokenizer {
  if (!existsSync(path)) throw new TokenizerFileError(`${path} does not exist`);
  if (!statSync(path).isDirectory()) {
    if (path.endsWith('.json')) return fromHfTokenizerJson(readJson(path), path);
    return fromVocabFile(path);
  }
  const vocabPath = join(path, VOCAB_FILE), configPath = join(path, CONFIG_FILE), hfPath = join(path, HF_FILE);
  if (existsSync(configPath) && existsSync(vocabPath)) {
    const raw = readJson(configPath) as Partial<TokenizerConfigFile>;
    if (raw.format !== 'vilg-wordpiece' || raw.version !== 1) throw new TokenizerFileError(`${configPath}: not a vilg-wordpiece v1 config (format ${String(raw.format)}, version ${String(raw.version)})`);
    const vocab = parseVocabText(readFileSync(vocabPath, 'utf8'), vocabPath);
    if (raw.vocabSize !== vocab.length) throw new TokenizerFileError(`${configPath} says vocabSize ${String(raw.vocabSize)} but ${vocabPath} has ${vocab.length} tokens`);
    const config: Partial<WordPieceConfig> = {
      ...(raw.normalizer ? { normalizer: raw.normalizer } : {}), ...(raw.specialTokens ? { specialTokens: raw.specialTokens } : {}),
      ...(raw.continuingSubwordPrefix ? { continuingSubwordPrefix: raw.continuingSubwordPrefix } : {}),
      ...(raw.maxInputCharsPerWord ? { maxInputCharsPerWord: raw.maxInputCharsPerWord } : {}),
    };
    try { return new WordPieceTokenizer(vocab, config); } catch (e) { throw new TokenizerFileError(`${path}: ${(e as Error).message}`); }
  }
  if (existsSync(hfPath)) return fromHfTokenizerJson(readJson(hfPath), hfPath);
  if (existsSync(vocabPath)) return fromVocabFile(vocabPath);
  throw new TokenizerFileError(`${path} holds no tokenizer (${VOCAB_FILE}, ${HF_FILE} or ${CONFIG_FILE}); run \`vilg data tokenizer\``);
}

/** A bare vocab.txt with BERT-uncased defaults. */
function fromVocabFile(path: string): WordPieceTokenizer {
  const vocab = parseVocabText(readFileSync(path, 'utf8'), path);
  try { return new WordPieceTokenizer(vocab); } catch (e) { throw new TokenizerFileError(`${path}: ${(e as Error).message}`); }
}


