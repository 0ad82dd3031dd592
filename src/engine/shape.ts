// Shape arithmetic shared by every op: sizes, strides, broadcasting, axis normalisation.

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function assertShape(shape: unknown, what = 'shape'): asserts shape is Shape {
  if (!Array.isArray(shape)) throw new TypeError(`${what} must be an array of non-negative integers`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`${what} [${shape.join(', ')}] has an invalid dimension ${String(d)}`);
  }
}

/** Row-major strides in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmtShape(s: Shape): string {
  return `[${s.join(', ')}]`;
}

/** Normalises a possibly negative axis against `rank`. */
export function normAxis(axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw new RangeError(`axis ${axis} out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new RangeError(`shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides for reading an array of shape `from` as if it had the (broadcast) shape `to`: 0 on broadcast dims. */
export function broadcastStrides(from: Shape, to: Shape): number[] {
  const s = stridesOf(from);
  const out = new Array<number>(to.length).fill(0);
  for (let i = 0; i < from.length; i++) {
    const j = to.length - from.length + i;
    out[j] = from[i] === 1 && to[j] !== 1 ? 0 : s[i]!;
  }
  return out;
}

/** Resolves one -1 in a reshape target. */
export function inferReshape(total: number, shape: Shape): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg !== out.lastIndexOf(-1)) throw new RangeError('reshape: at most one dimension may be -1');
  if (neg >= 0) {
    const rest = numel(out.filter((_, i) => i !== neg));
    if (rest === 0 || total % rest !== 0) throw new RangeError(`reshape: cannot infer -1 for ${total} elements into ${fmtShape(shape)}`);
    out[neg] = total / rest;
  }
  assertShape(out, 'reshape target');
  if (numel(out) !== total) throw new RangeError(`reshape: ${total} elements do not fit ${fmtShape(shape)}`);
  return out;
}
