// Names for the emoji categories in English and Chinese, and the coarse "kind" of thing an emoji
// shows (derived from its CLDR group/subgroup). Hand-written tables: CLDR carries names for the
// emoji themselves but not for the group/subgroup ids, so the zh strings here are ours.

import type { Lang } from '../format.js';

export type Bilingual = Record<Lang, string>;

/** CLDR emoji groups (as OpenMoji spells them) with display names. */
export const GROUP_NAMES: Readonly<Record<string, Bilingual>> = Object.freeze({
  'smileys-emotion': { en: 'smileys & emotion', zh: '笑脸和情感' },
  'people-body': { en: 'people & body', zh: '人物和身体' },
  component: { en: 'component', zh: '组件' },
  'animals-nature': { en: 'animals & nature', zh: '动物和自然' },
  'food-drink': { en: 'food & drink', zh: '食物和饮料' },
  'travel-places': { en: 'travel & places', zh: '旅行和地点' },
  activities: { en: 'activities', zh: '活动' },
  objects: { en: 'objects', zh: '物品' },
  symbols: { en: 'symbols', zh: '符号' },
  flags: { en: 'flags', zh: '旗帜' },
});

/**
 * OpenMoji files a few Unicode characters that are not emoji (geometric shapes, ℗ ...) under
 * 'extras-unicode', with the real group in the subgroups field. Those that CLDR names are kept
 * under the group given here.
 */
export const EXTRAS_UNICODE_GROUP: Readonly<Record<string, string>> = Object.freeze({
  'symbol-other': 'symbols',
  'food-drink': 'food-drink',
  'subdivision-flag': 'flags',
  'regional-indicator': 'symbols',
});

export type Kind =
  | 'face' | 'heart' | 'symbol' | 'hand' | 'body part' | 'person' | 'component' | 'animal' | 'plant'
  | 'food' | 'drink' | 'dishware' | 'place' | 'vehicle' | 'clock' | 'sky or weather' | 'event'
  | 'award' | 'sport' | 'game' | 'arts and crafts' | 'clothing' | 'object' | 'flag';

/** Per kind: its bare name (the answer) and a noun phrase for "is this ...?" questions. */
export const KINDS: Readonly<Record<Kind, { en: string; enPhrase: string; zh: string }>> = Object.freeze({
  face: { en: 'face', enPhrase: 'a face', zh: '脸' },
  heart: { en: 'heart', enPhrase: 'a heart', zh: '爱心' },
  symbol: { en: 'symbol', enPhrase: 'a symbol', zh: '符号' },
  hand: { en: 'hand', enPhrase: 'a hand', zh: '手' },
  'body part': { en: 'body part', enPhrase: 'a body part', zh: '身体部位' },
  person: { en: 'person', enPhrase: 'a person', zh: '人' },
  component: { en: 'component', enPhrase: 'an emoji component', zh: '表情组件' },
  animal: { en: 'animal', enPhrase: 'an animal', zh: '动物' },
  plant: { en: 'plant', enPhrase: 'a plant', zh: '植物' },
  food: { en: 'food', enPhrase: 'food', zh: '食物' },
  drink: { en: 'drink', enPhrase: 'a drink', zh: '饮料' },
  dishware: { en: 'dishware', enPhrase: 'dishware', zh: '餐具' },
  place: { en: 'place', enPhrase: 'a place', zh: '地点' },
  vehicle: { en: 'vehicle', enPhrase: 'a vehicle', zh: '交通工具' },
  clock: { en: 'clock', enPhrase: 'a clock or timer', zh: '时钟' },
  'sky or weather': { en: 'sky or weather', enPhrase: 'something in the sky or weather', zh: '天空或天气' },
  event: { en: 'event', enPhrase: 'an event or celebration', zh: '节庆活动' },
  award: { en: 'award', enPhrase: 'an award', zh: '奖项' },
  sport: { en: 'sport', enPhrase: 'sports equipment', zh: '运动' },
  game: { en: 'game', enPhrase: 'a game', zh: '游戏' },
  'arts and crafts': { en: 'arts and crafts', enPhrase: 'arts and crafts', zh: '艺术和手工' },
  clothing: { en: 'clothing', enPhrase: 'clothing', zh: '服饰' },
  object: { en: 'object', enPhrase: 'an object', zh: '物品' },
  flag: { en: 'flag', enPhrase: 'a flag', zh: '旗帜' },
});

/** Kinds asked about in yes/no questions: common, visually distinct categories. */
export const YES_NO_KINDS: readonly Kind[] = Object.freeze<Kind[]>(['face', 'person', 'hand', 'animal', 'plant', 'food', 'vehicle', 'flag', 'symbol', 'clothing', 'heart', 'place']);

// Subgroup → kind; a subgroup not listed falls back to its group's kind below.
const SUBGROUP_KIND: Readonly<Record<string, Kind>> = Object.freeze({
  'cat-face': 'face', 'monkey-face': 'face', heart: 'heart', emotion: 'symbol',
  'hand-fingers-open': 'hand', 'hand-fingers-partial': 'hand', 'hand-single-finger': 'hand',
  'hand-fingers-closed': 'hand', hands: 'hand', 'hand-prop': 'hand', 'body-parts': 'body part',
  'person-symbol': 'person',
  'plant-flower': 'plant', 'plant-other': 'plant',
  drink: 'drink', dishware: 'dishware',
  'transport-ground': 'vehicle', 'transport-water': 'vehicle', 'transport-air': 'vehicle',
  time: 'clock', 'sky-weather': 'sky or weather',
  event: 'event', 'award-medal': 'award', sport: 'sport', game: 'game', 'arts-crafts': 'arts and crafts',
  clothing: 'clothing',
});

const GROUP_KIND: Readonly<Record<string, Kind>> = Object.freeze({
  'smileys-emotion': 'face', 'people-body': 'person', component: 'component', 'animals-nature': 'animal',
  'food-drink': 'food', 'travel-places': 'place', activities: 'event', objects: 'object', symbols: 'symbol', flags: 'flag',
});

/** The kind of thing an emoji of this group/subgroup shows. */
export function kindOf(group: string, subgroup: string): Kind {
  const k = SUBGROUP_KIND[subgroup] ?? GROUP_KIND[group];
  if (k === undefined) throw new RangeError(`no kind for emoji group '${group}' / subgroup '${subgroup}'`);
  return k;
}

/**
 * Kinds that can also truly describe an emoji of the given kind (a cat face is a face and an
 * animal; fruit is food and a plant). "No" questions never ask about these, so every templated
 * "no" is actually false.
 */
export const OVERLAPPING_KINDS: Readonly<Partial<Record<Kind, readonly Kind[]>>> = Object.freeze({
  face: ['animal', 'person', 'symbol'],
  animal: ['face'],
  person: ['hand', 'vehicle', 'clothing', 'face'],
  hand: ['person'],
  heart: ['symbol'],
  symbol: ['heart', 'flag', 'person', 'vehicle', 'animal'], // transport signs, zodiac, restroom signs
  flag: ['symbol'],
  food: ['plant'],
  plant: ['food'],
  'sky or weather': ['place', 'symbol'],
  place: ['vehicle', 'plant'],
  event: ['plant', 'clothing', 'food'],
});
