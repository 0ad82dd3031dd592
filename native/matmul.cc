// matmul(a, b, batch, m, k, n, transA, transB, strideA, strideB, bf16, bias|null) → Float32Array [batch, m, n]
//
// bias (f32 [n], optional) is added to every output row inside the primitive: a Linear layer's
// x·Wᵀ + b in one pass, with no bias-free intermediate for the caller to allocate and drop.
// One oneDNN matmul primitive. Transposes are expressed with strides on the memory descs (no copies);
// a batch stride of 0 broadcasts that operand (batch dim 1, which oneDNN's matmul broadcasts).
// Inputs are f32 (Float32Array) or bf16 bits (Uint16Array). With bf16 = true (or both inputs bf16) the
// product runs in bf16 with f32 accumulation and f32 output; f32 inputs are rounded to bf16 first
// (round to nearest even). With bf16 = false a bf16 input is widened to f32 (exact) instead.
#include "ops.h"
#include "pd.h"

#include <cstring>

namespace vilg {

namespace {

/** Desc of one operand stored as [B, R, C] (or [B, C, R] when transposed), read as [B, R, C]. */
md operand_md(int64_t batch, int64_t rows, int64_t cols, bool trans, int64_t stride, dt type, bool three_d) {
  if (!three_d) return trans ? md({rows, cols}, type, dims{1, rows}) : md({rows, cols}, type, dims{cols, 1});
  if (batch == 1) stride = rows * cols;
  return trans ? md({batch, rows, cols}, type, dims{stride, 1, rows}) : md({batch, rows, cols}, type, dims{stride, cols, 1});
}

/** Returns a pointer to `x` (first `count` elements) in the wanted element type, converting into a scratch slot. */
const void* as_type(const Array& x, size_t count, bool want_bf16, int slot) {
  if (want_bf16 == x.is_bf16()) return x.data;
  if (want_bf16) {
    auto* dst = static_cast<uint16_t*>(scratch(slot, count * sizeof(uint16_t)));
    f32_to_bf16(x.f32(), dst, count);
    return dst;
  }
  auto* dst = static_cast<float*>(scratch(slot, count * sizeof(float)));
  bf16_to_f32(x.u16(), dst, count);
  return dst;
}

}  // namespace

void matmul_exec(const void* a, const void* b, float* c, const MatmulShape& s, bool bf16, const float* bias) {
  if (bf16 && !bf16_native()) {  // emulate: the bf16 operands widened exactly, an f32 product
    const int64_t span_a = s.stride_a == 0 ? s.m * s.k : (s.batch - 1) * s.stride_a + s.m * s.k;
    const int64_t span_b = s.stride_b == 0 ? s.k * s.n : (s.batch - 1) * s.stride_b + s.k * s.n;
    matmul_exec(bf16_values_f32(a, true, static_cast<size_t>(span_a), kSlotWideA),
                bf16_values_f32(b, true, static_cast<size_t>(span_b), kSlotWideB), c, s, false, bias);
    return;
  }
  const dt type = bf16 ? dt::bf16 : dt::f32;
  // Both operands broadcast: every batch item is the same product, computed once and copied.
  const int64_t eff_batch = (s.stride_a == 0 && s.stride_b == 0) ? 1 : s.batch;
  const int64_t ba = s.stride_a == 0 ? 1 : eff_batch, bb = s.stride_b == 0 ? 1 : eff_batch;
  const bool has_bias = bias != nullptr;
  const std::string key = make_key("matmul", {bf16, eff_batch, s.m, s.k, s.n, s.trans_a, s.trans_b,
                                              ba == 1 ? -1 : s.stride_a, bb == 1 ? -1 : s.stride_b, has_bias});
  EntryPtr e = cached(key, [&] {
    // Batched: 3-D descs on both sides (oneDNN broadcasts a batch dim of 1 only between equal ranks).
    const bool three_d = eff_batch > 1;
    md a_md = operand_md(ba, s.m, s.k, s.trans_a, s.stride_a, type, three_d);
    md b_md = operand_md(bb, s.k, s.n, s.trans_b, s.stride_b, type, three_d);
    md c_md = three_d ? md({eff_batch, s.m, s.n}, dt::f32, tag::abc) : md({s.m, s.n}, dt::f32, tag::ab);
    md bias_md = three_d ? md({1, 1, s.n}, dt::f32, tag::abc) : md({1, s.n}, dt::f32, tag::ab);
    auto pd = has_bias ? matmul_pd(a_md, b_md, bias_md, c_md) : matmul_pd(a_md, b_md, c_md);
    return CacheEntry{{dnnl::matmul(pd)}, {pd.scratchpad_desc(), a_md, b_md, c_md, bias_md}};
  });
  dnnl::memory ma(e->mds[1], engine(), const_cast<void*>(a));
  dnnl::memory mb(e->mds[2], engine(), const_cast<void*>(b));
  dnnl::memory mc(e->mds[3], engine(), c);
  std::unordered_map<int, dnnl::memory> io{{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  if (has_bias) io.emplace(DNNL_ARG_BIAS, dnnl::memory(e->mds[4], engine(), const_cast<float*>(bias)));
  execute(e->prims[0], io, e->mds[0]);
  const size_t mn = static_cast<size_t>(s.m * s.n);
  for (int64_t bi = 1; bi < s.batch && eff_batch == 1; bi++) std::memcpy(c + bi * mn, c, mn * sizeof(float));
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "matmul", 12);
    const Napi::Env& env = args.env();
    MatmulShape s{args.dim(2, "batch"), args.dim(3, "m"), args.dim(4, "k"), args.dim(5, "n"),
                  args.flag(6, "transA"), args.flag(7, "transB"), args.dim(8, "strideA", 0), args.dim(9, "strideB", 0)};
    const bool want_bf16 = args.flag(10, "bf16");
    const size_t mk = product(env, "matmul", {s.m, s.k}), kn = product(env, "matmul", {s.k, s.n});
    const size_t out_len = product(env, "matmul", {s.batch, s.m, s.n});
    const size_t need_a = s.stride_a == 0 ? mk : product(env, "matmul", {s.batch - 1, s.stride_a}) + mk;
    const size_t need_b = s.stride_b == 0 ? kn : product(env, "matmul", {s.batch - 1, s.stride_b}) + kn;
    const Array a = args.array(0, "a", need_a, true);
    const Array b = args.array(1, "b", need_b, true);
    const Array bias = args.optional_array(11, "bias", static_cast<size_t>(s.n));
    if (bias.data != nullptr && bias.is_bf16()) throw_type(env, "matmul", "bias must be a Float32Array");
    const bool bf16 = want_bf16 || (a.is_bf16() && b.is_bf16());
    Napi::Float32Array out = new_f32(env, out_len);
    matmul_exec(as_type(a, need_a, bf16, kSlotA), as_type(b, need_b, bf16, kSlotB), out.Data(), s, bf16,
                bias.data == nullptr ? nullptr : bias.f32());
    return out;
  });
}

// sumRows(g, rows, cols) → Float32Array [cols]: Σ over the rows of g (Linear's bias gradient).
Napi::Value SumRows(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "sumRows", 3);
    const Napi::Env& env = args.env();
    const int64_t rows = args.dim(1, "rows", 0), cols = args.dim(2, "cols", 0);
    const Array g = args.array(0, "g", product(env, "sumRows", {rows, cols}));
    Napi::Float32Array out = new_f32(env, static_cast<size_t>(cols));
    bias_grad(g.f32(), static_cast<size_t>(rows), cols, out.Data());
    return out;
  });
}

}  // namespace vilg
