import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSafetensors, serializeSafetensors, saveSafetensors, loadSafetensors, tensor, scalar, zeros,
} from '../../src/engine/index.js';

/** u64 LE length + header text (space-padded to 8 like the reference writer when `pad`) + data bytes. */
function build(header: unknown, data: number[] = [], pad = true): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const h = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('parses a hand-built file with every readable dtype', () => {
  // Byte buffer laid out by hand (little-endian):
  //   [0, 8)   F32  [2]    1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0
  //   [8, 24)  I64  [2]    -3 = fd ff ff ff ff ff ff ff, 2^31−1 = ff ff ff 7f 00 00 00 00
  //   [24, 32) F64  []     0.5 = 00 00 00 00 00 00 e0 3f
  //   [32, 36) I32  [1]    258 = 02 01 00 00
  //   [36, 40) BF16 [2]    -1 = 0xbf80 → 80 bf, 1 = 0x3f80 → 80 3f
  //   [40, 46) F16  [3]    1.5 = 0x3e00 → 00 3e, -2 = 0xc000 → 00 c0, 2^-24 (smallest subnormal) = 01 00
  const header = {
    __metadata__: { format: 'pt' },
    w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    idx: { dtype: 'I64', shape: [2], data_offsets: [8, 24] },
    s: { dtype: 'F64', shape: [], data_offsets: [24, 32] },
    n: { dtype: 'I32', shape: [1], data_offsets: [32, 36] },
    b: { dtype: 'BF16', shape: [1, 2], data_offsets: [36, 40] },
    h: { dtype: 'F16', shape: [3], data_offsets: [40, 46] },
  };
  const data = [
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,
    0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f,
    0x02, 0x01, 0x00, 0x00,
    0x80, 0xbf, 0x80, 0x3f,
    0x00, 0x3e, 0x00, 0xc0, 0x01, 0x00,
  ];
  // Offset by one byte inside a larger buffer: parsing must not rely on the input's alignment.
  const file = build(header, data);
  const shifted = new Uint8Array(file.length + 1);
  shifted.set(file, 1);
  const { tensors: t, metadata } = parseSafetensors(shifted.subarray(1));
  assert.deepEqual(metadata, { format: 'pt' });
  assert.equal(t.w!.dtype, 'f32'); assert.deepEqual(t.w!.toArray(), [1, -2]);
  assert.equal(t.idx!.dtype, 'i32'); assert.deepEqual(t.idx!.toArray(), [-3, 2147483647]);
  assert.equal(t.s!.dtype, 'f64'); assert.deepEqual(t.s!.shape, []); assert.equal(t.s!.item(), 0.5);
  assert.equal(t.n!.dtype, 'i32'); assert.deepEqual(t.n!.toArray(), [258]);
  assert.equal(t.b!.dtype, 'bf16'); assert.deepEqual(t.b!.shape, [1, 2]); assert.deepEqual(t.b!.toArray(), [-1, 1]);
  assert.equal(t.h!.dtype, 'f32'); assert.deepEqual(t.h!.toArray(), [1.5, -2, 2 ** -24]);
  assert.equal(t.w!.name, 'w');
  assert.notEqual(t.w!.data.buffer, shifted.buffer, 'tensors get fresh storage');
});

test('serializes to the exact bytes of the format (padded header, little-endian data)', () => {
  const bytes = serializeSafetensors({ x: tensor([1, 2]) });
  const json = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 chars → padded with 2 spaces to 56
  assert.equal(json.length, 54);
  const expected = build(json, [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]);
  assert.deepEqual(Array.from(bytes), Array.from(expected));
  assert.deepEqual([bytes[8 + 54], bytes[8 + 55]], [0x20, 0x20], 'padding is spaces');
  assert.equal(new DataView(bytes.buffer).getBigUint64(0, true), 56n);
});

test('round-trips f32, f64, bf16, i32, scalars, empty tensors and metadata', () => {
  const src = {
    'layer.0.weight': tensor([1.5, -2.25, 3e-8, 1e30, -0, Infinity], [2, 3]),
    'bias·é': tensor([0.1, 0.2], [2], 'f64'),
    half: tensor([1, -0.5, 3.140625], [3], 'bf16'),
    ids: tensor([-7, 0, 2147483647, -2147483648], [2, 2], 'i32'),
    step: scalar(42, 'i32'),
    empty: zeros([0, 3]),
  };
  const bytes = serializeSafetensors(src, { step: '42', note: 'ünïcode' });
  const header = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(header % 8, 0);
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.deepEqual(metadata, { step: '42', note: 'ünïcode' });
  assert.deepEqual(Object.keys(tensors).sort(), Object.keys(src).sort());
  for (const [k, t] of Object.entries(src)) {
    const r = tensors[k]!;
    assert.equal(r.dtype, t.dtype, k);
    assert.deepEqual(r.shape, t.shape, k);
    assert.deepEqual(Array.from(r.data), Array.from(t.data), k);
  }
  assert.ok(Object.is(tensors['layer.0.weight']!.data[4], -0), 'signed zero survives');
  assert.deepEqual(parseSafetensors(serializeSafetensors({})), { tensors: {}, metadata: {} });
});

