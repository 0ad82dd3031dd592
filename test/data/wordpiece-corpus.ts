// Real captions for tokenizer tests: CLDR emoji names and keywords in English and Chinese, read from
// the cldr-annotations-full package (a dependency). Interleaved en/zh, deterministic order.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface Annotations { annotations: { annotations: Record<string, { default?: string[]; tts?: string[] }> } }

function captionsOf(lang: 'en' | 'zh'): string[] {
  const path = require.resolve(`cldr-annotations-full/annotations/${lang}/annotations.json`);
  const data = JSON.parse(readFileSync(path, 'utf8')) as Annotations;
  const out: string[] = [];
  for (const v of Object.values(data.annotations.annotations)) {
    if (v.tts?.[0]) out.push(v.tts[0]);
    if (v.default?.length) out.push(v.default.join(' | '));
  }
  return out;
}

/** Up to `limit` captions, alternating English and Chinese. */
export function cldrCaptions(limit = Infinity): string[] {
  const en = captionsOf('en'), zh = captionsOf('zh');
  const out: string[] = [];
  for (let i = 0; out.length < limit && (i < en.length || i < zh.length); i++) {
    if (i < en.length) out.push(en[i]!);
    if (i < zh.length && out.length < limit) out.push(zh[i]!);
  }
  return out;
}

function annotations(lang: 'en' | 'zh'): Annotations['annotations']['annotations'] {
  const path = require.resolve(`cldr-annotations-full/annotations/${lang}/annotations.json`);
  return (JSON.parse(readFileSync(path, 'utf8')) as Annotations).annotations.annotations;
}

/** Up to `limit` emoji with their English and Chinese captions (name first, then keywords). */
export function cldrPairs(limit = Infinity): { key: string; en: string[]; zh: string[] }[] {
  const en = annotations('en'), zh = annotations('zh');
  const out: { key: string; en: string[]; zh: string[] }[] = [];
  for (const [key, e] of Object.entries(en)) {
    const z = zh[key];
    if (!e.tts?.[0] || !z?.tts?.[0]) continue;
    out.push({ key, en: [e.tts[0], ...(e.default ?? [])], zh: [z.tts[0], ...(z.default ?? [])] });
    if (out.length >= limit) break;
  }
  return out;
}
