// Request validation for the HTTP API: bodies (JSON, or multipart form fields, which arrive as strings)
// become checked jobs (src/server/protocol.ts) or an HttpError that the server answers as JSON:
//   400 invalid_request          a missing, unknown, mistyped or out-of-range field;
//   413 payload_too_large        an image over the byte or pixel limit (bodies over the limit: fastify);
//   415 unsupported_media_type   image bytes that are not PNG, JPEG, WebP or GIF, or whose header does not parse.
// Images are accepted only as bytes (a base64 string or an uploaded file part), never as a path or URL,
// and only the raster formats above: SVG is refused, since librsvg would follow references in it.

import sharp from 'sharp';
import type { CaptionJob, DecodeParams, TextToImageJob, VqaJob } from './protocol.js';

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

const bad = (message: string): HttpError => new HttpError(400, 'invalid_request', message);

/** Server-side limits (the CLI's --max-n etc.); frozen defaults below. */
export interface RequestLimits {
  /** Largest n of a text → image request (the pipeline allows 64; each candidate costs CPU time). */
  readonly maxN: number;
  /** Longest prompt or question, in characters (the model reads maxTextLen − 2 tokens of it). */
  readonly maxPromptChars: number;
  /** Largest image, in encoded bytes. */
  readonly maxImageBytes: number;
  /** Largest image, in pixels (width × height as the header says), so a small file cannot decode to gigabytes. */
  readonly maxImagePixels: number;
  /** Most beams of a caption / answer. */
  readonly maxBeams: number;
}

export const REQUEST_LIMITS: RequestLimits = Object.freeze({
  maxN: 16,
  maxPromptChars: 500,
  maxImageBytes: 4 * 2 ** 20,     // 4 MiB
  maxImagePixels: 4096 * 4096,    // 16.8 Mpx
  maxBeams: 8,
});

/** What the model allows: codes per position (topK's ceiling) and text positions (maxLen's). */
export interface ModelLimits { readonly numCodes: number; readonly maxTextLen: number }

type FieldType =
  | { kind: 'int'; lo: number; hi: number }
  | { kind: 'number'; lo: number; hi: number; loOpen?: boolean }
  | { kind: 'bool' }
  | { kind: 'text'; maxChars: number }
  | { kind: 'enum'; values: readonly string[] };

/**
 * Checks one field's value. `fromForm`: the value came from a multipart field (a string), so numbers
 * and booleans are parsed from their text first — strictly: '3', '0.9', '1e-3', 'true', 'false'.
 */
function field(name: string, v: unknown, t: FieldType, fromForm: boolean): unknown {
  switch (t.kind) {
    case 'int':
    case 'number': {
      let x = v;
      if (fromForm && typeof v === 'string') x = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(v.trim()) ? Number(v) : NaN;
      const range = `${t.kind === 'number' && t.loOpen === true ? '(' : '['}${t.lo}, ${t.hi}]`;
      if (typeof x !== 'number' || !Number.isFinite(x)) throw bad(`${name} must be ${t.kind === 'int' ? 'an integer' : 'a number'} in ${range}, got ${JSON.stringify(v)}`);
      if ((t.kind === 'int' && !Number.isInteger(x)) || x > t.hi || x < t.lo || (t.kind === 'number' && t.loOpen === true && x === t.lo)) {
        throw bad(`${name} must be ${t.kind === 'int' ? 'an integer' : 'a number'} in ${range}, got ${String(x)}`);
      }
      return x;
    }
    case 'bool':
      if (fromForm && (v === 'true' || v === 'false')) return v === 'true';
      if (typeof v !== 'boolean') throw bad(`${name} must be true or false, got ${JSON.stringify(v)}`);
      return v;
    case 'text':
      if (typeof v !== 'string') throw bad(`${name} must be a string`);
      if (v.trim() === '') throw bad(`${name} must not be empty`);
      if ([...v].length > t.maxChars) throw bad(`${name} is ${[...v].length} characters long; at most ${t.maxChars} are accepted`);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !t.values.includes(v)) throw bad(`${name} must be one of ${t.values.join(', ')}, got ${JSON.stringify(v)}`);
      return v;
  }
}

/** Checks that `body` is a plain object whose keys are all known; returns it as a record. */
function fields(where: string, body: unknown, known: readonly string[]): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad(`${where}: the body must be a JSON object`);
  const extra = Object.keys(body).filter((k) => !known.includes(k));
  if (extra.length > 0) throw bad(`${where}: unknown field(s) ${extra.join(', ')} (known: ${known.join(', ')})`);
  return body as Record<string, unknown>;
}

function opt<T>(o: Record<string, unknown>, name: string, t: FieldType, dflt: T, fromForm: boolean): T {
  return o[name] === undefined ? dflt : (field(name, o[name], t, fromForm) as T);
}

export const TEXT_TO_IMAGE_FIELDS = Object.freeze(['prompt', 'n', 'topK', 'topP', 'temperature', 'seed', 'rerank']);

/** POST /v1/text-to-image (and /stream): a JSON object → the job. */
export function parseTextToImage(body: unknown, lim: RequestLimits, model: ModelLimits, stream: boolean): TextToImageJob {
  const o = fields('text-to-image', body, TEXT_TO_IMAGE_FIELDS);
  if (o['prompt'] === undefined) throw bad('text-to-image: prompt is required');
  return {
    kind: 'text-to-image',
    prompt: field('prompt', o['prompt'], { kind: 'text', maxChars: lim.maxPromptChars }, false) as string,
    n: opt(o, 'n', { kind: 'int', lo: 1, hi: lim.maxN }, 4, false),                       // candidates
    topK: opt(o, 'topK', { kind: 'int', lo: 0, hi: model.numCodes }, 0, false),           // 0 = off
    topP: opt(o, 'topP', { kind: 'number', lo: 0, hi: 1, loOpen: true }, 1, false),       // 1 = off
    temperature: opt(o, 'temperature', { kind: 'number', lo: 0, hi: 10 }, 1, false),      // 0 = greedy
    seed: opt(o, 'seed', { kind: 'int', lo: 0, hi: 2 ** 31 - 1 }, 0, false),
    rerank: opt(o, 'rerank', { kind: 'bool' }, false, false),
    stream,
  };
}

