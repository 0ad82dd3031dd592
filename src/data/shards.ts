// Token shards: pre-encoded samples (image codes from the image tokenizer + text token ids) that the
// training loop streams instead of re-encoding images every epoch.
//
//   DIR/shards.json          index: config, and every shard's file, split, count, size and CRC-32
//   DIR/<split>-NNNNN.vtok   one shard; all its samples come from one split
//
// Shard file, little-endian. Header (48 bytes):
//    0  magic "VILGTOK\0"            24  u32 codebook size (≤ 65536: codes are u16)
//    8  u32 format version (1)        28  u32 text vocabulary size
//   12  u32 header bytes (48)         32  u8 text id bytes (2 if vocab ≤ 65536, else 4), u8 split, u16 0
//   16  u32 sample count              36  u32 payload bytes
//   20  u16 grid height, u16 width    40  u32 CRC-32 of the payload;  44  u32 CRC-32 of header bytes 0–43
// Payload: `count` records, each
//   u32 record bytes (after this field) | u32 sample index (row in the data set) | u8 split | u8 captions
//   | u16 id bytes, id (UTF-8) | height×width u16 image codes
//   | per caption: u8 language, u8 variant (its position among that language's captions), u16 n, n ids
// Every byte is covered by a checksum, so a flipped byte or a cut file is always an error, never a
// silently different sample. Shards and the index are written under temporary names, then renamed.

import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../util/crc32.js';
import type { Lang, Split } from './format.js';

export const SHARD_MAGIC = 'VILGTOK\0';
export const SHARD_VERSION = 1;
export const SHARD_HEADER_BYTES = 48;
export const SHARD_INDEX_FILE = 'shards.json';

const SPLIT_CODES: readonly Split[] = ['train', 'val', 'test'];
const LANG_CODES: readonly Lang[] = ['en', 'zh'];
const SHARD_NAME = /^(train|val|test)-\d{5}\.vtok$/;

export interface ShardCaption {
  lang: Lang;
  /** Position of this caption among the sample's captions in its language (0 = main caption). */
  variant: number;
  ids: ArrayLike<number>;
}

export interface ShardSample {
  /** Row of the sample in the prepared data set (images.bin / manifest.jsonl). */
  index: number;
  /** The sample's id in the manifest, to check alignment. */
  id: string;
  split: Split;
  /** Image codes, row-major [gridHeight, gridWidth]. */
  codes: ArrayLike<number>;
  captions: ShardCaption[];
}

/** A sample as read back: typed arrays. */
export interface ReadSample extends ShardSample {
  codes: Uint16Array;
  captions: { lang: Lang; variant: number; ids: Uint16Array | Uint32Array }[];
}

export interface ShardConfig {
  gridHeight: number;
  gridWidth: number;
  codebookSize: number;
  textVocabSize: number;
}

export interface ShardWriterOptions extends ShardConfig {
  /** Samples per shard file (default 1024: a few MB per shard at a 32×32 grid). */
  samplesPerShard?: number;
  /** Free-form provenance stored in shards.json (tokenizer and data set paths, ...). */
  meta?: Record<string, unknown>;
}

export interface ShardEntry { file: string; split: Split; count: number; bytes: number; crc32: number }

export interface ShardIndex {
  format: 'vilg-token-shards';
  version: 1;
  config: ShardConfig & { textIdBytes: 2 | 4; samplesPerShard: number };
  meta: Record<string, unknown>;
  count: number;
  splits: Record<Split, number>;
  shards: ShardEntry[];
  createdAt: string;
}

export interface ShardHeader extends ShardConfig { version: number; count: number; textIdBytes: 2 | 4; split: Split; payloadBytes: number; payloadCrc: number }

export class ShardFormatError extends Error {}

function checkConfig(c: ShardConfig): void {
  const ok = (v: number, lo: number, hi: number): boolean => Number.isInteger(v) && v >= lo && v <= hi;
  if (!ok(c.gridHeight, 1, 65535) || !ok(c.gridWidth, 1, 65535)) throw new RangeError(`grid must be 1..65535 on each side, got ${c.gridHeight}×${c.gridWidth}`);
  if (!ok(c.codebookSize, 1, 65536)) throw new RangeError(`codebookSize must be in [1, 65536] (codes are uint16), got ${c.codebookSize}`);
  if (!ok(c.textVocabSize, 1, 0xffffffff)) throw new RangeError(`textVocabSize must be a positive 32-bit integer, got ${c.textVocabSize}`);
}

