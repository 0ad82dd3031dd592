// Atomic file writes: a temporary sibling is written and fsynced, then renamed over the target, then
// the directory is fsynced, so a crash leaves either the old file or the new one — never a torn one.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

function tempName(path: string): string { return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`; }

/** Creates `path` (it must not exist) with `bytes` and fsyncs it. */
export async function writeFileSynced(path: string, bytes: Uint8Array | string): Promise<void> {
  const fh = await open(path, 'wx');
  try { await fh.writeFile(bytes); await fh.sync(); } finally { await fh.close(); }
}

/** Persists renames and creations inside `dir` (best effort: not every platform can fsync a directory). */
export async function fsyncDir(dir: string): Promise<void> {
  try { const fh = await open(dir, 'r'); try { await fh.sync(); } finally { await fh.close(); } } catch { /* unsupported */ }
}

export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = tempName(path);
  try {
    await writeFileSynced(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** The synchronous twin, for small metadata files written from synchronous code. */
export function writeFileAtomicSync(path: string, bytes: Uint8Array | string): void {
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'wx');
    try { writeSync(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes); fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  try { const fd = openSync(dirname(path), 'r'); try { fsyncSync(fd); } finally { closeSync(fd); } } catch { /* unsupported */ }
}
