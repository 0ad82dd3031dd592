// The on-disk format every prepared data set shares (built-in emoji/shapes and users' own data):
//
//   DIR/images.bin      header + N RGB images, uint8, [N, H, W, 3] row-major
//   DIR/manifest.jsonl  one SampleRecord per line, in image order (record.index = row in images.bin)
//   DIR/dataset.json    the DatasetCard: sizes, split counts, licences, attribution, skip summary
//   DIR/README.md       the same card for people
//
// images.bin header (32 bytes, little-endian): magic "VILGIMG\0", u32 version (1), u32 count,
// u32 height, u32 width, u32 channels (3), u32 CRC-32 of the pixel bytes. Files are written under a
// temporary name and renamed, so a crash never leaves a half-written data set that looks complete.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic.js';
import { crc32 } from '../util/crc32.js';

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = Object.freeze(['train', 'val', 'test']);
export type Lang = 'en' | 'zh';

/** Captions per language; the first entry of each list is the main caption, the rest are variants. */
export type Captions = Partial<Record<Lang, string[]>>;

/** A question–answer pair about an image (generative VQA). */
export interface VqaItem {
  question: Partial<Record<Lang, string>>;
  answer: Partial<Record<Lang, string>>;
  /** What the question asks about, e.g. 'colour', 'relation', 'group'. */
  kind: string;
  /** True when generated from templates over metadata rather than written by people. */
  synthetic: boolean;
}

export interface SampleRecord {
  id: string;
  /** Row of this sample's image in images.bin. */
  index: number;
  split: Split;
  /** Samples sharing a group always land in the same split (e.g. the base emoji of skin-tone variants). */
  group: string;
  captions: Captions;
  vqa?: VqaItem[];
  /** Structured facts about the image (shapes: the drawn objects; emoji: code points, group...). */
  attrs?: Record<string, unknown>;
  /** Where the image came from (file path, package and file, generator seed). */
  source?: string;
}

export interface DatasetCard {
  format: 'vilg-dataset';
  version: 1;
  name: string;
  description: string;
  imageSize: { height: number; width: number };
  count: number;
  splits: Record<Split, number>;
  languages: Lang[];
  licences: string[];
  /** Lines that must ship with anything derived from this data. */
  attribution: string[];
  createdBy: string;
  createdAt: string;
  /** Inputs skipped while preparing, by reason. */
  skipped: Record<string, number>;
  notes: string[];
}

const MAGIC = 'VILGIMG\0';
const HEADER_BYTES = 32;

export class DatasetFormatError extends Error {}

/** Streams images and records to DIR; call finish() to publish the data set. */
export class DatasetWriter {
  private fd: number;
  private readonly tmpImages: string;
  private readonly records: SampleRecord[] = [];
  private crc = 0;
  private finished = false;

  constructor(readonly dir: string, readonly height: number, readonly width: number) {
    if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) throw new RangeError(`image size must be positive integers, got ${height}×${width}`);
    mkdirSync(dir, { recursive: true });
    this.tmpImages = join(dir, `images.bin.tmp-${process.pid}`);
    this.fd = openSync(this.tmpImages, 'w');
    writeSync(this.fd, new Uint8Array(HEADER_BYTES)); // placeholder; the real header is written in finish()
  }

  get count(): number { return this.records.length; }

  /** Appends one RGB image ([H, W, 3] uint8) and its record (index is assigned here). */
  add(rgb: Uint8Array, record: Omit<SampleRecord, 'index'>): SampleRecord {
    if (this.finished) throw new Error('DatasetWriter: add() after finish()');
    const expected = this.height * this.width * 3;
    if (rgb.length !== expected) throw new RangeError(`image for '${record.id}' has ${rgb.length} bytes, expected ${expected} (${this.height}×${this.width}×3)`);
    writeSync(this.fd, rgb);
    this.crc = crc32(rgb, this.crc);
    const full: SampleRecord = { ...record, index: this.records.length };
    this.records.push(full);
    return full;
  }

  /** Writes header, manifest and card, then renames everything into place. */
  finish(card: Omit<DatasetCard, 'format' | 'version' | 'count' | 'splits' | 'imageSize' | 'createdAt'>): DatasetCard {
    if (this.finished) throw new Error('DatasetWriter: finish() called twice');
    this.finished = true;
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32LE(1, 8);
    header.writeUInt32LE(this.records.length, 12);
    header.writeUInt32LE(this.height, 16);
    header.writeUInt32LE(this.width, 20);
    header.writeUInt32LE(3, 24);
    header.writeUInt32LE(this.crc, 28);
    writeSync(this.fd, header, 0, HEADER_BYTES, 0);
    fsyncSync(this.fd);
    closeSync(this.fd);
    const splits: Record<Split, number> = { train: 0, val: 0, test: 0 };
    for (const r of this.records) splits[r.split]++;
    const full: DatasetCard = {
      format: 'vilg-dataset', version: 1, ...card, imageSize: { height: this.height, width: this.width },
      count: this.records.length, splits, createdAt: new Date().toISOString(),
    };
    writeFileAtomicSync(join(this.dir, 'manifest.jsonl'), this.records.map((r) => JSON.stringify(r)).join('\n') + (this.records.length ? '\n' : ''));
    writeFileAtomicSync(join(this.dir, 'dataset.json'), JSON.stringify(full, null, 2) + '\n');
    writeFileAtomicSync(join(this.dir, 'README.md'), cardMarkdown(full));
    renameSync(this.tmpImages, join(this.dir, 'images.bin'));
    return full;
  }
}