/** Serialises one sample record (length prefix included) after checking every field. */
function encodeRecord(s: ShardSample, c: ShardConfig, idBytes: 2 | 4): Buffer {
  const cells = c.gridHeight * c.gridWidth;
  const where = `sample ${s.index} ('${s.id}')`;
  if (!Number.isInteger(s.index) || s.index < 0 || s.index > 0xffffffff) throw new RangeError(`${where}: index must be a u32`);
  const split = SPLIT_CODES.indexOf(s.split);
  if (split < 0) throw new RangeError(`${where}: unknown split '${String(s.split)}'`);
  const id = Buffer.from(s.id, 'utf8');
  if (id.length > 65535) throw new RangeError(`${where}: id longer than 65535 bytes`);
  if (s.codes.length !== cells) throw new RangeError(`${where}: ${s.codes.length} image codes, expected ${cells} (${c.gridHeight}×${c.gridWidth})`);
  if (s.captions.length > 255) throw new RangeError(`${where}: more than 255 captions`);
  let bytes = 4 + 1 + 1 + 2 + id.length + 2 * cells;
  for (const cap of s.captions) bytes += 4 + cap.ids.length * idBytes;
  const b = Buffer.alloc(4 + bytes);
  let o = b.writeUInt32LE(bytes, 0);
  o = b.writeUInt32LE(s.index, o); o = b.writeUInt8(split, o); o = b.writeUInt8(s.captions.length, o);
  o = b.writeUInt16LE(id.length, o); o += id.copy(b, o);
  for (let i = 0; i < cells; i++) {
    const v = s.codes[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= c.codebookSize) throw new RangeError(`${where}: image code ${i} is ${v}, outside [0, ${c.codebookSize})`);
    o = b.writeUInt16LE(v, o);
  }
  s.captions.forEach((cap, k) => {
    const lang = LANG_CODES.indexOf(cap.lang);
    if (lang < 0) throw new RangeError(`${where}: caption ${k} has unknown language '${String(cap.lang)}'`);
    if (!Number.isInteger(cap.variant) || cap.variant < 0 || cap.variant > 255) throw new RangeError(`${where}: caption ${k} variant must be in [0, 255]`);
    if (cap.ids.length > 65535) throw new RangeError(`${where}: caption ${k} has more than 65535 tokens`);
    o = b.writeUInt8(lang, o); o = b.writeUInt8(cap.variant, o); o = b.writeUInt16LE(cap.ids.length, o);
    for (let i = 0; i < cap.ids.length; i++) {
      const v = cap.ids[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= c.textVocabSize) throw new RangeError(`${where}: caption ${k} token ${i} is ${v}, outside [0, ${c.textVocabSize})`);
      o = idBytes === 2 ? b.writeUInt16LE(v, o) : b.writeUInt32LE(v, o);
    }
  });
  return b;
}

function encodeHeader(c: ShardConfig, count: number, idBytes: 2 | 4, split: Split, payload: Buffer): Buffer {
  const h = Buffer.alloc(SHARD_HEADER_BYTES);
  h.write(SHARD_MAGIC, 0, 'latin1');
  h.writeUInt32LE(SHARD_VERSION, 8); h.writeUInt32LE(SHARD_HEADER_BYTES, 12); h.writeUInt32LE(count, 16);
  h.writeUInt16LE(c.gridHeight, 20); h.writeUInt16LE(c.gridWidth, 22); h.writeUInt32LE(c.codebookSize, 24);
  h.writeUInt32LE(c.textVocabSize, 28); h.writeUInt8(idBytes, 32); h.writeUInt8(SPLIT_CODES.indexOf(split), 33);
  h.writeUInt32LE(payload.length, 36); h.writeUInt32LE(crc32(payload), 40);
  h.writeUInt32LE(crc32(h.subarray(0, 44)), 44);
  return h;
}

