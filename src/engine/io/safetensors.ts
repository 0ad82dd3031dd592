// The HuggingFace safetensors format: checkpoints that other tools (PyTorch, JAX, …) can read.
// Layout:  [u64 LE: N] [N bytes: JSON header, space-padded to a multiple of 8] [byte buffer]
// Header:  { "__metadata__"?: {str: str}, name: { dtype, shape, data_offsets: [begin, end] }, … }
// Offsets are relative to the byte buffer, which the tensors must cover exactly (no gaps, no overlap).
// Values are little-endian. Written: F32, F64, BF16, I32 (our four dtypes). Read: those plus
// F16 (→ f32) and I64 (→ i32, RangeError when a value does not fit).

import { readFile } from 'node:fs/promises';
import type { DType, Storage } from '../dtype.js';
import { fmtShape, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { writeFileAtomic } from '../../util/atomic.js';

export type SafetensorsMetadata = Record<string, string>;

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: SafetensorsMetadata;
}

type FileDType = 'F32' | 'F64' | 'BF16' | 'I32' | 'I64' | 'F16';
const ELEMENT_BYTES: Readonly<Record<FileDType, number>> = { F64: 8, I64: 8, F32: 4, I32: 4, BF16: 2, F16: 2 };
const TO_FILE: Readonly<Record<DType, FileDType>> = { f32: 'F32', f64: 'F64', bf16: 'BF16', i32: 'I32' };
const WRITE_RANK: Readonly<Record<DType, number>> = { f64: 3, f32: 2, i32: 1, bf16: 0 };
const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isFileDType(x: unknown): x is FileDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(ELEMENT_BYTES, x);
}

/** Raw little-endian bytes of a storage array (a view on little-endian hosts, a copy otherwise). */
function leBytes(data: Storage): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN) return view;
  const out = new Uint8Array(view.length), w = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < view.length; i += w) for (let b = 0; b < w; b++) out[i + b] = view[i + w - 1 - b]!;
  return out;
}

