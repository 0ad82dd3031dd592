// Sparse (pattern) attention (see src/engine/ops/sparse-attention.ts): only the CSR pattern's entries.
//   sparseAttention(q, k, v, rowPtr, cols, keyValid|null, b, h, s, dh, dv, scale, bf16) → { out [BH, S, Dv], probs [BH, nnz] }
//   sparseAttentionBackward(q, k, v, rowPtr, cols, probs, g, b, h, s, dh, dv, scale, bf16) → { dq, dk, dv }
//   sparseAttentionRows(q, k, v, rowPtr, cols, keyValid|null, b, h, sq, sk, q0, dh, dv, scale, bf16) → out [BH, Sq, Dv]
//     inference with a KV cache: queries are the pattern's rows [q0, q0 + Sq), keys/values the cache
//     [BH, Sk, D]; every key those rows name must be < q0 + Sq ≤ Sk (already cached), checked here.
// rowPtr Int32Array [S+1], cols Int32Array [nnz] (query i attends to cols[rowPtr[i]..rowPtr[i+1])),
// keyValid Int32Array [B, S] (0 = padding key, for every head). A row with no allowed key has zero
// probabilities and output and passes zero gradient.
//
// Forward, by query rows (bh, i) (OpenMP over chunks of 16 rows): s_e = q_i·k_j·scale over the row's entries, softmax,
// out_i = Σ p_e v_j. Backward in two gather passes (no atomics): over query rows, dP_e = g_i·v_j,
// dS_e = p_e (dP_e − Σ p·dP) scale, dq_i = Σ dS_e k_j; then over key rows through the transposed
// pattern (built here, O(S + nnz)), dk_j = Σ dS_e q_i and dv_j = Σ p_e g_i. Every inner loop runs over
// a contiguous head dim. Time O(BH·nnz·D), memory O(BH·nnz).
// bf16 follows the reference: q, k, v, g are rounded to bf16 values, then everything runs in f32.
// The CSR arrays are checked here again (the TS side validates first): bad input throws, never crashes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops.h"

