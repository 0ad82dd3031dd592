// The ERNIE-ViLG attention patterns, pinned as ASCII (one line per query, '#' = may attend) on a tiny
// layout: 2 text tokens and a 3×3 image in both directions. Each rendering was checked by hand against
// the rules in src/models/vilg/attention-pattern.ts; they double as documentation of the patterns.
// Positions: t2i = [t0 t1 | z0..z8], i2t = [z0..z8 | t0 t1]; image z_p sits at row ⌊p/3⌋, column p mod 3.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  buildPattern, layerAttentionKind, patternToDense, renderPattern, type LayerAttention, type Segment,
} from '../../src/models/vilg/attention-pattern.js';

const T2I: readonly Segment[] = [{ kind: 'text', length: 2, role: 'source' }, { kind: 'image', grid: [3, 3], role: 'target' }];
const I2T: readonly Segment[] = [{ kind: 'image', grid: [3, 3], role: 'source' }, { kind: 'text', length: 2, role: 'target' }];
const ascii = (lines: string[]): string => lines.join('\n');

// text → image: text is the source (sees only text); image is the causal target.
const T2I_EXPECTED: Record<LayerAttention, string> = {
  dense: ascii([
    '##.........', '##.........',
    '###........', '####.......', '#####......', '######.....', '#######....', '########...', '#########..', '##########.', '###########',
  ]),
  // the previous w = 3 image tokens incl. itself (z3 wraps back to z1, z2)
  row: ascii([
    '##.........', '##.........',
    '###........', '####.......', '#####......', '##.###.....', '##..###....', '##...###...', '##....###..', '##.....###.', '##......###',
  ]),
  // same column, at or above
  column: ascii([
    '##.........', '##.........',
    '###........', '##.#.......', '##..#......', '###..#.....', '##.#..#....', '##..#..#...', '###..#..#..', '##.#..#..#.', '##..#..#..#',
  ]),
  // 3×3 window, at or before the query in raster order
  conv: ascii([
    '##.........', '##.........',
    '###........', '####.......', '##.##......', '####.#.....', '#######....', '##.##.##...', '##...##.#..', '##...#####.', '##....##.##',
  ]),
};

// image → text: the image is the source (bidirectional within its pattern); text is the causal target.
const I2T_EXPECTED: Record<LayerAttention, string> = {
  dense: ascii([
    '#########..', '#########..', '#########..', '#########..', '#########..', '#########..', '#########..', '#########..', '#########..',
    '##########.', '###########',
  ]),
  row: ascii([
    '###........', '###........', '###........', '...###.....', '...###.....', '...###.....', '......###..', '......###..', '......###..',
    '##########.', '###########',
  ]),
  column: ascii([
    '#..#..#....', '.#..#..#...', '..#..#..#..', '#..#..#....', '.#..#..#...', '..#..#..#..', '#..#..#....', '.#..#..#...', '..#..#..#..',
    '##########.', '###########',
  ]),
  conv: ascii([
    '##.##......', '######.....', '.##.##.....', '##.##.##...', '#########..', '.##.##.##..', '...##.##...', '...######..', '....##.##..',
    '##########.', '###########',
  ]),
};

for (const kind of ['dense', 'row', 'column', 'conv'] as const) {
  test(`ASCII pattern, text→image, ${kind}`, () => {
    assert.equal(renderPattern(buildPattern(T2I, kind, { convKernel: 3 })), T2I_EXPECTED[kind]);
  });
  test(`ASCII pattern, image→text, ${kind}`, () => {
    assert.equal(renderPattern(buildPattern(I2T, kind, { convKernel: 3 })), I2T_EXPECTED[kind]);
  });
}

