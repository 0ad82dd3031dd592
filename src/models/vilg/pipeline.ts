// The user-facing generation API: one object per loaded model, async methods with plain typed options,
// images in and out as PNG buffers or RGB arrays with their size.
//
//   const vilg = await VilgPipeline.load('models/vilg-shapes');
//   const { images } = await vilg.textToImage('a small red circle', { n: 8, topK: 32, seed: 1, rerank: true });
//   const { text } = await vilg.caption(pngBytes, { beams: 4 });
//   const { answer } = await vilg.answer(pngBytes, 'what colour is the circle?');
//   const { images: done } = await vilg.complete(pngBytes, 'a small red circle', { rows: 4 });
//
// Heavy work yields to the event loop between decoding steps (runStepsAsync) and stops at an AbortSignal;
// one step is one position of one batch (a few ms for the small presets). Pixels come from the model's
// own reconstruction path: end-to-end models decode z_emb projected from the generator's hidden states,
// two-stage models look the codes up in the codebook (VQModel.decodeCodes).
// Legend: N candidates, T text positions, h×w code grid, n = h·w, H×W pixels.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Generator } from '../../engine/random.js';
import { Tensor, noGrad } from '../../engine/tensor.js';
import { ImageDecodeError, encodePng, loadImageRgb, resizeRgb } from '../../data/image.js';
import type { WordPieceTokenizer } from '../../data/text/wordpiece.js';
import { tensorToRgb } from '../../util/png.js';
import { rgbToTensor } from '../vqgan/evaluate.js';
import type { VQModel } from '../vqgan/vqmodel.js';
import { textRows, type TextSpecials } from './batch.js';
import type { VilgConfig } from './config.js';
import { endToEndZemb, imageCodeSteps, runStepsAsync, textDecodeSteps, textLogLikelihood, type ImageStep } from './generate.js';
import { loadVilgModel, type TrainMode } from './io.js';
import type { ErnieVilg } from './model.js';

/** An image handed in: encoded bytes (PNG, JPEG, WebP, …), a file path, or raw RGB with its size. */
export type ImageInput = Uint8Array | string | { readonly rgb: Uint8Array; readonly width: number; readonly height: number };

/** A generated image: PNG bytes and raw RGB [height, width, 3], its codes, and its rerank score. */
export interface GeneratedImage {
  readonly png: Buffer;
  readonly rgb: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** i32 codes [h·w], raster order. */
  readonly codes: Int32Array;
  /** log P(prompt | image) under the model's image→text direction (null unless rerank). */
  readonly score: number | null;
}

/** Progress of a text→image call, once per finished row of codes. */
export interface ImageProgress {
  /** Rows of codes finished (1..rows). */
  readonly row: number;
  readonly rows: number;
  /** The codes so far, [N·h·w] (rows after `row` hold 0 placeholders). */
  readonly codes: Int32Array;
  /** Decodes the partial images (rows not yet generated are grey). Costs one decoder pass. */
  decode(): Promise<GeneratedImage[]>;
}

export interface TextToImageOptions {
  /** Candidates, decoded as one batch (default 4, at most 64). */
  n?: number;
  /** Softmax temperature; 0 = greedy (default 1). */
  temperature?: number;
  /** Keep the k most likely codes; 0 = off (default 0). */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 = off (default 1). */
  topP?: number;
  /** Seeds the draws: the same seed and options give the same images (default 0). */
  seed?: number;
  /** Score each candidate by log P(prompt | image) and sort best first (default false). */
  rerank?: boolean;
  /** Incremental decoding with a KV cache (default true). */
  kvCache?: boolean;
  onProgress?: (p: ImageProgress) => void;
  signal?: AbortSignal;
}

export interface TextToImageResult {
  readonly prompt: string;
  /** The prompt's WordPiece tokens as the model saw them (after truncation). */
  readonly tokens: readonly string[];
  /** Non-fatal notes, e.g. that the prompt was truncated to the model's text length. */
  readonly warnings: readonly string[];
  /** Best first when reranked, else in sampling order. */
  readonly images: readonly GeneratedImage[];
  readonly ms: number;
}

export interface CompleteOptions extends TextToImageOptions {
  /** Rows of the given image's codes to keep (1..h − 1; default h / 2). */
  rows?: number;
}

export interface CaptionOptions {
  /** Beam search with this many beams when ≥ 2 (default 1 = greedy). */
  beams?: number;
  /** Text positions including [CLS]/[SEP] (default: the model's maxTextLen). */
  maxLen?: number;
  /** Beam ranking: logprob / length^α (default 1). */
  lengthPenalty?: number;
  /** Never repeat an n-gram of this size; 0 = off (default 0). */
  noRepeatNgram?: number;
  /** > 0 samples (greedy otherwise; default 0). */
  temperature?: number;
  topK?: number;
  seed?: number;
  kvCache?: boolean;
  /** Restrict the output to one language's tokens ('en': no CJK pieces, 'zh': no Latin-letter pieces; default 'any'). */
  lang?: 'en' | 'zh' | 'any';
  signal?: AbortSignal;
}

