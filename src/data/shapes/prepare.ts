// Writing the `shapes` data set (src/data/format.ts layout) and scoring it with the checker.
// Sample i depends only on (seed, i), so a larger count extends a smaller one with the same seed.

import { Generator } from '../../engine/random.js';
import { progress } from '../../util/progress.js';
import { DatasetWriter, openDataset, type DatasetCard, type SampleRecord } from '../format.js';
import { splitOf } from '../split.js';
import { captionsFor } from './captions.js';
import { CheckerTally, checkScene, compareScene } from './checker.js';
import { addGaussianNoise, renderScene, RENDER } from './render.js';
import { GENERATOR_VERSION, LAYOUT, sampleScene, type SceneAttrs, type SceneConfig } from './scene.js';
import { COLOURS, SHAPES } from './vocab.js';
import { vqaFor } from './vqa.js';

export interface PrepareShapesOptions {
  out: string;
  count: number;
  size: number;
  seed: number;
  maxObjects: number;
  /** Gaussian noise σ (0–255 units) for a second checker pass over noisy copies; 0 skips it. */
  noiseSigma: number;
  showProgress?: boolean;
}

export const DEFAULT_PREPARE = Object.freeze({
  count: 10000, // enough scenes that every shape × colour × size × relation combination appears many times
  size: 32, // the model's default image size
  seed: 0,
  maxObjects: 2, // one- and two-object scenes
  noiseSigma: 8, // mild noise: the checker must not depend on perfectly clean pixels
});

/** Why the options are invalid (naming the option), or null. */
export function shapesOptionsError(o: Omit<PrepareShapesOptions, 'out'>): string | null {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > 10_000_000) return `count must be an integer in [1, 10000000], got ${o.count}`;
  if (!Number.isInteger(o.size) || o.size < RENDER.minSize || o.size > RENDER.maxSize) return `size must be an integer in [${RENDER.minSize}, ${RENDER.maxSize}], got ${o.size}`;
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) return `seed must be a non-negative integer, got ${o.seed}`;
  if (o.maxObjects !== 1 && o.maxObjects !== 2) return `max-objects must be 1 or 2, got ${o.maxObjects}`;
  if (!(o.noiseSigma >= 0 && o.noiseSigma <= 128)) return `noise sigma must be in [0, 128], got ${o.noiseSigma}`;
  return null;
}

export function sceneConfig(maxObjects: number): SceneConfig {
  return { maxObjects: maxObjects === 1 ? 1 : 2, pairFraction: 0.5 };
}

/** Sample `index` of the data set with `seed`: its image and its record (without `index`). */
export function makeShapesSample(seed: number, index: number, size: number, config: SceneConfig): { rgb: Uint8Array; record: Omit<SampleRecord, 'index'>; attrs: SceneAttrs } {
  const { attrs, gen } = sampleScene(seed, index, config);
  const id = `shapes-${seed}-${index}`;
  const record: Omit<SampleRecord, 'index'> = {
    id, split: splitOf(id, seed), group: id, // every scene is unique, so the sample is its own group
    captions: captionsFor(attrs), vqa: vqaFor(attrs, gen),
    attrs: attrs as unknown as Record<string, unknown>,
    source: `ernie-vilg ${GENERATOR_VERSION} generator, seed ${seed}, index ${index}`,
  };
  return { rgb: renderScene(attrs, size), record, attrs };
}

/** A record's attrs as SceneAttrs, or null when they are not a shapes scene. */
export function sceneAttrsOf(r: SampleRecord): SceneAttrs | null {
  const a = r.attrs as Partial<SceneAttrs> | undefined;
  return a && a.generator === GENERATOR_VERSION && Array.isArray(a.objects) && a.objects.length > 0 ? (a as SceneAttrs) : null;
}

export interface ShapesCheck {
  clean: CheckerTally;
  /** Same images with Gaussian noise (absent when noiseSigma is 0). */
  noisy?: CheckerTally;
  noiseSigma: number;
  /** Records without shapes attributes (not scored). */
  skipped: number;
}

