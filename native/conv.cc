// 2-D convolution, NHWC activations, OIHW user weights (see src/engine/ops/conv.ts).
//   conv2d(x, w, bias|null, dims, bf16)            → y  Float32Array [N, OH, OW, CO]
//   conv2dBackwardData(g, w, dims, bf16)            → dx Float32Array [N, H, W, CI]
//   conv2dBackwardWeights(x, g, dims, withBias, bf16) → { dw [CO, CI, KH, KW], dbias [CO] | null }
// dims = [N, H, W, CI, CO, KH, KW, strideH, strideW, padTop, padLeft, padBottom, padRight, OH, OW].
//
// The primitives pick their own weights layout (format_tag::any, blocked for the ISA); user weights are
// reordered into it (and dw back to OIHW) — the reorder also rounds to bf16 in mixed precision. With
// bf16 the activations are rounded to bf16 first; outputs and accumulation stay f32. Inputs may also
// arrive as bf16 bits (Uint16Array): when all of them do, the conv runs in bf16 without conversions. The bias gradient
// is Σ g over N·OH·OW computed here from the f32 g (never rounded, as the reference specifies).
#include "ops.h"
#include "pd.h"

#include <omp.h>

#include <vector>

namespace vilg {

namespace {

struct ConvDims {
  int64_t n, h, w, ci, co, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow;
  size_t x_len, y_len, w_len;
};

ConvDims read_dims(const Args& args, size_t i) {
  const std::vector<int64_t> v = args.int_list(i, "dims", 15);
  ConvDims d{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], 0, 0, 0};
  const Napi::Env& env = args.env();
  if (d.n < 1 || d.h < 1 || d.w < 1 || d.ci < 1 || d.co < 1 || d.kh < 1 || d.kw < 1 || d.sh < 1 || d.sw < 1) {
    throw_range(env, args.fn(), "sizes, kernel and strides must be ≥ 1");
  }
  if (d.h + d.pt + d.pb < d.kh || d.w + d.pl + d.pr < d.kw) throw_range(env, args.fn(), "padded input smaller than the kernel");
  if (d.oh != (d.h + d.pt + d.pb - d.kh) / d.sh + 1 || d.ow != (d.w + d.pl + d.pr - d.kw) / d.sw + 1) {
    throw_range(env, args.fn(), "OH/OW do not match the input size, kernel, stride and padding");
  }
  d.x_len = product(env, args.fn(), {d.n, d.h, d.w, d.ci});
  d.y_len = product(env, args.fn(), {d.n, d.oh, d.ow, d.co});
  d.w_len = product(env, args.fn(), {d.co, d.ci, d.kh, d.kw});
  return d;
}

std::string conv_key(const char* op, const ConvDims& d, bool bf16, bool flag) {
  return make_key(op, {bf16, flag, d.n, d.h, d.w, d.ci, d.co, d.kh, d.kw, d.sh, d.sw, d.pt, d.pl, d.pb, d.pr});
}

ConvGeom geom(const ConvDims& d) { return {{d.sh, d.sw}, {d.pt, d.pl}, {d.pb, d.pr}}; }
md x_md(const ConvDims& d, dt type) { return md({d.n, d.ci, d.h, d.w}, type, tag::nhwc); }
md y_md(const ConvDims& d, dt type) { return md({d.n, d.co, d.oh, d.ow}, type, tag::nhwc); }
md w_any(const ConvDims& d, dt type) { return md({d.co, d.ci, d.kh, d.kw}, type, tag::any); }
md w_user(const ConvDims& d, dt type = dt::f32) { return md({d.co, d.ci, d.kh, d.kw}, type, tag::oihw); }

/** Compute in bf16 when asked to, or when every input already is bf16 (as matmul does). */
bool compute_bf16(bool flag, std::initializer_list<const Array*> inputs) {
  if (flag) return true;
  for (const Array* a : inputs) if (!a->is_bf16()) return false;
  return true;
}

/** An input as f32 bf16-rounded values: bf16 requested on a CPU without bf16 primitives (emulation). */
Array emulated(const Array& a, size_t len, int slot) {
  Array r;
  r.data = const_cast<float*>(bf16_values_f32(a.data, a.is_bf16(), len, slot));
  r.length = len;
  r.type = napi_float32_array;
  return r;
}

/** The forward primitive_desc the backward ones are hinted with (same types, no bias). */
dnnl::convolution_forward::primitive_desc fwd_hint(const ConvDims& d, dt type) {
  return conv_fwd_pd(x_md(d, type), w_any(d, type), nullptr, y_md(d, type), geom(d));
}

/** An activation in the compute type: the JS memory itself when the types agree, else a converted copy. */
void* activation(const Array& a, size_t len, bool bf16, int slot) {
  if (bf16 == a.is_bf16()) return a.data;
  if (bf16) {
    auto* dst = static_cast<uint16_t*>(scratch(slot, len * sizeof(uint16_t)));
    f32_to_bf16(a.f32(), dst, len);
    return dst;
  }
  auto* dst = static_cast<float*>(scratch(slot, len * sizeof(float)));  // bf16 input, f32 compute: widen (exact)
  bf16_to_f32(a.u16(), dst, len);
  return dst;
}

/**
 * A cache entry for a conv primitive plus the reorder between the user's OIHW weights and the
 * primitive's layout: prims = {conv, [reorder]}, mds = {conv scratchpad, primitive weights desc,
 * reorder scratchpad, user weights desc}. No reorder when the layouts already agree.
 */
CacheEntry with_reorder(const dnnl::primitive& p, const md& pad, const md& prim_w, const md& user_w, bool to_user) {
  CacheEntry e{{p}, {pad, prim_w, md(), user_w}};
  if (!(prim_w == user_w)) {
    auto rpd = to_user ? reorder_pd(prim_w, user_w) : reorder_pd(user_w, prim_w);
    e.prims.push_back(dnnl::reorder(rpd));
    e.mds[2] = rpd.scratchpad_desc();
  }
  return e;
}

/** The user's OIHW weights in the primitive's layout (reordered into a scratch slot when needed). */
dnnl::memory packed_weights(const CacheEntry& e, const Array& w) {
  dnnl::memory user(e.mds[3], engine(), w.data);
  if (e.prims.size() < 2) return user;
  dnnl::memory packed = scratch_memory(e.mds[1], kSlotC);
  execute(e.prims[1], {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, packed}}, e.mds[2]);
  return packed;
}

}  // namespace

