// Elementwise ops (see src/engine/ops/elementwise.ts), oneDNN eltwise and binary primitives.
//   unary(kind, x) → y                     unaryBackward(kind, x, y, g) → dx = g·f'(x)
//   binary(kind, a, aShape, b, bShape, negate) → a ∘ b with shape aShape (negated when negate)
// kind: neg exp log sqrt rsqrt abs tanh sigmoid relu gelu gelu_tanh silu | add sub mul div.
// binary broadcasts b onto a only: both shapes have the same rank, every b dim equals a's or is 1
// (the TS side swaps commutative operands, or uses negate for b − a, or falls back to the reference).
#include <cmath>
#include <cstring>

#include "ops.h"
#include "pd.h"

namespace vilg {

namespace {

struct UnaryAlg {
  const char* name;
  dnnl::algorithm alg;
  float alpha, beta;
  bool use_dst;  // the backward reads y instead of x (cheaper: no transcendental recomputed)
};

const UnaryAlg kUnary[] = {
    {"neg", dnnl::algorithm::eltwise_linear, -1.f, 0.f, false},
    {"exp", dnnl::algorithm::eltwise_exp_use_dst_for_bwd, 0.f, 0.f, true},
    {"log", dnnl::algorithm::eltwise_log, 0.f, 0.f, false},
    {"sqrt", dnnl::algorithm::eltwise_sqrt_use_dst_for_bwd, 0.f, 0.f, true},
    {"rsqrt", dnnl::algorithm::eltwise_pow, 1.f, -0.5f, false},
    {"abs", dnnl::algorithm::eltwise_abs, 0.f, 0.f, false},
    {"tanh", dnnl::algorithm::eltwise_tanh_use_dst_for_bwd, 0.f, 0.f, true},
    {"sigmoid", dnnl::algorithm::eltwise_logistic_use_dst_for_bwd, 0.f, 0.f, true},
    {"relu", dnnl::algorithm::eltwise_relu, 0.f, 0.f, false},
    {"gelu", dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f, false},
    {"gelu_tanh", dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f, false},
    {"silu", dnnl::algorithm::eltwise_swish, 1.f, 0.f, false},
};

int unary_index(const Args& args, size_t i) {
  const std::string kind = args.str(i, "kind");
  for (int k = 0; k < static_cast<int>(sizeof kUnary / sizeof kUnary[0]); k++) {
    if (kind == kUnary[k].name) return k;
  }
  throw_range(args.env(), args.fn(), "unknown unary kind '" + kind + "'");
}

/**
 * Natural log, f32, < 1 ulp: oneDNN's eltwise_log is off by up to ~3e-6 absolute (1e-4 relative near
 * x = 1), so log runs this instead — musl's logf (x = 2^k·m, m ∈ [√½, √2), log m = f − ½f² + s(½f² + R(s²)),
 * s = f/(2 + f)), branch-free so the loop vectorises; zero, negative, subnormal, inf and NaN inputs are
 * patched afterwards with std::log.
 */
VILG_CLONES void log_chunk(const float* x, float* y, size_t n) {
  constexpr float ln2_hi = 6.9313812256e-01f, ln2_lo = 9.0580006145e-06f;
  constexpr float lg1 = 0.66666662693f, lg2 = 0.40000972152f, lg3 = 0.28498786688f, lg4 = 0.24279078841f;
  const uint32_t* xi = reinterpret_cast<const uint32_t*>(x);
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    uint32_t ix = xi[i] + (0x3f800000u - 0x3f3504f3u);
    const int k = static_cast<int>(ix >> 23) - 0x7f;
    ix = (ix & 0x007fffffu) + 0x3f3504f3u;
    float m;
    std::memcpy(&m, &ix, sizeof m);
    const float f = m - 1.0f, s = f / (2.0f + f), z = s * s, w = z * z;
    const float r = z * (lg1 + w * lg3) + w * (lg2 + w * lg4);
    const float hfsq = 0.5f * f * f, dk = static_cast<float>(k);
    y[i] = s * (hfsq + r) + dk * ln2_lo - hfsq + f + dk * ln2_hi;
  }
  for (size_t i = 0; i < n; i++) {
    if (xi[i] < 0x00800000u || xi[i] >= 0x7f800000u) y[i] = std::log(x[i]);
  }
}

void log_f32(const float* x, float* y, size_t n) {
  parallel_chunks(n, [&](size_t lo, size_t hi) { log_chunk(x + lo, y + lo, hi - lo); });
}

md vec_md(size_t n) { return md({static_cast<int64_t>(n)}, dt::f32, tag::a); }

dnnl::eltwise_forward::primitive_desc unary_fwd(const UnaryAlg& u, size_t n) {
  return eltwise_fwd_pd(u.alg, vec_md(n), u.alpha, u.beta);
}

}  // namespace