// Both fixtures were produced by the real library: the safetensors 0.8.0 wheel unpacked into a temp dir,
//   PYTHONPATH=<dir> /usr/bin/python3 -c "import torch; from safetensors.torch import save; print(save({...}, metadata={...}).hex())"
// FIXTURE_READ = save({'w': tensor([1.,-2.]), 'idx': tensor([-3, 2**31-1], dtype=int64), 'h': tensor([1.5,-2.], dtype=float16),
//                      'b': tensor([[-1.,1.]], dtype=bfloat16), 's': tensor(0.5, dtype=float64)}, metadata={'format':'pt'})
const FIXTURE_READ =
  '38010000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c22696478223a7b226474797065223a22493634222c2273' +
  '68617065223a5b325d2c22646174615f6f666673657473223a5b302c31365d7d2c2273223a7b226474797065223a22463634222c227368617065223a5b5d2c' +
  '22646174615f6f666673657473223a5b31362c32345d7d2c2277223a7b226474797065223a22463332222c227368617065223a5b325d2c22646174615f6f66' +
  '6673657473223a5b32342c33325d7d2c2262223a7b226474797065223a2242463136222c227368617065223a5b312c325d2c22646174615f6f666673657473' +
  '223a5b33322c33365d7d2c2268223a7b226474797065223a22463136222c227368617065223a5b325d2c22646174615f6f666673657473223a5b33362c3430' +
  '5d7d7d2020fdffffffffffffffffffff7f00000000000000000000e03f0000803f000000c080bf803f003e00c0';
// FIXTURE_WRITE = save({'a': tensor([[1.,2.],[3.,-4.5]]), 'z': tensor([0.25], dtype=float64), 'i': tensor([7,-1,65536], dtype=int32),
//                       'b': tensor([1.,-2.], dtype=bfloat16), 'e': zeros(0,3)}, metadata={'step':'7'})
const FIXTURE_WRITE =
  '38010000000000007b225f5f6d657461646174615f5f223a7b2273746570223a2237227d2c227a223a7b226474797065223a22463634222c227368617065' +
  '223a5b315d2c22646174615f6f666673657473223a5b302c385d7d2c2261223a7b226474797065223a22463332222c227368617065223a5b322c325d2c2264' +
  '6174615f6f666673657473223a5b382c32345d7d2c2265223a7b226474797065223a22463332222c227368617065223a5b302c335d2c22646174615f6f6666' +
  '73657473223a5b32342c32345d7d2c2269223a7b226474797065223a22493332222c227368617065223a5b335d2c22646174615f6f666673657473223a5b32' +
  '342c33365d7d2c2262223a7b226474797065223a2242463136222c227368617065223a5b325d2c22646174615f6f666673657473223a5b33362c34305d7d7d' +
  '202020202020000000000000d03f0000803f0000004000004040000090c007000000ffffffff00000100803f00c0';

test('reads a file written by the Python safetensors library', () => {
  const { tensors: t, metadata } = parseSafetensors(Buffer.from(FIXTURE_READ, 'hex'));
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual(t.w!.toArray(), [1, -2]);
  assert.equal(t.idx!.dtype, 'i32'); assert.deepEqual(t.idx!.toArray(), [-3, 2147483647]);
  assert.equal(t.h!.dtype, 'f32'); assert.deepEqual(t.h!.toArray(), [1.5, -2]);
  assert.equal(t.b!.dtype, 'bf16'); assert.deepEqual(t.b!.shape, [1, 2]); assert.deepEqual(t.b!.toArray(), [-1, 1]);
  assert.deepEqual(t.s!.shape, []); assert.equal(t.s!.item(), 0.5);
});

test('writes the same bytes as the Python safetensors library', () => {
  const bytes = serializeSafetensors({
    a: tensor([1, 2, 3, -4.5], [2, 2]),
    z: tensor([0.25], [1], 'f64'),
    i: tensor([7, -1, 65536], [3], 'i32'),
    b: tensor([1, -2], [2], 'bf16'),
    e: zeros([0, 3]),
  }, { step: '7' });
  assert.equal(Buffer.from(bytes).toString('hex'), FIXTURE_WRITE);
});

