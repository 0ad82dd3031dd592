// Users'-data loaders by kind: a folder of images with same-named .txt files, JSON Lines, COCO captions.

import { openCoco, type CocoOptions } from './coco.js';
import type { UserSource } from './common.js';
import { openFolder } from './folder.js';
import { openJsonl } from './jsonl.js';

export * from './common.js';
export { IMAGE_EXTENSIONS, openFolder } from './folder.js';
export { openJsonl } from './jsonl.js';
export { openCoco, type CocoOptions } from './coco.js';

export type UserDataKind = UserSource['kind'];
export const USER_DATA_KINDS: readonly UserDataKind[] = Object.freeze(['folder', 'jsonl', 'coco']);

export interface OpenSourceOptions extends CocoOptions {}

/** Scans `input` with the loader for `kind`. Errors that make the whole input unusable throw. */
export function openUserSource(kind: UserDataKind, input: string, opts: OpenSourceOptions = {}): Promise<UserSource> {
  switch (kind) {
    case 'folder': return openFolder(input);
    case 'jsonl': return openJsonl(input);
    case 'coco': return openCoco(input, opts);
    default: throw new RangeError(`unknown user data kind '${String(kind)}' (known: ${USER_DATA_KINDS.join(', ')})`);
  }
}
