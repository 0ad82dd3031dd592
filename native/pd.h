// Every primitive_desc the addon creates, in one place: oneDNN 3.x removed the `xxx::desc` op
// descriptors (primitive_desc constructors take the engine first), 2.x needs them. Ops call these
// helpers only, so supporting another oneDNN major touches this file alone.
#pragma once

#include "common.h"

namespace vilg {

using md = dnnl::memory::desc;

#if DNNL_VERSION_MAJOR >= 3
using softmax_fwd = dnnl::softmax_forward;
using softmax_bwd = dnnl::softmax_backward;
#else
using softmax_fwd = dnnl::softmax_v2_forward;
using softmax_bwd = dnnl::softmax_v2_backward;
#endif

inline dnnl::matmul::primitive_desc matmul_pd(const md& src, const md& wei, const md& dst) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::matmul::primitive_desc(engine(), src, wei, dst, default_attr());
#else
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, dst), default_attr(), engine());
#endif
}

/** The same with a bias operand (broadcast over the rows of dst). */
inline dnnl::matmul::primitive_desc matmul_pd(const md& src, const md& wei, const md& bias, const md& dst) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::matmul::primitive_desc(engine(), src, wei, bias, dst, default_attr());
#else
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias, dst), default_attr(), engine());
#endif
}

/** Convolution geometry shared by the three conv primitives. */
struct ConvGeom { dims strides, pad_l, pad_r; };

inline dnnl::convolution_forward::primitive_desc conv_fwd_pd(const md& src, const md& wei, const md* bias,
                                                             const md& dst, const ConvGeom& g) {
  const auto prop = dnnl::prop_kind::forward_training;
  const auto alg = dnnl::algorithm::convolution_direct;
#if DNNL_VERSION_MAJOR >= 3
  if (bias != nullptr) {
    return dnnl::convolution_forward::primitive_desc(engine(), prop, alg, src, wei, *bias, dst, g.strides, g.pad_l,
                                                     g.pad_r, default_attr());
  }
  return dnnl::convolution_forward::primitive_desc(engine(), prop, alg, src, wei, dst, g.strides, g.pad_l, g.pad_r,
                                                   default_attr());
#else
  if (bias != nullptr) {
    dnnl::convolution_forward::desc d(prop, alg, src, wei, *bias, dst, g.strides, g.pad_l, g.pad_r);
    return dnnl::convolution_forward::primitive_desc(d, default_attr(), engine());
  }
  dnnl::convolution_forward::desc d(prop, alg, src, wei, dst, g.strides, g.pad_l, g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, default_attr(), engine());
#endif
}

inline dnnl::convolution_backward_data::primitive_desc conv_bwd_data_pd(
    const md& diff_src, const md& wei, const md& diff_dst, const ConvGeom& g,
    const dnnl::convolution_forward::primitive_desc& hint) {
  const auto alg = dnnl::algorithm::convolution_direct;
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::convolution_backward_data::primitive_desc(engine(), alg, diff_src, wei, diff_dst, g.strides, g.pad_l,
                                                         g.pad_r, hint, default_attr());
#else
  dnnl::convolution_backward_data::desc d(alg, diff_src, wei, diff_dst, g.strides, g.pad_l, g.pad_r);
  return dnnl::convolution_backward_data::primitive_desc(d, default_attr(), engine(), hint);
#endif
}

inline dnnl::convolution_backward_weights::primitive_desc conv_bwd_weights_pd(
    const md& src, const md& diff_wei, const md& diff_dst, const ConvGeom& g,
    const dnnl::convolution_forward::primitive_desc& hint) {
  const auto alg = dnnl::algorithm::convolution_direct;
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::convolution_backward_weights::primitive_desc(engine(), alg, src, diff_wei, diff_dst, g.strides,
                                                            g.pad_l, g.pad_r, hint, default_attr());
#else
  dnnl::convolution_backward_weights::desc d(alg, src, diff_wei, diff_dst, g.strides, g.pad_l, g.pad_r);
  return dnnl::convolution_backward_weights::primitive_desc(d, default_attr(), engine(), hint);
#endif
}

