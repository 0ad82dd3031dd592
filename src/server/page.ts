// The page `vilg serve` answers at /: plain HTML, CSS and JavaScript inlined in one response — no build
// step, no CDN, nothing fetched from outside the server (it has to work offline). It talks to the API
// of src/server/server.ts:
//   - text → image: the prompt and sampling options POSTed to /v1/text-to-image/stream; the response is
//     read as Server-Sent Events (fetch + a stream reader, since EventSource cannot POST), so the grid of
//     candidates fills in row by row; the final event brings the finished images with their rerank
//     scores, each with a download button. Stop (or leaving the page) disconnects, which cancels the job;
//   - captioning and VQA: an image dropped on the drop zone (or chosen with the file input) is uploaded as
//     multipart/form-data to /v1/caption or /v1/vqa with the decoding options;
//   - the model's name, size, backend, limits and model card from /v1/model.
// The script's SHA-256 goes into the page's Content-Security-Policy (server.ts), so no other script runs.
// Elements the browser test drives carry data-testid attributes.

export const PAGE_SCRIPT = String.raw`
'use strict';
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => { const e = Object.assign(document.createElement(tag), props); e.append(...kids); return e; };
let limits = null, current = null, image = null;

async function apiError(res) {
  try { const j = await res.json(); return j.error ? j.error.message + ' (' + res.status + ')' : 'HTTP ' + res.status; } catch { return 'HTTP ' + res.status; }
}

async function loadModel() {
  const res = await fetch('/v1/model');
  if (!res.ok) { $('model').textContent = 'model info unavailable: ' + await apiError(res); return; }
  const m = await res.json();
  limits = m.limits;
  $('model').textContent = m.name + ' · ' + (m.parameters / 1e6).toFixed(1) + 'M parameters · ' + m.mode + ' · ' + m.imageSize + '×' + m.imageSize + ' px · ' + m.backend + ' backend';
  $('n').max = String(limits.maxN);
  $('topK').max = String(m.config.numCodes);
  if (m.card) { $('card').hidden = false; $('card-file').textContent = m.card.file; $('card-text').textContent = m.card.text; }
}

function cell(i) {
  const img = el('img', { alt: 'candidate ' + (i + 1), width: 160, height: 160 });
  img.dataset.testid = 'candidate';
  const score = el('span', { className: 'score' });
  const dl = el('a', { className: 'button download', textContent: 'Download' });
  dl.dataset.testid = 'download';
  dl.setAttribute('aria-disabled', 'true');
  const fig = el('figure', {}, img, el('figcaption', {}, score, dl));
  return { fig, img, score, dl };
}

function readOptions() {
  const num = (id) => Number($(id).value);
  return { prompt: $('prompt').value, n: num('n'), topK: num('topK'), topP: num('topP'), temperature: num('temperature'), seed: num('seed'), rerank: $('rerank').checked };
}

/** Parses a text/event-stream body: calls onEvent(name, data) per event. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      onEvent(name, data === '' ? null : JSON.parse(data));
    }
  }
}

async function generate(ev) {
  ev.preventDefault();
  if (current) current.abort();
  const o = readOptions();
  const ac = new AbortController(); current = ac;
  const grid = $('grid'); grid.replaceChildren();
  const cells = Array.from({ length: o.n }, (_, i) => cell(i));
  grid.append(...cells.map((c) => c.fig));
  $('t2i-status').textContent = 'queued…'; $('stop').disabled = false; $('go').disabled = true;
  const t0 = performance.now();
  try {
    const res = await fetch('/v1/text-to-image/stream', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(o), signal: ac.signal });
    if (!res.ok) throw new Error(await apiError(res));
    await readEvents(res.body, (name, data) => {
      if (name === 'queued') $('t2i-status').textContent = data.position > 0 ? 'waiting behind ' + (data.position + data.running) + ' job(s)…' : 'sampling…';
      else if (name === 'progress') {
        $('t2i-status').textContent = 'row ' + data.row + ' of ' + data.rows;
        data.images.forEach((b64, i) => { if (cells[i]) cells[i].img.src = 'data:image/png;base64,' + b64; });
      } else if (name === 'result') {
        data.images.forEach((im, i) => {
          const c = cells[i]; if (!c) return;
          const src = 'data:image/png;base64,' + im.png;
          c.img.src = src;
          c.score.textContent = im.score === null ? '' : 'log P ' + im.score.toFixed(2);
          c.score.dataset.testid = 'score';
          c.dl.href = src; c.dl.download = 'vilg-' + o.seed + '-' + (i + 1) + '.png'; c.dl.removeAttribute('aria-disabled');
          c.fig.classList.add('done');
        });
        $('t2i-status').textContent = data.images.length + ' image(s) in ' + ((performance.now() - t0) / 1000).toFixed(1) + ' s' + (o.rerank ? ', best first' : '') + (data.warnings.length ? ' — ' + data.warnings.join('; ') : '');
        $('t2i-status').dataset.state = 'done';
      } else if (name === 'error') throw new Error(data.error.message);
    });
  } catch (e) {
    $('t2i-status').textContent = e.name === 'AbortError' ? 'stopped' : 'error: ' + e.message;
    $('t2i-status').dataset.state = 'error';
  } finally {
    if (current === ac) { current = null; $('stop').disabled = true; $('go').disabled = false; }
  }
}

function setImage(file) {
  if (!file) return;
  image = file;
  $('preview').src = URL.createObjectURL(file);
  $('preview').hidden = false;
  $('drop-hint').textContent = file.name + ' (' + (file.size < 1024 ? file.size + ' bytes' : Math.round(file.size / 1024) + ' KiB') + ')';
  $('caption-btn').disabled = false; $('ask-btn').disabled = false;
}

async function imageTask(kind) {
  if (!image) return;
  const out = $(kind + '-out');
  out.textContent = '…'; out.dataset.state = 'busy';
  const form = new FormData();
  form.append('image', image, image.name || 'image');
  if (kind === 'vqa') form.append('question', $('question').value);
  form.append('beams', $('beams').value);
  form.append('lang', $('lang').value);
  try {
    const res = await fetch('/v1/' + kind, { method: 'POST', body: form });
    if (!res.ok) throw new Error(await apiError(res));
    const r = await res.json();
    out.textContent = (kind === 'vqa' ? r.answer : r.caption) + '  (log P ' + r.logprob.toFixed(2) + ', ' + Math.round(r.ms) + ' ms)';
    out.dataset.state = 'done';
  } catch (e) { out.textContent = 'error: ' + e.message; out.dataset.state = 'error'; }
}

$('t2i').addEventListener('submit', generate);
$('stop').addEventListener('click', () => { if (current) current.abort(); });
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); setImage(e.dataTransfer.files[0]); });
drop.addEventListener('click', (e) => { if (e.target !== $('file')) $('file').click(); });
$('file').addEventListener('change', () => setImage($('file').files[0]));
$('caption-btn').addEventListener('click', () => imageTask('caption'));
$('vqa-form').addEventListener('submit', (e) => { e.preventDefault(); imageTask('vqa'); });
loadModel();
`;

