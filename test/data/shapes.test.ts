// shapes: scene sampling, rendering determinism, captions and VQA agree with the attributes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { captionsFor } from '../../src/data/shapes/captions.js';
import { CaptionParseError, parseCaption } from '../../src/data/shapes/parse.js';
import { renderScene } from '../../src/data/shapes/render.js';
import { DEFAULT_SCENE_CONFIG, LAYOUT, relationBetween, sampleScene, type SceneAttrs } from '../../src/data/shapes/scene.js';
import { COLOURS, COLOUR_NAMES, COLOUR_RGB, INVERSE_RELATION, RELATIONS, SHAPES, SHAPE_NAMES, SIZE_NAMES, type RelationName } from '../../src/data/shapes/vocab.js';
import { vqaFor } from '../../src/data/shapes/vqa.js';

const scenes = (seed: number, n: number): SceneAttrs[] => Array.from({ length: n }, (_, i) => sampleScene(seed, i).attrs);
const EPS = 1e-3; // attributes are rounded to 4 decimals

test('same seed gives identical scenes and bytes; another seed gives different ones', () => {
  const a = scenes(7, 50), b = scenes(7, 50), c = scenes(8, 50);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.map((s) => s.objects), c.map((s) => s.objects));
  for (const size of [16, 32, 64]) {
    const ra = renderScene(a[3]!, size), rb = renderScene(b[3]!, size);
    assert.equal(ra.length, size * size * 3);
    assert.deepEqual(ra, rb);
  }
  const differs = a.filter((s, i) => Buffer.compare(renderScene(s, 32), renderScene(c[i]!, 32)) !== 0).length;
  assert.equal(differs, 50);
  // Sample i does not depend on how many samples are drawn or in which order.
  assert.deepEqual(sampleScene(7, 42).attrs, a[42]);
});

test('scenes cover the vocabulary and stay inside the image', () => {
  const all = scenes(0, 1000);
  const objs = all.flatMap((s) => s.objects);
  for (const s of SHAPES) assert.ok(objs.some((o) => o.shape === s), s);
  for (const c of COLOURS) assert.ok(objs.some((o) => o.colour === c), c);
  for (const r of RELATIONS) assert.ok(all.some((s) => s.relation?.relation === r), r);
  const singles = all.filter((s) => s.objects.length === 1);
  assert.ok(singles.length > 400 && singles.length < 600, `one-object share ${singles.length}/1000`);
  assert.equal(new Set(singles.map((s) => `${s.objects[0]!.position!.col}/${s.objects[0]!.position!.row}`)).size, 9);
  for (const o of objs) {
    const [lo, hi] = LAYOUT[o.size];
    assert.ok(o.extent >= lo - EPS && o.extent <= hi + EPS, `extent ${o.extent} for ${o.size}`);
    assert.ok(o.bbox[0] >= LAYOUT.margin - EPS && o.bbox[1] >= LAYOUT.margin - EPS && o.bbox[2] <= 1 - LAYOUT.margin + EPS && o.bbox[3] <= 1 - LAYOUT.margin + EPS, JSON.stringify(o.bbox));
    assert.ok(Math.abs(o.bbox[2] - o.bbox[0] - o.extent) < EPS);
  }
  const onlySingles = Array.from({ length: 200 }, (_, i) => sampleScene(0, i, { ...DEFAULT_SCENE_CONFIG, maxObjects: 1 }).attrs);
  assert.ok(onlySingles.every((s) => s.objects.length === 1 && s.relation === undefined));
});

test('two-object relations are unambiguous: gap along the axis exceeds the offset across it', () => {
  const pairs = scenes(3, 1000).filter((s) => s.relation);
  assert.ok(pairs.length > 400);
  for (const s of pairs) {
    const rel = s.relation!, a = s.objects[rel.subject]!, b = s.objects[rel.object]!;
    assert.notEqual(a.colour, b.colour);
    const horizontal = rel.relation === 'left of' || rel.relation === 'right of';
    const ax = horizontal ? 0 : 1, cross = 1 - ax;
    const [first, second] = rel.relation === 'left of' || rel.relation === 'above' ? [a, b] : [b, a];
    const gap = second.bbox[ax]! - first.bbox[ax + 2]!; // edge to edge: also proves no overlap
    const offset = Math.abs(a.centre[cross]! - b.centre[cross]!);
    assert.ok(gap >= LAYOUT.minGap - EPS, `gap ${gap}`);
    assert.ok(offset <= LAYOUT.maxOffset + EPS, `offset ${offset}`);
    assert.ok(gap > offset, `gap ${gap} vs offset ${offset}`);
    const seen = relationBetween(a.centre, b.centre);
    assert.equal(seen.relation, rel.relation);
    assert.ok(seen.clarity > 0.5, `clarity ${seen.clarity}`);
  }
});