export interface CaptionResult {
  readonly text: string;
  readonly tokens: readonly number[];
  /** Σ log-probabilities of the generated tokens (with [SEP]'s when it ended with one). */
  readonly logprob: number;
  readonly ms: number;
}

export interface AnswerResult {
  readonly answer: string;
  readonly tokens: readonly number[];
  readonly logprob: number;
  readonly warnings: readonly string[];
  readonly ms: number;
}

export interface ModelInfo {
  readonly dir: string;
  readonly mode: TrainMode;
  readonly config: VilgConfig;
  /** Pixels per side of images in and out. */
  readonly imageSize: number;
  readonly parameters: number;
}

const known = (where: string, o: object, keys: readonly string[]): void => {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new RangeError(`${where}: options must be an object`);
  const extra = Object.keys(o).filter((k) => !keys.includes(k));
  if (extra.length > 0) throw new RangeError(`${where}: unknown option(s) ${extra.join(', ')} (known: ${keys.join(', ')})`);
};
const intIn = (where: string, name: string, v: unknown, lo: number, hi: number): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${where}: ${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
};
const IMAGE_KEYS = ['n', 'temperature', 'topK', 'topP', 'seed', 'rerank', 'kvCache', 'onProgress', 'signal'] as const;
const CAPTION_KEYS = ['beams', 'maxLen', 'lengthPenalty', 'noRepeatNgram', 'temperature', 'topK', 'seed', 'kvCache', 'lang', 'signal'] as const;
const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/;
const LATIN = /[A-Za-z\u00c0-\u024f]/;

export class VilgPipeline {
  private constructor(
    readonly model: ErnieVilg,
    readonly text: WordPieceTokenizer,
    readonly imageTokenizer: VQModel,
    readonly mode: TrainMode,
    readonly specials: TextSpecials,
    readonly dir: string,
  ) {}

