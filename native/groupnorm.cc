// Group norm, channels-last x [N, P, C] (P = H·W pixels), G groups of C/G channels (oneDNN 2.6 has none).
//   groupNorm(x, gamma|null, beta|null, n, p, c, groups, eps) → { y [N, P, C], mean [N·G], rstd [N·G] }
//   groupNormBackward(x, gamma|null, mean, rstd, g, n, p, c, groups, hasBeta) → { dx, dgamma|null, dbeta|null }
// Statistics per (n, group) over P × C/G, biased variance, accumulated in double (two passes).
// Backward: with x̂ = (x − mean)·rstd and gy = g·gamma, per group A = Σ gy, B = Σ gy·x̂, M = P·C/G:
//   dx = rstd·(gy − A/M − x̂·B/M);  dgamma[c] = Σ_{n,p} g·x̂;  dbeta[c] = Σ_{n,p} g.
#include <omp.h>

#include <cmath>
#include <vector>

#include "ops.h"

namespace vilg {

namespace {

struct GnDims {
  int64_t n, p, c, groups, cg;
  size_t len;
};

GnDims read_dims(const Args& args, size_t first) {
  GnDims d{args.dim(first, "n"), args.dim(first + 1, "p"), args.dim(first + 2, "c"), args.dim(first + 3, "groups"), 0, 0};
  if (d.c % d.groups != 0) throw_range(args.env(), args.fn(), "c must be divisible by groups");
  d.cg = d.c / d.groups;
  d.len = product(args.env(), args.fn(), {d.n, d.p, d.c});
  return d;
}

/** Σ over rows of per-channel values f(row, ch), in double, parallel over rows (per-thread partials). */
template <class F>
void channel_sums(int64_t rows, int64_t c, std::vector<double>& total, F f) {
  total.assign(static_cast<size_t>(c), 0.0);
#pragma omp parallel if (rows * c > 65536)
  {
    std::vector<double> part(static_cast<size_t>(c), 0.0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) f(r, part.data());
#pragma omp critical
    for (int64_t k = 0; k < c; k++) total[k] += part[k];
  }
}

}  // namespace

Napi::Value GroupNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "groupNorm", 8);
    const GnDims d = read_dims(args, 3);
    const double eps = args.number(7, "eps");
    if (eps < 0) throw_range(args.env(), args.fn(), "eps must be ≥ 0");
    const Array xa = args.array(0, "x", d.len);
    const Array ga = args.optional_array(1, "gamma", static_cast<size_t>(d.c));
    const Array ba = args.optional_array(2, "beta", static_cast<size_t>(d.c));
    const Napi::Env& env = args.env();
    const size_t stats = static_cast<size_t>(d.n * d.groups);
    Napi::Float32Array y = new_f32(env, d.len), mean = new_f32(env, stats), rstd = new_f32(env, stats);
    const float *x = xa.f32(), *gamma = ga.f32(), *beta = ba.f32();
    float *yo = y.Data(), *mo = mean.Data(), *ro = rstd.Data();
    const int64_t n = d.n, p = d.p, c = d.c, groups = d.groups, cg = d.cg;
    const double count = static_cast<double>(p * cg);

#pragma omp parallel for schedule(static) if (d.len > 32768)
    for (int64_t t = 0; t < n * groups; t++) {
      const float* base = x + (t / groups) * p * c + (t % groups) * cg;
      double s = 0;
      for (int64_t i = 0; i < p; i++)
        for (int64_t k = 0; k < cg; k++) s += base[i * c + k];
      const double mu = s / count;
      double v = 0;
      for (int64_t i = 0; i < p; i++)
        for (int64_t k = 0; k < cg; k++) {
          const double dv = base[i * c + k] - mu;
          v += dv * dv;
        }
      mo[t] = static_cast<float>(mu);
      ro[t] = static_cast<float>(1.0 / std::sqrt(v / count + eps));
    }