/** Encodes tensors (+ optional string metadata) as a safetensors byte buffer. */
export function serializeSafetensors(tensors: Readonly<Record<string, Tensor>>, metadata?: Readonly<SafetensorsMetadata>): Uint8Array {
  if (tensors === null || typeof tensors !== 'object') throw new TypeError('serializeSafetensors: tensors must be an object of name → Tensor');
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === '' || name === METADATA_KEY) throw new RangeError(`serializeSafetensors: invalid tensor name '${name}'`);
    if (!(tensors[name] instanceof Tensor)) throw new TypeError(`serializeSafetensors: '${name}' is not a Tensor`);
  }
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw new TypeError('serializeSafetensors: metadata must be an object of string → string');
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`serializeSafetensors: metadata '${k}' must be a string, got ${typeof v}`);
    }
  }
  // The reference writer's order (dtype F64 > F32 > I32 > BF16, then name), so our bytes equal its
  // bytes, and wider tensors come first: every tensor starts aligned to its element size.
  names.sort((a, b) => WRITE_RANK[tensors[b]!.dtype] - WRITE_RANK[tensors[a]!.dtype] || (a < b ? -1 : a > b ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header[METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const end = offset + t.data.byteLength;
    header[name] = { dtype: TO_FILE[t.dtype], shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8; // space-padded to 8 bytes, as the reference does

  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const name of names) {
    const bytes = leBytes(tensors[name]!.data);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

interface Entry { name: string; dtype: FileDType; shape: number[]; begin: number; end: number }

function fail(msg: string): never { throw new RangeError(`parseSafetensors: ${msg}`); }

function parseHeader(bytes: Uint8Array): { entries: Entry[]; metadata: SafetensorsMetadata; dataStart: number } {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('parseSafetensors: expected a Uint8Array (or Buffer)');
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) fail(`header length ${n} runs past the end of the file (${bytes.length - 8} bytes follow it)`);
  const dataStart = 8 + Number(n);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('header is not a JSON object');

  let metadata: SafetensorsMetadata = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(raw as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) fail('__metadata__ must be an object of string → string');
      for (const [k, v] of Object.entries(info)) if (typeof v !== 'string') fail(`__metadata__ '${k}' is not a string`);
      metadata = { ...(info as SafetensorsMetadata) };
      continue;
    }
    if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(`entry '${name}' is not an object`);
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (!isFileDType(dtype)) fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ELEMENT_BYTES).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    const [begin, end] = offs as [number, number];
    const s = shape as number[];
    if (end < begin) fail(`tensor '${name}' has data_offsets [${begin}, ${end}] with end before begin`);
    if (end - begin !== numel(s) * ELEMENT_BYTES[dtype]) fail(`tensor '${name}' (${dtype} ${fmtShape(s)}) needs ${numel(s) * ELEMENT_BYTES[dtype]} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    if (dataStart + end > bytes.length) fail(`tensor '${name}' data_offsets [${begin}, ${end}] run past the end of the ${bytes.length - dataStart}-byte buffer`);
    entries.push({ name, dtype, shape: s, begin, end });
  }

  // The tensors must tile the buffer exactly: sorted by begin, each starts where the previous ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const e of sorted) {
    if (e.begin < covered) fail(`tensor '${e.name}' [${e.begin}, ${e.end}] overlaps the previous tensor (which ends at ${covered})`);
    if (e.begin > covered) fail(`bytes [${covered}, ${e.begin}) of the buffer belong to no tensor (gap before '${e.name}')`);
    covered = e.end;
  }
  if (covered !== bytes.length - dataStart) fail(`the tensors cover ${covered} bytes but the buffer holds ${bytes.length - dataStart}`);
  return { entries, metadata, dataStart };
}

interface StorageCtor<T extends Storage> { new (n: number): T; readonly BYTES_PER_ELEMENT: number }

/** Copies little-endian bytes into a fresh, aligned typed array (byte-swapping on big-endian hosts). */
function copyLE<T extends Storage>(src: Uint8Array, Ctor: StorageCtor<T>): T {
  const w = Ctor.BYTES_PER_ELEMENT;
  const out = new Ctor(src.length / w);
  const dst = new Uint8Array(out.buffer);
  if (LITTLE_ENDIAN) { dst.set(src); return out; }
  for (let i = 0; i < src.length; i += w) for (let b = 0; b < w; b++) dst[i + b] = src[i + w - 1 - b]!;
  return out;
}

/** IEEE half → number (subnormals, ±Inf and NaN included). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decode(e: Entry, src: Uint8Array): Storage {
  switch (e.dtype) {
    case 'F32': return copyLE(src, Float32Array);
    case 'F64': return copyLE(src, Float64Array);
    case 'BF16': return copyLE(src, Uint16Array);
    case 'I32': return copyLE(src, Int32Array);
    case 'F16': {
      const h = copyLE(src, Uint16Array);
      return Float32Array.from(h, halfToNumber);
    }
    case 'I64': {
      // Each value is (lo, hi) as two 32-bit words; it fits an i32 exactly when hi is lo's sign extension.
      const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
      const out = new Int32Array(src.length / 8);
      for (let i = 0; i < out.length; i++) {
        const lo = view.getInt32(8 * i, true), hi = view.getInt32(8 * i + 4, true);
        if (hi !== lo >> 31) throw new RangeError(`parseSafetensors: I64 tensor '${e.name}' element ${i} = ${view.getBigInt64(8 * i, true)} does not fit in i32`);
        out[i] = lo;
      }
      return out;
    }
  }
}

/** Decodes a safetensors buffer; every tensor gets its own fresh storage (no views into `bytes`). */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  const { entries, metadata, dataStart } = parseHeader(bytes);
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const t = new Tensor(decode(e, bytes.subarray(dataStart + e.begin, dataStart + e.end)), e.shape);
    t.name = e.name;
    tensors[e.name] = t;
  }
  return { tensors, metadata };
}

/**
 * Writes a safetensors file atomically: a temporary sibling `path.tmp-<pid>-<random>` is written,
 * fsynced and renamed over `path`, so a crash never leaves a truncated checkpoint behind.
 */
export async function saveSafetensors(path: string, tensors: Readonly<Record<string, Tensor>>, metadata?: Readonly<SafetensorsMetadata>): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new TypeError('saveSafetensors: path must be a non-empty string');
  const bytes = serializeSafetensors(tensors, metadata);
  await writeFileAtomic(path, bytes);
}

/** Reads and decodes a safetensors file. */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  if (typeof path !== 'string' || path === '') throw new TypeError('loadSafetensors: path must be a non-empty string');
  const bytes = await readFile(path);
  try {
    return parseSafetensors(bytes);
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`${e.message} (file ${path})`);
    throw e;
  }
}
