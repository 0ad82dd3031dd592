// JSON Lines of image–caption pairs, one object per line:
//
//   {"image": "imgs/cat.jpg", "text": "a cat on a sofa"}
//   {"image": "imgs/dog.png", "captions": ["a dog", "a brown dog running"]}
//
// Image paths are relative to the JSONL file's folder (absolute paths are kept as they are). A line
// may carry both "text" and "captions"; their union is used. Lines naming the same image (after path
// resolution, so "a.png" and "./a.png" are one image) are merged into ONE sample that carries all
// their captions, placed at the first such line: an image is stored once, and its captions cannot end
// up on different sides of a split. Blank lines are ignored; a line that is not a JSON object is
// skipped ('bad json', with its line number), and so is one without a usable field.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { cleanCaptions, relId, type LoaderEvent, type SkipEvent, type UserSample, type UserSource } from './common.js';

/** Scans a JSONL file and returns its samples as a UserSource. */
export async function openJsonl(file: string): Promise<UserSource> {
  const path = resolve(file);
  const st = await stat(path).catch((e: Error) => { throw new Error(`jsonl input ${file}: ${e.message}`); });
  if (!st.isFile()) throw new Error(`jsonl input ${file} is not a file`);
  const root = dirname(path), name = basename(path);
  const events: LoaderEvent[] = [];
  const byImage = new Map<string, { sample: UserSample; raw: string[]; lines: number[] }>();
  let lineNo = 0;
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const rawLine of lines) {
    lineNo++;
    const line = (lineNo === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine).trim();
    if (line === '') continue;
    const ref = `${name}:${lineNo}`;
    const parsed = parseLine(line, ref);
    if ('skip' in parsed) { events.push(parsed); continue; }
    const imagePath = isAbsolute(parsed.image) ? parsed.image : resolve(root, parsed.image);
    const seen = byImage.get(imagePath);
    if (seen) { seen.raw.push(...parsed.captions); seen.lines.push(lineNo); continue; }
    const id = relId(root, imagePath);
    const sample: UserSample = { id, imagePath, group: id, captions: [], ref };
    byImage.set(imagePath, { sample, raw: [...parsed.captions], lines: [lineNo] });
    events.push(sample);
  }
  for (const { sample, raw, lines: at } of byImage.values()) {
    sample.captions = cleanCaptions(raw); // never empty: parseLine rejects lines whose captions are all blank
    if (at.length > 1) {
      sample.ref = `${name}:${at[0]} (merged with line${at.length > 2 ? 's' : ''} ${at.slice(1, 6).join(', ')}${at.length > 6 ? ', …' : ''})`;
      sample.attrs = { lines: at };
    }
  }
  return { kind: 'jsonl', root, total: byImage.size, events: async function* () { yield* events; } };
}

function parseLine(line: string, ref: string): { image: string; captions: string[] } | SkipEvent {
  let v: unknown;
  try { v = JSON.parse(line); } catch (e) { return { skip: 'bad json', ref, detail: (e as Error).message }; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { skip: 'bad json', ref, detail: `expected a JSON object, got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}` };
  const o = v as Record<string, unknown>;
  if (typeof o['image'] !== 'string' || o['image'].trim() === '') {
    return { skip: 'missing image field', ref, detail: o['image'] === undefined ? 'no "image" field' : '"image" must be a non-empty string (a path)' };
  }
  const image = o['image'];
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(image)) return { skip: 'missing image', ref, detail: `"${image}" is a URL; images are not downloaded — fetch them first and give local paths` };
  const text = o['text'], list = o['captions'];
  if (text === undefined && list === undefined) return { skip: 'missing caption field', ref, detail: 'no "text" or "captions" field' };
  if (text !== undefined && typeof text !== 'string') return { skip: 'missing caption field', ref, detail: '"text" must be a string' };
  if (list !== undefined && !(Array.isArray(list) && list.every((c) => typeof c === 'string'))) return { skip: 'missing caption field', ref, detail: '"captions" must be an array of strings' };
  const captions: string[] = [...(typeof text === 'string' ? [text] : []), ...((list as string[] | undefined) ?? [])];
  if (cleanCaptions(captions).length === 0) return { skip: 'empty caption', ref, detail: 'every caption on this line is blank' };
  return { image, captions };
}