namespace vilg {

namespace {

struct SparseDims {
  int64_t b, h, s, dh, dv, nnz;
  float scale;
  size_t qk_len, v_len;
};

/** Reads dims (from argument `first`) and the CSR pattern, checking that every index stays in range. */
SparseDims read_dims(const Args& args, const Napi::CallbackInfo& info, size_t first, const int32_t** row_ptr, const int32_t** cols) {
  SparseDims d{args.dim(first, "b", 0), args.dim(first + 1, "h", 0), args.dim(first + 2, "s", 0), args.dim(first + 3, "dh"),
               args.dim(first + 4, "dv", 0), 0, static_cast<float>(args.number(first + 5, "scale")), 0, 0};
  const Napi::Env& env = args.env();
  if (d.s >= (int64_t(1) << 31)) throw_range(env, args.fn(), "s must be < 2^31");
  *row_ptr = args.int32s(3, "rowPtr", static_cast<size_t>(d.s) + 1);
  d.nnz = static_cast<int64_t>(args.int32_length(4, "cols"));
  *cols = args.int32s(4, "cols", static_cast<size_t>(d.nnz));
  const int32_t* rp = *row_ptr;
  if (rp[0] != 0 || rp[d.s] != d.nnz) throw_range(env, args.fn(), "rowPtr must run from 0 to nnz");
  for (int64_t i = 0; i < d.s; i++) {
    if (rp[i + 1] < rp[i]) throw_range(env, args.fn(), "rowPtr decreases at row " + std::to_string(i));
  }
  const int32_t* c = *cols;
  for (int64_t e = 0; e < d.nnz; e++) {
    if (c[e] < 0 || c[e] >= d.s) throw_range(env, args.fn(), "cols[" + std::to_string(e) + "] is outside [0, s)");
  }
  d.qk_len = product(env, args.fn(), {d.b, d.h, d.s, d.dh});
  d.v_len = product(env, args.fn(), {d.b, d.h, d.s, d.dv});
  product(env, args.fn(), {d.b, d.h, d.nnz});
  return d;
}

int64_t max_row(const int32_t* row_ptr, int64_t s) {
  int64_t m = 0;
  for (int64_t i = 0; i < s; i++) m = std::max<int64_t>(m, row_ptr[i + 1] - row_ptr[i]);
  return m;
}

/** x rounded to bf16 values but kept f32 (scratch slot) when bf16, else x itself. */
const float* maybe_rounded(const Array& x, size_t n, bool bf16, int slot) {
  if (!bf16) return x.f32();
  auto* dst = static_cast<float*>(scratch(slot, n * sizeof(float)));
  round_bf16(x.f32(), dst, n);
  return dst;
}

// ---------------------------------------------------------------- row kernels
// Head dims 16/32/64/128 (Dh = Dv) get compile-time sizes: accumulators stay in registers and dot
// products reduce 16 lanes as a tree (GCC sums the lanes of an OpenMP simd reduction one by one through
// memory). Other sizes run the same code with runtime lengths.

#define VILG_INLINE inline __attribute__((always_inline))

typedef float v16f __attribute__((vector_size(64)));  // GCC vector types: lowered to the clone's ISA
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

/** a·b over n (= D when D > 0) floats. */
template <int D>
VILG_INLINE float dot(const float* a, const float* b, int64_t n) {
  if constexpr (D > 0 && D % 16 == 0) {
    v16f acc = {}, x, y;
    for (int t = 0; t < D; t += 16) {
      std::memcpy(&x, a + t, sizeof x);  // unaligned loads
      std::memcpy(&y, b + t, sizeof y);
      acc += x * y;
    }
    v8f lo, hi;  // tree reduction of the 16 lanes
    std::memcpy(&lo, &acc, sizeof lo);
    std::memcpy(&hi, reinterpret_cast<const char*>(&acc) + sizeof lo, sizeof hi);
    const v8f s8 = lo + hi;
    v4f l4, h4;
    std::memcpy(&l4, &s8, sizeof l4);
    std::memcpy(&h4, reinterpret_cast<const char*>(&s8) + sizeof l4, sizeof h4);
    const v4f s4 = l4 + h4;
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
  } else {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t t = 0; t < n; t++) acc += a[t] * b[t];
    return acc;
  }
}

/** What every row of one call shares. */
struct Ctx {
  const float *q, *k, *v, *g, *p;  // [BH, S, Dh] ×2, [BH, S, Dv], g [BH, S, Dv], probs [BH, nnz]
  const int32_t *row_ptr, *cols, *valid;  // valid [B, S] or null
  const int32_t *t_ptr, *t_row, *t_entry;  // transposed pattern (backward)
  int64_t h, s, dh, dv, nnz;
  float scale;
  float *out, *probs, *ds, *dq, *dk, *dvo;
  // Forward geometry: query rows per bh, their first pattern row, key rows per bh, and where row q0's
  // entries start in probs (probs row stride p_stride). The full op has sq = sk = s, q0 = e_base = 0.
  int64_t sq, sk, q0, e_base, p_stride;
};

/** Forward of query row r = (bh, i): probs and out; sc is scratch [max row length]. */
template <int DH, int DV>
VILG_INLINE void forward_row(const Ctx& c, int64_t r, float* sc) {
  const int64_t dh = DH > 0 ? DH : c.dh, dv = DV > 0 ? DV : c.dv;
  const int64_t b = r / c.sq, i = c.q0 + r % c.sq, e0 = c.row_ptr[i], n = c.row_ptr[i + 1] - e0;
  const float *qi = c.q + r * dh, *k = c.k + b * c.sk * dh, *v = c.v + b * c.sk * dv;
  const int32_t* cols = c.cols + e0;
  const int32_t* valid = c.valid == nullptr ? nullptr : c.valid + (b / c.h) * c.sk;
  float* p = c.probs + b * c.p_stride + (e0 - c.e_base);
  float* o = c.out + r * dv;
  float max = -INFINITY;
  for (int64_t e = 0; e < n; e++) {
    const int32_t j = cols[e];
    if (valid != nullptr && valid[j] == 0) { sc[e] = -INFINITY; continue; }
    sc[e] = dot<DH>(qi, k + j * dh, dh) * c.scale;
    max = sc[e] > max ? sc[e] : max;
  }
  if (max == -INFINITY) {  // no allowed key: zero probabilities and output
    for (int64_t e = 0; e < n; e++) p[e] = 0.0f;
    for (int64_t t = 0; t < dv; t++) o[t] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int64_t e = 0; e < n; e++) {
    sc[e] = std::exp(sc[e] - max);  // exp(−∞) = 0 for padding keys
    sum += sc[e];
  }
  const float inv = 1.0f / sum;
  float acc[DV > 0 ? DV : 1];
  float* a = DV > 0 ? acc : o;  // runtime Dv: accumulate in place
  for (int64_t t = 0; t < dv; t++) a[t] = 0.0f;
  for (int64_t e = 0; e < n; e++) {
    const float pe = sc[e] * inv;
    p[e] = pe;
    const float* vj = v + static_cast<int64_t>(cols[e]) * dv;
#pragma omp simd
    for (int64_t t = 0; t < dv; t++) a[t] += pe * vj[t];
  }
  if constexpr (DV > 0) std::memcpy(o, acc, sizeof acc);
}

/** Backward of query row r: dS_e = p_e (dP_e − Σ p·dP) scale into ds, and dq_r. */
template <int DH, int DV>
VILG_INLINE void backward_row(const Ctx& c, int64_t r) {
  const int64_t dh = DH > 0 ? DH : c.dh, dv = DV > 0 ? DV : c.dv;
  const int64_t b = r / c.s, i = r % c.s, e0 = c.row_ptr[i], n = c.row_ptr[i + 1] - e0;
  const float *k = c.k + b * c.s * dh, *v = c.v + b * c.s * dv, *gi = c.g + r * dv, *p = c.p + b * c.nnz + e0;
  const int32_t* cols = c.cols + e0;
  float* ds = c.ds + b * c.nnz + e0;
  float row_dot = 0.0f;
  for (int64_t e = 0; e < n; e++) {
    if (p[e] == 0.0f) { ds[e] = 0.0f; continue; }
    ds[e] = dot<DV>(gi, v + static_cast<int64_t>(cols[e]) * dv, dv);  // dP for now
    row_dot += p[e] * ds[e];
  }
  float acc[DH > 0 ? DH : 1];
  float* a = DH > 0 ? acc : c.dq + r * dh;
  for (int64_t t = 0; t < dh; t++) a[t] = 0.0f;
  for (int64_t e = 0; e < n; e++) {
    const float d = p[e] * (ds[e] - row_dot) * c.scale;  // ∂L/∂(q·k)
    ds[e] = d;
    const float* kj = k + static_cast<int64_t>(cols[e]) * dh;
#pragma omp simd
    for (int64_t t = 0; t < dh; t++) a[t] += d * kj[t];
  }
  if constexpr (DH > 0) std::memcpy(c.dq + r * dh, acc, sizeof acc);
}

/** Backward of key row r = (bh, j) through the transposed pattern: dk_r = Σ dS q_i, dv_r = Σ p g_i. */
template <int DH, int DV>
VILG_INLINE void key_row(const Ctx& c, int64_t r) {
  const int64_t dh = DH > 0 ? DH : c.dh, dv = DV > 0 ? DV : c.dv;
  const int64_t b = r / c.s, j = r % c.s, x0 = c.t_ptr[j], m = c.t_ptr[j + 1] - x0;
  const float *q = c.q + b * c.s * dh, *g = c.g + b * c.s * dv, *ds = c.ds + b * c.nnz, *p = c.p + b * c.nnz;
  float dka[DH > 0 ? DH : 1], dva[DV > 0 ? DV : 1];
  float* ak = DH > 0 ? dka : c.dk + r * dh;
  float* av = DV > 0 ? dva : c.dvo + r * dv;
  for (int64_t t = 0; t < dh; t++) ak[t] = 0.0f;
  for (int64_t t = 0; t < dv; t++) av[t] = 0.0f;
  for (int64_t x = x0; x < x0 + m; x++) {
    const int64_t i = c.t_row[x], e = c.t_entry[x];
    const float d = ds[e], pe = p[e];
    const float *qi = q + i * dh, *gi = g + i * dv;
#pragma omp simd
    for (int64_t t = 0; t < dh; t++) ak[t] += d * qi[t];
#pragma omp simd
    for (int64_t t = 0; t < dv; t++) av[t] += pe * gi[t];
  }
  if constexpr (DH > 0) std::memcpy(c.dk + r * dh, dka, sizeof dka);
  if constexpr (DV > 0) std::memcpy(c.dvo + r * dv, dva, sizeof dva);
}

enum Pass { kForward, kBackwardQuery, kBackwardKey };

template <int DH, int DV>
VILG_INLINE void run_rows(const Ctx& c, Pass pass, int64_t r0, int64_t r1, float* sc) {
  for (int64_t r = r0; r < r1; r++) {
    if (pass == kForward) forward_row<DH, DV>(c, r, sc);
    else if (pass == kBackwardQuery) backward_row<DH, DV>(c, r);
    else key_row<DH, DV>(c, r);
  }
}

/** Rows [r0, r1) of one pass, specialised on the head dims (one ISA clone per target). */
VILG_CLONES void run_chunk(const Ctx& c, Pass pass, int64_t r0, int64_t r1, float* sc) {
  const int64_t d = c.dh == c.dv ? c.dh : 0;
  switch (d) {
    case 16: run_rows<16, 16>(c, pass, r0, r1, sc); break;
    case 32: run_rows<32, 32>(c, pass, r0, r1, sc); break;
    case 64: run_rows<64, 64>(c, pass, r0, r1, sc); break;
    case 128: run_rows<128, 128>(c, pass, r0, r1, sc); break;
    default: run_rows<0, 0>(c, pass, r0, r1, sc);
  }
}

/** Runs a pass over rows [0, n) in chunks of 16 rows, in parallel when there is enough work. */
void parallel_rows(const Ctx& c, Pass pass, int64_t n, int64_t width, bool par) {
  constexpr int64_t kChunk = 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int nt = omp_get_max_threads();
  std::vector<float> scores(static_cast<size_t>(pass == kForward ? width * nt : 1));  // one row of scores per thread
#pragma omp parallel for schedule(dynamic, 1) if (par)
  for (int64_t ch = 0; ch < chunks; ch++) {
    run_chunk(c, pass, ch * kChunk, std::min(n, ch * kChunk + kChunk), scores.data() + (pass == kForward ? omp_get_thread_num() * width : 0));
  }
}

}  // namespace

