// shapes checker: reads the attributes back from its own renders (≥ 99% all-correct), stays
// accurate under mild noise, and reports wrong attributes as wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Generator } from '../../src/engine/random.js';
import { CheckerTally, checkScene, compareScene } from '../../src/data/shapes/checker.js';
import { addGaussianNoise, renderScene } from '../../src/data/shapes/render.js';
import { sampleScene, type SceneAttrs } from '../../src/data/shapes/scene.js';
import { COLOURS, SHAPES } from '../../src/data/shapes/vocab.js';

/** 3×3 box blur (edges average what is inside the image): a stand-in for a model's soft output. */
function boxBlur(a: Uint8Array, size: number): Uint8Array {
  const b = new Uint8Array(a.length);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) {
    let s = 0, n = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
      const yy = y + dy, xx = x + dx;
      if (yy >= 0 && yy < size && xx >= 0 && xx < size) { s += a[(yy * size + xx) * 3 + c]!; n++; }
    }
    b[(y * size + x) * 3 + c] = Math.round(s / n);
  }
  return b;
}

function tally(size: number, n: number, seed: number, sigma = 0, blur = false): CheckerTally {
  const t = new CheckerTally(), noise = new Generator(99);
  for (let i = 0; i < n; i++) {
    const { attrs } = sampleScene(seed, i);
    let img = renderScene(attrs, size);
    if (blur) img = boxBlur(img, size);
    if (sigma > 0) img = addGaussianNoise(img, sigma, noise);
    t.add(compareScene(attrs, checkScene(img, size)));
  }
  return t;
}

for (const size of [32, 64]) {
  test(`recovers every stored attribute on ≥ 99% of 500 renders at ${size} px`, () => {
    const t = tally(size, 500, 1);
    assert.equal(t.total.all, 500);
    assert.ok(t.accuracy() >= 0.99, t.format());
    for (const f of ['count', 'colour', 'shape', 'size', 'relation', 'position'] as const) assert.ok(t.accuracy(f) >= 0.99, `${f}: ${t.format()}`);
    assert.ok(t.total.position > 150 && t.total.relation > 150, 'both scene kinds scored');
  });
}

test('stays accurate with Gaussian pixel noise σ = 8 at 32 px', () => {
  const t = tally(32, 300, 2, 8);
  assert.ok(t.accuracy() >= 0.95, t.format());
});

test('tolerates a 3×3 box blur at 32 px (templates are also fitted blurred)', () => {
  const t = tally(32, 300, 3, 0, true);
  assert.ok(t.accuracy() >= 0.95, t.format());
});

test('returns the measured geometry of a known scene', () => {
  const attrs: SceneAttrs = {
    generator: 'shapes-v1', seed: 0, index: 0,
    objects: [
      { shape: 'triangle', colour: 'orange', size: 'large', extent: 0.42, centre: [0.3, 0.5], bbox: [0.09, 0.29, 0.51, 0.71] },
      { shape: 'cross', colour: 'red', size: 'small', extent: 0.24, centre: [0.75, 0.52], bbox: [0.63, 0.4, 0.87, 0.64] },
    ],
    relation: { relation: 'left of', subject: 0, object: 1 },
  };
  const got = checkScene(renderScene(attrs, 32), 32);
  assert.equal(got.objects.length, 2);
  const [tri, cross] = got.objects; // largest first
  assert.equal(tri!.shape, 'triangle'); assert.equal(tri!.colour, 'orange'); assert.equal(tri!.size, 'large');
  assert.equal(cross!.shape, 'cross'); assert.equal(cross!.colour, 'red'); assert.equal(cross!.size, 'small');
  assert.ok(Math.abs(tri!.extent - 0.42) < 0.01 && Math.abs(tri!.centre[0] - 0.3) < 0.01 && Math.abs(tri!.centre[1] - 0.5) < 0.01, JSON.stringify(tri));
  assert.ok(Math.abs(cross!.extent - 0.24) < 0.01 && Math.abs(cross!.centre[0] - 0.75) < 0.01, JSON.stringify(cross));
  assert.equal(got.relation?.relation, 'left of');
  assert.ok(tri!.shapeScores.triangle > 0.95 && tri!.shapeScores.triangle - Math.max(tri!.shapeScores.diamond, tri!.shapeScores.square) > 0.2);
  assert.deepEqual(compareScene(attrs, got), { count: true, colour: true, shape: true, size: true, position: null, relation: true, all: true });
});

test('wrong attributes compare as wrong, field by field', () => {
  let checked = 0;
  for (let i = 0; i < 60; i++) {
    const { attrs } = sampleScene(4, i);
    const got = checkScene(renderScene(attrs, 32), 32);
    const o = attrs.objects[0]!;
    const other = <T>(xs: readonly T[], x: T): T => xs[(xs.indexOf(x) + 1) % xs.length]!;
    const withObj = (patch: Partial<typeof o>): SceneAttrs => ({ ...attrs, objects: [{ ...o, ...patch }, ...attrs.objects.slice(1)] });
    assert.equal(compareScene(withObj({ shape: other(SHAPES, o.shape) }), got).shape, false);
    assert.equal(compareScene(withObj({ size: o.size === 'small' ? 'large' : 'small' }), got).size, false);
    const unused = COLOURS.find((c) => !attrs.objects.some((x) => x.colour === c))!;
    const r = compareScene(withObj({ colour: unused }), got);
    assert.equal(r.colour, false); assert.equal(r.all, false);
    if (attrs.relation) {
      const flipped = { ...attrs, relation: { ...attrs.relation, relation: attrs.relation.relation === 'above' ? 'below' as const : 'above' as const } };
      assert.equal(compareScene(flipped, got).relation, false);
    } else {
      const p = o.position!;
      assert.equal(compareScene(withObj({ position: { ...p, col: p.col === 'left' ? 'right' : 'left' } }), got).position, false);
    }
    assert.equal(compareScene({ ...attrs, objects: [...attrs.objects, { ...o, colour: unused }] }, got).count, false);
    checked++;
  }
  assert.equal(checked, 60);
});

test('a blank or off-palette image has no objects; a wrong buffer size is a clear error', () => {
  assert.deepEqual(checkScene(new Uint8Array(32 * 32 * 3).fill(255), 32).objects, []);
  assert.deepEqual(checkScene(new Uint8Array(32 * 32 * 3).fill(250), 32).objects, []);
  assert.throws(() => checkScene(new Uint8Array(10), 32), /10 bytes, expected 3072/);
  assert.throws(() => renderScene(sampleScene(0, 0).attrs, 15), /integer in \[16, 1024\]/);
});
