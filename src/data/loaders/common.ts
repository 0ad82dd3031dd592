// What every users'-data loader yields: samples (an image path with its own captions) and skip
// events (something in the input that cannot become a sample, with where it is and why).

import { relative, sep } from 'node:path';

/** Reasons an input item is skipped; prepare-user counts skips by these names. */
export type SkipReason =
  // folder
  | 'no caption' // an image without a same-named .txt (COCO: an image without annotations)
  | 'caption without image' // a .txt with no image of the same name
  | 'unreadable caption' // the .txt exists but cannot be read
  | 'unreadable folder' // a sub-folder that cannot be listed
  // jsonl
  | 'bad json' // a line that is not a JSON object
  | 'missing image field' // no string "image"
  | 'missing caption field' // neither a string "text" nor a string array "captions"
  // coco
  | 'bad image entry' // images[i] without a usable id / file_name
  | 'duplicate image id'
  | 'bad annotation' // annotations[i] without image_id or a string caption
  | 'unknown image id' // an annotation for an image id not in images[]
  // any loader
  | 'empty caption' // every caption of the item is blank
  // decoding (prepare-user)
  | 'missing image'
  | 'unreadable image'
  | 'unsupported image format'
  | 'corrupt image';

export interface UserSample {
  /** Unique within the source: the image path relative to the source's root, '/'-separated. */
  id: string;
  /** Absolute path of the image file. */
  imagePath: string;
  /** Split group: the image path relative to the root (a sample never crosses splits with itself). */
  group: string;
  /** Cleaned, de-duplicated, non-empty captions, in input order. */
  captions: string[];
  /** Where the sample came from, for messages: 'cats/a.png', 'data.jsonl:12', 'captions.json image 42'. */
  ref: string;
  /** Extra facts kept in the record (e.g. the COCO image id). */
  attrs?: Record<string, unknown>;
}

export interface SkipEvent {
  skip: SkipReason;
  ref: string;
  /** Human-readable specifics (the bad field, the parse error, ...). */
  detail: string;
}

export type LoaderEvent = UserSample | SkipEvent;

export function isSkip(e: LoaderEvent): e is SkipEvent { return 'skip' in e; }

/** A scanned input: the number of samples it will yield (for progress) and the events themselves. */
export interface UserSource {
  kind: 'folder' | 'jsonl' | 'coco';
  /** Folder that relative image paths (ids, groups) are taken against. */
  root: string;
  /** Samples events() will yield (skip events not included). */
  total: number;
  events(): AsyncGenerator<LoaderEvent, void, undefined>;
}

/** Collapses whitespace runs (including newlines) to one space, trims, drops blanks and exact repeats. */
export function cleanCaptions(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of raw) {
    const t = c.replace(/\s+/g, ' ').trim();
    if (t !== '' && !out.includes(t)) out.push(t);
  }
  return out;
}

/** `path` relative to `root` with '/' separators (ids and groups are the same on every OS). */
export function relId(root: string, path: string): string {
  const r = relative(root, path);
  return sep === '/' ? r : r.split(sep).join('/');
}
