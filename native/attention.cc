// Scaled dot-product attention (see src/engine/ops/attention.ts) from cached matmul and softmax primitives.
//   attention(q, k, v, mask|null, maskShared, bh, sq, sk, dh, dv, scale, bf16) → { out [BH, Sq, Dv], probs [BH, Sq, Sk] }
//   attentionBackward(q, k, v, probs, g, bh, sq, sk, dh, dv, scale, bf16) → { dq, dk, dv }
// mask: Uint8Array [1 | BH, Sq, Sk], 0 = may not attend. A row with no allowed key has zero probabilities
// and output and passes zero gradient (oneDNN's softmax would give NaN: such rows are zeroed).
//
// Forward:  S = Q·Kᵀ (probs buffer), S = S·scale masked to −∞, P = softmax(S) in place, out = P·V.
// Backward: dP = G·Vᵀ, dV = Pᵀ·G, dS = P ⊙ (dP − Σ P ⊙ dP) (softmax backward), dQ = scale·dS·K,
//           dK = scale·dSᵀ·Q.
// bf16 follows the reference: q, k, v, g are rounded to bf16; products of two rounded operands run as
// bf16 matmuls (exact products, f32 accumulation), those with P or dS (kept f32) run in f32 on the
// rounded values.
#include <cmath>
#include <cstring>
#include <vector>

#include "ops.h"

namespace vilg {

namespace {

struct AttnDims {
  int64_t bh, sq, sk, dh, dv;
  double scale;
  size_t q_len, k_len, v_len, o_len, p_len;
};

AttnDims read_dims(const Args& args, size_t first) {
  AttnDims d{args.dim(first, "bh"), args.dim(first + 1, "sq"), args.dim(first + 2, "sk"), args.dim(first + 3, "dh"),
             args.dim(first + 4, "dv"), args.number(first + 5, "scale"), 0, 0, 0, 0, 0};
  const Napi::Env& env = args.env();
  d.q_len = product(env, args.fn(), {d.bh, d.sq, d.dh});
  d.k_len = product(env, args.fn(), {d.bh, d.sk, d.dh});
  d.v_len = product(env, args.fn(), {d.bh, d.sk, d.dv});
  d.o_len = product(env, args.fn(), {d.bh, d.sq, d.dv});
  d.p_len = product(env, args.fn(), {d.bh, d.sq, d.sk});
  return d;
}

/** x in bf16 bits (scratch slot), for a bf16 matmul. */
const uint16_t* bf16_copy(const Array& x, size_t n, int slot) {
  auto* dst = static_cast<uint16_t*>(scratch(slot, n * sizeof(uint16_t)));
  f32_to_bf16(x.f32(), dst, n);
  return dst;
}

/** x rounded to bf16 values but kept f32 (scratch slot) when bf16, else x itself. */
const float* maybe_rounded(const Array& x, size_t n, bool bf16, int slot) {
  if (!bf16) return x.f32();
  auto* dst = static_cast<float*>(scratch(slot, n * sizeof(float)));
  round_bf16(x.f32(), dst, n);
  return dst;
}

void scale_in_place(float* x, size_t n, float s) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) x[i] *= s;
}

}  // namespace

Napi::Value Attention(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "attention", 12);
    const AttnDims d = read_dims(args, 5);
    const bool bf16 = args.flag(11, "bf16");
    const Array q = args.array(0, "q", d.q_len), k = args.array(1, "k", d.k_len), v = args.array(2, "v", d.v_len);
    const bool has_mask = !(info[3].IsNull() || info[3].IsUndefined());
    const bool shared = args.flag(4, "maskShared");
    const Array mask = has_mask ? args.bytes(3, "mask", shared ? product(args.env(), args.fn(), {d.sq, d.sk}) : d.p_len) : Array{};
    const Napi::Env& env = args.env();
    Napi::Float32Array out = new_f32(env, d.o_len), probs = new_f32(env, d.p_len);
    float* p = probs.Data();

    // S = Q·Kᵀ  [BH, Sq, Sk]
    const MatmulShape qk{d.bh, d.sq, d.dh, d.sk, false, true, d.sq * d.dh, d.sk * d.dh};
    if (bf16) matmul_exec(bf16_copy(q, d.q_len, kSlotA), bf16_copy(k, d.k_len, kSlotB), p, qk, true);
    else matmul_exec(q.data, k.data, p, qk, false);

    // Scale and mask; remember the rows that allow no key.
    const int64_t rows = d.bh * d.sq, sq = d.sq, sk = d.sk;
    const float scale = static_cast<float>(d.scale);
    std::vector<uint8_t> empty(has_mask ? static_cast<size_t>(rows) : 0);
    const uint8_t* m = has_mask ? mask.u8() : nullptr;
