// English and Chinese captions from a scene's attributes. Every phrasing names every attribute
// (each object's size, colour and shape; the position or the relation), so any caption a training
// step picks describes the image completely. The first caption of each language is the main one.

import type { Captions } from '../format.js';
import type { SceneAttrs, SceneObject } from './scene.js';
import { COLOUR_NAMES, INVERSE_RELATION, RELATION_NAMES, SHAPE_NAMES, SIZE_NAMES, positionName } from './vocab.js';

/** "small red circle" / "小的红色圆形". */
export function objectPhrase(o: Pick<SceneObject, 'shape' | 'colour' | 'size'>, lang: 'en' | 'zh'): string {
  return lang === 'en'
    ? `${SIZE_NAMES[o.size].en} ${COLOUR_NAMES[o.colour].en} ${SHAPE_NAMES[o.shape].en}`
    : `${SIZE_NAMES[o.size].zh}的${COLOUR_NAMES[o.colour].zh}${SHAPE_NAMES[o.shape].zh}`;
}

/** English indefinite article for a phrase. */
function a(phrase: string): string {
  return /^[aeiou]/.test(phrase) ? `an ${phrase}` : `a ${phrase}`;
}

export function captionsFor(attrs: SceneAttrs): Captions {
  const [first, second] = attrs.objects;
  if (!first) throw new Error(`shapes scene ${attrs.index} has no objects`);
  if (!attrs.relation || !second) {
    if (!first.position) throw new Error(`shapes scene ${attrs.index}: a single object needs a position`);
    const where = positionName(first.position.col, first.position.row);
    const en = objectPhrase(first, 'en'), zh = objectPhrase(first, 'zh');
    return {
      en: [`${a(en)} ${where.en}`, `there is ${a(en)} ${where.en}`, `${where.en} there is ${a(en)}`, `${a(en)} ${where.en} on a white background`],
      zh: [`${where.zh}有一个${zh}`, `一个${zh}在${where.zh}`, `图片${where.zh}是一个${zh}`, `白色背景上，${where.zh}有一个${zh}`],
    };
  }
  const rel = attrs.relation.relation, inv = INVERSE_RELATION[rel];
  const s = attrs.objects[attrs.relation.subject]!, o = attrs.objects[attrs.relation.object]!;
  const sEn = objectPhrase(s, 'en'), oEn = objectPhrase(o, 'en'), sZh = objectPhrase(s, 'zh'), oZh = objectPhrase(o, 'zh');
  return {
    en: [
      `${a(sEn)} ${RELATION_NAMES[rel].en} ${a(oEn)}`,
      `${a(oEn)} ${RELATION_NAMES[inv].en} ${a(sEn)}`,
      `there is ${a(sEn)} ${RELATION_NAMES[rel].en} ${a(oEn)}`,
      `${a(sEn)} and ${a(oEn)}; the ${sEn} is ${RELATION_NAMES[rel].en} the ${oEn}`,
    ],
    zh: [
      `${sZh}在${oZh}的${RELATION_NAMES[rel].zh}`,
      `${oZh}在${sZh}的${RELATION_NAMES[inv].zh}`,
      `${oZh}的${RELATION_NAMES[rel].zh}是${sZh}`,
      `图中有一个${sZh}和一个${oZh}，${sZh}在${oZh}的${RELATION_NAMES[rel].zh}`,
    ],
  };
}