  /**
   * Loads a model directory (config.json, model.safetensors, tokenizer/, image-tokenizer/ — what `vilg
   * train` writes as RUN/model) or a training run directory holding one; errors name what is missing.
   */
  static async load(dir: string): Promise<VilgPipeline> {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('VilgPipeline.load: dir must be a path');
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`VilgPipeline.load: ${dir} is not a directory`);
    const modelDir = !existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'model', 'config.json')) ? join(dir, 'model') : dir;
    for (const need of ['config.json', 'model.safetensors', 'tokenizer', 'image-tokenizer']) {
      if (!existsSync(join(modelDir, need))) {
        throw new Error(`VilgPipeline.load: ${modelDir} has no ${need} (a model directory holds config.json, model.safetensors, tokenizer/, image-tokenizer/; a run directory holds it as model/)`);
      }
    }
    const b = await loadVilgModel(modelDir);
    return new VilgPipeline(b.model, b.text, b.imageTokenizer, b.mode, b.specials, modelDir);
  }

  get info(): ModelInfo {
    const c = this.model.config;
    return { dir: this.dir, mode: this.mode, config: c, imageSize: this.imageSize, parameters: this.model.parameters().reduce((s, p) => s + p.size, 0) };
  }

  /** Pixels per side: the code grid times the tokenizer's downsampling factor 2^(levels − 1). */
  get imageSize(): number {
    return this.model.config.imageGrid[0] * 2 ** (this.imageTokenizer.config.chMult.length - 1);
  }

  /** Text → its [CLS] t [SEP] row and tokens; prompts longer than maxTextLen − 2 tokens are truncated with a warning. */
  encodeText(text: string, where: string): { ids: number[]; tokens: string[]; warnings: string[] } {
    if (typeof text !== 'string' || text.trim() === '') throw new RangeError(`${where}: the text must be a non-empty string`);
    const max = this.model.config.maxTextLen - 2;
    const enc = this.text.encode(text, { addSpecialTokens: false });
    const warnings: string[] = [];
    let ids = enc.ids, tokens = enc.tokens;
    if (ids.length === 0) throw new RangeError(`${where}: "${text}" has no tokens the model knows`);
    if (ids.length > max) {
      warnings.push(`the text has ${ids.length} tokens; the model reads ${max}, so it was truncated to "${this.text.decode(ids.slice(0, max))}"`);
      ids = ids.slice(0, max); tokens = tokens.slice(0, max);
    }
    return { ids, tokens: [...tokens], warnings };
  }

  /** An input image → RGB [S, S, 3] at the model's size (centre crop, as the training data). */
  async loadImage(image: ImageInput, where = 'VilgPipeline'): Promise<Uint8Array> {
    const S = this.imageSize;
    if (typeof image === 'string' || image instanceof Uint8Array) {
      try { return (await loadImageRgb(image, { size: S })).rgb; } catch (e) {
        if (e instanceof ImageDecodeError) throw new RangeError(`${where}: ${e.message}`);
        throw e;
      }
    }
    if (image === null || typeof image !== 'object' || !(image.rgb instanceof Uint8Array)) throw new TypeError(`${where}: an image is PNG/JPEG bytes, a path, or { rgb, width, height }`);
    const { rgb, width, height } = image;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || rgb.length !== width * height * 3) {
      throw new RangeError(`${where}: raw RGB must hold width·height·3 = ${String(width)}·${String(height)}·3 bytes, got ${rgb.length}`);
    }
    return width === S && height === S ? rgb : resizeRgb(rgb, height, width, S);
  }

  /** RGB images [S, S, 3] → codes i32 [N, h, w] with the image tokenizer. */
  tokenize(rgbs: readonly Uint8Array[]): Tensor {
    const S = this.imageSize;
    return this.imageTokenizer.tokenize(rgbToTensor(rgbs, S, S)); // [N, S, S, 3] → [N, h, w]
  }

  /** Codes [N·h·w] → images, through the path the model was trained with (rows ≥ rowsDone are greyed). */
  async decode(codes: Int32Array, textRow: readonly number[], rowsDone = this.model.config.imageGrid[0]): Promise<GeneratedImage[]> {
    const c = this.model.config, [h, w] = c.imageGrid, n = h * w, N = codes.length / n, S = this.imageSize;
    const ct = new Tensor(Int32Array.from(codes), [N, h, w]);                            // [N, h, w]
    const pixels = noGrad(() => {
      this.imageTokenizer.eval();
      if (this.mode === 'two-stage') return this.imageTokenizer.decodeCodes(ct);         // [N, S, S, 3]
      const rows = textRows(new Array<readonly number[]>(N).fill(textRow), this.specials, c.maxTextLen); // [N, T]
      const wasTraining = this.model.training;
      this.model.eval();
      try { return this.imageTokenizer.decode(endToEndZemb(this.model, rows, ct, this.specials)); } finally { this.model.train(wasTraining); } // [N, S, S, 3]
    });
    const rgbs = tensorToRgb(pixels);
    const cut = Math.round((rowsDone / h) * S) * S * 3;
    const out: GeneratedImage[] = [];
    for (let i = 0; i < N; i++) {
      const rgb = rgbs[i]!;
      if (rowsDone < h) rgb.fill(128, cut);
      out.push({ png: await encodePng(rgb, S, S), rgb, width: S, height: S, codes: codes.slice(i * n, (i + 1) * n), score: null });
    }
    return out;
  }

  /** Text → N candidate images (sampled as one batch), optionally reranked by log P(prompt | image). */
  async textToImage(prompt: string, o: TextToImageOptions = {}): Promise<TextToImageResult> {
    return this.generate('textToImage', prompt, null, o);
  }

  /** Keeps the first `rows` rows of the image's codes and generates the rest under the prompt. */
  async complete(image: ImageInput, prompt: string, o: CompleteOptions = {}): Promise<TextToImageResult> {
    const where = 'complete';
    known(where, o, [...IMAGE_KEYS, 'rows']);
    const [h] = this.model.config.imageGrid;
    const rows = intIn(where, 'rows', o.rows ?? Math.floor(h / 2), 1, h - 1);
    const rgb = await this.loadImage(image, where);
    const { rows: _r, ...rest } = o;
    return this.generate(where, prompt, { codes: this.tokenize([rgb]), rows }, rest);
  }

  private async generate(where: string, prompt: string, prefix: { codes: Tensor; rows: number } | null, o: TextToImageOptions): Promise<TextToImageResult> {
    known(where, o, IMAGE_KEYS);
    const t0 = performance.now();
    const c = this.model.config, [h, w] = c.imageGrid, n = h * w;
    const N = intIn(where, 'n', o.n ?? 4, 1, 64);
    const seed = intIn(where, 'seed', o.seed ?? 0, 0, 2 ** 31 - 1);
    const rerank = o.rerank ?? false;
    if (typeof rerank !== 'boolean') throw new RangeError(`${where}: rerank must be true or false`);
    if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new TypeError(`${where}: onProgress must be a function`);
    const { ids, tokens, warnings } = this.encodeText(prompt, where);
    const text = textRows(new Array<readonly number[]>(N).fill(ids), this.specials, c.maxTextLen); // [N, T]
    let prefixT: Tensor | undefined;
    if (prefix !== null) {
      const keep = prefix.codes.toArray().slice(0, prefix.rows * w);
      prefixT = new Tensor(Int32Array.from({ length: N * keep.length }, (_, i) => keep[i % keep.length]!), [N, prefix.rows, w]); // [N, r, w]
    }
    const steps = imageCodeSteps(this.model, text, this.specials, {
      temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1, generator: new Generator(seed), kvCache: o.kvCache ?? true,
      ...(prefixT === undefined ? {} : { prefix: prefixT }),
    });
    const onStep = (s: ImageStep): void => {
      if (o.onProgress === undefined || (s.j + 1) % w !== 0) return;
      const row = (s.j + 1) / w, snapshot = Int32Array.from(s.codes);
      o.onProgress({ row, rows: h, codes: snapshot, decode: () => this.decode(snapshot, ids, row) });
    };
    const codes = await runStepsAsync(steps, { ...(o.signal === undefined ? {} : { signal: o.signal }), onStep }); // [N, h, w]
    o.signal?.throwIfAborted();
    let images = await this.decode(codes.data as Int32Array, ids);
    if (rerank) {
      const ll = textLogLikelihood(this.model, codes, text, this.specials); // [N]
      images = images.map((im, i) => ({ ...im, score: ll[i]! })).sort((a, b) => b.score! - a.score!);
    }
    if (images.some((im) => im.codes.length !== n)) throw new Error(`${where}: internal: decoded codes have the wrong size`);
    return { prompt, tokens, warnings, images, ms: performance.now() - t0 };
  }

  /** Image → caption (greedy by default; beams ≥ 2 for beam search). */
  async caption(image: ImageInput, o: CaptionOptions = {}): Promise<CaptionResult> {
    known('caption', o, CAPTION_KEYS);
    const t0 = performance.now();
    const codes = this.tokenize([await this.loadImage(image, 'caption')]); // [1, h, w]
    const r = await this.decodeText(codes, null, o);
    return { text: this.detokenize(r.tokens), tokens: r.tokens, logprob: r.logprob, ms: performance.now() - t0 };
  }

  /** Generative VQA: the answer to a question about the image, decoded like a caption. */
  async answer(image: ImageInput, question: string, o: CaptionOptions = {}): Promise<AnswerResult> {
    known('answer', o, CAPTION_KEYS);
    const t0 = performance.now();
    const { ids, warnings } = this.encodeText(question, 'answer');
    const codes = this.tokenize([await this.loadImage(image, 'answer')]);  // [1, h, w]
    const q = textRows([ids], this.specials, this.model.config.maxTextLen); // [1, Tq]
    const r = await this.decodeText(codes, q, o);
    return { answer: this.detokenize(r.tokens), tokens: r.tokens, logprob: r.logprob, warnings, ms: performance.now() - t0 };
  }

  /** Ids → text; WordPiece puts spaces between CJK characters, which Chinese does not write. */
  detokenize(ids: readonly number[]): string {
    return this.text.decode([...ids]).replace(/(?<=[\u3000-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u9fff\uff00-\uffef])/g, '');
  }

  /** Vocabulary ids outside a language: CJK pieces for 'en', Latin-letter pieces for 'zh' (cached; what caption({ lang }) bans). */
  languageBans(lang: 'en' | 'zh'): number[] {
    const cached = this.bans.get(lang);
    if (cached !== undefined) return cached;
    const re = lang === 'en' ? CJK : LATIN, sp = this.specials;
    const ids = this.text.vocab.flatMap((tok, id) => (id !== sp.pad && id !== sp.cls && id !== sp.sep && !/^\[[A-Z]+\]$/.test(tok) && re.test(tok) ? [id] : []));
    this.bans.set(lang, ids);
    return ids;
  }
  private readonly bans = new Map<'en' | 'zh', number[]>();

  private async decodeText(codes: Tensor, question: Tensor | null, o: CaptionOptions): Promise<{ tokens: number[]; logprob: number }> {
    const { signal, seed, lang, ...rest } = o;
    const g = new Generator(intIn('caption', 'seed', seed ?? 0, 0, 2 ** 31 - 1));
    if (lang !== undefined && lang !== 'en' && lang !== 'zh' && lang !== 'any') throw new RangeError(`caption: lang must be en, zh or any, got ${String(lang)}`);
    const banned = lang === undefined || lang === 'any' ? [] : this.languageBans(lang);
    const steps = textDecodeSteps(this.model, codes, question, this.specials, { ...rest, generator: g, banned });
    const [r] = await runStepsAsync(steps, signal === undefined ? {} : { signal });
    return { tokens: r!.tokens, logprob: r!.logprob };
  }
}