/** Runs the checker over a prepared shapes data set (and over noisy copies when noiseSigma > 0). */
export function checkShapesDataset(dir: string, noiseSigma: number, showProgress = false, limit = Infinity): ShapesCheck {
  const ds = openDataset(dir);
  const size = ds.card.imageSize.height;
  if (ds.card.imageSize.width !== size) throw new RangeError(`${dir}: shapes images are square, got ${size}×${ds.card.imageSize.width}`);
  const n = Math.min(limit, ds.records.length);
  const clean = new CheckerTally(), noisy = noiseSigma > 0 ? new CheckerTally() : undefined;
  const noise = new Generator(0x5eed);
  let skipped = 0;
  const bar = progress('shapes: checking', n, { silent: !showProgress });
  for (let i = 0; i < n; i++) {
    const r = ds.records[i]!, attrs = sceneAttrsOf(r);
    if (!attrs) {
      if (skipped++ === 0) process.stderr.write(`warning: ${dir}/manifest.jsonl line ${i + 1}: record '${r.id}' has no shapes attributes; not scored\n`);
      bar.tick();
      continue;
    }
    const rgb = ds.image(i);
    clean.add(compareScene(attrs, checkScene(rgb, size)));
    if (noisy) noisy.add(compareScene(attrs, checkScene(addGaussianNoise(rgb, noiseSigma, noise), size)));
    bar.tick();
  }
  bar.done(`${(100 * clean.accuracy()).toFixed(2)}% all correct`);
  return { clean, ...(noisy ? { noisy } : {}), noiseSigma, skipped };
}

export interface PrepareShapesReport {
  out: string;
  card: DatasetCard;
  check: ShapesCheck;
  seconds: number;
}

export function prepareShapes(o: PrepareShapesOptions): PrepareShapesReport {
  const err = shapesOptionsError(o);
  if (err) throw new RangeError(`prepareShapes: ${err}`);
  const t0 = Date.now(), config = sceneConfig(o.maxObjects);
  const writer = new DatasetWriter(o.out, o.size, o.size);
  const bar = progress('shapes: rendering', o.count, { silent: o.showProgress !== true });
  let pairs = 0;
  for (let i = 0; i < o.count; i++) {
    const { rgb, record, attrs } = makeShapesSample(o.seed, i, o.size, config);
    if (attrs.relation) pairs++;
    writer.add(rgb, record);
    bar.tick();
  }
  bar.done();
  const card = writer.finish({
    name: 'shapes',
    description: 'Synthetic scenes of one or two coloured shapes on white, with English and Chinese captions, exact attribute records and template VQA, generated by ernie-vilg.',
    languages: ['en', 'zh'],
    licences: ['CC0-1.0: generated by ernie-vilg, no third-party art'],
    attribution: ['Generated by ernie-vilg (src/data/shapes), no third-party art; no attribution required.'],
    createdBy: `vilg data prepare shapes --count ${o.count} --size ${o.size} --seed ${o.seed} --max-objects ${o.maxObjects}`,
    skipped: {},
    notes: [
      `generator ${GENERATOR_VERSION}, seed ${o.seed}: sample i is drawn from its own xoshiro128** stream seeded by hash('${GENERATOR_VERSION}:${o.seed}:i'), so it does not depend on the count`,
      `${o.count - pairs} one-object scenes (3×3 position grid) and ${pairs} two-object scenes (distinct colours, relation left of / right of / above / below; edge gap ≥ ${LAYOUT.minGap}, cross-axis offset ≤ ${LAYOUT.maxOffset} of the image side)`,
      `shapes: ${SHAPES.join(', ')}; colours: ${COLOURS.join(', ')}; sizes: small (extent ${LAYOUT.small.join('–')}), large (${LAYOUT.large.join('–')}) of the image side`,
      `rendered by ernie-vilg's own rasteriser with ${RENDER.supersample}×${RENDER.supersample} supersampling (area-coverage anti-aliasing) on white`,
      'record.attrs holds every drawn object (shape, colour, size, extent, centre, bbox in fractions of the image side; position for single objects) and the relation; captions name every attribute',
      'VQA items are synthetic templates (count, colour, shape, size, position, relation yes/no balanced 1:1); score with exact match after normalisation',
      'split: splitOf(sample id, seed), 80/10/10; every scene is its own group',
    ],
  });
  const check = checkShapesDataset(o.out, o.noiseSigma, o.showProgress === true);
  return { out: o.out, card, check, seconds: (Date.now() - t0) / 1000 };
}

export function formatShapesReport(r: PrepareShapesReport): string {
  const c = r.card;
  return [
    `wrote ${c.count} shapes scenes at ${c.imageSize.height}×${c.imageSize.width} to ${r.out} in ${r.seconds.toFixed(1)} s`,
    `splits: train ${c.splits.train}, val ${c.splits.val}, test ${c.splits.test}`,
    `checker on the written images: ${r.check.clean.format()}`,
    ...(r.check.noisy ? [`checker with Gaussian noise σ=${r.check.noiseSigma}: ${r.check.noisy.format()}`] : []),
    ...(r.check.skipped ? [`not scored: ${r.check.skipped} records without shapes attributes`] : []),
  ].join('\n');
}