test('VQA layout [image(source), question(source), answer(target)]: sparse only inside the image', () => {
  const vqa: Segment[] = [
    { kind: 'image', grid: [2, 2], role: 'source' }, { kind: 'text', length: 2, role: 'source' }, { kind: 'text', length: 2, role: 'target' },
  ];
  assert.equal(renderPattern(buildPattern(vqa, 'row')), ascii([
    '##..##..', '##..##..', '..####..', '..####..', '######..', '######..', '#######.', '########',
  ]));
});

test('CSR invariants: rowPtr monotone from 0 to nnz, cols ascending and in range, matches patternToDense', () => {
  for (const segs of [T2I, I2T]) for (const kind of ['dense', 'row', 'column', 'conv'] as const) {
    const p = buildPattern(segs, kind);
    assert.equal(p.rowPtr[0], 0);
    assert.equal(p.rowPtr[p.seqLen], p.nnz);
    for (let i = 0; i < p.seqLen; i++) {
      assert.ok(p.rowPtr[i + 1]! >= p.rowPtr[i]!);
      for (let e = p.rowPtr[i]! + 1; e < p.rowPtr[i + 1]!; e++) assert.ok(p.cols[e]! > p.cols[e - 1]!);
    }
    assert.ok(p.cols.every((c) => c >= 0 && c < p.seqLen));
    assert.equal(patternToDense(p).reduce((s, x) => s + x, 0), p.nnz);
    assert.ok(Object.isFrozen(p));
  }
});

test('conv kernel size: k = 1 is the diagonal (source), k = 5 covers a 3×3 grid entirely', () => {
  const img: Segment[] = [{ kind: 'image', grid: [3, 3], role: 'source' }];
  assert.equal(renderPattern(buildPattern(img, 'conv', { convKernel: 1 })),
    ascii(Array.from({ length: 9 }, (_, i) => '.'.repeat(i) + '#' + '.'.repeat(8 - i))));
  assert.equal(buildPattern(img, 'conv', { convKernel: 5 }).nnz, 81);
  assert.equal(buildPattern([{ kind: 'image', grid: [3, 3], role: 'target' }], 'conv', { convKernel: 5 }).nnz, 45); // causal: 9·10/2
});

test('patterns are cached per (segments, kind, convKernel)', () => {
  const a = buildPattern(T2I, 'conv', { convKernel: 3 });
  assert.equal(buildPattern([{ kind: 'text', length: 2, role: 'source' }, { kind: 'image', grid: [3, 3], role: 'target' }], 'conv', { convKernel: 3 }), a);
  assert.notEqual(buildPattern(T2I, 'conv', { convKernel: 5 }), a);
  assert.notEqual(buildPattern(T2I, 'row'), a);
  assert.equal(buildPattern(T2I, 'row', { convKernel: 7 }), buildPattern(T2I, 'row')); // k only matters for conv
});

test('layer rule: row, column, row, row, ..., conv in the last layer; dense mode is dense everywhere', () => {
  const kinds = Array.from({ length: 10 }, (_, i) => layerAttentionKind(i + 1, 10, 'sparse'));
  assert.deepEqual(kinds, ['row', 'column', 'row', 'row', 'row', 'column', 'row', 'row', 'row', 'conv']);
  assert.equal(layerAttentionKind(1, 1, 'sparse'), 'conv');
  assert.equal(layerAttentionKind(46, 48, 'sparse'), 'column');
  assert.equal(layerAttentionKind(48, 48, 'sparse'), 'conv');
  for (let l = 1; l <= 6; l++) assert.equal(layerAttentionKind(l, 6, 'dense'), 'dense');
});

