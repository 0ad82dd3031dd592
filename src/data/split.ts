// Deterministic train/val/test assignment by group: every sample of a group (e.g. all skin-tone
// variants and both art styles of one base emoji) lands in the same split, so nothing leaks across.
// The split of a group depends only on (group, seed): adding or removing other samples never moves it.

import type { Split } from './format.js';

export interface SplitFractions { train: number; val: number; test: number }
export const DEFAULT_SPLIT: SplitFractions = Object.freeze({ train: 0.8, val: 0.1, test: 0.1 });

/** FNV-1a over UTF-16 code units, then a final avalanche: a stable 32-bit hash of a string. */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0; h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0; h ^= h >>> 16;
  return h >>> 0;
}

export function splitOf(group: string, seed = 0, f: SplitFractions = DEFAULT_SPLIT): Split {
  const total = f.train + f.val + f.test;
  if (!(f.train >= 0 && f.val >= 0 && f.test >= 0) || !(total > 0)) throw new RangeError(`split fractions must be non-negative with a positive sum, got ${JSON.stringify(f)}`);
  const u = hashString(group, seed) / 4294967296;
  if (u < f.train / total) return 'train';
  return u < (f.train + f.val) / total ? 'val' : 'test';
}
