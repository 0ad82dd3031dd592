// Shared plumbing of the vilg_native addon: the one engine/stream, the LRU primitive cache, reusable
// scratch buffers, argument checking and the exception boundary.
//
// Every exported function runs under one process-wide mutex (see guarded()): oneDNN's stream, the
// cache and the scratch buffers are shared, and two OpenMP teams at once would oversubscribe the cores.
#pragma once

#include <napi.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vilg {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

dnnl::engine& engine();
dnnl::stream& stream();

// ---------------------------------------------------------------- primitive cache

/** What one cache slot keeps: the primitives of an op and the memory descs it needs at execute time. */
struct CacheEntry {
  std::vector<dnnl::primitive> prims;
  std::vector<dnnl::memory::desc> mds;
};
using EntryPtr = std::shared_ptr<const CacheEntry>;

/** The entry for `key`, built by `make` on a miss (least recently used entries are evicted). */
EntryPtr cached(const std::string& key, const std::function<CacheEntry()>& make);

struct CacheStats { size_t size, capacity; uint64_t hits, misses; };
CacheStats cache_stats();
void cache_set_capacity(size_t capacity);
void cache_clear();

/** Builds a cache key from an op name and integer fields: "name|a|b|c". */
std::string make_key(const char* op, std::initializer_list<int64_t> fields);

// ---------------------------------------------------------------- scratch memory

/**
 * A reusable 64-byte-aligned buffer for slot `slot` (0..7) of at least `bytes` bytes. Slots keep their
 * memory between calls (intermediates such as bf16 copies or reordered weights), so steady-state calls
 * do not page-fault fresh allocations. Valid until the next scratch() call with the same slot.
 */
void* scratch(int slot, size_t bytes);
enum ScratchSlot { kScratchPad = 0, kSlotA = 1, kSlotB = 2, kSlotC = 3, kSlotD = 4, kSlotE = 5, kSlotF = 6, kSlotG = 7,
                   kSlotWideA = 8, kSlotWideB = 9 };  // Wide*: bf16 emulation's f32 copies (bf16_native() false)
constexpr int kScratchSlots = 10;

/**
 * Whether oneDNN has bf16 primitives on this CPU (AVX-512 cores and up; checked once). Without them (e.g. an
 * AVX2-only CPU) bf16 precision is emulated with the same semantics: operands rounded to bf16 values, held
 * in f32, products accumulated in f32 by the f32 primitives.
 */
bool bf16_native();
/** x's first n values as f32 rounded to bf16 (bf16 storage is widened exactly), in a scratch slot. */
const float* bf16_values_f32(const void* x, bool is_bf16_bits, size_t n, int slot);

/** dnnl::memory over scratch slot `slot`, sized for `md`. */
dnnl::memory scratch_memory(const dnnl::memory::desc& md, int slot);

/** Attributes every primitive is created with: user-managed scratchpad (one shared buffer). */
dnnl::primitive_attr default_attr();

/** Executes `prim` with `args`, adding the shared scratchpad described by `scratch_md`. */
void execute(const dnnl::primitive& prim, std::unordered_map<int, dnnl::memory> args,
             const dnnl::memory::desc& scratch_md);

// ---------------------------------------------------------------- bf16

// Our own hot loops (bf16 conversion, log, log-softmax) get AVX-512 and AVX2 clones picked at load time
// (GCC target_clones) while the rest of the addon stays at the portable baseline.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VILG_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define VILG_CLONES
#endif

/** Runs f(lo, hi) over [0, n), one contiguous chunk per OpenMP thread (inline below 64 Ki elements). */
template <class F>
void parallel_chunks(size_t n, F f) {
  constexpr size_t kSerial = size_t(1) << 16;
  if (n < kSerial) {
    f(size_t(0), n);
    return;
  }
#pragma omp parallel
  {
    const size_t nt = static_cast<size_t>(omp_get_num_threads()), t = static_cast<size_t>(omp_get_thread_num());
    const size_t per = ((n + nt - 1) / nt + 15) & ~size_t(15);
    const size_t lo = t * per, hi = lo + per < n ? lo + per : n;
    if (lo < hi) f(lo, hi);
  }
}

