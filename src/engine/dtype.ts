// Data types and their storage. Every tensor owns one contiguous, row-major TypedArray.
// f64 exists for finite-difference gradient checks on the reference backend; bf16 is a storage
// type (Uint16Array holding the top 16 bits of an f32) that matmul/conv read directly.

export type DType = 'f32' | 'f64' | 'bf16' | 'i32';
export type FloatDType = 'f32' | 'f64';

export type F32 = Float32Array;
export type FloatArray = Float32Array | Float64Array;
export type Storage = Float32Array | Float64Array | Uint16Array | Int32Array;

export interface StorageOf {
  f32: Float32Array;
  f64: Float64Array;
  bf16: Uint16Array;
  i32: Int32Array;
}

export const DTYPES: readonly DType[] = Object.freeze(['f32', 'f64', 'bf16', 'i32']);

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'f32' || dtype === 'f64';
}

/** A fresh zero-filled array of `n` elements for `dtype`. */
export function allocStorage<D extends DType>(dtype: D, n: number): StorageOf[D] {
  switch (dtype) {
    case 'f32': return new Float32Array(n) as StorageOf[D];
    case 'f64': return new Float64Array(n) as StorageOf[D];
    case 'bf16': return new Uint16Array(n) as StorageOf[D];
    case 'i32': return new Int32Array(n) as StorageOf[D];
  }
  throw new TypeError(`unknown dtype ${String(dtype)}`);
}

/** A float array of the same kind as `like` (f32 or f64). */
export function allocLike(like: FloatArray, n: number): FloatArray {
  return like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

export function dtypeOfStorage(a: Storage): DType {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Float64Array) return 'f64';
  if (a instanceof Uint16Array) return 'bf16';
  if (a instanceof Int32Array) return 'i32';
  throw new TypeError('unsupported storage');
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f64' ? 8 : dtype === 'bf16' ? 2 : 4;
}

// ---- bf16 <-> f32, round-to-nearest-even (bit-exact with oneDNN's reorder) ----

const cvtF32 = new Float32Array(1);
const cvtU32 = new Uint32Array(cvtF32.buffer);

export function f32ToBf16Bits(x: number): number {
  cvtF32[0] = x;
  const u = cvtU32[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff; // NaN stays quiet NaN
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(b: number): number {
  cvtU32[0] = (b & 0xffff) << 16;
  return cvtF32[0]!;
}

export function f32ArrayToBf16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]!);
  return out;
}

export function bf16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i]! << 16;
  return out;
}

/** Rounds every element to the nearest bf16 value, kept in f32 storage (reference bf16 compute). */
export function roundToBf16(src: FloatArray): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = bf16BitsToF32(f32ToBf16Bits(src[i]!));
  return out;
}
