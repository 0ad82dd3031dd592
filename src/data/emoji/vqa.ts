// Templated question–answer pairs about an emoji image, generated from its metadata (CLDR name,
// group, kind, skin tones, art style). They are synthetic (synthetic: true on every item): fixed
// English and hand-written Chinese templates filled with CLDR strings and the taxonomy tables.
//
// Per sample: name, group, kind, art style, skin tone (only when the emoji has one), and two yes/no
// questions about kinds — one whose answer is yes (its own kind) and one whose answer is no (a kind
// that cannot also be true, see OVERLAPPING_KINDS) in an order picked by hash, so yes/no is balanced
// exactly and the position of a question does not give away its answer.

import type { Lang, VqaItem } from '../format.js';
import { hashString } from '../split.js';
import type { EmojiEntry, EmojiStyle } from './catalogue.js';
import { GROUP_NAMES, KINDS, OVERLAPPING_KINDS, YES_NO_KINDS, type Kind } from './taxonomy.js';

type Text = Record<Lang, string>;

/** The fixed question templates (exported so tests and docs can show them). */
export const QUESTIONS = Object.freeze({
  name: { en: 'What emoji is this?', zh: '这是什么表情符号？' },
  group: { en: 'Which emoji category does this belong to?', zh: '这个表情符号属于哪个类别？' },
  kind: { en: 'What kind of thing does this emoji show?', zh: '这个表情符号画的是哪一类东西？' },
  style: { en: 'Is this drawn in the OpenMoji style or the Twemoji style?', zh: '这是 OpenMoji 风格还是 Twemoji 风格？' },
  skinTone: { en: 'What skin tone is shown?', zh: '这个表情符号是什么肤色？' },
  skinTones: { en: 'What skin tones are shown?', zh: '这个表情符号有哪些肤色？' },
});
export const YES: Text = Object.freeze({ en: 'yes', zh: '是' });
export const NO: Text = Object.freeze({ en: 'no', zh: '不是' });
export const STYLE_NAMES: Readonly<Record<EmojiStyle, Text>> = Object.freeze({ openmoji: { en: 'OpenMoji', zh: 'OpenMoji' }, twemoji: { en: 'Twemoji', zh: 'Twemoji' } });

/** "Is this <kind>?" in both languages. */
export function yesNoQuestion(kind: Kind): Text {
  return { en: `Is this ${KINDS[kind].enPhrase}?`, zh: `这是${KINDS[kind].zh}吗？` };
}

/** Kinds a "no" question may ask about for an emoji of `kind`. */
export function negativeKinds(kind: Kind): Kind[] {
  const overlap = OVERLAPPING_KINDS[kind] ?? [];
  return YES_NO_KINDS.filter((k) => k !== kind && !overlap.includes(k));
}

export interface VqaContext {
  /** CLDR skin-tone names, index 0 = tone 1. */
  skinToneNames: Record<Lang, string[]>;
  languages: readonly Lang[];
  /** Varies the choice of "no" kind and question order; the data set's seed. */
  seed: number;
}

/** Questions and answers for one sample (entry drawn in `style`), in the requested languages. */
export function emojiVqa(entry: EmojiEntry, style: EmojiStyle, ctx: VqaContext): VqaItem[] {
  const items: VqaItem[] = [];
  const push = (kind: string, q: Partial<Text>, a: Partial<Text>): void => {
    const question: Partial<Text> = {}, answer: Partial<Text> = {};
    for (const l of ctx.languages) {
      if (q[l] !== undefined && a[l] !== undefined) { question[l] = q[l]; answer[l] = a[l]; }
    }
    if (Object.keys(question).length > 0) items.push({ question, answer, kind, synthetic: true });
  };
  push('name', QUESTIONS.name, entry.names);
  const g = GROUP_NAMES[entry.group];
  if (g !== undefined) push('group', QUESTIONS.group, g);
  push('kind', QUESTIONS.kind, KINDS[entry.kind]);
  push('style', QUESTIONS.style, STYLE_NAMES[style]);
  const tones = [...new Set(entry.skinTones)];
  if (tones.length > 0) {
    const names = (l: Lang): string[] => tones.map((t) => ctx.skinToneNames[l][t - 1]!);
    push('skin-tone', tones.length === 1 ? QUESTIONS.skinTone : QUESTIONS.skinTones, { en: names('en').join(' and '), zh: names('zh').join('和') });
  }
  const h = hashString(`${style}:${entry.key}`, ctx.seed);
  const yes = (): void => push('yes-no', yesNoQuestion(entry.kind), YES);
  const negatives = negativeKinds(entry.kind);
  const no = (): void => { if (negatives.length > 0) push('yes-no', yesNoQuestion(negatives[h % negatives.length]!), NO); };
  if ((h >>> 16) & 1) { yes(); no(); } else { no(); yes(); }
  return items;
}
