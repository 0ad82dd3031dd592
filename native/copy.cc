// stridedCopy(x, offset, rank, shape, strides) → Float32Array [Π shape]: a gather that reads x through
// arbitrary non-negative strides (permute, slice, expand, the attention's head split) into a new
// row-major array.
//
// The TypeScript side coalesces the dims first (src/engine/ops/shape.ts coalesceDims), so `shape` is
// short and its last dim is the longest contiguous run; rows are copied in parallel, each with
// memcpy when its elements are adjacent in x. The JS reference does the same row by row but pays for
// a typed-array view per row, which dominates for the 32-float rows of a head split.
#include "ops.h"

#include <cstring>

namespace vilg {

Napi::Value StridedCopy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "stridedCopy", 5);
    const Napi::Env& env = args.env();
    const int64_t offset = args.dim(1, "offset", 0), rank = args.dim(2, "rank", 1);
    if (rank > 12) throw_range(env, "stridedCopy", "rank must be at most 12");
    const std::vector<int64_t> shape = args.int_list(3, "shape", static_cast<size_t>(rank));
    const std::vector<int64_t> strides = args.int_list(4, "strides", static_cast<size_t>(rank));
    // The last element read: offset + Σ (shape[d] − 1)·strides[d] (every stride ≥ 0, checked by int_list).
    uint64_t n = 1, last = static_cast<uint64_t>(offset);
    for (int64_t d = 0; d < rank; d++) {
      if (shape[d] < 1) throw_range(env, "stridedCopy", "every dim of shape must be ≥ 1");
      n = product(env, "stridedCopy", {static_cast<int64_t>(n), shape[d]});
      last += static_cast<uint64_t>(shape[d] - 1) * static_cast<uint64_t>(strides[d]);
    }
    const Array x = args.array(0, "x", static_cast<size_t>(last + 1));
    const float* src = x.f32();
    Napi::Float32Array out = new_f32(env, static_cast<size_t>(n));
    float* dst = out.Data();
    const int64_t len = shape[rank - 1], st = strides[rank - 1], rows = static_cast<int64_t>(n) / len;
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t row = 0; row < rows; row++) {
      int64_t rem = row, at = offset;  // the row's start in x: its index in the outer dims, mixed radix
      for (int64_t d = rank - 2; d >= 0; d--) {
        at += (rem % shape[d]) * strides[d];
        rem /= shape[d];
      }
      float* o = dst + row * len;
      if (st == 1) {
        std::memcpy(o, src + at, static_cast<size_t>(len) * sizeof(float));
      } else {
        for (int64_t j = 0; j < len; j++) o[j] = src[at + j * st];
      }
    }
    return out;
  });
}

}  // namespace vilg