/** Writes samples into per-split shard files, rolling over every `samplesPerShard`; finish() writes shards.json. */
export class ShardWriter {
  readonly config: ShardConfig;
  readonly samplesPerShard: number;
  readonly textIdBytes: 2 | 4;
  private readonly pending = new Map<Split, { records: Buffer[]; bytes: number }>();
  private readonly next: Record<Split, number> = { train: 0, val: 0, test: 0 };
  private readonly entries: ShardEntry[] = [];
  private readonly meta: Record<string, unknown>;
  private finished = false;

  constructor(readonly dir: string, opts: ShardWriterOptions) {
    const { gridHeight, gridWidth, codebookSize, textVocabSize } = opts;
    this.config = Object.freeze({ gridHeight, gridWidth, codebookSize, textVocabSize });
    checkConfig(this.config);
    this.samplesPerShard = opts.samplesPerShard ?? 1024;
    if (!Number.isInteger(this.samplesPerShard) || this.samplesPerShard < 1) throw new RangeError(`samplesPerShard must be a positive integer, got ${this.samplesPerShard}`);
    this.textIdBytes = textVocabSize <= 65536 ? 2 : 4;
    this.meta = opts.meta ?? {};
    mkdirSync(dir, { recursive: true });
    // A previous run's index would describe shards this run overwrites: remove it and its shards first.
    rmSync(join(dir, SHARD_INDEX_FILE), { force: true });
    for (const f of readdirSync(dir)) if (SHARD_NAME.test(f)) rmSync(join(dir, f), { force: true });
  }

  add(sample: ShardSample): void {
    if (this.finished) throw new Error('ShardWriter: add() after finish()');
    const rec = encodeRecord(sample, this.config, this.textIdBytes);
    let p = this.pending.get(sample.split);
    if (p && p.bytes + rec.length > 0xffffffff) { this.flush(sample.split); p = undefined; }
    if (!p) this.pending.set(sample.split, (p = { records: [], bytes: 0 }));
    p.records.push(rec); p.bytes += rec.length;
    if (p.records.length >= this.samplesPerShard) this.flush(sample.split);
  }

  private flush(split: Split): void {
    const p = this.pending.get(split);
    if (!p || p.records.length === 0) return;
    this.pending.delete(split);
    const payload = Buffer.concat(p.records);
    const file = `${split}-${String(this.next[split]++).padStart(5, '0')}.vtok`;
    const bytes = Buffer.concat([encodeHeader(this.config, p.records.length, this.textIdBytes, split, payload), payload]);
    atomicWrite(join(this.dir, file), bytes);
    this.entries.push({ file, split, count: p.records.length, bytes: bytes.length, crc32: crc32(payload) });
  }

  finish(): ShardIndex {
    if (this.finished) throw new Error('ShardWriter: finish() called twice');
    this.finished = true;
    for (const s of SPLIT_CODES) this.flush(s);
    const splits: Record<Split, number> = { train: 0, val: 0, test: 0 };
    for (const e of this.entries) splits[e.split] += e.count;
    const index: ShardIndex = {
      format: 'vilg-token-shards', version: 1, config: { ...this.config, textIdBytes: this.textIdBytes, samplesPerShard: this.samplesPerShard },
      meta: this.meta, count: splits.train + splits.val + splits.test, splits, shards: this.entries, createdAt: new Date().toISOString(),
    };
    atomicWrite(join(this.dir, SHARD_INDEX_FILE), JSON.stringify(index, null, 2) + '\n');
    return index;
  }
}

