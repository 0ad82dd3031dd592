// Synthetic VQA from a scene's attributes, in English and Chinese (all items are `synthetic: true`).
// Answers are short closed-vocabulary words, so exact match after normalisation scores them.
// Two-object scenes get exactly one 'yes' and one 'no' relation question, so yes/no is balanced.

import type { Generator } from '../../engine/random.js';
import type { VqaItem } from '../format.js';
import type { SceneAttrs, SceneObject } from './scene.js';
import { COLOUR_NAMES, INVERSE_RELATION, RELATIONS, RELATION_NAMES, SHAPE_NAMES, SIZE_NAMES, positionName, type RelationName } from './vocab.js';

const COUNT_WORDS = Object.freeze([{ en: 'one', zh: '一个' }, { en: 'two', zh: '两个' }]);

/** "the red circle" / "红色圆形": colour and shape name one object (colours never repeat in a scene). */
function ref(o: SceneObject): { en: string; zh: string } {
  return { en: `the ${COLOUR_NAMES[o.colour].en} ${SHAPE_NAMES[o.shape].en}`, zh: `${COLOUR_NAMES[o.colour].zh}${SHAPE_NAMES[o.shape].zh}` };
}

function item(kind: string, qEn: string, qZh: string, aEn: string, aZh: string): VqaItem {
  return { question: { en: qEn, zh: qZh }, answer: { en: aEn, zh: aZh }, kind, synthetic: true };
}

function relationQuestion(a: SceneObject, rel: RelationName, b: SceneObject, yes: boolean): VqaItem {
  const ra = ref(a), rb = ref(b);
  return item('relation', `is ${ra.en} ${RELATION_NAMES[rel].en} ${rb.en}?`, `${ra.zh}在${rb.zh}的${RELATION_NAMES[rel].zh}吗？`, yes ? 'yes' : 'no', yes ? '是' : '否');
}

/** Questions about the scene; `gen` picks the wording of the relation questions (deterministic per scene). */
export function vqaFor(attrs: SceneAttrs, gen: Generator): VqaItem[] {
  const objs = attrs.objects;
  const count = COUNT_WORDS[objs.length - 1];
  if (!count) throw new Error(`shapes scene ${attrs.index}: VQA supports one or two objects, got ${objs.length}`);
  const out: VqaItem[] = [item('count', 'how many objects are there?', '图中有几个物体？', count.en, count.zh)];
  for (const o of objs) {
    const colour = COLOUR_NAMES[o.colour], shape = SHAPE_NAMES[o.shape], r = ref(o);
    // Asking for the colour by shape alone only makes sense when the shape is unique in the scene.
    if (objs.filter((x) => x.shape === o.shape).length === 1) {
      out.push(item('colour', `what colour is the ${shape.en}?`, `${shape.zh}是什么颜色的？`, colour.en, colour.zh));
    }
    out.push(item('shape', `what shape is the ${colour.en} object?`, `${colour.zh}的物体是什么形状的？`, shape.en, shape.zh));
    out.push(item('size', `is ${r.en} small or large?`, `${r.zh}是小的还是大的？`, SIZE_NAMES[o.size].en, SIZE_NAMES[o.size].zh));
    if (o.position) {
      const where = positionName(o.position.col, o.position.row);
      out.push(item('position', `where is ${r.en}?`, `${r.zh}在哪里？`, where.en.replace(/^(on|at|in) the /, ''), where.zh));
    }
  }
  if (attrs.relation) {
    const rel = attrs.relation.relation, s = objs[attrs.relation.subject]!, o = objs[attrs.relation.object]!;
    const wrong = RELATIONS.filter((r) => r !== rel);
    const no = wrong[gen.int(wrong.length)]!;
    // Ask from either object's side: "is S REL O?" or the same fact as "is O INV(REL) S?".
    const ask = (r: RelationName, yes: boolean): VqaItem => gen.uniform() < 0.5 ? relationQuestion(s, r, o, yes) : relationQuestion(o, INVERSE_RELATION[r], s, yes);
    const pair = [ask(rel, true), ask(no, false)];
    if (gen.uniform() < 0.5) pair.reverse();
    out.push(...pair);
  }
  return out;
}
