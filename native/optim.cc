// Elementwise training kernels that were JS loops: the AdamW update, dropout's masked scale, and
// gradient clipping's sum of squares and scale.
//
// adamwUpdate(x, g, m, v, b1, b2, eps, decay, stepSize, bc2Sqrt) updates x, m, v in place (all f32, one
// length) with exactly the arithmetic of the reference (src/engine/optim/adamw.ts): every product in
// double, m and v stored (rounded to f32) before x reads them back, the decay stored before the step.
// Elements are independent, so threads do not change a bit; the addon is built with -ffp-contract=off
// (binding.gyp) so no compiler fuses a multiply-add the reference does not.
//
// dropout(x, keep, scale) → Float32Array: out[i] = keep[i] ? f32(x[i]·scale) : 0 (forward, and the
// backward on the gradient with the same mask).
#include "ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace vilg {

Napi::Value AdamwUpdate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "adamwUpdate", 10);
    const Napi::Env& env = args.env();
    const Array x = args.array(0, "x", 0);
    const size_t n = x.length;
    const Array g = args.array(1, "g", n), m = args.array(2, "m", n), v = args.array(3, "v", n);
    if (g.length != n || m.length != n || v.length != n) throw_range(env, "adamwUpdate", "x, g, m and v must have the same length");
    const double b1 = args.number(4, "b1"), b2 = args.number(5, "b2"), eps = args.number(6, "eps");
    const double decay = args.number(7, "decay"), step_size = args.number(8, "stepSize"), bc2_sqrt = args.number(9, "bc2Sqrt");
    float* xs = static_cast<float*>(x.data);
    const float* gs = g.f32();
    float* ms = static_cast<float*>(m.data);
    float* vs = static_cast<float*>(v.data);
    const double c1 = 1 - b1, c2 = 1 - b2;
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t j = 0; j < static_cast<int64_t>(n); j++) {
      const double gj = gs[j];
      ms[j] = static_cast<float>(b1 * ms[j] + c1 * gj);
      vs[j] = static_cast<float>(b2 * vs[j] + c2 * gj * gj);
      xs[j] = static_cast<float>(xs[j] * decay);
      xs[j] = static_cast<float>(xs[j] - step_size * ms[j] / (std::sqrt(static_cast<double>(vs[j])) / bc2_sqrt + eps));
    }
    return env.Undefined();
  });
}

Napi::Value Dropout(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "dropout", 3);
    const Napi::Env& env = args.env();
    const Array x = args.array(0, "x", 0);
    const size_t n = x.length;
    const Array keep = args.bytes(1, "keep", n);
    if (keep.length != n) throw_range(env, "dropout", "keep must have one byte per element of x");
    const double scale = args.number(2, "scale");
    Napi::Float32Array out = new_f32(env, n);
    const float* xs = x.f32();
    const uint8_t* ks = keep.u8();
    float* o = out.Data();
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t i = 0; i < static_cast<int64_t>(n); i++) o[i] = ks[i] != 0 ? static_cast<float>(xs[i] * scale) : 0.0f;
    return out;
  });
}

}  // namespace vilg

namespace vilg {

// sumSquares(x) → Σ x[i]² in double. Fixed 64 Ki-element chunks summed in order, so the result does
// not depend on the thread count (the reference sums in one pass; they agree to double rounding).
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "sumSquares", 1);
    const Array x = args.array(0, "x", 0);
    const int64_t n = static_cast<int64_t>(x.length), chunk = 65536, chunks = (n + chunk - 1) / chunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    const float* xs = x.f32();
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
      double s = 0;
      for (int64_t i = c * chunk, end = std::min(n, (c + 1) * chunk); i < end; i++) s += static_cast<double>(xs[i]) * xs[i];
      part[static_cast<size_t>(c)] = s;
    }
    double total = 0;
    for (double s : part) total += s;
    return Napi::Number::New(args.env(), total);
  });
}

// scale(x, c) → Float32Array: out[i] = f32(x[i]·c), c a double (gradient clipping).
Napi::Value Scale(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "scale", 2);
    const Array x = args.array(0, "x", 0);
    const double c = args.number(1, "c");
    const size_t n = x.length;
    Napi::Float32Array out = new_f32(args.env(), n);
    const float* xs = x.f32();
    float* o = out.Data();
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t i = 0; i < static_cast<int64_t>(n); i++) o[i] = static_cast<float>(xs[i] * c);
    return out;
  });
}

}  // namespace vilg