Napi::Value Unary(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "unary", 2);
    const int k = unary_index(args, 0);
    const Array x = args.array(1, "x", 1);
    if (std::string(kUnary[k].name) == "log") {
      Napi::Float32Array y = new_f32(args.env(), x.length);
      log_f32(x.f32(), y.Data(), x.length);
      return y;
    }
    EntryPtr e = cached(make_key("unary", {k, static_cast<int64_t>(x.length)}), [&] {
      auto pd = unary_fwd(kUnary[k], x.length);
      return CacheEntry{{dnnl::eltwise_forward(pd)}, {pd.scratchpad_desc()}};
    });
    Napi::Float32Array y = new_f32(args.env(), x.length);
    execute(e->prims[0],
            {{DNNL_ARG_SRC, dnnl::memory(vec_md(x.length), engine(), x.data)},
             {DNNL_ARG_DST, dnnl::memory(vec_md(x.length), engine(), y.Data())}},
            e->mds[0]);
    return y;
  });
}

Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "unaryBackward", 4);
    const int k = unary_index(args, 0);
    const Array x = args.array(1, "x", 1);
    const Array y = args.array(2, "y", x.length), g = args.array(3, "g", x.length);
    const size_t n = x.length;
    EntryPtr e = cached(make_key("unaryBackward", {k, static_cast<int64_t>(n)}), [&] {
      const UnaryAlg& u = kUnary[k];
      auto pd = eltwise_bwd_pd(u.alg, vec_md(n), u.alpha, u.beta, unary_fwd(u, n));
      return CacheEntry{{dnnl::eltwise_backward(pd)}, {pd.scratchpad_desc()}};
    });
    Napi::Float32Array dx = new_f32(args.env(), n);
    const int data_arg = kUnary[k].use_dst ? DNNL_ARG_DST : DNNL_ARG_SRC;
    execute(e->prims[0],
            {{data_arg, dnnl::memory(vec_md(n), engine(), kUnary[k].use_dst ? y.data : x.data)},
             {DNNL_ARG_DIFF_DST, dnnl::memory(vec_md(n), engine(), g.data)},
             {DNNL_ARG_DIFF_SRC, dnnl::memory(vec_md(n), engine(), dx.Data())}},
            e->mds[0]);
    return dx;
  });
}

namespace {

dnnl::algorithm binary_alg(const Args& args, size_t i, int* code) {
  const std::string kind = args.str(i, "kind");
  if (kind == "add") { *code = 0; return dnnl::algorithm::binary_add; }
  if (kind == "sub") { *code = 1; return dnnl::algorithm::binary_sub; }
  if (kind == "mul") { *code = 2; return dnnl::algorithm::binary_mul; }
  if (kind == "div") { *code = 3; return dnnl::algorithm::binary_div; }
  throw_range(args.env(), args.fn(), "unknown binary kind '" + kind + "'");
}

md plain_md(const std::vector<int64_t>& shape) {
  dims d(shape.begin(), shape.end()), strides(shape.size());
  int64_t s = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    strides[k] = s;
    s *= shape[k];
  }
  return md(d, dt::f32, strides);
}

}  // namespace

Napi::Value Binary(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "binary", 6);
    int code = 0;
    const dnnl::algorithm alg = binary_alg(args, 0, &code);
    const bool negate = args.flag(5, "negate");
    const Napi::Env& env = args.env();
    if (!info[2].IsArray() || !info[4].IsArray()) throw_type(env, args.fn(), "aShape and bShape must be arrays");
    const uint32_t rank = info[2].As<Napi::Array>().Length();
    if (rank < 1 || rank > DNNL_MAX_NDIMS) throw_range(env, args.fn(), "rank must be 1.." + std::to_string(DNNL_MAX_NDIMS));
    const std::vector<int64_t> as = args.int_list(2, "aShape", rank), bs = args.int_list(4, "bShape", rank);
    size_t alen = 1, blen = 1;
    std::string key = "binary|" + std::to_string(code) + "|" + std::to_string(negate);
    for (uint32_t k = 0; k < rank; k++) {
      if (as[k] < 1 || bs[k] < 1) throw_range(env, args.fn(), "shape sizes must be ≥ 1");
      if (bs[k] != as[k] && bs[k] != 1) throw_range(env, args.fn(), "bShape must broadcast onto aShape");
      alen = product(env, args.fn(), {static_cast<int64_t>(alen), as[k]});
      blen = product(env, args.fn(), {static_cast<int64_t>(blen), bs[k]});
      key += "|" + std::to_string(as[k]) + "x" + std::to_string(bs[k]);
    }
    const Array a = args.array(1, "a", alen), b = args.array(3, "b", blen);
    const md a_md = plain_md(as), b_md = plain_md(bs);
    EntryPtr e = cached(key, [&] {
      auto pd = binary_pd(alg, a_md, b_md, a_md, negate);
      return CacheEntry{{dnnl::binary(pd)}, {pd.scratchpad_desc()}};
    });
    Napi::Float32Array y = new_f32(env, alen);
    execute(e->prims[0],
            {{DNNL_ARG_SRC_0, dnnl::memory(a_md, engine(), a.data)},
             {DNNL_ARG_SRC_1, dnnl::memory(b_md, engine(), b.data)},
             {DNNL_ARG_DST, dnnl::memory(a_md, engine(), y.Data())}},
            e->mds[0]);
    return y;
  });
}

}  // namespace vilg
