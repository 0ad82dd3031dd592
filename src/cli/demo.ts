// `vilg demo`: every task of the generation API on one model, written as an HTML page with its images.
// Test scenes come from the shapes generator (src/data/shapes) — held-out test-split scenes of seed 0, the
// default model's data — so the demo needs no data on disk; their captions and questions are the built-in
// prompts. Nothing on the page is hand-written: every caption, answer and score is what the model produced.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeShapesSample, sceneConfig } from '../data/shapes/prepare.js';
import type { VilgPipeline } from '../models/vilg/pipeline.js';
import { writeFileAtomic } from '../train/checkpoint.js';
import { progress } from '../util/progress.js';
import { imageGrid, writePng } from '../util/png.js';

export interface DemoOptions {
  /** Output directory (index.html and images). */
  out: string;
  /** Candidates per prompt. */
  n: number;
  /** Seed of the draws. */
  seed: number;
  /** Test scenes to caption / question / complete (default 4). */
  scenes?: number;
  silent?: boolean;
}

interface Scene { id: string; rgb: Uint8Array; caption: string; question: string; answer: string }

/** The first `count` test-split scenes of the shapes data set (seed 0), at `size` pixels. */
export function demoScenes(count: number, size: number): Scene[] {
  const out: Scene[] = [];
  for (let i = 0; out.length < count && i < 10_000; i++) {
    const s = makeShapesSample(0, i, size, sceneConfig(2));
    if (s.record.split !== 'test') continue;
    const qs = (s.record.vqa ?? []).filter((v) => v.question.en !== undefined && v.answer.en !== undefined);
    const q = qs[out.length % Math.max(1, qs.length)]; // rotate through the question kinds
    out.push({ id: s.record.id, rgb: s.rgb, caption: s.record.captions.en?.[0] ?? '', question: q?.question.en ?? '', answer: q?.answer.en ?? '' });
  }
  return out;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));

/** Runs the demo; returns the path of index.html. */
export async function runDemo(vilg: VilgPipeline, o: DemoOptions): Promise<string> {
  const size = vilg.imageSize, count = o.scenes ?? 4;
  await mkdir(o.out, { recursive: true });
  const scenes = demoScenes(count, size);
  const prompts = [...new Set(scenes.map((s) => s.caption))].slice(0, 3);
  const bar = progress('demo', prompts.length + 3 * scenes.length, { silent: o.silent === true });
  const html: string[] = [];
  const img = async (name: string, rgb: Uint8Array, h: number, w: number): Promise<string> => {
    await writePng(join(o.out, name), rgb, h, w);
    return `<img src="${name}" width="${w * 2}" height="${h * 2}" alt="${esc(name)}">`;
  };

  html.push('<h2>Text → image</h2><p>Candidates sampled as one batch (temperature 1, top-k 32), reranked by the model\'s own log P(prompt | image).</p>');
  for (const [pi, prompt] of prompts.entries()) {
    const r = await vilg.textToImage(prompt, { n: o.n, topK: Math.min(32, vilg.model.config.numCodes), seed: o.seed + pi, rerank: true });
    const cells: string[] = [];
    for (const [i, im] of r.images.entries()) cells.push(`<figure>${await img(`t2i-${pi}-${i}.png`, im.rgb, im.height, im.width)}<figcaption>${im.score!.toFixed(2)}</figcaption></figure>`);
    html.push(`<h3>"${esc(prompt)}"</h3><div class="row">${cells.join('')}</div><p class="meta">${(r.ms / 1000).toFixed(1)} s${r.warnings.map((w) => ` · ${esc(w)}`).join('')}</p>`);
    bar.tick();
  }

  html.push('<h2>Image → text</h2><table><tr><th>image</th><th>greedy (en)</th><th>beam 4 (en)</th><th>beam 4 (zh)</th><th>reference</th></tr>');
  for (const s of scenes) {
    const im = { rgb: s.rgb, width: size, height: size };
    const greedy = await vilg.caption(im, { lang: 'en' });
    const beam = await vilg.caption(im, { beams: 4, lang: 'en' });
    const zh = await vilg.caption(im, { beams: 4, lang: 'zh' });
    html.push(`<tr><td>${await img(`scene-${s.id}.png`, s.rgb, size, size)}</td><td>${esc(greedy.text)}</td><td>${esc(beam.text)}</td><td>${esc(zh.text)}</td><td class="ref">${esc(s.caption)}</td></tr>`);
    bar.tick();
  }
  html.push('</table>');

  html.push('<h2>Generative VQA</h2><table><tr><th>image</th><th>question</th><th>answer</th><th>reference</th></tr>');
  for (const s of scenes.filter((x) => x.question !== '')) {
    const a = await vilg.answer({ rgb: s.rgb, width: size, height: size }, s.question, { lang: 'en' });
    html.push(`<tr><td><img src="scene-${esc(s.id)}.png" width="${size * 2}" height="${size * 2}" alt=""></td><td>${esc(s.question)}</td><td>${esc(a.answer)}</td><td class="ref">${esc(s.answer)}</td></tr>`);
    bar.tick();
  }
  html.push('</table>');

  const rows = Math.floor(vilg.model.config.imageGrid[0] / 2);
  html.push(`<h2>Image completion</h2><p>The first ${rows} of ${vilg.model.config.imageGrid[0]} rows of codes kept; the rest generated under the image's own caption.</p>`);
  for (const s of scenes) {
    const r = await vilg.complete({ rgb: s.rgb, width: size, height: size }, s.caption, { rows, n: Math.min(o.n, 4), seed: o.seed, topK: Math.min(32, vilg.model.config.numCodes) });
    const sheet = imageGrid(r.images.map((im) => im.rgb), { height: size, width: size, pad: 2 });
    html.push(`<div class="row">${await img(`complete-src-${s.id}.png`, s.rgb, size, size)} → ${await img(`complete-${s.id}.png`, sheet.rgb, sheet.height, sheet.width)}</div><p class="meta">"${esc(s.caption)}"</p>`);
    bar.tick();
  }
  bar.done();

  const info = vilg.info;
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ERNIE-ViLG demo</title><style>
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
img{image-rendering:pixelated;border:1px solid #ddd}.row{display:flex;gap:8px;flex-wrap:wrap;align-items:center}
figure{margin:0;text-align:center}figcaption,.meta{color:#666;font-size:85%}table{border-collapse:collapse}
td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left}.ref{color:#888}</style></head><body>
<h1>ERNIE-ViLG demo</h1><p class="meta">model ${esc(info.dir)} · ${info.mode} · ${(info.parameters / 1e6).toFixed(2)}M parameters · ${info.imageSize}×${info.imageSize} px · seed ${o.seed}</p>
${html.join('\n')}
</body></html>
`;
  const path = join(o.out, 'index.html');
  await writeFileAtomic(path, page);
  return path;
}
