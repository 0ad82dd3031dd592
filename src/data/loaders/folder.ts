// A directory tree of images, each captioned by a same-named .txt next to it:
//
//   photos/cat.jpg   photos/cat.txt   ("a cat on a sofa\na grey cat sleeping", one caption per line)
//
// Blank lines are ignored. An image without a .txt is skipped ('no caption'), one whose .txt holds
// only blank lines too ('empty caption'); a .txt without an image is reported ('caption without
// image'). When several images share a base name (cat.jpg and cat.png) each gets the captions of
// cat.txt. Hidden files and folders (names starting with '.') are ignored; symlinked folders are
// followed once. Entries come out sorted by path, so the same folder always yields the same order.

import type { Dirent } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { cleanCaptions, relId, type LoaderEvent, type SkipEvent, type UserSource } from './common.js';

/** File extensions treated as images (lower case). Formats sharp cannot read are reported when decoded. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg', '.jpe', '.jfif', '.webp', '.gif', '.tif', '.tiff', '.svg', '.avif', '.heic', '.heif', '.bmp']);
const CAPTION_EXTENSION = '.txt';

interface Entry { path: string; rel: string; stem: string; isImage: boolean }

/** Scans `dir` (recursively) and returns its samples as a UserSource. */
export async function openFolder(dir: string): Promise<UserSource> {
  const root = resolve(dir);
  const st = await stat(root).catch((e: Error) => { throw new Error(`folder input ${dir}: ${e.message}`); });
  if (!st.isDirectory()) throw new Error(`folder input ${dir} is not a directory`);
  const entries: Entry[] = [], unreadable: SkipEvent[] = [];
  await walk(root, root, entries, unreadable, new Set());
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const captionFiles = new Map<string, string>(); // stem (path without extension) → .txt path
  const imageStems = new Set<string>();
  for (const e of entries) (e.isImage ? imageStems.add(e.stem) : captionFiles.set(e.stem, e.path));
  const total = entries.filter((e) => e.isImage && captionFiles.has(e.stem)).length;
  return { kind: 'folder', root, total, events: () => folderEvents(root, entries, captionFiles, imageStems, unreadable) };
}

async function* folderEvents(root: string, entries: readonly Entry[], captionFiles: ReadonlyMap<string, string>, imageStems: ReadonlySet<string>, unreadable: readonly SkipEvent[]): AsyncGenerator<LoaderEvent, void, undefined> {
  yield* unreadable;
  for (const e of entries) {
    if (!e.isImage) {
      if (!imageStems.has(e.stem)) yield { skip: 'caption without image', ref: e.rel, detail: `no image named ${relId(root, e.stem)}.* next to it` };
      continue;
    }
    const txt = captionFiles.get(e.stem);
    if (txt === undefined) { yield { skip: 'no caption', ref: e.rel, detail: `no ${relId(root, e.stem)}${CAPTION_EXTENSION} next to it` }; continue; }
    let text: string;
    try { text = await readFile(txt, 'utf8'); } catch (err) {
      yield { skip: 'unreadable caption', ref: e.rel, detail: `${relId(root, txt)}: ${(err as Error).message}` };
      continue;
    }
    const captions = cleanCaptions(text.replace(/^\uFEFF/, '').split(/\r?\n|\r/));
    if (captions.length === 0) { yield { skip: 'empty caption', ref: e.rel, detail: `${relId(root, txt)} has no non-blank line` }; continue; }
    yield { id: e.rel, imagePath: e.path, group: e.rel, captions, ref: e.rel };
  }
}

async function walk(root: string, dir: string, out: Entry[], unreadable: SkipEvent[], seen: Set<string>): Promise<void> {
  let items: Dirent[];
  try {
    const real = await realpath(dir);
    if (seen.has(real)) return; // a symlink loop or a folder linked twice
    seen.add(real);
    items = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    unreadable.push({ skip: 'unreadable folder', ref: relId(root, dir) || '.', detail: (e as Error).message });
    return;
  }
  for (const d of items) {
    if (d.name.startsWith('.')) continue;
    const path = join(dir, d.name);
    let isDir = d.isDirectory(), isFile = d.isFile();
    if (d.isSymbolicLink()) {
      const s = await stat(path).catch(() => null);
      isDir = s?.isDirectory() ?? false;
      isFile = s === null || s.isFile(); // a dangling link counts as a file, reported when it is read
    }
    if (isDir) { await walk(root, path, out, unreadable, seen); continue; }
    if (!isFile) continue;
    const ext = extname(d.name).toLowerCase();
    const isImage = IMAGE_EXTENSIONS.has(ext);
    if (!isImage && ext !== CAPTION_EXTENSION) continue;
    out.push({ path, rel: relId(root, path), stem: path.slice(0, path.length - ext.length), isImage });
  }
}