/** f32 → bf16 bits, round to nearest even, NaN stays a quiet NaN (bit-exact with dtype.ts). */
void f32_to_bf16(const float* src, uint16_t* dst, size_t n);
/** bf16 bits → f32 (exact). */
void bf16_to_f32(const uint16_t* src, float* dst, size_t n);
/** dst = src rounded to the nearest bf16 value, kept in f32 (what the reference does in bf16 mode). */
void round_bf16(const float* src, float* dst, size_t n);

// ---------------------------------------------------------------- arguments

/** A TypedArray argument: its data, element count and element type. */
struct Array {
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_float32_array;
  bool is_f32() const { return type == napi_float32_array; }
  bool is_bf16() const { return type == napi_uint16_array; }
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* u16() const { return static_cast<const uint16_t*>(data); }
  const uint8_t* u8() const { return static_cast<const uint8_t*>(data); }
};

/** Throws a RangeError/TypeError naming `fn`. */
[[noreturn]] void throw_type(const Napi::Env& env, const std::string& fn, const std::string& msg);
[[noreturn]] void throw_range(const Napi::Env& env, const std::string& fn, const std::string& msg);

/** Argument reader: checks count, types and ranges, throwing JS errors that name the function. */
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count);
  /** An integer Number in [min, 2^40]. */
  int64_t dim(size_t i, const char* name, int64_t min = 1) const;
  bool flag(size_t i, const char* name) const;
  /** A finite Number. */
  double number(size_t i, const char* name) const;
  /** A string argument (op kinds). */
  std::string str(size_t i, const char* name) const;
  /** A live (not detached) Float32Array — or Uint16Array when allow_bf16 — with at least `need` elements. */
  Array array(size_t i, const char* name, size_t need, bool allow_bf16 = false) const;
  /** A live Uint8Array with at least `need` elements (attention masks). */
  Array bytes(size_t i, const char* name, size_t need) const;
  /** A live Int32Array with exactly `need` elements (CSR patterns, class targets). */
  const int32_t* int32s(size_t i, const char* name, size_t need) const;
  /** The element count of the Int32Array argument i (to size a later int32s()). */
  size_t int32_length(size_t i, const char* name) const;
  /** Like array(), but null is allowed (returns an Array with data == nullptr). */
  Array optional_array(size_t i, const char* name, size_t need) const;
  /** A JS array of `count` integers ≥ 0 (conv dims). */
  std::vector<int64_t> int_list(size_t i, const char* name, size_t count) const;
  const Napi::Env& env() const { return env_; }
  const char* fn() const { return fn_; }

 private:
  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const char* fn_;
};

/** Multiplies sizes, throwing a RangeError instead of overflowing (limit 2^50 elements). */
size_t product(const Napi::Env& env, const char* fn, std::initializer_list<int64_t> sizes);

/** Keeps freed memory mapped for reuse (glibc mallopt; see memory.cc). Called once at load. */
void tune_malloc();

/**
 * A new Float32Array of n elements for a kernel output. From 4 KiB it is NOT zero-filled (it comes from
 * the output pool, or from 64 KiB the allocator set by set_output_allocator, which takes precedence):
 * the kernel must write every element.
 */
Napi::Float32Array new_f32(const Napi::Env& env, size_t n);
/** Registers fn(bytes) → ArrayBuffer (uninitialised memory of exactly `bytes`) for this environment's outputs from 64 KiB. */
void set_output_allocator(const Napi::Env& env, const Napi::Function& fn);
/** JS configurePool({ enabled?, maxCachedBytes? }) and poolStats(): the output pool (native/pool.h). */
Napi::Value ConfigurePool(const Napi::CallbackInfo& info);
Napi::Value PoolStats(const Napi::CallbackInfo& info);

/**
 * The exception boundary: runs `body` under the compute mutex and turns every C++ exception into a JS
 * exception (Napi::Error passes through; dnnl::error keeps its status; bad_alloc becomes a RangeError).
 */
Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body);

}  // namespace vilg
