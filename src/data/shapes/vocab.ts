// The closed vocabulary of the `shapes` data set: what can be drawn and what each thing is called in
// English and Chinese. Captions, VQA, the renderer and the checker all read these tables, so a word
// and the pixels it describes can never drift apart.

export const SHAPES = Object.freeze(['circle', 'square', 'triangle', 'diamond', 'cross'] as const);
export type ShapeName = (typeof SHAPES)[number];

export const COLOURS = Object.freeze(['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'cyan', 'black'] as const);
export type ColourName = (typeof COLOURS)[number];

export const SIZES = Object.freeze(['small', 'large'] as const);
export type SizeName = (typeof SIZES)[number];

export const COLUMNS = Object.freeze(['left', 'centre', 'right'] as const);
export type Column = (typeof COLUMNS)[number];
export const ROWS = Object.freeze(['top', 'middle', 'bottom'] as const);
export type Row = (typeof ROWS)[number];

/** `subject RELATION object`, in image coordinates (y grows downwards, so 'above' = smaller y). */
export const RELATIONS = Object.freeze(['left of', 'right of', 'above', 'below'] as const);
export type RelationName = (typeof RELATIONS)[number];

export const INVERSE_RELATION: Readonly<Record<RelationName, RelationName>> = Object.freeze({
  'left of': 'right of', 'right of': 'left of', above: 'below', below: 'above',
});

export interface Named { en: string; zh: string }

export const SHAPE_NAMES: Readonly<Record<ShapeName, Named>> = Object.freeze({
  circle: { en: 'circle', zh: '圆形' },
  square: { en: 'square', zh: '正方形' },
  triangle: { en: 'triangle', zh: '三角形' },
  diamond: { en: 'diamond', zh: '菱形' },
  cross: { en: 'cross', zh: '十字形' },
});

/**
 * Palette: saturated colours far apart in RGB and, more importantly for the checker, with distinct
 * directions from white (an anti-aliased edge pixel lies on the line white → colour). That is why
 * there is black but no grey: grey lies on the white → black line.
 */
export const COLOUR_RGB: Readonly<Record<ColourName, readonly [number, number, number]>> = Object.freeze({
  red: [230, 25, 25],
  green: [30, 170, 40],
  blue: [30, 60, 230],
  yellow: [245, 215, 0],
  purple: [140, 40, 180],
  orange: [250, 130, 0],
  cyan: [0, 190, 220],
  black: [20, 20, 20],
});

export const COLOUR_NAMES: Readonly<Record<ColourName, Named>> = Object.freeze({
  red: { en: 'red', zh: '红色' },
  green: { en: 'green', zh: '绿色' },
  blue: { en: 'blue', zh: '蓝色' },
  yellow: { en: 'yellow', zh: '黄色' },
  purple: { en: 'purple', zh: '紫色' },
  orange: { en: 'orange', zh: '橙色' },
  cyan: { en: 'cyan', zh: '青色' },
  black: { en: 'black', zh: '黑色' },
});

export const SIZE_NAMES: Readonly<Record<SizeName, Named>> = Object.freeze({
  small: { en: 'small', zh: '小' },
  large: { en: 'large', zh: '大' },
});

/** Where a single object is, as a caption phrase ("a red circle on the left" / "左边有…"). */
export function positionName(col: Column, row: Row): Named {
  if (row === 'middle') {
    if (col === 'centre') return { en: 'in the centre', zh: '中间' };
    return col === 'left' ? { en: 'on the left', zh: '左边' } : { en: 'on the right', zh: '右边' };
  }
  if (col === 'centre') return row === 'top' ? { en: 'at the top', zh: '上面' } : { en: 'at the bottom', zh: '下面' };
  return { en: `at the ${row} ${col}`, zh: `${col === 'left' ? '左' : '右'}${row === 'top' ? '上' : '下'}角` };
}

export const RELATION_NAMES: Readonly<Record<RelationName, Named>> = Object.freeze({
  'left of': { en: 'to the left of', zh: '左边' },
  'right of': { en: 'to the right of', zh: '右边' },
  above: { en: 'above', zh: '上面' },
  below: { en: 'below', zh: '下面' },
});