inline dnnl::reorder::primitive_desc reorder_pd(const md& from, const md& to) {
  return dnnl::reorder::primitive_desc(engine(), from, engine(), to, default_attr());
}

inline dnnl::layer_normalization_forward::primitive_desc lnorm_fwd_pd(const md& data, const md& stat, float eps,
                                                                      dnnl::normalization_flags flags) {
  const auto prop = dnnl::prop_kind::forward_training;
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::layer_normalization_forward::primitive_desc(engine(), prop, data, data, stat, eps, flags,
                                                           default_attr());
#else
  dnnl::layer_normalization_forward::desc d(prop, data, stat, eps, flags);
  return dnnl::layer_normalization_forward::primitive_desc(d, default_attr(), engine());
#endif
}

inline dnnl::layer_normalization_backward::primitive_desc lnorm_bwd_pd(
    dnnl::prop_kind prop, const md& data, const md& stat, float eps, dnnl::normalization_flags flags,
    const dnnl::layer_normalization_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::layer_normalization_backward::primitive_desc(engine(), prop, data, data, data, stat, eps, flags, hint,
                                                            default_attr());
#else
  dnnl::layer_normalization_backward::desc d(prop, data, data, stat, eps, flags);
  return dnnl::layer_normalization_backward::primitive_desc(d, default_attr(), engine(), hint);
#endif
}

inline softmax_fwd::primitive_desc softmax_fwd_pd(dnnl::algorithm alg, const md& data, int axis) {
  const auto prop = dnnl::prop_kind::forward_training;
#if DNNL_VERSION_MAJOR >= 3
  return softmax_fwd::primitive_desc(engine(), prop, alg, data, data, axis, default_attr());
#else
  softmax_fwd::desc d(prop, alg, data, data, axis);
  return softmax_fwd::primitive_desc(d, default_attr(), engine());
#endif
}

inline softmax_bwd::primitive_desc softmax_bwd_pd(dnnl::algorithm alg, const md& data, int axis,
                                                  const softmax_fwd::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return softmax_bwd::primitive_desc(engine(), alg, data, data, data, axis, hint, default_attr());
#else
  softmax_bwd::desc d(alg, data, data, data, axis);
  return softmax_bwd::primitive_desc(d, default_attr(), engine(), hint);
#endif
}

inline dnnl::eltwise_forward::primitive_desc eltwise_fwd_pd(dnnl::algorithm alg, const md& data, float alpha,
                                                            float beta) {
  const auto prop = dnnl::prop_kind::forward_training;
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::eltwise_forward::primitive_desc(engine(), prop, alg, data, data, alpha, beta, default_attr());
#else
  dnnl::eltwise_forward::desc d(prop, alg, data, alpha, beta);
  return dnnl::eltwise_forward::primitive_desc(d, default_attr(), engine());
#endif
}

inline dnnl::eltwise_backward::primitive_desc eltwise_bwd_pd(dnnl::algorithm alg, const md& data, float alpha,
                                                             float beta,
                                                             const dnnl::eltwise_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::eltwise_backward::primitive_desc(engine(), alg, data, data, data, alpha, beta, hint, default_attr());
#else
  dnnl::eltwise_backward::desc d(alg, data, data, alpha, beta);
  return dnnl::eltwise_backward::primitive_desc(d, default_attr(), engine(), hint);
#endif
}

/** src0 ∘ src1 → dst; `negate` appends a ×(−1) post-op (b − a computed as −(a − b) with swapped operands). */
inline dnnl::binary::primitive_desc binary_pd(dnnl::algorithm alg, const md& src0, const md& src1, const md& dst,
                                              bool negate) {
  dnnl::primitive_attr attr = default_attr();
  if (negate) {
    dnnl::post_ops po;
#if DNNL_VERSION_MAJOR >= 3
    po.append_eltwise(dnnl::algorithm::eltwise_linear, -1.f, 0.f);
#else
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, -1.f, 0.f);
#endif
    attr.set_post_ops(po);
  }
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::binary::primitive_desc(engine(), alg, src0, src1, dst, attr);
#else
  dnnl::binary::desc d(alg, src0, src1, dst);
  return dnnl::binary::primitive_desc(d, attr, engine());
#endif
}

}  // namespace vilg