#pragma omp parallel for schedule(static) if (d.p_len > 65536)
    for (int64_t r = 0; r < rows; r++) {
      float* s = p + r * sk;
      if (m == nullptr) {
        for (int64_t j = 0; j < sk; j++) s[j] *= scale;
        continue;
      }
      const uint8_t* mr = m + (shared ? (r % sq) * sk : r * sk);
      bool any = false;
      for (int64_t j = 0; j < sk; j++) {
        if (mr[j] != 0) { s[j] *= scale; any = true; }
        else s[j] = -INFINITY;
      }
      empty[r] = !any;
    }
    softmax_exec(p, p, rows, sk, false);
    if (has_mask) {  // exact zeros where masked, and on rows with no allowed key (NaN from the softmax)
#pragma omp parallel for schedule(static) if (d.p_len > 65536)
      for (int64_t r = 0; r < rows; r++) {
        float* s = p + r * sk;
        const uint8_t* mr = m + (shared ? (r % sq) * sk : r * sk);
        for (int64_t j = 0; j < sk; j++) {
          if (empty[r] || mr[j] == 0) s[j] = 0.0f;
        }
      }
    }

    // out = P·V  [BH, Sq, Dv]
    const MatmulShape pv{d.bh, d.sq, d.sk, d.dv, false, false, d.sq * d.sk, d.sk * d.dv};
    matmul_exec(p, maybe_rounded(v, d.v_len, bf16, kSlotC), out.Data(), pv, false);

    Napi::Object r = Napi::Object::New(env);
    r.Set("out", out);
    r.Set("probs", probs);
    return r;
  });
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "attentionBackward", 12);
    const AttnDims d = read_dims(args, 5);
    const bool bf16 = args.flag(11, "bf16");
    const Array q = args.array(0, "q", d.q_len), k = args.array(1, "k", d.k_len), v = args.array(2, "v", d.v_len);
    const Array probs = args.array(3, "probs", d.p_len), g = args.array(4, "g", d.o_len);
    const Napi::Env& env = args.env();
    Napi::Float32Array dq = new_f32(env, d.q_len), dk = new_f32(env, d.k_len), dvo = new_f32(env, d.v_len);
    float* dp = static_cast<float*>(scratch(kSlotF, d.p_len * sizeof(float)));
    float* ds = static_cast<float*>(scratch(kSlotG, d.p_len * sizeof(float)));

    // dP = G·Vᵀ  [BH, Sq, Sk]
    const MatmulShape gv{d.bh, d.sq, d.dv, d.sk, false, true, d.sq * d.dv, d.sk * d.dv};
    if (bf16) matmul_exec(bf16_copy(g, d.o_len, kSlotA), bf16_copy(v, d.v_len, kSlotB), dp, gv, true);
    else matmul_exec(g.data, v.data, dp, gv, false);
    const float* gr = maybe_rounded(g, d.o_len, bf16, kSlotC);
    const float* qr = maybe_rounded(q, d.q_len, bf16, kSlotD);
    const float* kr = maybe_rounded(k, d.k_len, bf16, kSlotE);

    // dV = Pᵀ·G  [BH, Sk, Dv]
    const MatmulShape pg{d.bh, d.sk, d.sq, d.dv, true, false, d.sq * d.sk, d.sq * d.dv};
    matmul_exec(probs.data, gr, dvo.Data(), pg, false);
    // dS = P ⊙ (dP − Σ P ⊙ dP): zero wherever P is zero (masked keys, empty rows).
    softmax_backward_exec(probs.f32(), dp, ds, d.bh * d.sq, d.sk, false);
    // dQ = scale·dS·K  [BH, Sq, Dh];  dK = scale·dSᵀ·Q  [BH, Sk, Dh]
    const MatmulShape sk_{d.bh, d.sq, d.sk, d.dh, false, false, d.sq * d.sk, d.sk * d.dh};
    matmul_exec(ds, kr, dq.Data(), sk_, false);
    const MatmulShape sq_{d.bh, d.sk, d.sq, d.dh, true, false, d.sq * d.sk, d.sq * d.dh};
    matmul_exec(ds, qr, dk.Data(), sq_, false);
    scale_in_place(dq.Data(), d.q_len, static_cast<float>(d.scale));
    scale_in_place(dk.Data(), d.k_len, static_cast<float>(d.scale));

    Napi::Object r = Napi::Object::New(env);
    r.Set("dq", dq);
    r.Set("dk", dk);
    r.Set("dv", dvo);
    return r;
  });
}

}  // namespace vilg