Napi::Value SparseAttention(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "sparseAttention", 13);
    const int32_t *row_ptr = nullptr, *cols = nullptr;
    const SparseDims d = read_dims(args, info, 6, &row_ptr, &cols);
    const bool bf16 = args.flag(12, "bf16");
    const Array q = args.array(0, "q", d.qk_len), k = args.array(1, "k", d.qk_len), v = args.array(2, "v", d.v_len);
    const bool has_valid = !(info[5].IsNull() || info[5].IsUndefined());
    const int32_t* valid = has_valid ? args.int32s(5, "keyValid", product(args.env(), args.fn(), {d.b, d.s})) : nullptr;
    const Napi::Env& env = args.env();
    const int64_t bh = d.b * d.h, s = d.s, nnz = d.nnz, dh = d.dh, dv = d.dv;
    Napi::Float32Array out = new_f32(env, d.v_len), probs = new_f32(env, static_cast<size_t>(bh * nnz));
    const float* qr = maybe_rounded(q, d.qk_len, bf16, kSlotA);
    const float* kr = maybe_rounded(k, d.qk_len, bf16, kSlotB);
    const float* vr = maybe_rounded(v, d.v_len, bf16, kSlotC);
    const int64_t rows = bh * s, width = std::max<int64_t>(1, max_row(row_ptr, s));
    Ctx c{qr, kr, vr, nullptr, nullptr, row_ptr, cols, valid, nullptr, nullptr, nullptr, d.h, s, dh, dv, nnz, d.scale,
          out.Data(), probs.Data(), nullptr, nullptr, nullptr, nullptr, s, s, 0, 0, nnz};
    parallel_rows(c, kForward, rows, width, rows * width * (dh + dv) > 65536);
    Napi::Object res = Napi::Object::New(env);
    res.Set("out", out);
    res.Set("probs", probs);
    return res;
  });
}

