// ERNIE-ViLG attention patterns: the UniLM mask over a sequence of text/image segments, with DALL-E's
// sparse image-to-image attention (row / column / conv) inside each image segment, as a CSR pattern.
// Legend: S sequence length (all segments concatenated), h×w image grid (raster order), k conv window,
// p, q positions of a query / key inside one image segment, (r, c) = (⌊p/w⌋, p mod w).
//
// Rules (issue 5). UniLM: a source query sees every source key; a target query sees every source key
// and the target keys at or before itself (global order). An image query looking at keys of its OWN
// image segment uses the layer's kind instead:
//   target (causal):   row    = q in (p − w, p]          (the previous w tokens incl. itself; may wrap)
//                      column = q ≤ p, (p − q) mod w = 0 (same column, at or above)
//                      conv   = q in the k×k window around p and q ≤ p
//   source (bidir.):   row    = the whole row r; column = the whole column c; conv = the k×k window
//                      (clipped at the borders)
// 'dense' keeps plain UniLM there too. Text queries, and image queries looking at other segments,
// always follow UniLM.

export type Role = 'source' | 'target';
export type Segment =
  | { readonly kind: 'text'; readonly length: number; readonly role: Role }
  | { readonly kind: 'image'; readonly grid: readonly [number, number]; readonly role: Role }; // [h, w], raster order
/** What image queries use for image keys in one layer; 'dense' = plain UniLM mask everywhere. */
export type LayerAttention = 'dense' | 'row' | 'column' | 'conv';

/** CSR pattern: query i may attend to cols[rowPtr[i] .. rowPtr[i+1]) (ascending). Do not mutate (cached, shared). */
export interface SparsePattern { readonly seqLen: number; readonly rowPtr: Int32Array; readonly cols: Int32Array; readonly nnz: number }

/** Conv window side when opts.convKernel is absent: the smallest window with neighbours (paper: 11 for 32×32). */
export const DEFAULT_CONV_KERNEL = 3;
const KINDS: readonly LayerAttention[] = ['dense', 'row', 'column', 'conv'];
const ROLES: readonly Role[] = ['source', 'target'];
const CACHE_LIMIT = 64; // patterns kept (one per distinct layout × kind; a model uses a handful)

// ---------------------------------------------------------------- layer schedule

/** DALL-E rule, layers 1-based: conv in the last layer, column when layer % 4 == 2, else row; mode 'dense' → 'dense'. */
export function layerAttentionKind(layer: number, numLayers: number, mode: 'sparse' | 'dense'): LayerAttention {
  const where = `layerAttentionKind(layer ${String(layer)}, numLayers ${String(numLayers)}, mode ${String(mode)})`;
  if (!Number.isSafeInteger(numLayers) || numLayers < 1) throw new RangeError(`${where}: numLayers must be an integer ≥ 1`);
  if (!Number.isSafeInteger(layer) || layer < 1 || layer > numLayers) throw new RangeError(`${where}: layer must be an integer in 1..${numLayers}`);
  if (mode !== 'sparse' && mode !== 'dense') throw new RangeError(`${where}: mode must be 'sparse' or 'dense'`);
  if (mode === 'dense') return 'dense';
  if (layer === numLayers) return 'conv';
  return layer % 4 === 2 ? 'column' : 'row';
}

// ---------------------------------------------------------------- validation

interface Placed { readonly seg: Segment; readonly start: number; readonly len: number }

function checkInt(where: string, name: string, x: unknown, min: number): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) throw new RangeError(`${where}: ${name} must be an integer ≥ ${min}, got ${String(x)}`);
  return x;
}

/** Validates the segments (known keys only) and places them in the sequence. */
function placeSegments(where: string, segments: readonly Segment[]): Placed[] {
  if (!Array.isArray(segments)) throw new TypeError(`${where}: segments must be an array`);
  const out: Placed[] = [];
  let start = 0;
  segments.forEach((seg: unknown, i) => {
    const name = `segments[${i}]`;
    if (typeof seg !== 'object' || seg === null) throw new TypeError(`${where}: ${name} must be an object`);
    const o = seg as Record<string, unknown>;
    if (o['kind'] !== 'text' && o['kind'] !== 'image') throw new RangeError(`${where}: ${name}.kind must be 'text' or 'image', got ${String(o['kind'])}`);
    if (!(ROLES as readonly unknown[]).includes(o['role'])) throw new RangeError(`${where}: ${name}.role must be 'source' or 'target', got ${String(o['role'])}`);
    const allowed = o['kind'] === 'text' ? ['kind', 'length', 'role'] : ['kind', 'grid', 'role'];
    const unknown = Object.keys(o).filter((key) => !allowed.includes(key));
    if (unknown.length > 0) throw new RangeError(`${where}: ${name} has unknown keys ${unknown.join(', ')}`);
    let len: number;
    if (o['kind'] === 'text') len = checkInt(where, `${name}.length`, o['length'], 0);
    else {
      const g = o['grid'];
      if (!Array.isArray(g) || g.length !== 2) throw new RangeError(`${where}: ${name}.grid must be [h, w], got ${String(g)}`);
      len = checkInt(where, `${name}.grid[0] (h)`, g[0], 1) * checkInt(where, `${name}.grid[1] (w)`, g[1], 1);
    }
    out.push({ seg: seg as Segment, start, len });
    start += len;
  });
  if (start > 2 ** 24) throw new RangeError(`${where}: the sequence has ${start} positions (limit 2^24)`);
  return out;
}

