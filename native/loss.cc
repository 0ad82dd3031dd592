// Cross-entropy over class logits, forward and backward side by side: the JS loops of the reference
// (src/engine/ops/loss.ts) with the same arithmetic — f32 inputs widened to double, every sum and
// product in double, each result rounded to f32 once where the reference stores it. Rows are
// independent, so the thread count does not change a bit; exp/log are glibc's, the reference's V8's
// (both within an ulp of the exact value in double, so the f32 results agree but for rare ties).
//
// crossEntropy(x, t, rows, cols, ignoreIndex, eps) → { loss: Float32Array [R], lse: Float32Array [R] }
//   lse[r] = log Σ_c exp(x[r, c]);  loss[r] = (1 − ε)·(lse − x[r, t]) + ε·(lse − mean_c x[r, c]), 0 where ignored.
// crossEntropyBackward(x, t, lse, g, rows, cols, ignoreIndex, eps) → Float32Array [R, C]
//   dx[r, c] = g[r]·(exp(x[r, c] − lse[r]) − ε/C) − g[r]·(1 − ε)·[c = t[r]];  zero rows where ignored.
#include "ops.h"

#include <cmath>
#include <limits>

namespace vilg {

namespace {

/** Checks every target is ignoreIndex or a class in [0, cols) (TypeScript checks first; this keeps bad calls from reading out of bounds). */
void check_targets(const Napi::Env& env, const char* fn, const int32_t* t, int64_t rows, int64_t cols, int64_t ignore) {
  for (int64_t r = 0; r < rows; r++) {
    if (t[r] != ignore && (t[r] < 0 || t[r] >= cols)) {
      throw_range(env, fn, "target " + std::to_string(t[r]) + " at row " + std::to_string(r) + " is outside [0, cols) and is not ignoreIndex");
    }
  }
}

/** ignoreIndex as an integer: it must be one within int32 range (targets are int32). */
int64_t ignore_index(const Args& args, size_t i) {
  const double v = args.number(i, "ignoreIndex");
  if (v != std::floor(v) || std::fabs(v) > 2147483648.0) throw_range(args.env(), args.fn(), "ignoreIndex must be an integer within int32 range");
  return static_cast<int64_t>(v);
}

}  // namespace

Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "crossEntropy", 6);
    const Napi::Env& env = args.env();
    const int64_t rows = args.dim(2, "rows", 0), cols = args.dim(3, "cols", 1);
    const int64_t ignore = ignore_index(args, 4);
    const double eps = args.number(5, "labelSmoothing");
    const Array x = args.array(0, "x", product(env, "crossEntropy", {rows, cols}));
    const int32_t* t = args.int32s(1, "targets", static_cast<size_t>(rows));
    check_targets(env, "crossEntropy", t, rows, cols, ignore);
    Napi::Float32Array loss = new_f32(env, static_cast<size_t>(rows)), lse = new_f32(env, static_cast<size_t>(rows));
    const float* xs = x.f32();
    float* lo = loss.Data();
    float* ls = lse.Data();
#pragma omp parallel for schedule(static) if (rows * cols >= 65536)
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = xs + r * cols;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < cols; c++) if (xr[c] > max || std::isnan(xr[c])) max = xr[c];  // a NaN poisons the row, as in JS
      double s = 0, sx = 0;
      for (int64_t c = 0; c < cols; c++) { s += std::exp(static_cast<double>(xr[c]) - max); sx += xr[c]; }
      const double l = max + std::log(s);
      ls[r] = static_cast<float>(l);
      if (t[r] == ignore) { lo[r] = 0.0f; continue; }
      const double nll = l - xr[t[r]];
      const double smooth = l - sx / static_cast<double>(cols);  // mean_c(−logp[c]) = lse − mean_c x[c]
      lo[r] = static_cast<float>(eps == 0 ? nll : (1 - eps) * nll + eps * smooth);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", loss);
    out.Set("lse", lse);
    return out;
  });
}

Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "crossEntropyBackward", 8);
    const Napi::Env& env = args.env();
    const int64_t rows = args.dim(4, "rows", 0), cols = args.dim(5, "cols", 1);
    const int64_t ignore = ignore_index(args, 6);
    const double eps = args.number(7, "labelSmoothing");
    const size_t n = product(env, "crossEntropyBackward", {rows, cols});
    const Array x = args.array(0, "x", n);
    const int32_t* t = args.int32s(1, "targets", static_cast<size_t>(rows));
    const Array lse = args.array(2, "lse", static_cast<size_t>(rows)), g = args.array(3, "g", static_cast<size_t>(rows));
    check_targets(env, "crossEntropyBackward", t, rows, cols, ignore);
    Napi::Float32Array dx = new_f32(env, n);
    const float *xs = x.f32(), *ls = lse.f32(), *gs = g.f32();
    float* d = dx.Data();
    const double off = eps / static_cast<double>(cols);
#pragma omp parallel for schedule(static) if (rows * cols >= 65536)
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = xs + r * cols;
      float* dr = d + r * cols;
      if (t[r] == ignore) { for (int64_t c = 0; c < cols; c++) dr[c] = 0.0f; continue; }
      const double gr = gs[r], l = ls[r];
      for (int64_t c = 0; c < cols; c++) dr[c] = static_cast<float>(gr * (std::exp(static_cast<double>(xr[c]) - l) - off));
      dr[t[r]] = static_cast<float>(static_cast<double>(dr[t[r]]) - gr * (1 - eps));  // the reference's `-=` on the stored f32
    }
    return dx;
  });
}

}  // namespace vilg