function atomicWrite(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Parses and checks a shard header; `source` names the file in errors. */
export function readShardHeader(bytes: Uint8Array, source: string): ShardHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = b.toString('latin1', 0, Math.min(8, b.length));
  if (head !== SHARD_MAGIC.slice(0, head.length)) throw new ShardFormatError(`${source}: bad magic (not a vilg token shard)`);
  if (b.length < 12) throw new ShardFormatError(`${source}: truncated: ${b.length} bytes, the header needs ${SHARD_HEADER_BYTES}`);
  const version = b.readUInt32LE(8);
  if (version !== SHARD_VERSION) throw new ShardFormatError(`${source}: unsupported shard format version ${version} (this build reads version ${SHARD_VERSION})`);
  if (b.length < SHARD_HEADER_BYTES) throw new ShardFormatError(`${source}: truncated: ${b.length} bytes, the header needs ${SHARD_HEADER_BYTES}`);
  if (crc32(b.subarray(0, 44)) !== b.readUInt32LE(44)) throw new ShardFormatError(`${source}: header checksum mismatch (file corrupted)`);
  if (b.readUInt32LE(12) !== SHARD_HEADER_BYTES) throw new ShardFormatError(`${source}: header size ${b.readUInt32LE(12)}, expected ${SHARD_HEADER_BYTES}`);
  const idBytes = b.readUInt8(32), splitCode = b.readUInt8(33);
  if (idBytes !== 2 && idBytes !== 4) throw new ShardFormatError(`${source}: text id width ${idBytes} bytes (must be 2 or 4)`);
  const split = SPLIT_CODES[splitCode];
  if (split === undefined) throw new ShardFormatError(`${source}: unknown split code ${splitCode}`);
  const h: ShardHeader = {
    version, count: b.readUInt32LE(16), gridHeight: b.readUInt16LE(20), gridWidth: b.readUInt16LE(22), codebookSize: b.readUInt32LE(24),
    textVocabSize: b.readUInt32LE(28), textIdBytes: idBytes, split, payloadBytes: b.readUInt32LE(36), payloadCrc: b.readUInt32LE(40),
  };
  try { checkConfig(h); } catch (e) { throw new ShardFormatError(`${source}: ${(e as Error).message}`); }
  return h;
}

function u16s(b: Buffer, off: number, n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = b.readUInt16LE(off + 2 * i);
  return out;
}

/** Checks a whole shard (header, size, checksum) and yields its samples, each validated as it is read. */
export function* decodeShard(bytes: Uint8Array, source: string): Generator<ReadSample, ShardHeader> {
  const h = readShardHeader(bytes, source);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const expected = SHARD_HEADER_BYTES + h.payloadBytes;
  if (b.length < expected) throw new ShardFormatError(`${source}: truncated: ${b.length} bytes, the header announces ${expected}`);
  if (b.length > expected) throw new ShardFormatError(`${source}: ${b.length - expected} unexpected bytes after the payload`);
  const payload = b.subarray(SHARD_HEADER_BYTES);
  if (crc32(payload) !== h.payloadCrc) throw new ShardFormatError(`${source}: payload checksum mismatch (file corrupted)`);
  const cells = h.gridHeight * h.gridWidth;
  let o = 0;
  for (let k = 0; k < h.count; k++) {
    const at = SHARD_HEADER_BYTES + o;
    const fail = (why: string): never => { throw new ShardFormatError(`${source}: sample ${k} (byte ${at}): ${why}`); };
    if (o + 4 > payload.length) fail(`missing: the payload ends after ${k} of ${h.count} samples`);
    const len = payload.readUInt32LE(o);
    const start = o + 4, end = start + len;
    if (end > payload.length) fail(`record of ${len} bytes runs past the end of the payload`);
    let p = start;
    const need = (n: number, what: string): void => { if (p + n > end) fail(`${what} runs past the end of its record`); };
    need(8, 'record header');
    const index = payload.readUInt32LE(p), splitCode = payload.readUInt8(p + 4), nCaps = payload.readUInt8(p + 5), idLen = payload.readUInt16LE(p + 6);
    p += 8;
    const split = SPLIT_CODES[splitCode];
    if (split !== h.split) fail(`split code ${splitCode} in a ${h.split} shard`);
    need(idLen, 'sample id'); const id = payload.toString('utf8', p, p + idLen); p += idLen;
    need(2 * cells, 'image codes'); const codes = u16s(payload, p, cells); p += 2 * cells;
    for (let i = 0; i < cells; i++) if (codes[i]! >= h.codebookSize) fail(`image code ${i} is ${codes[i]}, outside the codebook of ${h.codebookSize}`);
    const captions: ReadSample['captions'] = [];
    for (let c = 0; c < nCaps; c++) {
      need(4, `caption ${c} header`);
      const lang = LANG_CODES[payload.readUInt8(p)], variant = payload.readUInt8(p + 1), n = payload.readUInt16LE(p + 2);
      if (lang === undefined) fail(`caption ${c} has unknown language code ${payload.readUInt8(p)}`);
      p += 4;
      need(n * h.textIdBytes, `caption ${c} token ids`);
      const ids = h.textIdBytes === 2 ? u16s(payload, p, n) : Uint32Array.from({ length: n }, (_, i) => payload.readUInt32LE(p + 4 * i));
      p += n * h.textIdBytes;
      for (let i = 0; i < n; i++) if (ids[i]! >= h.textVocabSize) fail(`caption ${c} token ${i} is ${ids[i]}, outside the vocabulary of ${h.textVocabSize}`);
      captions.push({ lang: lang!, variant, ids });
    }
    if (p !== end) fail(`${end - p} unexpected bytes at the end of the record`);
    o = end;
    yield { index, id, split: split!, codes, captions };
  }
  if (o !== payload.length) throw new ShardFormatError(`${source}: ${payload.length - o} unexpected bytes after sample ${h.count - 1}`);
  return h;
}

