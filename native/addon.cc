// vilg_native: the N-API addon over oneDNN. Module registration, version() and cache controls.
// JS surface (every function validates its arguments and throws TypeError/RangeError/Error, never crashes):
//   version() → { dnnl: string, isa: string, threads: number }
//   cacheStats() → { size, capacity, hits, misses }            (the LRU primitive cache)
//   setCacheCapacity(n: number) → void          cacheClear() → void
//   setOutputAllocator(fn: (bytes: number) => ArrayBuffer) → void   (uninitialised memory for large outputs)
//   configurePool({ enabled?, maxCachedBytes? }) → void    poolStats() → {...}   (the output pool, memory.cc)
//   the kernels: see ops.h and the header comment of each .cc file.
#include <omp.h>

#include "ops.h"

namespace vilg {
namespace {

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
#if DNNL_VERSION_MAJOR >= 3
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
#else
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
#endif
    default: return "other";
  }
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "version", 0);
    const dnnl_version_t* v = dnnl::version();
    Napi::Object o = Napi::Object::New(args.env());
    o.Set("dnnl", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
    o.Set("isa", isa_name(dnnl::get_effective_cpu_isa()));
    o.Set("bf16", bf16_native() ? "native" : "emulated (no bf16 primitives on this CPU: f32 primitives on bf16-rounded operands)");
    o.Set("threads", omp_get_max_threads());
    return o;
  });
}

Napi::Value CacheStatsFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "cacheStats", 0);
    const CacheStats s = cache_stats();
    Napi::Object o = Napi::Object::New(args.env());
    o.Set("size", static_cast<double>(s.size));
    o.Set("capacity", static_cast<double>(s.capacity));
    o.Set("hits", static_cast<double>(s.hits));
    o.Set("misses", static_cast<double>(s.misses));
    return o;
  });
}

Napi::Value SetCacheCapacity(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "setCacheCapacity", 1);
    cache_set_capacity(static_cast<size_t>(args.dim(0, "capacity", 0)));
    return args.env().Undefined();
  });
}

Napi::Value SetOutputAllocator(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "setOutputAllocator", 1);
    if (!info[0].IsFunction()) throw_type(args.env(), args.fn(), "the allocator must be a function");
    set_output_allocator(args.env(), info[0].As<Napi::Function>());
    return args.env().Undefined();
  });
}

Napi::Value CacheClear(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "cacheClear", 0);
    cache_clear();
    return args.env().Undefined();
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, tune_malloc);
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"version", Version},
      {"cacheStats", CacheStatsFn},
      {"setCacheCapacity", SetCacheCapacity},
      {"cacheClear", CacheClear},
      {"setOutputAllocator", SetOutputAllocator},
      {"configurePool", ConfigurePool},
      {"poolStats", PoolStats},
      {"matmul", Matmul},
      {"sumRows", SumRows},
      {"stridedCopy", StridedCopy},
      {"adamwUpdate", AdamwUpdate},
      {"dropout", Dropout},
      {"sumSquares", SumSquares},
      {"scale", Scale},
      {"crossEntropy", CrossEntropy},
      {"crossEntropyBackward", CrossEntropyBackward},
      {"conv2d", Conv2d},
      {"conv2dBackwardData", Conv2dBackwardData},
      {"conv2dBackwardWeights", Conv2dBackwardWeights},
      {"layerNorm", LayerNorm},
      {"layerNormBackward", LayerNormBackward},
      {"groupNorm", GroupNorm},
      {"groupNormBackward", GroupNormBackward},
      {"softmax", Softmax},
      {"softmaxBackward", SoftmaxBackward},
      {"unary", Unary},
      {"unaryBackward", UnaryBackward},
      {"binary", Binary},
      {"attention", Attention},
      {"attentionBackward", AttentionBackward},
      {"sparseAttention", SparseAttention},
      {"sparseAttentionBackward", SparseAttentionBackward},
      {"sparseAttentionRows", SparseAttentionRows},
  };
  for (const auto& [name, fn] : fns) exports.Set(name, Napi::Function::New(env, fn, name));
  return exports;
}

}  // namespace
}  // namespace vilg

static Napi::Object InitVilg(Napi::Env env, Napi::Object exports) { return vilg::Init(env, exports); }

NODE_API_MODULE(vilg_native, InitVilg)
