// Memory: scratch buffers, bf16 conversion, kernel output allocation (the output pool) and glibc tuning.
#include <omp.h>
#include <v8.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"
#include "pool.h"

namespace vilg {

// ---------------------------------------------------------------- scratch

namespace {
struct Slot {
  void* p = nullptr;
  size_t cap = 0;
};
Slot g_slots[kScratchSlots];
}  // namespace

void* scratch(int slot, size_t bytes) {
  Slot& s = g_slots[slot];
  if (bytes == 0) bytes = 64;
  if (s.cap < bytes) {
    std::free(s.p);
    s.p = nullptr;
    s.cap = 0;
    size_t rounded = (bytes + 4095) & ~static_cast<size_t>(4095);
    s.p = std::aligned_alloc(64, rounded);
    if (s.p == nullptr) throw std::bad_alloc();
    s.cap = rounded;
  }
  return s.p;
}

dnnl::memory scratch_memory(const dnnl::memory::desc& md, int slot) {
  return dnnl::memory(md, engine(), scratch(slot, md.get_size()));
}

dnnl::primitive_attr default_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void execute(const dnnl::primitive& prim, std::unordered_map<int, dnnl::memory> args,
             const dnnl::memory::desc& scratch_md) {
  if (scratch_md.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, scratch_memory(scratch_md, kScratchPad));
  prim.execute(stream(), args);
  stream().wait();
}

// ---------------------------------------------------------------- bf16


VILG_CLONES static void f32_to_bf16_chunk(const float* src, uint16_t* dst, size_t n) {
  const uint32_t* u = reinterpret_cast<const uint32_t*>(src);
  for (size_t i = 0; i < n; i++) {
    uint32_t x = u[i];
    uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    uint32_t nan = ((x >> 16) | 0x40u);
    dst[i] = static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
  }
}

VILG_CLONES static void bf16_to_f32_chunk(const uint16_t* src, float* dst, size_t n) {
  uint32_t* u = reinterpret_cast<uint32_t*>(dst);
  for (size_t i = 0; i < n; i++) u[i] = static_cast<uint32_t>(src[i]) << 16;
}

VILG_CLONES static void round_bf16_chunk(const float* src, float* dst, size_t n) {
  const uint32_t* u = reinterpret_cast<const uint32_t*>(src);
  uint32_t* o = reinterpret_cast<uint32_t*>(dst);
  for (size_t i = 0; i < n; i++) {
    uint32_t x = u[i];
    uint32_t rounded = ((x + 0x7fffu + ((x >> 16) & 1u)) >> 16) << 16;
    o[i] = (x & 0x7fffffffu) > 0x7f800000u ? (x | 0x00400000u) & 0xffff0000u : rounded;
  }
}

void f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  parallel_chunks(n, [&](size_t lo, size_t hi) { f32_to_bf16_chunk(src + lo, dst + lo, hi - lo); });
}

void bf16_to_f32(const uint16_t* src, float* dst, size_t n) {
  parallel_chunks(n, [&](size_t lo, size_t hi) { bf16_to_f32_chunk(src + lo, dst + lo, hi - lo); });
}

void round_bf16(const float* src, float* dst, size_t n) {
  parallel_chunks(n, [&](size_t lo, size_t hi) { round_bf16_chunk(src + lo, dst + lo, hi - lo); });
}