/** A prepared data set in memory. */
export interface Dataset {
  dir: string;
  card: DatasetCard;
  records: SampleRecord[];
  /** Image `index` as [H, W, 3] uint8 (a view into images.bin, loaded and CRC-checked on first use). */
  image(index: number): Uint8Array;
  /** Records of one split. */
  split(split: Split): SampleRecord[];
}

/** Loads and validates a data set directory written by DatasetWriter. */
export function openDataset(dir: string): Dataset {
  for (const f of ['images.bin', 'manifest.jsonl', 'dataset.json']) {
    if (!existsSync(join(dir, f))) throw new DatasetFormatError(`${dir} is not a prepared data set: ${f} is missing (run \`vilg data prepare ...\`)`);
  }
  let card: DatasetCard;
  try { card = JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8')) as DatasetCard; } catch (e) { throw new DatasetFormatError(`${dir}/dataset.json is not valid JSON: ${(e as Error).message}`); }
  if (card.format !== 'vilg-dataset' || card.version !== 1) throw new DatasetFormatError(`${dir}/dataset.json: unsupported format ${String(card.format)} v${String(card.version)}`);
  // Header and size are checked now; the pixels (and their CRC) load on the first image() call, so
  // reading captions only (tokenizer training) never pulls a large images.bin into memory.
  const imagesPath = join(dir, 'images.bin');
  const header = Buffer.alloc(HEADER_BYTES);
  const fd = openSync(imagesPath, 'r');
  let got: number;
  try { got = readSync(fd, header, 0, HEADER_BYTES, 0); } finally { closeSync(fd); }
  if (got < HEADER_BYTES || header.toString('latin1', 0, 8) !== MAGIC) throw new DatasetFormatError(`${dir}/images.bin: bad magic (not a vilg image file)`);
  const version = header.readUInt32LE(8), count = header.readUInt32LE(12), h = header.readUInt32LE(16), w = header.readUInt32LE(20), c = header.readUInt32LE(24), crc = header.readUInt32LE(28);
  if (version !== 1 || c !== 3) throw new DatasetFormatError(`${dir}/images.bin: unsupported version ${version} or channels ${c}`);
  const per = h * w * c;
  const size = statSync(imagesPath).size;
  if (size !== HEADER_BYTES + count * per) throw new DatasetFormatError(`${dir}/images.bin: ${size} bytes, expected ${HEADER_BYTES + count * per} for ${count} images of ${h}×${w}×3 (truncated?)`);
  let pixels: Uint8Array | null = null;
  const loadPixels = (): Uint8Array => {
    if (pixels) return pixels;
    const bytes = readFileSync(imagesPath);
    const px = new Uint8Array(bytes.buffer, bytes.byteOffset + HEADER_BYTES, count * per);
    if (bytes.length !== size || crc32(px) !== crc) throw new DatasetFormatError(`${dir}/images.bin: checksum mismatch (file corrupted or changed)`);
    return (pixels = px);
  };
  if (card.count !== count || card.imageSize.height !== h || card.imageSize.width !== w) throw new DatasetFormatError(`${dir}: dataset.json and images.bin disagree on count or size`);
  const lines = readFileSync(join(dir, 'manifest.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const records = lines.map((l, i) => {
    try { return JSON.parse(l) as SampleRecord; } catch (e) { throw new DatasetFormatError(`${dir}/manifest.jsonl line ${i + 1}: ${(e as Error).message}`); }
  });
  if (records.length !== count) throw new DatasetFormatError(`${dir}/manifest.jsonl has ${records.length} records for ${count} images`);
  records.forEach((r, i) => { if (r.index !== i) throw new DatasetFormatError(`${dir}/manifest.jsonl line ${i + 1}: index ${r.index} out of order`); });
  return {
    dir, card, records,
    image(index: number) {
      if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`image index ${index} out of range [0, ${count})`);
      return loadPixels().subarray(index * per, (index + 1) * per);
    },
    split(s: Split) { return records.filter((r) => r.split === s); },
  };
}

function cardMarkdown(c: DatasetCard): string {
  return [`# ${c.name}`, '', c.description, '',
    `- images: ${c.count} at ${c.imageSize.height}×${c.imageSize.width} RGB`,
    `- splits: train ${c.splits.train}, val ${c.splits.val}, test ${c.splits.test}`,
    `- languages: ${c.languages.join(', ')}`,
    `- created by \`${c.createdBy}\` at ${c.createdAt}`,
    ...(Object.keys(c.skipped).length ? [`- skipped: ${Object.entries(c.skipped).map(([k, v]) => `${v} ${k}`).join(', ')}`] : []),
    '', '## Licences', '', ...c.licences.map((l) => `- ${l}`),
    ...(c.attribution.length ? ['', '## Attribution', '', ...c.attribution.map((l) => `- ${l}`)] : []),
    ...(c.notes.length ? ['', '## Notes', '', ...c.notes.map((l) => `- ${l}`)] : []), ''].join('\n');
}