#pragma omp parallel for schedule(static) if (d.len > 32768)
    for (int64_t r = 0; r < n * p; r++) {
      const int64_t s0 = (r / p) * groups;
      const float* xr = x + r * c;
      float* yr = yo + r * c;
      for (int64_t k = 0; k < c; k++) {
        const int64_t t = s0 + k / cg;
        float v = (xr[k] - mo[t]) * ro[t];
        if (gamma != nullptr) v *= gamma[k];
        if (beta != nullptr) v += beta[k];
        yr[k] = v;
      }
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("y", y);
    out.Set("mean", mean);
    out.Set("rstd", rstd);
    return out;
  });
}

Napi::Value GroupNormBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "groupNormBackward", 10);
    const GnDims d = read_dims(args, 5);
    const bool has_beta = args.flag(9, "hasBeta");
    const size_t stats = product(args.env(), args.fn(), {d.n, d.groups});
    const Array xa = args.array(0, "x", d.len);
    const Array ga = args.optional_array(1, "gamma", static_cast<size_t>(d.c));
    const Array ma = args.array(2, "mean", stats), ra = args.array(3, "rstd", stats);
    const Array gg = args.array(4, "g", d.len);
    const Napi::Env& env = args.env();
    const float *x = xa.f32(), *gamma = ga.f32(), *mean = ma.f32(), *rstd = ra.f32(), *g = gg.f32();
    const int64_t n = d.n, p = d.p, c = d.c, groups = d.groups, cg = d.cg;
    const double count = static_cast<double>(p * cg);

    // Per-group sums A = Σ gy and B = Σ gy·x̂.
    std::vector<double> sa(stats), sb(stats);
#pragma omp parallel for schedule(static) if (d.len > 32768)
    for (int64_t t = 0; t < n * groups; t++) {
      const int64_t off = (t / groups) * p * c + (t % groups) * cg, c0 = (t % groups) * cg;
      double a = 0, b = 0;
      for (int64_t i = 0; i < p; i++)
        for (int64_t k = 0; k < cg; k++) {
          const int64_t at = off + i * c + k;
          const double gy = gamma != nullptr ? static_cast<double>(g[at]) * gamma[c0 + k] : g[at];
          a += gy;
          b += gy * (x[at] - mean[t]) * rstd[t];
        }
      sa[t] = a;
      sb[t] = b;
    }
    Napi::Float32Array dx = new_f32(env, d.len);
    float* dxo = dx.Data();
#pragma omp parallel for schedule(static) if (d.len > 32768)
    for (int64_t r = 0; r < n * p; r++) {
      const int64_t s0 = (r / p) * groups;
      for (int64_t k = 0; k < c; k++) {
        const int64_t t = s0 + k / cg, at = r * c + k;
        const double xhat = (x[at] - mean[t]) * static_cast<double>(rstd[t]);
        const double gy = gamma != nullptr ? static_cast<double>(g[at]) * gamma[k] : g[at];
        dxo[at] = static_cast<float>(rstd[t] * (gy - sa[t] / count - xhat * sb[t] / count));
      }
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("dx", dx);
    out.Set("dgamma", env.Null());
    out.Set("dbeta", env.Null());
    std::vector<double> sums;
    if (gamma != nullptr) {
      channel_sums(n * p, c, sums, [&](int64_t r, double* part) {
        const int64_t s0 = (r / p) * groups;
        for (int64_t k = 0; k < c; k++) {
          const int64_t t = s0 + k / cg;
          part[k] += static_cast<double>(g[r * c + k]) * (x[r * c + k] - mean[t]) * rstd[t];
        }
      });
      Napi::Float32Array dgamma = new_f32(env, static_cast<size_t>(c));
      for (int64_t k = 0; k < c; k++) dgamma.Data()[k] = static_cast<float>(sums[k]);
      out.Set("dgamma", dgamma);
    }
    if (has_beta) {
      channel_sums(n * p, c, sums, [&](int64_t r, double* part) {
        for (int64_t k = 0; k < c; k++) part[k] += g[r * c + k];
      });
      Napi::Float32Array dbeta = new_f32(env, static_cast<size_t>(c));
      for (int64_t k = 0; k < c; k++) dbeta.Data()[k] = static_cast<float>(sums[k]);
      out.Set("dbeta", dbeta);
    }
    return out;
  });
}

}  // namespace vilg