export const DECODE_FIELDS = Object.freeze(['beams', 'lang', 'lengthPenalty', 'noRepeatNgram', 'maxLen']);

function decodeParams(o: Record<string, unknown>, lim: RequestLimits, model: ModelLimits, fromForm: boolean): DecodeParams {
  const maxLen = opt<number | undefined>(o, 'maxLen', { kind: 'int', lo: 3, hi: model.maxTextLen }, undefined, fromForm);
  return {
    beams: opt(o, 'beams', { kind: 'int', lo: 1, hi: lim.maxBeams }, 1, fromForm),        // 1 = greedy
    lang: opt(o, 'lang', { kind: 'enum', values: ['en', 'zh', 'any'] }, 'any' as const, fromForm),
    lengthPenalty: opt(o, 'lengthPenalty', { kind: 'number', lo: 0, hi: 10 }, 1, fromForm),
    noRepeatNgram: opt(o, 'noRepeatNgram', { kind: 'int', lo: 0, hi: model.maxTextLen }, 0, fromForm), // 0 = off
    ...(maxLen === undefined ? {} : { maxLen }),
  };
}

/**
 * POST /v1/caption and /v1/vqa: the fields (JSON values, or multipart strings when fromForm) and the
 * image bytes → the job. In JSON the image is a base64 string (a data: URL is accepted too).
 */
export async function parseImageJob(kind: 'caption' | 'vqa', o: Record<string, unknown>, image: Uint8Array | undefined,
  lim: RequestLimits, model: ModelLimits, fromForm: boolean): Promise<CaptionJob | VqaJob> {
  const known = ['image', ...(kind === 'vqa' ? ['question'] : []), ...DECODE_FIELDS];
  fields(kind, o, known);
  let bytes = image;
  if (bytes === undefined) {
    if (o['image'] === undefined) throw bad(`${kind}: image is required (${fromForm ? 'a file field named image' : 'base64 PNG/JPEG/WebP/GIF bytes'})`);
    if (fromForm) throw bad(`${kind}: image must be a file, not a text field`);
    bytes = fromBase64(o['image'], lim);
  }
  let question: string | undefined;
  if (kind === 'vqa') {
    if (o['question'] === undefined) throw bad('vqa: question is required');
    question = field('question', o['question'], { kind: 'text', maxChars: lim.maxPromptChars }, fromForm) as string;
  }
  const d = decodeParams(o, lim, model, fromForm);
  await checkImage(bytes, lim);
  return kind === 'caption' ? { kind, image: bytes, ...d } : { kind, image: bytes, question: question!, ...d };
}

/** A base64 string (or data: URL) → bytes; 400 when it is not base64, 413 when it decodes past the limit. */
export function fromBase64(v: unknown, lim: RequestLimits): Uint8Array {
  if (typeof v !== 'string') throw bad('image must be a base64 string');
  const s = v.replace(/^data:image\/[a-z0-9.+-]+;base64,/i, '').replace(/\s+/g, '');
  if (s === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) throw bad('image is not valid base64');
  if (Math.floor((s.length * 3) / 4) - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0) > lim.maxImageBytes) throw tooLarge(lim);
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export const tooLarge = (lim: RequestLimits): HttpError =>
  new HttpError(413, 'payload_too_large', `the image is larger than ${lim.maxImageBytes} bytes`);

/** The container format from the first bytes: png, jpeg, webp, gif, or null. */
export function sniffImage(b: Uint8Array): 'png' | 'jpeg' | 'webp' | 'gif' | null {
  const at = (i: number, s: string): boolean => [...s].every((c, k) => b[i + k] === c.charCodeAt(0));
  if (b.length >= 8 && b[0] === 0x89 && at(1, 'PNG\r\n\x1a\n')) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (b.length >= 6 && (at(0, 'GIF87a') || at(0, 'GIF89a'))) return 'gif';
  return null;
}

/** Format by magic bytes (415), byte size (413), then the header's pixel count (413; an unreadable header: 415). */
export async function checkImage(b: Uint8Array, lim: RequestLimits): Promise<void> {
  if (b.length > lim.maxImageBytes) throw tooLarge(lim);
  const format = sniffImage(b);
  if (format === null) throw new HttpError(415, 'unsupported_media_type', 'the image must be PNG, JPEG, WebP or GIF');
  let width: number, height: number;
  try {
    const meta = await sharp(b, { limitInputPixels: false }).metadata(); // header only
    width = meta.width; height = meta.height;
  } catch (e) {
    throw new HttpError(415, 'unsupported_media_type', `the ${format.toUpperCase()} image's header does not parse (${(e as Error).message.trim()})`);
  }
  if (!(width > 0 && height > 0)) throw new HttpError(415, 'unsupported_media_type', `the ${format.toUpperCase()} image has no size`);
  if (width * height > lim.maxImagePixels) {
    throw new HttpError(413, 'payload_too_large', `the image is ${width}×${height} = ${width * height} pixels; at most ${lim.maxImagePixels} are accepted`);
  }
}
