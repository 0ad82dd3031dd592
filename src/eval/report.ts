// The report of `vilg eval` (src/eval/evaluate.ts): its types (eval.json is an EvalReport), eval.md and the
// contact sheets (PNG + sheets.html). Kept apart from the evaluation so each file reads in one sitting.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePng } from '../data/image.js';
import type { Lang, Split } from '../data/format.js';
import { COMPARISON_FIELDS, type ComparisonField, type SceneComparison } from '../data/shapes/checker.js';
import type { UsageSummary } from '../models/vqgan/codebook.js';
import { writeFileAtomic } from '../util/atomic.js';
import { imageGrid, writePng } from '../util/png.js';
import type { CaptionScores } from './caption-metrics.js';
import type { EvalTask } from './evaluate.js';
import type { FeatureDomain } from './feature-labels.js';
import type { KidResult } from './features.js';


export type Field = ComparisonField | 'all';
export const FIELDS: readonly Field[] = [...COMPARISON_FIELDS, 'all'];

/** One row of the t2i attribute table: the checker's per-field agreement on a set of images. */
export interface AttributeRow {
  /** What was scored: 'real', 'reconstruction', 'generated', 'random codes'. */
  label: string;
  /** One line on how those images were made. */
  what: string;
  images: number;
  /** correct / total per field; null where the field applied to no image (e.g. relation without pairs). */
  accuracy: Record<Field, number | null>;
  correct: Record<Field, number>;
  total: Record<Field, number>;
}

/** One row of the FD/KID table: a set of images against the real test images, in the feature network's space. */
export interface FeatureDistanceRow {
  /** 'real train', 'reconstruction', 'generated', 'random codes'. */
  label: string;
  what: string;
  /** Images in this row's set (the reference set has FeatureDistances.referenceImages). */
  images: number;
  /** FD-<domain>: Fréchet distance of the Gaussians fitted to the two feature sets. */
  fd: number;
  /** KID-<domain>: unbiased MMD² (cubic polynomial kernel) over random subsets, mean and std. */
  kid: KidResult;
}

/** Emoji recognition by retrieval in the feature space (emoji data only). */
export interface Recognition {
  /** Distinct emoji (code point sequences) among the evaluated images: the gallery. */
  gallery: number;
  /** Expected top-1 / top-5 of a random guess: 1/gallery, 5/gallery. */
  chance: { top1: number; top5: number };
  rows: { label: string; images: number; top1: number; top5: number }[];
  note: string;
}

export interface FeatureDistances {
  /** 'shapes' or 'emoji': names the figures FD-<domain> / KID-<domain>; null when not computed. */
  domain: FeatureDomain | null;
  /** The feature network's directory (or 'in memory'); null when not computed. */
  network: string | null;
  featureDim: number | null;
  /** The real test images every row is compared with. */
  referenceImages: number;
  /** How the figures were computed, or why they were not. */
  note: string;
  rows: FeatureDistanceRow[];
  /** Emoji data: recognition of the prompted emoji; null otherwise. */
  recognition: Recognition | null;
}

export interface CaptionRow {
  /** 'greedy' or 'beam k'. */
  decoding: string;
  metrics: CaptionScores;
  /** shapes data: captions parsed back and compared with the attributes (null otherwise). */
  attributes: { allCorrect: number; correct: number; total: number; parseFailures: number } | null;
}

export interface EvalReport {
  format: 'vilg-eval';
  version: 1;
  model: { dir: string; mode: string; parameters: number; imageSize: number; imageGrid: readonly [number, number]; numCodes: number; maxTextLen: number };
  data: { dir: string; name: string; split: Split; splitSamples: number; samples: number; imageSize: { height: number; width: number }; shapes: boolean };
  settings: {
    tasks: EvalTask[]; n: number; seed: number; lang: Lang; batchSize: number;
    t2i: { temperature: number; topK: number; topP: number; rerank: number; kvCache: true; seeds: string };
    i2t: { decodings: string[]; maxLen: number; languageRestricted: Lang };
    vqa: { decoding: 'greedy'; languageRestricted: Lang; scoring: string };
  };
  t2i?: {
    prompts: number;
    /** Prompts longer than the model's text length (truncated). */
    truncated: number;
    /** Prompts holding a word the model's text tokenizer cannot spell ([UNK]). */
    withUnknownTokens: number;
    /** Those words (or symbols) with their counts, most frequent first (at most 20). */
    unknownWords: Record<string, number>;
    /** Attribute accuracy rows (shapes data only; null otherwise, with the reason in `note`). */
    attributes: AttributeRow[] | null;
    note: string;
    tokenizer: { psnr: number; ssim: number | null; reconstructionPath: string; codebook: UsageSummary & { K: number } };
    generatedCodebook: UsageSummary & { K: number };
    featureDistances: FeatureDistances;
  };
  i2t?: { images: number; referencesPerImage: { min: number; max: number; mean: number }; rows: CaptionRow[] };
  vqa?: {
    questions: number; truncated: number; correct: number; exactMatch: number; scoring: string;
    /** Questions holding [UNK] (a word or symbol outside the model's vocabulary). */
    questionsWithUnknownTokens: number;
    /** The words (or symbols) of the questions that became [UNK], with their counts, most frequent first (at most 20). */
    unknownWords: Record<string, number>;
    /** Reference answers the model cannot spell (their tokens hold [UNK]): exact match is out of reach for them. */
    unreachableAnswers: number;
    perKind: Record<string, { questions: number; correct: number; exactMatch: number }>;
  };
  /** Wall time per phase, seconds (the only figures that differ between two runs). */
  timing: Record<string, number>;
}