test('rejects malformed files with clear errors', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = [0, 0, 0, 0, 0, 0, 0, 0];
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['too short', new Uint8Array(5), /5 bytes, shorter than the 8-byte header length/],
    ['header past end', (() => { const b = build(ok, eight); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); return b; })(), /header length 1099511627776 runs past the end/],
    ['huge u64 header length', (() => { const b = build(ok, eight); new DataView(b.buffer).setBigUint64(0, 0xffffffffffffffffn, true); return b; })(), /runs past the end/],
    ['not JSON', build('{"a": oops}', eight), /not valid UTF-8 JSON/],
    ['invalid UTF-8', (() => { const b = build('{"a":1}', []); b[10] = 0xff; return b; })(), /not valid UTF-8 JSON/],
    ['array header', build('[1,2,3]'), /not a JSON object/],
    ['null header', build('null'), /not a JSON object/],
    ['entry not object', build({ a: 5 }), /entry 'a' is not an object/],
    ['unknown dtype', build({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, [0]), /'a' has unsupported dtype "F8_E4M3"/],
    ['missing dtype', build({ a: { shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /unsupported dtype undefined/],
    ['bad shape', build({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /invalid shape \[-1\]/],
    ['bad offsets', build({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, [0, 0, 0, 0]), /invalid data_offsets \[0\]/],
    ['end before begin', build({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, [0, 0, 0, 0]), /end before begin/],
    ['size mismatch', build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight), /'a' \(F32 \[3\]\) needs 12 bytes but data_offsets \[0, 8\] span 8/],
    ['out of range', build({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, eight), /run past the end of the 8-byte buffer/],
    ['overlap', build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /overlaps the previous tensor/],
    ['gap', build({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /bytes \[0, 4\) of the buffer belong to no tensor/],
    ['trailing bytes', build(ok, [...eight, 1, 2]), /cover 8 bytes but the buffer holds 10/],
    ['metadata not strings', build({ __metadata__: { n: 1 } }), /__metadata__ 'n' is not a string/],
    ['metadata not object', build({ __metadata__: 'x' }), /__metadata__ must be an object/],
    ['I64 overflow', build({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, [0, 0, 0, 0x80, 0, 0, 0, 0]), /I64 tensor 'a' element 0 = 2147483648 does not fit in i32/],
    ['I64 underflow', build({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, [0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff]), /-2147483649 does not fit/],
  ];
  for (const [what, bytes, re] of cases) assert.throws(() => parseSafetensors(bytes), re, what);
  assert.throws(() => parseSafetensors([1, 2, 3] as unknown as Uint8Array), TypeError);
});

test('serialize validates names, tensors and metadata', () => {
  assert.throws(() => serializeSafetensors({ __metadata__: tensor([1]) }), /invalid tensor name '__metadata__'/);
  assert.throws(() => serializeSafetensors({ '': tensor([1]) }), /invalid tensor name/);
  assert.throws(() => serializeSafetensors({ a: [1, 2] as unknown as ReturnType<typeof tensor> }), /'a' is not a Tensor/);
  assert.throws(() => serializeSafetensors({}, { n: 1 as unknown as string }), /metadata 'n' must be a string/);
});

test('saveSafetensors writes atomically (no temp files left) and loadSafetensors reads it back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'safetensors-test-'));
  try {
    const path = join(dir, 'ckpt.safetensors');
    await writeFile(path, 'old contents'); // overwritten by the rename
    await saveSafetensors(path, { w: tensor([1, 2, 3, 4], [2, 2]), i: tensor([5], [1], 'i32') }, { step: '7' });
    assert.deepEqual(await readdir(dir), ['ckpt.safetensors']);
    const { tensors, metadata } = await loadSafetensors(path);
    assert.deepEqual(metadata, { step: '7' });
    assert.deepEqual(tensors.w!.toArray(), [1, 2, 3, 4]);
    assert.deepEqual(tensors.i!.toArray(), [5]);

    await assert.rejects(saveSafetensors(join(dir, 'missing', 'x.safetensors'), { w: tensor([1]) }), /ENOENT/);
    await assert.rejects(saveSafetensors(join(dir, 'bad.safetensors'), { w: 3 as unknown as ReturnType<typeof tensor> }), /not a Tensor/);
    assert.deepEqual(await readdir(dir), ['ckpt.safetensors'], 'failed saves leave nothing behind');

    await writeFile(join(dir, 'trunc.safetensors'), new Uint8Array(3));
    await assert.rejects(loadSafetensors(join(dir, 'trunc.safetensors')), /shorter than the 8-byte header length \(file .*trunc\.safetensors\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