// ---------------------------------------------------------------- building

/** Appends the keys of query p's own image segment (offset `o`, grid h×w) allowed by `kind`, ascending. */
function pushImageKeys(cols: number[], o: number, h: number, w: number, p: number, target: boolean, kind: LayerAttention, half: number): void {
  const r = Math.floor(p / w), c = p % w;
  const c0 = Math.max(0, c - half), c1 = Math.min(w - 1, c + half);
  switch (kind) {
    case 'dense': {
      const last = target ? p : h * w - 1;
      for (let q = 0; q <= last; q++) cols.push(o + q);
      return;
    }
    case 'row': {
      const lo = target ? Math.max(0, p - w + 1) : r * w, hi = target ? p : r * w + w - 1;
      for (let q = lo; q <= hi; q++) cols.push(o + q);
      return;
    }
    case 'column': {
      const last = target ? p : (h - 1) * w + c;
      for (let q = c; q <= last; q += w) cols.push(o + q);
      return;
    }
    case 'conv': {
      const r1 = target ? r : Math.min(h - 1, r + half);
      for (let rr = Math.max(0, r - half); rr <= r1; rr++) {
        for (let cc = c0; cc <= c1; cc++) {
          const q = rr * w + cc;
          if (target && q > p) break;
          cols.push(o + q);
        }
      }
    }
  }
}

function build(placed: readonly Placed[], kind: LayerAttention, half: number): SparsePattern {
  const seqLen = placed.reduce((n, s) => n + s.len, 0);
  const rowPtr = new Int32Array(seqLen + 1);
  const cols: number[] = [];
  let i = 0;
  for (const qs of placed) {
    const target = qs.seg.role === 'target';
    for (let p = 0; p < qs.len; p++, i++) {
      for (const ks of placed) {
        if (ks === qs && qs.seg.kind === 'image') {
          const [h, w] = qs.seg.grid;
          pushImageKeys(cols, ks.start, h, w, p, target, kind, half);
        } else if (ks.seg.role === 'source') {
          for (let j = ks.start; j < ks.start + ks.len; j++) cols.push(j); // everyone sees the source
        } else if (target) {
          const last = Math.min(i, ks.start + ks.len - 1); // target keys at or before the target query
          for (let j = ks.start; j <= last; j++) cols.push(j);
        }
      }
      rowPtr[i + 1] = cols.length;
    }
  }
  return Object.freeze({ seqLen, rowPtr, cols: Int32Array.from(cols), nnz: cols.length });
}

const cache = new Map<string, SparsePattern>();

/**
 * The CSR pattern of `segments` (concatenated in order) for one layer kind. Frozen; built once per
 * (segments, kind, convKernel) and cached. opts.convKernel: odd k ≥ 1, used by 'conv' (default 3).
 */
export function buildPattern(segments: readonly Segment[], kind: LayerAttention, opts: { convKernel?: number } = {}): SparsePattern {
  const where = `buildPattern(kind ${String(kind)})`;
  if (!(KINDS as readonly unknown[]).includes(kind)) throw new RangeError(`${where}: kind must be one of ${KINDS.join(', ')}`);
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${where}: opts must be an object`);
  const extra = Object.keys(opts).filter((key) => key !== 'convKernel');
  if (extra.length > 0) throw new RangeError(`${where}: unknown option(s) ${extra.join(', ')}`);
  const k = opts.convKernel ?? DEFAULT_CONV_KERNEL;
  if (!Number.isSafeInteger(k) || k < 1 || k % 2 === 0) throw new RangeError(`${where}: convKernel must be an odd integer ≥ 1, got ${String(k)}`);
  const placed = placeSegments(where, segments);
  const key = JSON.stringify([placed.map((s) => [s.seg.kind, s.seg.role, s.seg.kind === 'text' ? s.seg.length : s.seg.grid]), kind, kind === 'conv' ? k : 0]);
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const p = build(placed, kind, (k - 1) / 2);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string); // oldest first
  cache.set(key, p);
  return p;
}

// ---------------------------------------------------------------- views

function checkPattern(where: string, p: SparsePattern): void {
  if (typeof p !== 'object' || p === null || !(p.rowPtr instanceof Int32Array) || !(p.cols instanceof Int32Array)
    || p.rowPtr.length !== p.seqLen + 1 || p.cols.length !== p.nnz || p.rowPtr[p.seqLen] !== p.nnz) {
    throw new TypeError(`${where}: not a SparsePattern (rowPtr [S+1], cols [nnz]) from buildPattern`);
  }
}

/** The same pattern as a dense 0/1 mask [S, S] (row = query): for parity tests and the dense path. */
export function patternToDense(p: SparsePattern): Uint8Array {
  checkPattern('patternToDense', p);
  const s = p.seqLen;
  const out = new Uint8Array(s * s); // [S, S]
  for (let i = 0; i < s; i++) for (let e = p.rowPtr[i]!; e < p.rowPtr[i + 1]!; e++) out[i * s + p.cols[e]!] = 1;
  return out;
}

/** ASCII rendering ('#' allowed, '.' not), one line per query, for tests and docs. */
export function renderPattern(p: SparsePattern): string {
  const s = p.seqLen, dense = patternToDense(p);
  const lines: string[] = [];
  for (let i = 0; i < s; i++) {
    let line = '';
    for (let j = 0; j < s; j++) line += dense[i * s + j] === 1 ? '#' : '.';
    lines.push(line);
  }
  return lines.join('\n');
}
