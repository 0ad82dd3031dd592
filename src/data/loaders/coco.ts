// COCO captions JSON (e.g. captions_train2017.json):
//
//   { "images": [{"id": 42, "file_name": "000000000042.jpg", ...}, ...],
//     "annotations": [{"image_id": 42, "caption": "A dog on a bed."}, ...] }
//
// Captions are grouped per image (COCO has ~5 per image); images are yielded in images[] order.
// file_name is relative to the image root: the JSON file's folder unless `images` is given. An
// annotation for an id not in images[] is counted ('unknown image id'), an image without any usable
// caption is skipped ('no caption'). The whole file is parsed at once (captions_train2017.json, 90 MB,
// is fine in memory).

import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { cleanCaptions, relId, type LoaderEvent, type SkipEvent, type UserSample, type UserSource } from './common.js';

export interface CocoOptions {
  /** Folder the file_name entries are relative to (default: the JSON file's folder). */
  images?: string;
}

/** Parses a COCO captions file and returns its samples as a UserSource. */
export async function openCoco(file: string, opts: CocoOptions = {}): Promise<UserSource> {
  const path = resolve(file);
  const name = basename(path);
  let doc: unknown;
  try { doc = JSON.parse(await readFile(path, 'utf8')); } catch (e) { throw new Error(`coco input ${file}: ${(e as Error).message}`); }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as Record<string, unknown>)['images']) || !Array.isArray((doc as Record<string, unknown>)['annotations'])) {
    throw new Error(`coco input ${file}: expected an object with "images" and "annotations" arrays (a COCO captions file)`);
  }
  const root = resolve(opts.images ?? dirname(path));
  const rootStat = await stat(root).catch((e: Error) => { throw new Error(`coco image folder ${root}: ${e.message}`); });
  if (!rootStat.isDirectory()) throw new Error(`coco image folder ${root} is not a directory`);
  const images = (doc as { images: unknown[] }).images, annotations = (doc as { annotations: unknown[] }).annotations;

  const early: SkipEvent[] = [];
  const byId = new Map<string, { sample: UserSample; raw: string[] }>();
  const order: Array<{ sample: UserSample; raw: string[] } | SkipEvent> = [];
  images.forEach((img, i) => {
    const ref = `${name} images[${i}]`;
    const o = (typeof img === 'object' && img !== null ? img : {}) as Record<string, unknown>;
    const id = o['id'], fileName = o['file_name'];
    if ((typeof id !== 'number' && typeof id !== 'string') || typeof fileName !== 'string' || fileName.trim() === '') {
      order.push({ skip: 'bad image entry', ref, detail: 'needs a numeric or string "id" and a non-empty "file_name"' });
      return;
    }
    const key = String(id);
    if (byId.has(key)) { order.push({ skip: 'duplicate image id', ref, detail: `image id ${key} already appears earlier in images[]` }); return; }
    const imagePath = resolve(root, fileName);
    const rel = relId(root, imagePath);
    const entry = { sample: { id: rel, imagePath, group: rel, captions: [], ref: `${name} image ${key} (${fileName})`, attrs: { cocoImageId: id } }, raw: [] };
    byId.set(key, entry);
    order.push(entry);
  });
  annotations.forEach((a, i) => {
    const ref = `${name} annotations[${i}]`;
    const o = (typeof a === 'object' && a !== null ? a : {}) as Record<string, unknown>;
    const imageId = o['image_id'], caption = o['caption'];
    if ((typeof imageId !== 'number' && typeof imageId !== 'string') || typeof caption !== 'string') {
      early.push({ skip: 'bad annotation', ref, detail: 'needs "image_id" and a string "caption"' });
      return;
    }
    const entry = byId.get(String(imageId));
    if (entry === undefined) { early.push({ skip: 'unknown image id', ref, detail: `image_id ${String(imageId)} is not in images[]` }); return; }
    if (cleanCaptions([caption]).length === 0) { early.push({ skip: 'empty caption', ref, detail: 'blank caption' }); return; }
    entry.raw.push(caption);
  });

  const events: LoaderEvent[] = [...early];
  let total = 0;
  for (const e of order) {
    if ('skip' in e) { events.push(e); continue; }
    e.sample.captions = cleanCaptions(e.raw);
    if (e.sample.captions.length === 0) { events.push({ skip: 'no caption', ref: e.sample.ref, detail: 'no annotation with a caption for this image' }); continue; }
    events.push(e.sample);
    total++;
  }
  return { kind: 'coco', root, total, events: async function* () { yield* events; } };
}