/** Reads one shard file completely: its header and every sample. */
export function readShard(path: string): { header: ShardHeader; samples: ReadSample[] } {
  const bytes = readFileSync(path);
  const samples: ReadSample[] = [];
  const it = decodeShard(bytes, path);
  for (let r = it.next(); ; r = it.next()) {
    if (r.done) return { header: r.value, samples };
    samples.push(r.value);
  }
}

/** A directory of shards: its index, checked, and a stream of samples, shard by shard. */
export class ShardReader {
  private constructor(readonly dir: string, readonly index: ShardIndex) {}

  static open(dir: string): ShardReader {
    const path = join(dir, SHARD_INDEX_FILE);
    if (!existsSync(path)) throw new ShardFormatError(`${dir}: no ${SHARD_INDEX_FILE} (not a shard directory, or writing did not finish)`);
    let index: ShardIndex;
    try { index = JSON.parse(readFileSync(path, 'utf8')) as ShardIndex; } catch (e) { throw new ShardFormatError(`${path}: ${(e as Error).message}`); }
    if (index.format !== 'vilg-token-shards' || index.version !== 1) throw new ShardFormatError(`${path}: unsupported index format ${String(index.format)} v${String(index.version)}`);
    if (!Array.isArray(index.shards) || typeof index.config !== 'object' || index.config === null) throw new ShardFormatError(`${path}: missing shards or config`);
    try { checkConfig(index.config); } catch (e) { throw new ShardFormatError(`${path}: ${(e as Error).message}`); }
    index.shards.forEach((s, i) => {
      if (typeof s.file !== 'string' || !SHARD_NAME.test(s.file)) throw new ShardFormatError(`${path}: shards[${i}].file '${String(s.file)}' is not a shard name`);
    });
    return new ShardReader(dir, index);
  }

  /** Index entries of one split (all when omitted), in file order. */
  shards(split?: Split): ShardEntry[] {
    return this.index.shards.filter((s) => split === undefined || s.split === split);
  }

  /** Streams samples: each shard is read, checked against the index, and yielded sample by sample. */
  *samples(split?: Split): Generator<ReadSample> {
    for (const e of this.shards(split)) yield* this.decodeEntry(e);
  }

  /** Every sample of one shard (an entry of this index), checked against the index. */
  readShard(e: ShardEntry): ReadSample[] {
    return [...this.decodeEntry(e)];
  }

  private decodeEntry(e: ShardEntry): Generator<ReadSample, ShardHeader> {
    const c = this.index.config;
    const path = join(this.dir, e.file);
    if (!existsSync(path)) throw new ShardFormatError(`${path}: listed in ${SHARD_INDEX_FILE} but missing`);
    const bytes = readFileSync(path);
    if (bytes.length !== e.bytes) throw new ShardFormatError(`${path}: ${bytes.length} bytes, ${SHARD_INDEX_FILE} says ${e.bytes} (truncated or replaced)`);
    const h = readShardHeader(bytes, path);
    if (h.count !== e.count || h.payloadCrc !== e.crc32 || h.split !== e.split) throw new ShardFormatError(`${path}: header disagrees with ${SHARD_INDEX_FILE} (count, checksum or split)`);
    if (h.gridHeight !== c.gridHeight || h.gridWidth !== c.gridWidth || h.codebookSize !== c.codebookSize || h.textVocabSize !== c.textVocabSize) {
      throw new ShardFormatError(`${path}: grid/codebook/vocabulary differ from ${SHARD_INDEX_FILE}`);
    }
    return decodeShard(bytes, path);
  }
}