Napi::Value SparseAttentionBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "sparseAttentionBackward", 14);
    const int32_t *row_ptr = nullptr, *cols = nullptr;
    // q, k, v, rowPtr, cols, probs, g: the dims start at argument 7.
    const SparseDims d = read_dims(args, info, 7, &row_ptr, &cols);
    const bool bf16 = args.flag(13, "bf16");
    const int64_t bh = d.b * d.h, s = d.s, nnz = d.nnz, dh = d.dh, dv = d.dv;
    const Array q = args.array(0, "q", d.qk_len), k = args.array(1, "k", d.qk_len), v = args.array(2, "v", d.v_len);
    const Array probs = args.array(5, "probs", static_cast<size_t>(bh * nnz)), g = args.array(6, "g", d.v_len);
    const Napi::Env& env = args.env();
    Napi::Float32Array dq = new_f32(env, d.qk_len), dk = new_f32(env, d.qk_len), dvo = new_f32(env, d.v_len);
    const float* qr = maybe_rounded(q, d.qk_len, bf16, kSlotA);
    const float* kr = maybe_rounded(k, d.qk_len, bf16, kSlotB);
    const float* vr = maybe_rounded(v, d.v_len, bf16, kSlotC);
    const float* gr = maybe_rounded(g, d.v_len, bf16, kSlotD);
    auto* ds = static_cast<float*>(scratch(kSlotE, static_cast<size_t>(std::max<int64_t>(1, bh * nnz)) * sizeof(float)));  // [BH, nnz]

    // The transposed pattern: for key j, the (query row, entry) pairs that use it, in ascending rows.
    std::vector<int32_t> t_ptr(static_cast<size_t>(s) + 1, 0), t_row(static_cast<size_t>(nnz)), t_entry(static_cast<size_t>(nnz));
    for (int64_t e = 0; e < nnz; e++) t_ptr[cols[e] + 1]++;
    for (int64_t j = 0; j < s; j++) t_ptr[j + 1] += t_ptr[j];
    {
      std::vector<int32_t> fill(t_ptr.begin(), t_ptr.end() - 1);
      for (int64_t i = 0; i < s; i++) {
        for (int32_t e = row_ptr[i]; e < row_ptr[i + 1]; e++) {
          const int32_t x = fill[cols[e]]++;
          t_row[x] = static_cast<int32_t>(i);
          t_entry[x] = e;
        }
      }
    }

    const int64_t rows = bh * s, width = std::max<int64_t>(1, max_row(row_ptr, s));
    const bool par = rows * width * (dh + dv) > 65536;
    Ctx c{qr, kr, vr, gr, probs.f32(), row_ptr, cols, nullptr, t_ptr.data(), t_row.data(), t_entry.data(), d.h, s, dh, dv, nnz,
          d.scale, nullptr, nullptr, ds, dq.Data(), dk.Data(), dvo.Data(), s, s, 0, 0, nnz};
    parallel_rows(c, kBackwardQuery, rows, width, par);  // dS and dq
    parallel_rows(c, kBackwardKey, rows, width, par);    // dk and dv
    Napi::Object res = Napi::Object::New(env);
    res.Set("dq", dq);
    res.Set("dk", dk);
    res.Set("dv", dvo);
    return res;
  });
}

