// Softmax / log-softmax over the last axis of [R, C] (see src/engine/ops/softmax.ts).
//   softmax(x, rows, cols, log) → y [R, C]
//   softmaxBackward(y, g, rows, cols, log) → dx [R, C]   (from the forward output y)
// oneDNN's softmax_v2 except the log-softmax forward: its log is off by up to ~3e-6 absolute (log 2
// comes out 24 ulp low), so that one runs here, y = (x − max) − log Σ exp(x − max), with a Cephes-style
// expf (~1 ulp) that vectorises and a double-precision log per row.
#include <cmath>
#include <cstring>

#include "ops.h"
#include "pd.h"

namespace vilg {

namespace {
md data_md(int64_t rows, int64_t cols) { return md({rows, cols}, dt::f32, tag::ab); }
dnnl::algorithm alg(bool log) { return log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate; }
}  // namespace

/** e^t for t ≤ 0 (−∞ included): Cephes expf's reduction and polynomial, 0 below −87 (under FLT_MIN). */
static inline float exp_nonpositive(float t) {
  const float tc = t < -87.0f ? -87.0f : t;
  const float n = (tc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest integer
  const float r = tc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return t < -87.0f ? 0.0f : e * two_n;
}

VILG_CLONES static void log_softmax_row(const float* x, float* y, int64_t cols) {
  float mx = -INFINITY;
  bool nan = false;
  for (int64_t j = 0; j < cols; j++) {
    mx = x[j] > mx ? x[j] : mx;
    nan |= x[j] != x[j];
  }
  if (nan || !std::isfinite(mx)) {  // NaN / ±∞ rows: the reference's arithmetic, in double
    double m = nan ? NAN : mx, sum = 0;
    for (int64_t j = 0; j < cols; j++) sum += std::exp(x[j] - m);
    const double lse = std::log(sum);
    for (int64_t j = 0; j < cols; j++) y[j] = static_cast<float>(x[j] - m - lse);
    return;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < cols; j++) sum += exp_nonpositive(x[j] - mx);
  const float lse = static_cast<float>(std::log(static_cast<double>(sum)));
#pragma omp simd
  for (int64_t j = 0; j < cols; j++) y[j] = (x[j] - mx) - lse;
}

void softmax_exec(const float* x, float* y, int64_t rows, int64_t cols, bool log) {
  if (log) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t r = 0; r < rows; r++) log_softmax_row(x + r * cols, y + r * cols, cols);
    return;
  }
  EntryPtr e = cached(make_key("softmax", {rows, cols, log}), [&] {
    auto pd = softmax_fwd_pd(alg(log), data_md(rows, cols), 1);
    return CacheEntry{{softmax_fwd(pd)}, {pd.scratchpad_desc()}};
  });
  execute(e->prims[0],
          {{DNNL_ARG_SRC, dnnl::memory(data_md(rows, cols), engine(), const_cast<float*>(x))},
           {DNNL_ARG_DST, dnnl::memory(data_md(rows, cols), engine(), y)}},
          e->mds[0]);
}

void softmax_backward_exec(const float* y, const float* g, float* dx, int64_t rows, int64_t cols, bool log) {
  EntryPtr e = cached(make_key("softmaxBackward", {rows, cols, log}), [&] {
    auto hint = softmax_fwd_pd(alg(log), data_md(rows, cols), 1);
    auto pd = softmax_bwd_pd(alg(log), data_md(rows, cols), 1, hint);
    return CacheEntry{{softmax_bwd(pd)}, {pd.scratchpad_desc()}};
  });
  execute(e->prims[0],
          {{DNNL_ARG_DST, dnnl::memory(data_md(rows, cols), engine(), const_cast<float*>(y))},
           {DNNL_ARG_DIFF_DST, dnnl::memory(data_md(rows, cols), engine(), const_cast<float*>(g))},
           {DNNL_ARG_DIFF_SRC, dnnl::memory(data_md(rows, cols), engine(), dx)}},
          e->mds[0]);
}

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "softmax", 4);
    const int64_t rows = args.dim(1, "rows"), cols = args.dim(2, "cols");
    const bool log = args.flag(3, "log");
    const size_t len = product(args.env(), args.fn(), {rows, cols});
    const Array x = args.array(0, "x", len);
    Napi::Float32Array y = new_f32(args.env(), len);
    softmax_exec(x.f32(), y.Data(), rows, cols, log);
    return y;
  });
}

Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "softmaxBackward", 5);
    const int64_t rows = args.dim(2, "rows"), cols = args.dim(3, "cols");
    const bool log = args.flag(4, "log");
    const size_t len = product(args.env(), args.fn(), {rows, cols});
    const Array y = args.array(0, "y", len), g = args.array(1, "g", len);
    Napi::Float32Array dx = new_f32(args.env(), len);
    softmax_backward_exec(y.f32(), g.f32(), dx.Data(), rows, cols, log);
    return dx;
  });
}

}  // namespace vilg