const STYLE = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --accent: #2f5bd3; --bg: #f6f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 20px; } #model { color: var(--muted); font-size: 13px; }
main { display: grid; grid-template-columns: minmax(0, 2fr) minmax(280px, 1fr); gap: 20px; padding: 20px 24px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; }
h2 { margin: 0 0 12px; font-size: 16px; }
label { font-size: 13px; color: var(--muted); display: inline-flex; flex-direction: column; gap: 2px; }
input, select, textarea, button, .button { font: inherit; }
input[type=number] { width: 90px; } #prompt, #question { width: 100%; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
.options { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; align-items: end; }
.options label.check { flex-direction: row; align-items: center; gap: 4px; }
button, .button { padding: 6px 14px; border: 1px solid var(--accent); border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
button:disabled, .button[aria-disabled=true] { opacity: .45; cursor: default; pointer-events: none; }
button.secondary { background: #fff; color: var(--accent); }
.status { color: var(--muted); font-size: 13px; min-height: 1.4em; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; margin-top: 12px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 5px; background: #fafbfc; }
figure img { width: 100%; height: auto; aspect-ratio: 1; image-rendering: pixelated; background: #e6e8ee; display: block; }
figcaption { display: flex; justify-content: space-between; align-items: center; margin-top: 5px; font-size: 12px; }
.download { padding: 2px 8px; font-size: 12px; }
#drop { border: 2px dashed var(--line); border-radius: 8px; padding: 16px; text-align: center; cursor: pointer; color: var(--muted); }
#drop.over { border-color: var(--accent); background: #eef2fd; }
#preview { width: 160px; height: 160px; image-rendering: pixelated; margin: 8px auto 0; display: block; }
.answer { margin: 8px 0 14px; padding: 8px; background: var(--bg); border-radius: 6px; min-height: 2.3em; }
pre { white-space: pre-wrap; font-size: 12px; }
@media (max-width: 800px) { main { grid-template-columns: 1fr; } }
`;

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>ERNIE-ViLG</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>ERNIE-ViLG</h1><div id="model">loading model info…</div></header>
<main>
<section>
  <h2>Text → image</h2>
  <form id="t2i">
    <input id="prompt" data-testid="prompt" required maxlength="500" placeholder="a small red circle at the top left" autocomplete="off">
    <div class="options">
      <label>candidates <input id="n" type="number" min="1" max="16" value="4" step="1"></label>
      <label>top-k (0 off) <input id="topK" type="number" min="0" value="0" step="1"></label>
      <label>top-p <input id="topP" type="number" min="0.01" max="1" value="1" step="0.01"></label>
      <label>temperature <input id="temperature" type="number" min="0" max="10" value="1" step="0.05"></label>
      <label>seed <input id="seed" type="number" min="0" value="0" step="1"></label>
      <label class="check"><input id="rerank" type="checkbox" checked> rerank</label>
      <button id="go" data-testid="generate" type="submit">Generate</button>
      <button id="stop" class="secondary" type="button" disabled>Stop</button>
    </div>
  </form>
  <div id="t2i-status" class="status" data-testid="t2i-status" aria-live="polite"></div>
  <div id="grid" data-testid="grid"></div>
</section>
<section>
  <h2>Caption and VQA</h2>
  <div id="drop" data-testid="drop">
    <div id="drop-hint">drop an image here, or click to choose one (PNG, JPEG, WebP, GIF)</div>
    <input id="file" data-testid="file" type="file" accept="image/png,image/jpeg,image/webp,image/gif" hidden>
    <img id="preview" alt="the image to describe" hidden>
  </div>
  <div class="options">
    <label>beams <input id="beams" type="number" min="1" max="8" value="1" step="1"></label>
    <label>language <select id="lang"><option value="en" selected>en</option><option value="zh">zh</option><option value="any">any</option></select></label>
    <button id="caption-btn" data-testid="caption" type="button" disabled>Caption</button>
  </div>
  <div id="caption-out" class="answer" data-testid="caption-out" aria-live="polite"></div>
  <form id="vqa-form">
    <input id="question" data-testid="question" required maxlength="500" placeholder="what colour is the circle?" autocomplete="off">
    <div class="options"><button id="ask-btn" data-testid="ask" type="submit" disabled>Ask</button></div>
  </form>
  <div id="vqa-out" class="answer" data-testid="vqa-out" aria-live="polite"></div>
  <details id="card" hidden><summary>Model card (<span id="card-file"></span>)</summary><pre id="card-text"></pre></details>
</section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