// glibc returns freed memory to the OS eagerly (allocations over its adaptive mmap threshold are
// munmap()ed on free; a free heap top over the trim threshold is trimmed), and V8 frees ArrayBuffers in
// bursts at GC, so without tuning nearly every output lands on fresh pages — and faulting a fresh 4 KiB
// page in costs ~12 µs on these VMs (a 1 MiB output: ~3 ms of faults for a 0.8 ms 512³ matmul).
// Keeping blocks up to 32 MiB (glibc's maximum) on the heap and up to 1 GiB of free heap mapped makes
// steady-state allocations reuse warm memory. Process-wide, once at load; VILG_MALLOC_TUNING=0 opts out.
void tune_malloc() {
#if defined(__GLIBC__)
  const char* s = std::getenv("VILG_MALLOC_TUNING");
  if (s != nullptr && std::strcmp(s, "0") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// Outputs over 32 MiB are still fresh mmap()s: ask for transparent huge pages (a 2 MiB fault costs
// ~0.1 ms once the guest has free huge pages, vs 512 × 12 µs). The output allocator below leaves the
// memory untouched, so the advice lands before the kernel's first write.
#if defined(__linux__) && defined(MADV_HUGEPAGE)
static void advise_huge(void* data, size_t bytes) {
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
}
#else
static void advise_huge(void*, size_t) {}
#endif

namespace {
/** Per-environment (main thread or worker) state: the JS allocator for uninitialised outputs, the pool switch. */
struct EnvData {
  Napi::FunctionReference alloc;
  bool pool = true;
};
constexpr size_t kUninitMinBytes = size_t(64) << 10;

EnvData* env_data(const Napi::Env& env) {
  EnvData* d = env.GetInstanceData<EnvData>();
  if (d == nullptr) {
    d = new EnvData();
    env.SetInstanceData(d);  // deleted by Node when the environment is torn down
  }
  return d;
}

// Pooled outputs are V8 ArrayBuffers over pool memory whose BackingStore deleter returns the block. Not
// N-API external buffers: Node defers their finalizers to a SetImmediate, so a synchronous loop would never
// get a block back (measured: 3000 × 1 MiB outputs in a loop kept 3 GB alive; with V8 deleters, under
// 100 MB — V8 counts backing-store bytes as external memory itself, so no AdjustExternalMemory here).
// A V8 sandbox (Electron) forbids memory from outside it, so there the pool stays off.
#if defined(V8_ENABLE_SANDBOX)
constexpr bool kPoolSupported = false;
#else
constexpr bool kPoolSupported = true;
#endif
std::atomic<bool> g_pool_ok{kPoolSupported};  // cleared for good if a pooled array reads back wrong

void release_block(void*, size_t, void* block) { pool::release(static_cast<pool::Block*>(block)); }

/** A pooled Float32Array of n elements (uninitialised), or an empty one when the pool cannot serve it. */
Napi::Float32Array pooled_f32(const Napi::Env& env, size_t n) {
  const size_t bytes = n * sizeof(float);
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  // GC pacing. V8 runs a cheap young-generation GC when the ArrayBuffers born since the last one hold
  // 2 semispaces' worth (32 MB) of memory — but checks only when it allocates a backing store itself, not
  // for ours. Without a check they pile up until the 64 MB external-memory limit starts a full
  // mark-compact: 2× the CPU per 64 KiB output and more blocks in flight (measured). A 1-byte backing
  // store from V8's allocator runs that check (and is freed at once).
  (void)v8::ArrayBuffer::NewBackingStore(isolate, 1);
  pool::Block* b = pool::acquire(bytes);
  if (b == nullptr) return Napi::Float32Array();
  void* data = pool::data(b);
  std::unique_ptr<v8::BackingStore> store;
  try {
    store = v8::ArrayBuffer::NewBackingStore(data, bytes, release_block, b);
  } catch (...) {
    pool::release(b);
    throw;
  }
  v8::Local<v8::ArrayBuffer> ab = v8::ArrayBuffer::New(isolate, std::move(store));  // owns the block from here
  v8::Local<v8::Float32Array> view = v8::Float32Array::New(ab, 0, n);
  // napi_value is a v8::Local's slot in Node (v8impl::JsValueFromV8LocalValue); the wrapper below reads
  // the array back through N-API, so a Node that changed this fails the check (and the pool turns itself
  // off) rather than misbehave.
  Napi::Float32Array out(env, reinterpret_cast<napi_value>(*view));
  if (out.Data() != data || out.ElementLength() != n) {
    g_pool_ok = false;
    return Napi::Float32Array();
  }
  return out;
}
}  // namespace

void set_output_allocator(const Napi::Env& env, const Napi::Function& fn) { env_data(env)->alloc = Napi::Persistent(fn); }

// Kernel outputs are fully overwritten, so only V8's own small arrays are zero-filled. Outputs of 64 KiB
// and more come from the JS allocator when one is registered for this environment (the loader registers
// Buffer.allocUnsafeSlow — malloc, no zero-fill — only with VILG_POOL=0: calloc's memset of a recycled
// 16 MiB block is ~1.2 ms, 10–15% of a bf16 conv); otherwise outputs from 4 KiB come from the output pool
// (see pool.h) while it is on; the rest use V8's calloc.
Napi::Float32Array new_f32(const Napi::Env& env, size_t n) {
  const size_t bytes = n * sizeof(float);
  EnvData* d = bytes >= pool::kMinBytes ? env.GetInstanceData<EnvData>() : nullptr;
  const bool js_alloc = bytes >= kUninitMinBytes && d != nullptr && !d->alloc.IsEmpty();
  if (!js_alloc && bytes >= pool::kMinBytes && g_pool_ok.load(std::memory_order_relaxed) && (d == nullptr || d->pool)) {
    Napi::Float32Array a = pooled_f32(env, n);
    if (!a.IsEmpty()) return a;
  }
  if (!js_alloc) {
    Napi::Float32Array a = Napi::Float32Array::New(env, n);
    if (bytes > (size_t(32) << 20)) advise_huge(a.Data(), bytes);
    return a;
  }
  Napi::Value v = d->alloc.Call({Napi::Number::New(env, static_cast<double>(bytes))});
  if (!v.IsArrayBuffer()) throw Napi::TypeError::New(env, "vilg_native: the output allocator must return an ArrayBuffer");
  Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
  if (ab.ByteLength() != bytes || ab.Data() == nullptr) {
    throw Napi::RangeError::New(env, "vilg_native: the output allocator returned " + std::to_string(ab.ByteLength()) +
                                         " bytes, expected " + std::to_string(bytes));
  }
  if (bytes > (size_t(32) << 20)) advise_huge(ab.Data(), bytes);
  return Napi::Float32Array::New(env, n, ab, 0);
}

// JS: configurePool({ enabled?: boolean, maxCachedBytes?: number }) → undefined. `enabled` is per
// environment (main thread or worker); the cap is process-wide (one pool serves every thread).
Napi::Value ConfigurePool(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "configurePool", 1);
    const Napi::Env& env = args.env();
    if (!info[0].IsObject()) throw_type(env, args.fn(), "options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value enabled = o.Get("enabled"), cap = o.Get("maxCachedBytes");
    if (!enabled.IsUndefined() && !enabled.IsBoolean()) throw_type(env, args.fn(), "enabled must be a boolean");
    if (!cap.IsUndefined()) {
      if (!cap.IsNumber()) throw_type(env, args.fn(), "maxCachedBytes must be a number");
      const double c = cap.As<Napi::Number>().DoubleValue();
      if (!(c >= 0 && c <= 1125899906842624.0) || c != static_cast<double>(static_cast<int64_t>(c))) {
        throw_range(env, args.fn(), "maxCachedBytes must be an integer in [0, 2^50]");
      }
      pool::set_max_cached(static_cast<size_t>(c));
    }
    if (enabled.IsBoolean()) env_data(env)->pool = enabled.As<Napi::Boolean>().Value();
    return env.Undefined();
  });
}

// JS: poolStats() → { enabled, liveBytes, cachedBytes, mappedBytes, maxCachedBytes, hits, misses, evictions }.
Napi::Value PoolStats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args args(info, "poolStats", 0);
    const Napi::Env& env = args.env();
    const EnvData* d = env.GetInstanceData<EnvData>();
    const pool::Stats s = pool::stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("enabled", g_pool_ok.load() && (d == nullptr || d->pool));
    o.Set("liveBytes", static_cast<double>(s.live_bytes));
    o.Set("cachedBytes", static_cast<double>(s.cached_bytes));
    o.Set("mappedBytes", static_cast<double>(s.mapped_bytes));
    o.Set("maxCachedBytes", static_cast<double>(s.max_cached_bytes));
    o.Set("hits", static_cast<double>(s.hits));
    o.Set("misses", static_cast<double>(s.misses));
    o.Set("evictions", static_cast<double>(s.evictions));
    return o;
  });
}

}  // namespace vilg
