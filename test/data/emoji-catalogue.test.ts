// The emoji catalogue, records, splits and templated VQA over the full metadata (no rendering).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SampleRecord, Split } from '../../src/data/format.js';
import { keyOf, loadEmojiCatalogue, parseHexcode, strippedKey, type EmojiEntry, type EmojiStyle } from '../../src/data/emoji/catalogue.js';
import { emojiConfig, emojiRecord } from '../../src/data/emoji/prepare.js';
import { GROUP_NAMES, KINDS, type Kind } from '../../src/data/emoji/taxonomy.js';
import { negativeKinds, NO, QUESTIONS, yesNoQuestion, YES, type VqaContext } from '../../src/data/emoji/vqa.js';

const cat = loadEmojiCatalogue({ warn: () => {} });
const byKey = new Map(cat.entries.map((e) => [e.key, e]));
const entry = (hex: string): EmojiEntry => {
  const e = byKey.get(keyOf(parseHexcode(hex)));
  assert.ok(e, `catalogue has ${hex}`);
  return e;
};

function allRecords(seed: number): Omit<SampleRecord, 'index'>[] {
  const cfg = emojiConfig({ seed });
  const ctx: VqaContext = { skinToneNames: cat.skinToneNames, languages: cfg.languages, seed };
  const out: Omit<SampleRecord, 'index'>[] = [];
  for (const e of cat.entries) for (const s of Object.keys(e.art) as EmojiStyle[]) out.push(emojiRecord(e, s, cfg, ctx, s === 'openmoji' ? cat.packages.openmoji : cat.packages.twemoji)!);
  return out;
}
const records = allRecords(0);

test('catalogue: size, both art styles joined on code points, extras left out and counted', () => {
  assert.ok(cat.entries.length > 3500, `${cat.entries.length} emoji`);
  const both = cat.entries.filter((e) => e.art.openmoji && e.art.twemoji).length;
  assert.ok(both > 3000, `${both} emoji in both styles`);
  // Twemoji names drop FE0F where OpenMoji keeps it: the join must still find them.
  for (const hex of ['2764-FE0F', '0023-FE0F-20E3', '1F1FA-1F1F8', '1F3F3-FE0F-200D-1F308']) {
    const e = entry(hex);
    assert.ok(e.art.openmoji && e.art.twemoji, `${hex} has both styles`);
  }
  assert.ok((cat.skipped['openmoji: no CLDR name (OpenMoji extra)'] ?? 0) > 300);
  assert.ok(cat.entries.every((e) => e.names.en && e.names.zh && GROUP_NAMES[e.group]), 'every kept emoji has en+zh names and a CLDR group');
});

test('catalogue: CLDR captions in English and Chinese', () => {
  const g = entry('1F600');
  assert.equal(g.names.en, 'grinning face');
  assert.equal(g.names.zh, '嘿嘿'); // CLDR 48's zh name
  assert.ok(g.keywords.en!.includes('smile') && g.keywords.zh!.includes('笑脸'));
  assert.ok(!g.keywords.en!.includes('grinning face'), 'the name is not repeated among keywords');
  const flag = entry('1F1FA-1F1F8');
  assert.deepEqual([flag.names.en, flag.names.zh, flag.kind, flag.group], ['flag: United States', '旗: 美国', 'flag', 'flags']);
  assert.deepEqual(entry('1F44B-1F3FD').names, { en: 'waving hand: medium skin tone', zh: '挥手: 中等肤色' });
  assert.deepEqual(cat.skinToneNames.zh, ['较浅肤色', '中等-浅肤色', '中等肤色', '中等-深肤色', '较深肤色']);
  assert.equal(cat.skinToneNames.en[4], 'dark skin tone');
  const rec = records.find((r) => r.id === 'openmoji:1f600')!;
  assert.deepEqual([rec.captions.en![0], rec.captions.zh![0]], ['grinning face', '嘿嘿']);
  assert.equal(rec.source, 'openmoji/color/svg/1F600.svg');
  assert.equal(records.find((r) => r.id === 'twemoji:1f600')!.source, '@twemoji/svg/1f600.svg');
});

test('skin-tone variants share their base emoji as group', () => {
  const waving = cat.entries.filter((e) => strippedKey(parseHexcode(e.hexcode)) === '1f44b');
  assert.equal(waving.length, 6);
  assert.ok(waving.every((e) => e.base === '1f44b'));
  assert.deepEqual(entry('1F44B-1F3FF').skinTones, [5]);
  // Handshake with two tones uses other code points than 🤝: it still groups with 🤝.
  assert.equal(entry('1FAF1-1F3FB-200D-1FAF2-1F3FC').base, '1f91d');
  assert.deepEqual(entry('1FAF1-1F3FB-200D-1FAF2-1F3FC').skinTones, [1, 2]);
  const keys = new Set(cat.entries.map((e) => e.key));
  const toned = cat.entries.filter((e) => e.skinTones.length > 0 && e.group !== 'component');
  assert.ok(toned.length > 1500);
  assert.ok(toned.every((e) => keys.has(e.base)), 'every skin-toned emoji has its base emoji in the catalogue');
});