test('32×32 grid + 64 text: every sparse kind keeps far fewer than S² entries', () => {
  const segs: Segment[] = [{ kind: 'text', length: 64, role: 'source' }, { kind: 'image', grid: [32, 32], role: 'target' }];
  const s = 64 + 1024;
  const dense = buildPattern(segs, 'dense').nnz;
  assert.equal(dense, 64 * 64 + 1024 * 64 + (1024 * 1025) / 2);
  for (const kind of ['row', 'column', 'conv'] as const) {
    const p = buildPattern(segs, kind, { convKernel: 11 });
    assert.equal(p.seqLen, s);
    assert.ok(p.nnz < 0.11 * s * s, `${kind}: nnz ${p.nnz} vs S² ${s * s}`);
    assert.ok(p.nnz < 0.21 * dense, `${kind}: nnz ${p.nnz} vs dense UniLM ${dense}`);
  }
  // row: 64 text keys + min(p+1, 32) image keys per image query
  assert.equal(buildPattern(segs, 'row').nnz, 64 * 64 + 1024 * 64 + (32 * 33) / 2 + (1024 - 32) * 32);
});

test('bad inputs throw clear errors', () => {
  const img = (grid: unknown): Segment[] => [{ kind: 'image', grid, role: 'target' } as unknown as Segment];
  assert.throws(() => buildPattern(img([0, 3]), 'row'), /grid\[0\] \(h\) must be an integer ≥ 1/);
  assert.throws(() => buildPattern(img([3, 2.5]), 'row'), /grid\[1\] \(w\) must be an integer ≥ 1/);
  assert.throws(() => buildPattern(img([3]), 'row'), /grid must be \[h, w\]/);
  assert.throws(() => buildPattern([{ kind: 'text', length: -1, role: 'source' }], 'row'), /length must be an integer ≥ 0/);
  assert.throws(() => buildPattern([{ kind: 'text', length: 2, role: 'both' } as unknown as Segment], 'row'), /role must be 'source' or 'target'/);
  assert.throws(() => buildPattern([{ kind: 'audio', length: 2, role: 'source' } as unknown as Segment], 'row'), /kind must be 'text' or 'image'/);
  assert.throws(() => buildPattern([{ kind: 'text', length: 2, role: 'source', grid: [1, 1] } as unknown as Segment], 'row'), /unknown keys grid/);
  assert.throws(() => buildPattern(T2I, 'strided' as LayerAttention), /kind must be one of/);
  assert.throws(() => buildPattern(T2I, 'conv', { convKernel: 4 }), /convKernel must be an odd integer ≥ 1/);
  assert.throws(() => buildPattern(T2I, 'conv', { convKernel: 0 }), /convKernel must be an odd integer ≥ 1/);
  assert.throws(() => buildPattern(T2I, 'conv', { kernel: 3 } as unknown as { convKernel: number }), /unknown option/);
  assert.throws(() => layerAttentionKind(0, 4, 'sparse'), /layer must be an integer in 1\.\.4/);
  assert.throws(() => layerAttentionKind(5, 4, 'sparse'), /layer must be an integer in 1\.\.4/);
  assert.throws(() => layerAttentionKind(1, 0, 'sparse'), /numLayers must be an integer ≥ 1/);
  assert.throws(() => layerAttentionKind(1, 4, 'sparce' as 'sparse'), /mode must be 'sparse' or 'dense'/);
  assert.throws(() => patternToDense({ seqLen: 2, rowPtr: new Int32Array(2), cols: new Int32Array(0), nnz: 0 }), /not a SparsePattern/);
});

// Cross-implementation check: the PyTorch reference (reference/vilg_masks.py) builds the same masks.
interface MaskFixture { name: string; segments: Segment[]; kind: LayerAttention; convKernel: number; seqLen: number; rows: string[] }

test('patternToDense equals the PyTorch reference masks (test/fixtures/vilg/masks.json)', () => {
  const url = new URL('../../../test/fixtures/vilg/masks.json', import.meta.url);
  const fx = JSON.parse(readFileSync(url, 'utf8')) as { masks: MaskFixture[] };
  assert.ok(fx.masks.length >= 16);
  for (const m of fx.masks) {
    const p = buildPattern(m.segments, m.kind, { convKernel: m.convKernel });
    assert.equal(p.seqLen, m.seqLen, m.name);
    assert.equal(renderPattern(p), m.rows.join('\n'), m.name);
  }
});