Napi::Value SparseAttentionRows(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "sparseAttentionRows", 15);
    const Napi::Env& env = args.env();
    const int64_t b = args.dim(6, "b", 0), h = args.dim(7, "h", 0), sq = args.dim(8, "sq", 0), sk = args.dim(9, "sk", 0);
    const int64_t q0 = args.dim(10, "q0", 0), dh = args.dim(11, "dh"), dv = args.dim(12, "dv", 0);
    const float scale = static_cast<float>(args.number(13, "scale"));
    const bool bf16 = args.flag(14, "bf16");
    const int64_t s = static_cast<int64_t>(args.int32_length(3, "rowPtr")) - 1;  // the pattern's positions
    if (s < 0) throw_range(env, args.fn(), "rowPtr is empty");
    if (q0 + sq > s || q0 + sq > sk) throw_range(env, args.fn(), "rows [q0, q0 + sq) must lie inside the pattern and the cache");
    const int32_t* row_ptr = args.int32s(3, "rowPtr", static_cast<size_t>(s) + 1);
    const int64_t nnz = static_cast<int64_t>(args.int32_length(4, "cols"));
    const int32_t* cols = args.int32s(4, "cols", static_cast<size_t>(nnz));
    // Only the rows read here need checking: entries in range, and every key already in the cache.
    const int64_t e_base = row_ptr[q0], e_end = row_ptr[q0 + sq];
    if (e_base < 0 || e_end > nnz || e_end < e_base) throw_range(env, args.fn(), "rowPtr is out of range for cols");
    for (int64_t i = q0; i < q0 + sq; i++) {
      if (row_ptr[i + 1] < row_ptr[i]) throw_range(env, args.fn(), "rowPtr decreases at row " + std::to_string(i));
    }
    for (int64_t e = e_base; e < e_end; e++) {
      if (cols[e] < 0 || cols[e] >= q0 + sq) throw_range(env, args.fn(), "cols[" + std::to_string(e) + "] names a key outside the cached [0, q0 + sq)");
    }
    const size_t q_len = product(env, args.fn(), {b, h, sq, dh}), k_len = product(env, args.fn(), {b, h, sk, dh});
    const size_t v_len = product(env, args.fn(), {b, h, sk, dv}), out_len = product(env, args.fn(), {b, h, sq, dv});
    const Array q = args.array(0, "q", q_len), k = args.array(1, "k", k_len), v = args.array(2, "v", v_len);
    const bool has_valid = !(info[5].IsNull() || info[5].IsUndefined());
    const int32_t* valid = has_valid ? args.int32s(5, "keyValid", product(env, args.fn(), {b, sk})) : nullptr;
    const int64_t bh = b * h, row_nnz = e_end - e_base;
    Napi::Float32Array out = new_f32(env, out_len);
    auto* probs = static_cast<float*>(scratch(kSlotE, static_cast<size_t>(std::max<int64_t>(1, bh * row_nnz)) * sizeof(float)));  // [BH, row nnz], not returned
    const float* qr = maybe_rounded(q, q_len, bf16, kSlotA);
    const float* kr = maybe_rounded(k, k_len, bf16, kSlotB);
    const float* vr = maybe_rounded(v, v_len, bf16, kSlotC);
    int64_t width = 1;
    for (int64_t i = q0; i < q0 + sq; i++) width = std::max<int64_t>(width, row_ptr[i + 1] - row_ptr[i]);
    const int64_t rows = bh * sq;
    Ctx c{qr, kr, vr, nullptr, nullptr, row_ptr, cols, valid, nullptr, nullptr, nullptr, h, s, dh, dv, nnz, scale,
          out.Data(), probs, nullptr, nullptr, nullptr, nullptr, sq, sk, q0, e_base, row_nnz};
    if (out_len > 0) parallel_rows(c, kForward, rows, width, rows * width * (dh + dv) > 65536);
    return out;
  });
}

}  // namespace vilg