/** dbias[o] = Σ_rows g[row, o], accumulated in double per thread. */
void bias_grad(const float* g, size_t rows, int64_t co, float* out) {
  std::vector<double> total(static_cast<size_t>(co), 0.0);
#pragma omp parallel if (rows * static_cast<size_t>(co) > 65536)
  {
    std::vector<double> part(static_cast<size_t>(co), 0.0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < static_cast<int64_t>(rows); r++) {
      const float* row = g + r * co;
      for (int64_t o = 0; o < co; o++) part[o] += row[o];
    }
#pragma omp critical
    for (int64_t o = 0; o < co; o++) total[o] += part[o];
  }
  for (int64_t o = 0; o < co; o++) out[o] = static_cast<float>(total[o]);
}

Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "conv2d", 5);
    const ConvDims d = read_dims(args, 3);
    Array x = args.array(0, "x", d.x_len, true), w = args.array(1, "w", d.w_len, true);
    const Array bias = args.optional_array(2, "bias", static_cast<size_t>(d.co));
    bool bf16 = compute_bf16(args.flag(4, "bf16"), {&x, &w});
    if (bf16 && !bf16_native()) { x = emulated(x, d.x_len, kSlotWideA); w = emulated(w, d.w_len, kSlotWideB); bf16 = false; }
    const bool has_bias = bias.data != nullptr;
    const dt type = bf16 ? dt::bf16 : dt::f32, w_type = w.is_bf16() ? dt::bf16 : dt::f32;

    EntryPtr e = cached(conv_key("conv2d", d, bf16, has_bias) + (w.is_bf16() ? "w16" : ""), [&] {
      md b_md({d.co}, dt::f32, tag::a);
      auto pd = conv_fwd_pd(x_md(d, type), w_any(d, type), has_bias ? &b_md : nullptr, y_md(d, dt::f32), geom(d));
      CacheEntry ce = with_reorder(dnnl::convolution_forward(pd), pd.scratchpad_desc(), pd.weights_desc(), w_user(d, w_type), false);
      ce.mds.push_back(b_md);
      return ce;
    });

    Napi::Float32Array y = new_f32(args.env(), d.y_len);
    dnnl::memory wm = packed_weights(*e, w);
    std::unordered_map<int, dnnl::memory> io{
        {DNNL_ARG_SRC, dnnl::memory(x_md(d, type), engine(), activation(x, d.x_len, bf16, kSlotA))},
        {DNNL_ARG_WEIGHTS, wm},
        {DNNL_ARG_DST, dnnl::memory(y_md(d, dt::f32), engine(), y.Data())}};
    if (has_bias) io.emplace(DNNL_ARG_BIAS, dnnl::memory(e->mds[4], engine(), bias.data));
    execute(e->prims[0], io, e->mds[0]);
    return y;
  });
}

Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "conv2dBackwardData", 4);
    const ConvDims d = read_dims(args, 2);
    Array g = args.array(0, "g", d.y_len, true), w = args.array(1, "w", d.w_len, true);
    bool bf16 = compute_bf16(args.flag(3, "bf16"), {&g, &w});
    if (bf16 && !bf16_native()) { g = emulated(g, d.y_len, kSlotWideA); w = emulated(w, d.w_len, kSlotWideB); bf16 = false; }
    const dt type = bf16 ? dt::bf16 : dt::f32, w_type = w.is_bf16() ? dt::bf16 : dt::f32;

    EntryPtr e = cached(conv_key("conv2dBackwardData", d, bf16, false) + (w.is_bf16() ? "w16" : ""), [&] {
      auto pd = conv_bwd_data_pd(x_md(d, dt::f32), w_any(d, type), y_md(d, type), geom(d), fwd_hint(d, type));
      return with_reorder(dnnl::convolution_backward_data(pd), pd.scratchpad_desc(), pd.weights_desc(), w_user(d, w_type), false);
    });

    Napi::Float32Array dx = new_f32(args.env(), d.x_len);
    dnnl::memory wm = packed_weights(*e, w);
    execute(e->prims[0],
            {{DNNL_ARG_DIFF_DST, dnnl::memory(y_md(d, type), engine(), activation(g, d.y_len, bf16, kSlotA))},
             {DNNL_ARG_WEIGHTS, wm},
             {DNNL_ARG_DIFF_SRC, dnnl::memory(x_md(d, dt::f32), engine(), dx.Data())}},
            e->mds[0]);
    return dx;
  });
}

Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "conv2dBackwardWeights", 5);
    const ConvDims d = read_dims(args, 2);
    const bool with_bias = args.flag(3, "withBias");
    const Array x0 = args.array(0, "x", d.x_len, true), g = args.array(1, "g", d.y_len, true);
    bool bf16 = compute_bf16(args.flag(4, "bf16"), {&x0, &g});
    Array x = x0, gc = g;  // the conv's inputs; the bias gradient below reads g itself, as in native bf16
    if (bf16 && !bf16_native()) { x = emulated(x0, d.x_len, kSlotWideA); gc = emulated(g, d.y_len, kSlotWideB); bf16 = false; }
    const dt type = bf16 ? dt::bf16 : dt::f32;

    EntryPtr e = cached(conv_key("conv2dBackwardWeights", d, bf16, false), [&] {
      auto pd = conv_bwd_weights_pd(x_md(d, type), w_any(d, dt::f32), y_md(d, type), geom(d), fwd_hint(d, type));
      return with_reorder(dnnl::convolution_backward_weights(pd), pd.scratchpad_desc(), pd.diff_weights_desc(), w_user(d),
                          true);
    });

    const Napi::Env& env = args.env();
    Napi::Float32Array dw = new_f32(env, d.w_len);
    dnnl::memory user(e->mds[3], engine(), dw.Data());
    dnnl::memory diff_w = e->prims.size() < 2 ? user : scratch_memory(e->mds[1], kSlotC);
    execute(e->prims[0],
            {{DNNL_ARG_SRC, dnnl::memory(x_md(d, type), engine(), activation(x, d.x_len, bf16, kSlotA))},
             {DNNL_ARG_DIFF_DST, dnnl::memory(y_md(d, type), engine(), activation(gc, d.y_len, bf16, kSlotB))},
             {DNNL_ARG_DIFF_WEIGHTS, diff_w}},
            e->mds[0]);
    if (e->prims.size() >= 2) execute(e->prims[1], {{DNNL_ARG_FROM, diff_w}, {DNNL_ARG_TO, user}}, e->mds[2]);

    Napi::Object result = Napi::Object::New(env);
    result.Set("dw", dw);
    if (with_bias) {
      Napi::Float32Array db = new_f32(env, static_cast<size_t>(d.co));
      const float* gf = g.f32();
      if (g.is_bf16()) {  // the bias gradient is summed in f32 from the exact widened values
        auto* wide = static_cast<float*>(scratch(kSlotB, d.y_len * sizeof(float)));
        bf16_to_f32(g.u16(), wide, d.y_len);
        gf = wide;
      }
      bias_grad(gf, d.y_len / static_cast<size_t>(d.co), d.co, db.Data());
      result.Set("dbias", db);
    } else {
      result.Set("dbias", env.Null());
    }
    return result;
  });
}

}  // namespace vilg