test('no base emoji crosses splits; splits are deterministic by seed', () => {
  const splitOfGroup = new Map<string, Split>();
  for (const r of records) {
    const prev = splitOfGroup.get(r.group);
    assert.ok(prev === undefined || prev === r.split, `group ${r.group} is in ${prev} and ${r.split}`);
    splitOfGroup.set(r.group, r.split);
  }
  assert.ok(splitOfGroup.size > 1500, `${splitOfGroup.size} groups`);
  const counts = { train: 0, val: 0, test: 0 };
  for (const s of splitOfGroup.values()) counts[s]++;
  assert.ok(counts.train / splitOfGroup.size > 0.75 && counts.val > 100 && counts.test > 100, JSON.stringify(counts));
  assert.deepEqual(allRecords(0).map((r) => r.split), records.map((r) => r.split), 'same seed, same splits');
  const other = allRecords(1);
  assert.ok(other.some((r, i) => r.split !== records[i]!.split), 'another seed moves some groups');
  const ids = new Set(records.map((r) => r.id));
  assert.equal(ids.size, records.length, 'ids are unique');
});

test('VQA answers agree with attrs; yes/no is balanced', () => {
  let yes = 0, no = 0;
  for (const r of records) {
    const a = r.attrs as { group: string; kind: Kind; style: EmojiStyle; skinTones?: number[] };
    const vqa = r.vqa!;
    assert.ok(vqa.every((q) => q.synthetic && q.question.en && q.question.zh && q.answer.en && q.answer.zh), `${r.id}: every item synthetic, en+zh`);
    const one = (kind: string) => { const xs = vqa.filter((q) => q.kind === kind); assert.equal(xs.length, 1, `${r.id}: one ${kind} question`); return xs[0]!; };
    assert.deepEqual(one('name').answer, { en: r.captions.en![0], zh: r.captions.zh![0] });
    assert.deepEqual(one('group').answer, GROUP_NAMES[a.group]);
    assert.deepEqual(one('kind').answer, { en: KINDS[a.kind].en, zh: KINDS[a.kind].zh });
    assert.equal(one('style').answer.en, a.style === 'openmoji' ? 'OpenMoji' : 'Twemoji');
    const tone = vqa.filter((q) => q.kind === 'skin-tone');
    if (a.skinTones === undefined) assert.equal(tone.length, 0, `${r.id}: no skin-tone question without a skin tone`);
    else {
      const names = [...new Set(a.skinTones)].map((t) => cat.skinToneNames.en[t - 1]!);
      assert.equal(tone.length, 1);
      assert.equal(tone[0]!.answer.en, names.join(' and '));
      assert.deepEqual(tone[0]!.question, names.length === 1 ? QUESTIONS.skinTone : QUESTIONS.skinTones);
    }
    const yn = vqa.filter((q) => q.kind === 'yes-no');
    assert.equal(yn.length, 2);
    const y = yn.find((q) => q.answer.en === YES.en)!, n = yn.find((q) => q.answer.en === NO.en)!;
    assert.ok(y && n, `${r.id}: one yes and one no`);
    assert.deepEqual(y.question, yesNoQuestion(a.kind));
    assert.ok(negativeKinds(a.kind).some((k) => yesNoQuestion(k).en === n.question.en && yesNoQuestion(k).zh === n.question.zh), `${r.id}: 'no' asks about a kind that is not its own: ${n.question.en}`);
    assert.equal(n.answer.zh, '不是');
    if (yn[0] === y) yes++; else no++;
  }
  // The yes question comes first about half of the time.
  assert.ok(Math.abs(yes - no) < records.length * 0.05, `yes first ${yes}, no first ${no}`);
});

test('config validation names the bad field', () => {
  assert.throws(() => emojiConfig({ size: 4 }), /size/);
  assert.throws(() => emojiConfig({ sources: ['noto' as EmojiStyle] }), /sources/);
  assert.throws(() => emojiConfig({ languages: [] }), /languages/);
  assert.throws(() => emojiConfig({ limit: -1 }), /limit/);
  assert.throws(() => emojiConfig({ split: { train: -1, val: 0, test: 0 } }), /fractions/);
  assert.ok(Object.isFrozen(emojiConfig()));
});
