// Seeded, reproducible randomness: xoshiro128** seeded through splitmix32. The same seed gives
// bit-identical streams on every backend, because all random numbers are drawn here, in JS.

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Serialisable generator state (JSON-safe). */
export interface GeneratorState { s: number[]; spare: number | null }

export class Generator {
  private s0 = 0; private s1 = 0; private s2 = 0; private s3 = 0;
  private spare: number | null = null; // second Box-Muller value

  constructor(seed = 0) { this.seed(seed); }

  seed(seed: number): this {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
    const st = { s: Math.trunc(seed) | 0 };
    this.s0 = splitmix32(st); this.s1 = splitmix32(st); this.s2 = splitmix32(st); this.s3 = splitmix32(st);
    this.spare = null;
    return this;
  }

  /** The full generator state, for exact resume of training runs. */
  getState(): GeneratorState {
    return { s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0], spare: this.spare };
  }

  setState(st: GeneratorState): this {
    if (!Array.isArray(st?.s) || st.s.length !== 4 || !st.s.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
      throw new TypeError('Generator.setState: expected { s: [four uint32], spare: number | null }');
    }
    if (st.spare !== null && typeof st.spare !== 'number') throw new TypeError('Generator.setState: spare must be a number or null');
    [this.s0, this.s1, this.s2, this.s3] = st.s.map((v) => v | 0) as [number, number, number, number];
    this.spare = st.spare;
    return this;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t; this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number { return this.nextU32() / 4294967296; }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spare !== null) { const v = this.spare; this.spare = null; return v; }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * keep[i] = 1 when the i-th uniform of the stream is ≥ p, else 0 (dropout's mask): the same draws and
   * the same state afterwards as `uniform() >= p` per element, in one loop over local state.
   */
  fillKeepMask(keep: Uint8Array, p: number): void {
    const threshold = p * 4294967296; // u32 / 2³² ≥ p ⇔ u32 ≥ p·2³² (both exact: scaling by 2³²)
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    for (let i = 0; i < keep.length; i++) {
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
      s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
      keep[i] = r >= threshold ? 1 : 0;
    }
    this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number { return Math.floor(this.uniform() * n); }
}

function rotl(x: number, k: number): number { return (x << k) | (x >>> (32 - k)); }

/** The process-wide default generator; `manualSeed` resets it. */
export const defaultGenerator = new Generator(0);

export function manualSeed(seed: number): void { defaultGenerator.seed(seed); }
