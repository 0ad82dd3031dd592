// Layer norm over the last axis of [R, C] (see src/engine/ops/norm.ts), oneDNN layer_normalization.
//   layerNorm(x, gamma|null, beta|null, rows, cols, eps) → { y [R, C], mean [R], rstd [R] }
//   layerNormBackward(x, gamma|null, mean, rstd, g, rows, cols, hasBeta) → { dx, dgamma|null, dbeta|null }
//
// oneDNN keeps the variance, the kernels keep rstd = 1/√(var + eps). The backward has no eps, so it hands
// oneDNN var' = 1/rstd² with eps 0, from which oneDNN recomputes exactly 1/√var' = rstd.
// Snag: backward with use_shift needs a SHIFT argument although it never reads it (zeros are passed).
#include <cmath>
#include <cstring>

#include "ops.h"
#include "pd.h"

namespace vilg {

namespace {

dnnl::normalization_flags ln_flags(bool scale, bool shift) {
  auto f = dnnl::normalization_flags::none;
  if (scale) f |= dnnl::normalization_flags::use_scale;
  if (shift) f |= dnnl::normalization_flags::use_shift;
  return f;
}

md data_md(int64_t rows, int64_t cols) { return md({rows, cols}, dt::f32, tag::ab); }
md stat_md(int64_t rows) { return md({rows}, dt::f32, tag::a); }
md param_md(int64_t cols) { return md({cols}, dt::f32, tag::a); }

}  // namespace

Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "layerNorm", 6);
    const int64_t rows = args.dim(3, "rows"), cols = args.dim(4, "cols");
    const double eps = args.number(5, "eps");
    if (eps < 0) throw_range(args.env(), args.fn(), "eps must be ≥ 0");
    const size_t len = product(args.env(), args.fn(), {rows, cols});
    const Array x = args.array(0, "x", len);
    const Array gamma = args.optional_array(1, "gamma", static_cast<size_t>(cols));
    const Array beta = args.optional_array(2, "beta", static_cast<size_t>(cols));
    const bool scale = gamma.data != nullptr, shift = beta.data != nullptr;
    const float feps = static_cast<float>(eps);
    uint32_t eps_bits;
    std::memcpy(&eps_bits, &feps, sizeof eps_bits);

    EntryPtr e = cached(make_key("layerNorm", {rows, cols, scale, shift, eps_bits}), [&] {
      auto pd = lnorm_fwd_pd(data_md(rows, cols), stat_md(rows), feps, ln_flags(scale, shift));
      return CacheEntry{{dnnl::layer_normalization_forward(pd)}, {pd.scratchpad_desc()}};
    });

    const Napi::Env& env = args.env();
    Napi::Float32Array y = new_f32(env, len), mean = new_f32(env, static_cast<size_t>(rows));
    Napi::Float32Array rstd = new_f32(env, static_cast<size_t>(rows));
    float* var = static_cast<float*>(scratch(kSlotA, static_cast<size_t>(rows) * sizeof(float)));
    std::unordered_map<int, dnnl::memory> io{
        {DNNL_ARG_SRC, dnnl::memory(data_md(rows, cols), engine(), x.data)},
        {DNNL_ARG_DST, dnnl::memory(data_md(rows, cols), engine(), y.Data())},
        {DNNL_ARG_MEAN, dnnl::memory(stat_md(rows), engine(), mean.Data())},
        {DNNL_ARG_VARIANCE, dnnl::memory(stat_md(rows), engine(), var)}};
    if (scale) io.emplace(DNNL_ARG_SCALE, dnnl::memory(param_md(cols), engine(), gamma.data));
    if (shift) io.emplace(DNNL_ARG_SHIFT, dnnl::memory(param_md(cols), engine(), beta.data));
    execute(e->prims[0], io, e->mds[0]);
    float* r = rstd.Data();
    for (int64_t i = 0; i < rows; i++) r[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[i]) + eps));

    Napi::Object out = Napi::Object::New(env);
    out.Set("y", y);
    out.Set("mean", mean);
    out.Set("rstd", rstd);
    return out;
  });
}

Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "layerNormBackward", 8);
    const int64_t rows = args.dim(5, "rows"), cols = args.dim(6, "cols");
    const bool has_beta = args.flag(7, "hasBeta");
    const size_t len = product(args.env(), args.fn(), {rows, cols});
    const Array x = args.array(0, "x", len);
    const Array gamma = args.optional_array(1, "gamma", static_cast<size_t>(cols));
    const Array mean = args.array(2, "mean", static_cast<size_t>(rows));
    const Array rstd = args.array(3, "rstd", static_cast<size_t>(rows));
    const Array g = args.array(4, "g", len);
    const bool scale = gamma.data != nullptr;
    const auto prop = scale || has_beta ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data;

    EntryPtr e = cached(make_key("layerNormBackward", {rows, cols, scale, has_beta}), [&] {
      const auto flags = ln_flags(scale, has_beta);
      auto hint = lnorm_fwd_pd(data_md(rows, cols), stat_md(rows), 0.0f, flags);
      auto pd = lnorm_bwd_pd(prop, data_md(rows, cols), stat_md(rows), 0.0f, flags, hint);
      return CacheEntry{{dnnl::layer_normalization_backward(pd)}, {pd.scratchpad_desc()}};
    });

    const Napi::Env& env = args.env();
    // var' = 1/rstd², so that oneDNN's 1/√(var' + 0) is rstd again.
    float* var = static_cast<float*>(scratch(kSlotA, static_cast<size_t>(rows) * sizeof(float)));
    for (int64_t i = 0; i < rows; i++) {
      const double r = rstd.f32()[i];
      var[i] = static_cast<float>(1.0 / (r * r));
    }
    Napi::Float32Array dx = new_f32(env, len);
    std::unordered_map<int, dnnl::memory> io{
        {DNNL_ARG_SRC, dnnl::memory(data_md(rows, cols), engine(), x.data)},
        {DNNL_ARG_DIFF_DST, dnnl::memory(data_md(rows, cols), engine(), g.data)},
        {DNNL_ARG_DIFF_SRC, dnnl::memory(data_md(rows, cols), engine(), dx.Data())},
        {DNNL_ARG_MEAN, dnnl::memory(stat_md(rows), engine(), mean.data)},
        {DNNL_ARG_VARIANCE, dnnl::memory(stat_md(rows), engine(), var)}};
    Napi::Object out = Napi::Object::New(env);
    out.Set("dx", dx);
    out.Set("dgamma", env.Null());
    out.Set("dbeta", env.Null());
    if (scale) {
      Napi::Float32Array dgamma = new_f32(env, static_cast<size_t>(cols));
      io.emplace(DNNL_ARG_SCALE, dnnl::memory(param_md(cols), engine(), gamma.data));
      io.emplace(DNNL_ARG_DIFF_SCALE, dnnl::memory(param_md(cols), engine(), dgamma.Data()));
      out.Set("dgamma", dgamma);
    }
    if (has_beta) {
      Napi::Float32Array dbeta = new_f32(env, static_cast<size_t>(cols));
      void* zeros = scratch(kSlotB, static_cast<size_t>(cols) * sizeof(float));
      std::memset(zeros, 0, static_cast<size_t>(cols) * sizeof(float));
      io.emplace(DNNL_ARG_SHIFT, dnnl::memory(param_md(cols), engine(), zeros));
      io.emplace(DNNL_ARG_DIFF_SHIFT, dnnl::memory(param_md(cols), engine(), dbeta.Data()));
      out.Set("dbeta", dbeta);
    }
    execute(e->prims[0], io, e->mds[0]);
    return out;
  });
}

}  // namespace vilg