/** What the contact sheets show. */
export interface EvalSheets {
  imageSize: number;
  t2i: { id: string; prompt: string; real: Uint8Array; reconstruction: Uint8Array; generated: Uint8Array; random: Uint8Array; verdict: SceneComparison | null }[];
  i2t: { id: string; image: Uint8Array; greedy: string; beam: string | null; references: string[]; correct: boolean | null }[];
  vqa: { id: string; image: Uint8Array; question: string; answer: string; reference: string; kind: string; correct: boolean }[];
}

export interface EvalResult { report: EvalReport; sheets: EvalSheets }

// ---------------------------------------------------------------- writing the results

const pct = (v: number | null): string => (v === null ? '—' : `${(100 * v).toFixed(1)}%`);
const f3 = (v: number): string => v.toFixed(3);
const esc = (s: string): string => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]!));
const cell = (s: string): string => s.replace(/\|/g, '\\|');
const words = (m: Record<string, number>): string => Object.entries(m).map(([w, c]) => `'${w}' ×${c}`).join(', ') || 'none';

/** eval.md: the report as tables, calibration rows included. */
export function formatEvalMarkdown(r: EvalReport): string {
  const s = r.settings, L: string[] = [];
  L.push(`# Evaluation: ${r.model.dir} on ${r.data.name} (${r.data.split})`, '');
  L.push(`- model: \`${r.model.dir}\` (${r.model.mode}, ${(r.model.parameters / 1e6).toFixed(2)}M parameters, ${r.model.imageGrid.join('×')} codes of ${r.model.numCodes}, ${r.model.imageSize} px)`);
  L.push(`- data: \`${r.data.dir}\`, split ${r.data.split}: the first ${r.data.samples} of ${r.data.splitSamples} samples, language ${s.lang}`);
  L.push(`- tasks: ${s.tasks.join(', ')}; seed ${s.seed}; batch size ${s.batchSize} (the figures do not depend on it)`);
  L.push(`- wall time: ${Object.entries(r.timing).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}`, '');
  if (r.t2i) {
    const t = r.t2i;
    L.push('## Text → image', '');
    L.push(`${t.prompts} prompts (each sample's main ${s.lang} caption${t.truncated > 0 ? `; ${t.truncated} truncated to the model's text length` : ''}${t.withUnknownTokens > 0 ? `; ${t.withUnknownTokens} with words outside the model's vocabulary ([UNK]: ${words(t.unknownWords)})` : ''}), ${s.t2i.rerank > 1 ? `the best of ${s.t2i.rerank} samples each by the model's log P(prompt | image)` : 'one image each'}: temperature ${s.t2i.temperature}, top-k ${s.t2i.topK}, top-p ${s.t2i.topP}, per-sample seeds.`, '');
    if (t.attributes) {
      L.push('### Attribute accuracy (shapes checker)', '', t.note + '.', '');
      L.push(`| images | n | ${FIELDS.join(' | ')} |`, `|---|---:|${FIELDS.map(() => '---:').join('|')}|`);
      for (const row of t.attributes) L.push(`| ${row.label} | ${row.images} | ${FIELDS.map((f) => pct(row.accuracy[f])).join(' | ')} |`);
      L.push('', ...t.attributes.map((row) => `- ${row.label}: ${row.what}`), '');
    } else L.push(t.note + '.', '');
    L.push('### Tokenizer and codes', '');
    L.push('| figure | value |', '|---|---:|');
    L.push(`| reconstruction PSNR (dB, capped at 100 per image) | ${t.tokenizer.psnr.toFixed(2)} |`);
    L.push(`| reconstruction SSIM | ${t.tokenizer.ssim === null ? 'n/a (images under 11 px)' : f3(t.tokenizer.ssim)} |`);
    L.push(`| codes used by the real images | ${t.tokenizer.codebook.used}/${t.tokenizer.codebook.K} (perplexity ${t.tokenizer.codebook.perplexity.toFixed(1)}) |`);
    L.push(`| codes used by the generated images | ${t.generatedCodebook.used}/${t.generatedCodebook.K} (perplexity ${t.generatedCodebook.perplexity.toFixed(1)}) |`);
    if (t.featureDistances.rows.length === 0) L.push(`| FD / KID | ${cell(t.featureDistances.note)} |`);
    L.push('', `Reconstruction path: ${t.tokenizer.reconstructionPath}.`, '');
    const fd = t.featureDistances;
    if (fd.rows.length > 0) {
      const dm = fd.domain ?? 'shapes'; // reports written before emoji had no domain: shapes
      L.push(`### FD-${dm} / KID-${dm} (in-domain feature network, not FID)`, '', fd.note + '.', '');
      L.push(`| images | n | vs real ${r.data.split} (n) | FD-${dm} | KID-${dm} (mean ± std) |`, '|---|---:|---:|---:|---:|');
      for (const x of fd.rows) L.push(`| ${x.label} | ${x.images} | ${fd.referenceImages} | ${x.fd.toFixed(3)} | ${x.kid.mean.toFixed(4)} ± ${x.kid.std.toFixed(4)} |`);
      L.push('', ...fd.rows.map((x) => `- ${x.label}: ${x.what}`), '');
    }
    const rec = fd.recognition;
    if (rec) {
      L.push('### Recognition of the prompted emoji (retrieval in the feature space)', '', rec.note + '.', '');
      L.push('| images | n | top-1 | top-5 |', '|---|---:|---:|---:|');
      for (const x of rec.rows) L.push(`| ${x.label} | ${x.images} | ${pct(x.top1)} | ${pct(x.top5)} |`);
      L.push(`| chance (gallery of ${rec.gallery}) | – | ${pct(rec.chance.top1)} | ${pct(rec.chance.top5)} |`, '');
    }
  }
  if (r.i2t) {
    const t = r.i2t;
    L.push('## Image → text', '');
    L.push(`${t.images} images, ${t.referencesPerImage.min === t.referencesPerImage.max ? t.referencesPerImage.min : `${t.referencesPerImage.min}–${t.referencesPerImage.max}`} ${s.lang} references each; output restricted to ${s.lang} tokens. BLEU (corpus, 'closest'), ROUGE-L (β 1.2) and CIDEr-D (σ 6, ×10) as the COCO caption toolkit computes them; no METEOR or SPICE.`, '');
    const attrs = t.rows.some((x) => x.attributes !== null);
    L.push(`| decoding | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | ROUGE-L | CIDEr-D |${attrs ? ' all attributes correct | parse failures |' : ''}`);
    L.push(`|---|---:|---:|---:|---:|---:|---:|${attrs ? '---:|---:|' : ''}`);
    for (const x of t.rows) {
      const m = x.metrics, a = x.attributes;
      L.push(`| ${x.decoding} | ${f3(m.bleu1)} | ${f3(m.bleu2)} | ${f3(m.bleu3)} | ${f3(m.bleu4)} | ${f3(m.rougeL)} | ${f3(m.ciderD)} |${attrs ? (a ? ` ${pct(a.allCorrect)} (${a.correct}/${a.total}) | ${a.parseFailures} |` : ' — | — |') : ''}`);
    }
    if (attrs) L.push('', '"All attributes correct": the caption parsed back with the shapes grammar states exactly the scene\'s objects (shape, colour, size), the position of a single object and the relation of a pair; captions outside the grammar count as wrong and are also counted as parse failures.');
    L.push('');
  }
  if (r.vqa) {
    const v = r.vqa;
    L.push('## Generative VQA', '');
    L.push(`${v.questions} questions, greedy answers restricted to ${s.lang} tokens; scored by ${v.scoring}.`);
    if (v.questionsWithUnknownTokens > 0 || v.unreachableAnswers > 0) {
      L.push(`The model's text vocabulary misses words here: ${v.questionsWithUnknownTokens} questions hold [UNK] (${words(v.unknownWords)}), and ${v.unreachableAnswers} reference answers cannot be spelt by the model at all (exact match is out of reach for them).`);
    }
    if (v.truncated > 0) L.push(`${v.truncated} questions were truncated to the model's text length.`);
    L.push('');
    L.push('| kind | questions | exact match |', '|---|---:|---:|');
    for (const [k, x] of Object.entries(v.perKind)) L.push(`| ${cell(k)} | ${x.questions} | ${pct(x.exactMatch)} |`);
    L.push(`| **all** | ${v.questions} | **${pct(v.exactMatch)}** |`, '');
  }
  const files = [...(r.t2i ? ['t2i-sheet.png (per prompt: real, reconstruction, generated, random codes)'] : []), ...(r.i2t ? ['i2t-sheet.png (the captioned images)'] : [])];
  L.push(`Contact sheets: ${[...files, 'sheets.html (the sheets with their prompts, captions and answers)'].join(', ')}.`, '');
  return L.join('\n');
}

/** The files writeEvalOutputs writes. */
export interface EvalFiles { json: string; markdown: string; html: string; sheets: string[] }

/** Writes OUT/eval.json, OUT/eval.md, the contact sheets (PNG) and sheets.html with their texts. */
export async function writeEvalOutputs(out: string, result: EvalResult): Promise<EvalFiles> {
  if (typeof out !== 'string' || out === '') throw new RangeError('writeEvalOutputs: out must be a directory path');
  await mkdir(out, { recursive: true });
  const { report, sheets } = result, S = sheets.imageSize;
  const json = join(out, 'eval.json'), markdown = join(out, 'eval.md'), html = join(out, 'sheets.html'), written: string[] = [];
  await writeFileAtomic(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(markdown, formatEvalMarkdown(report));
  if (sheets.t2i.length > 0) {
    const g = imageGrid(sheets.t2i.flatMap((x) => [x.real, x.reconstruction, x.generated, x.random]), { height: S, width: S, cols: 4, pad: 2 });
    const f = join(out, 't2i-sheet.png');
    await writePng(f, g.rgb, g.height, g.width);
    written.push(f);
  }
  if (sheets.i2t.length > 0) {
    const g = imageGrid(sheets.i2t.map((x) => x.image), { height: S, width: S, pad: 2 });
    const f = join(out, 'i2t-sheet.png');
    await writePng(f, g.rgb, g.height, g.width);
    written.push(f);
  }
  const img = async (rgb: Uint8Array): Promise<string> => `<img src="data:image/png;base64,${(await encodePng(rgb, S, S)).toString('base64')}" width="${S * 3}" height="${S * 3}" alt="">`;
  const mark = (v: boolean | null): string => (v === null ? '' : v ? '<span class="ok">✓</span>' : '<span class="bad">✗</span>');
  const body: string[] = [`<h1>${esc(report.model.dir)} on ${esc(report.data.name)} (${report.data.split}, first ${report.data.samples})</h1>`, `<p>Figures: eval.md / eval.json. Seed ${report.settings.seed}, language ${report.settings.lang}.</p>`];
  if (sheets.t2i.length > 0) {
    body.push('<h2>Text → image</h2><table><tr><th>prompt</th><th>real</th><th>reconstruction</th><th>generated</th><th>random codes</th><th>checker on generated</th></tr>');
    for (const x of sheets.t2i) {
      const v = x.verdict === null ? '' : `${mark(x.verdict.all)} ${COMPARISON_FIELDS.filter((f) => x.verdict![f] === false).map((f) => `${f} wrong`).join(', ')}`;
      body.push(`<tr><td>${esc(x.prompt)}</td><td>${await img(x.real)}</td><td>${await img(x.reconstruction)}</td><td>${await img(x.generated)}</td><td>${await img(x.random)}</td><td>${v}</td></tr>`);
    }
    body.push('</table>');
  }
  if (sheets.i2t.length > 0) {
    const beam = sheets.i2t.some((x) => x.beam !== null);
    body.push(`<h2>Image → text</h2><table><tr><th>image</th><th>greedy</th>${beam ? '<th>beam</th>' : ''}<th>references</th></tr>`);
    for (const x of sheets.i2t) body.push(`<tr><td>${await img(x.image)}</td><td>${esc(x.greedy)} ${mark(x.correct)}</td>${beam ? `<td>${esc(x.beam ?? '')}</td>` : ''}<td class="ref">${x.references.map(esc).join('<br>')}</td></tr>`);
    body.push('</table>');
  }
  if (sheets.vqa.length > 0) {
    body.push('<h2>Generative VQA</h2><table><tr><th>image</th><th>kind</th><th>question</th><th>answer</th><th>reference</th></tr>');
    for (const x of sheets.vqa) body.push(`<tr><td>${await img(x.image)}</td><td>${esc(x.kind)}</td><td>${esc(x.question)}</td><td>${esc(x.answer)} ${mark(x.correct)}</td><td class="ref">${esc(x.reference)}</td></tr>`);
    body.push('</table>');
  }
  await writeFileAtomic(html, `<!doctype html><html lang="${report.settings.lang}"><head><meta charset="utf-8"><title>vilg eval</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}td,th{padding:4px 8px;text-align:left;vertical-align:middle;border-bottom:1px solid #ddd}
img{image-rendering:pixelated;border:1px solid #ccc}.ref{color:#666}.ok{color:#080}.bad{color:#c00}
</style></head><body>
${body.join('\n')}
</body></html>
`);
  return { json, markdown, html, sheets: written };
}
