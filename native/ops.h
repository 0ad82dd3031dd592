// The functions the addon exports (see addon.cc for the JS names and signatures).
#pragma once

#include "common.h"

namespace vilg {

/** One (batched) matmul: c[b] (M×N, f32) = op(a[b]) · op(b[b]); a batch stride of 0 broadcasts. */
struct MatmulShape {
  int64_t batch, m, k, n;
  bool trans_a, trans_b;
  int64_t stride_a, stride_b;
};
/** Runs it through the cached oneDNN primitive; a and b are bf16 bits when bf16, else f32. bias: f32 [n] added to every row, or null. */
void matmul_exec(const void* a, const void* b, float* c, const MatmulShape& s, bool bf16, const float* bias = nullptr);
/** out[c] = Σ_r g[r, c] over a row-major [rows, cols] (a bias gradient), accumulated in double per thread. */
void bias_grad(const float* g, size_t rows, int64_t cols, float* out);
/** Softmax (or log-softmax) of [rows, cols] over the last axis, and its backward from y and g. */
void softmax_exec(const float* x, float* y, int64_t rows, int64_t cols, bool log);
void softmax_backward_exec(const float* y, const float* g, float* dx, int64_t rows, int64_t cols, bool log);

Napi::Value Matmul(const Napi::CallbackInfo& info);
Napi::Value SumRows(const Napi::CallbackInfo& info);
Napi::Value StridedCopy(const Napi::CallbackInfo& info);
Napi::Value AdamwUpdate(const Napi::CallbackInfo& info);
Napi::Value Dropout(const Napi::CallbackInfo& info);
Napi::Value SumSquares(const Napi::CallbackInfo& info);
Napi::Value Scale(const Napi::CallbackInfo& info);
Napi::Value CrossEntropy(const Napi::CallbackInfo& info);
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info);
Napi::Value Conv2d(const Napi::CallbackInfo& info);
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info);
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info);
Napi::Value LayerNorm(const Napi::CallbackInfo& info);
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info);
Napi::Value GroupNorm(const Napi::CallbackInfo& info);
Napi::Value GroupNormBackward(const Napi::CallbackInfo& info);
Napi::Value Softmax(const Napi::CallbackInfo& info);
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info);
Napi::Value Unary(const Napi::CallbackInfo& info);
Napi::Value UnaryBackward(const Napi::CallbackInfo& info);
Napi::Value Binary(const Napi::CallbackInfo& info);
Napi::Value Attention(const Napi::CallbackInfo& info);
Napi::Value AttentionBackward(const Napi::CallbackInfo& info);
Napi::Value SparseAttention(const Napi::CallbackInfo& info);
Napi::Value SparseAttentionBackward(const Napi::CallbackInfo& info);
Napi::Value SparseAttentionRows(const Napi::CallbackInfo& info);

}  // namespace vilg