test('renders use the palette on white: corners white, object centres the object colour', () => {
  for (const s of scenes(5, 100)) {
    const size = 32, img = renderScene(s, size);
    assert.deepEqual([...img.subarray(0, 3)], [255, 255, 255]);
    for (const o of s.objects) {
      if (o.shape === 'triangle') continue; // a small triangle's box-centre pixel can straddle a slanted edge
      const x = Math.floor(o.centre[0] * size), y = Math.floor(o.centre[1] * size), p = (y * size + x) * 3;
      assert.deepEqual([...img.subarray(p, p + 3)], [...COLOUR_RGB[o.colour]], `${o.shape} at ${x},${y}`);
    }
  }
});

test('every caption, English and Chinese, parses back to exactly the drawn attributes', () => {
  for (const s of scenes(11, 400)) {
    const caps = captionsFor(s);
    for (const lang of ['en', 'zh'] as const) {
      const list = caps[lang]!;
      assert.equal(list.length, 4);
      assert.equal(new Set(list).size, 4, 'variants differ');
      for (const text of list) {
        const p = parseCaption(text, lang);
        const want = s.objects.map((o) => `${o.size} ${o.colour} ${o.shape}`).sort();
        assert.deepEqual(p.objects.map((o) => `${o.size} ${o.colour} ${o.shape}`).sort(), want, text);
        if (s.relation) {
          assert.ok(p.relation, text);
          const sub = p.objects[p.relation.subject]!, obj = p.objects[p.relation.object]!;
          const a = s.objects[s.relation.subject]!;
          const same = sub.colour === a.colour;
          assert.equal(same ? p.relation.relation : INVERSE_RELATION[p.relation.relation], s.relation.relation, text);
          assert.notEqual(sub.colour, obj.colour);
        } else {
          assert.deepEqual(p.position, s.objects[0]!.position, text);
        }
      }
    }
  }
  assert.equal(captionsFor(sampleScene(0, 0).attrs).en![0], 'a large cyan cross at the top left');
  assert.equal(captionsFor(sampleScene(0, 0).attrs).zh![0], '左上角有一个大的青色十字形');
  assert.throws(() => parseCaption('a cat on a mat', 'en'), CaptionParseError);
  assert.throws(() => parseCaption('a small red circle', 'en'), /no position/);
});

test('VQA answers follow from the attributes, and relation yes/no is balanced', () => {
  const colourOf = new Map(COLOURS.map((c) => [COLOUR_NAMES[c].en, c]));
  let yes = 0, no = 0;
  const kinds = new Set<string>();
  for (let i = 0; i < 400; i++) {
    const { attrs: s, gen } = sampleScene(2, i);
    const items = vqaFor(s, gen);
    assert.deepEqual(vqaFor(s, sampleScene(2, i).gen), items, 'deterministic');
    for (const q of items) {
      kinds.add(q.kind);
      assert.equal(q.synthetic, true);
      const qEn = q.question.en!, aEn = q.answer.en!;
      assert.ok(q.question.zh && q.answer.zh, 'both languages');
      if (q.kind === 'count') assert.equal(aEn, ['one', 'two'][s.objects.length - 1]);
      if (q.kind === 'colour') {
        const shape = SHAPES.find((x) => qEn === `what colour is the ${SHAPE_NAMES[x].en}?`)!;
        assert.equal(COLOUR_NAMES[s.objects.find((o) => o.shape === shape)!.colour].en, aEn);
        assert.equal(s.objects.filter((o) => o.shape === shape).length, 1, 'asked only when the shape is unique');
      }
      if (q.kind === 'shape') {
        const colour = colourOf.get(/the (\w+) object/.exec(qEn)![1]!)!;
        assert.equal(SHAPE_NAMES[s.objects.find((o) => o.colour === colour)!.shape].en, aEn);
        assert.equal(SHAPE_NAMES[s.objects.find((o) => o.colour === colour)!.shape].zh, q.answer.zh);
      }
      if (q.kind === 'size') {
        const colour = colourOf.get(/^is the (\w+) /.exec(qEn)![1]!)!;
        assert.equal(SIZE_NAMES[s.objects.find((o) => o.colour === colour)!.size].en, aEn);
      }
      if (q.kind === 'position') assert.ok(s.objects.length === 1 && ['left', 'right', 'top', 'bottom', 'centre', 'top left', 'top right', 'bottom left', 'bottom right'].includes(aEn), aEn);
      if (q.kind === 'relation') {
        const m = /^is the (\w+) \w+ (.+) the (\w+) \w+\?$/.exec(qEn)!;
        const a = s.objects.find((o) => o.colour === colourOf.get(m[1]!))!, b = s.objects.find((o) => o.colour === colourOf.get(m[3]!))!;
        const rel = RELATIONS.find((r) => ({ 'left of': 'to the left of', 'right of': 'to the right of', above: 'above', below: 'below' } as Record<RelationName, string>)[r] === m[2])!;
        const truth = relationBetween(a.centre, b.centre).relation === rel;
        assert.equal(aEn, truth ? 'yes' : 'no', qEn);
        assert.equal(q.answer.zh, truth ? '是' : '否');
        if (truth) yes++; else no++;
      }
    }
  }
  assert.ok(yes > 150);
  assert.equal(yes, no);
  assert.deepEqual([...kinds].sort(), ['colour', 'count', 'position', 'relation', 'shape', 'size']);
});
