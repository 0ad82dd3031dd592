// Engine, stream, primitive cache, argument checks and the error boundary (memory: see memory.cc).
#include "common.h"

#include <pthread.h>

#include <csignal>

#include <cmath>
#include <cstdlib>
#include <list>
#include <new>

namespace vilg {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  static dnnl::stream strm(engine());
  return strm;
}

static std::mutex& compute_mutex() {
  static std::mutex m;
  return m;
}

// ---------------------------------------------------------------- LRU primitive cache

namespace {

size_t capacity_from_env() {
  const char* s = std::getenv("VILG_PRIMITIVE_CACHE");
  if (s == nullptr || *s == '\0') return 1024;
  char* end = nullptr;
  long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < 0) return 1024;  // the TS loader rejects such values loudly
  return static_cast<size_t>(v);
}

struct Lru {
  using Item = std::pair<std::string, EntryPtr>;
  std::list<Item> order;  // most recently used first
  std::unordered_map<std::string, std::list<Item>::iterator> index;
  size_t capacity = capacity_from_env();
  uint64_t hits = 0, misses = 0;

  void trim() {
    while (order.size() > capacity) {
      index.erase(order.back().first);
      order.pop_back();
    }
  }
};

Lru& lru() {
  static Lru c;
  return c;
}

}  // namespace

EntryPtr cached(const std::string& key, const std::function<CacheEntry()>& make) {
  Lru& c = lru();
  auto it = c.index.find(key);
  if (it != c.index.end()) {
    c.hits++;
    c.order.splice(c.order.begin(), c.order, it->second);
    return it->second->second;
  }
  c.misses++;
  auto entry = std::make_shared<const CacheEntry>(make());
  if (c.capacity == 0) return entry;
  c.order.emplace_front(key, entry);
  c.index[key] = c.order.begin();
  c.trim();
  return entry;
}

CacheStats cache_stats() {
  const Lru& c = lru();
  return {c.order.size(), c.capacity, c.hits, c.misses};
}

void cache_set_capacity(size_t capacity) {
  lru().capacity = capacity;
  lru().trim();
}

void cache_clear() {
  Lru& c = lru();
  c.order.clear();
  c.index.clear();
  c.hits = c.misses = 0;
}

std::string make_key(const char* op, std::initializer_list<int64_t> fields) {
  std::string k(op);
  k.reserve(k.size() + fields.size() * 6);
  for (int64_t f : fields) {
    k.push_back('|');
    k += std::to_string(f);
  }
  return k;
}

// ---------------------------------------------------------------- arguments

void throw_type(const Napi::Env& env, const std::string& fn, const std::string& msg) {
  throw Napi::TypeError::New(env, "vilg_native." + fn + ": " + msg);
}

void throw_range(const Napi::Env& env, const std::string& fn, const std::string& msg) {
  throw Napi::RangeError::New(env, "vilg_native." + fn + ": " + msg);
}

Args::Args(const Napi::CallbackInfo& info, const char* fn, size_t count) : info_(info), env_(info.Env()), fn_(fn) {
  if (info.Length() != count) {
    throw_type(env_, fn, "expected " + std::to_string(count) + " arguments, got " + std::to_string(info.Length()));
  }
}

static bool is_int_value(double v) { return std::isfinite(v) && std::floor(v) == v; }

int64_t Args::dim(size_t i, const char* name, int64_t min) const {
  Napi::Value v = info_[i];
  if (!v.IsNumber()) throw_type(env_, fn_, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!is_int_value(d) || d < static_cast<double>(min) || d > 1099511627776.0) {
    throw_range(env_, fn_, std::string(name) + " must be an integer ≥ " + std::to_string(min) + ", got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

bool Args::flag(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsBoolean()) throw_type(env_, fn_, std::string(name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

double Args::number(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsNumber()) throw_type(env_, fn_, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_range(env_, fn_, std::string(name) + " must be finite");
  return d;
}

std::string Args::str(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsString()) throw_type(env_, fn_, std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Array Args::array(size_t i, const char* name, size_t need, bool allow_bf16) const {
  Napi::Value v = info_[i];
  const std::string what = std::string(name) + (allow_bf16 ? " must be a Float32Array or Uint16Array" : " must be a Float32Array");
  if (!v.IsTypedArray()) throw_type(env_, fn_, what);
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  napi_typedarray_type type = ta.TypedArrayType();
  if (type != napi_float32_array && !(allow_bf16 && type == napi_uint16_array)) throw_type(env_, fn_, what);
  if (ta.ArrayBuffer().IsDetached()) throw_type(env_, fn_, std::string(name) + "'s buffer is detached");
  Array a;
  napi_value ab;
  size_t byte_offset = 0;
  napi_status st = napi_get_typedarray_info(env_, ta, &a.type, &a.length, &a.data, &ab, &byte_offset);
  if (st != napi_ok) throw Napi::Error::New(env_, "vilg_native." + std::string(fn_) + ": cannot read " + name);
  if (a.length < need) {
    throw_range(env_, fn_, std::string(name) + " has " + std::to_string(a.length) + " elements, the dims need " + std::to_string(need));
  }
  if (need > 0 && a.data == nullptr) throw_type(env_, fn_, std::string(name) + " has no backing store");
  return a;
}

Array Args::bytes(size_t i, const char* name, size_t need) const {
  Napi::Value v = info_[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw_type(env_, fn_, std::string(name) + " must be a Uint8Array");
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.ArrayBuffer().IsDetached()) throw_type(env_, fn_, std::string(name) + "'s buffer is detached");
  Array a;
  a.type = napi_uint8_array;
  a.length = ta.ElementLength();
  a.data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (a.length < need) {
    throw_range(env_, fn_, std::string(name) + " has " + std::to_string(a.length) + " elements, the dims need " + std::to_string(need));
  }
  return a;
}

const int32_t* Args::int32s(size_t i, const char* name, size_t need) const {
  const size_t length = int32_length(i, name);
  Napi::TypedArray ta = info_[i].As<Napi::TypedArray>();
  if (ta.ArrayBuffer().IsDetached()) throw_type(env_, fn_, std::string(name) + "'s buffer is detached");
  if (length != need) {
    throw_range(env_, fn_, std::string(name) + " has " + std::to_string(length) + " elements, expected " + std::to_string(need));
  }
  return reinterpret_cast<const int32_t*>(static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
}

size_t Args::int32_length(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw_type(env_, fn_, std::string(name) + " must be an Int32Array");
  }
  return v.As<Napi::TypedArray>().ElementLength();
}

Array Args::optional_array(size_t i, const char* name, size_t need) const {
  if (info_[i].IsNull() || info_[i].IsUndefined()) return Array{};
  return array(i, name, need);
}

std::vector<int64_t> Args::int_list(size_t i, const char* name, size_t count) const {
  Napi::Value v = info_[i];
  if (!v.IsArray()) throw_type(env_, fn_, std::string(name) + " must be an array of integers");
  Napi::Array arr = v.As<Napi::Array>();
  if (arr.Length() != count) throw_range(env_, fn_, std::string(name) + " must have " + std::to_string(count) + " entries");
  std::vector<int64_t> out(count);
  for (uint32_t k = 0; k < count; k++) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) throw_type(env_, fn_, std::string(name) + "[" + std::to_string(k) + "] must be a number");
    double d = e.As<Napi::Number>().DoubleValue();
    if (!is_int_value(d) || d < 0 || d > 1099511627776.0) {
      throw_range(env_, fn_, std::string(name) + "[" + std::to_string(k) + "] must be an integer ≥ 0");
    }
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

size_t product(const Napi::Env& env, const char* fn, std::initializer_list<int64_t> sizes) {
  constexpr uint64_t kLimit = uint64_t(1) << 50;
  uint64_t p = 1;
  for (int64_t s : sizes) {
    if (s < 0) throw_range(env, fn, "negative size");
    if (s != 0 && p > kLimit / static_cast<uint64_t>(s)) throw_range(env, fn, "sizes are too large");
    p *= static_cast<uint64_t>(s);
  }
  return static_cast<size_t>(p);
}

bool bf16_native() {
  static const bool native = [] {
    try {
      using md = dnnl::memory::desc;
      md a({2, 2}, dt::bf16, tag::ab), c({2, 2}, dt::f32, tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, a, c), engine());
      return pd.get() != nullptr;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return native;
}

const float* bf16_values_f32(const void* x, bool is_bf16_bits, size_t n, int slot) {
  auto* dst = static_cast<float*>(scratch(slot, n * sizeof(float)));
  if (is_bf16_bits) bf16_to_f32(static_cast<const uint16_t*>(x), dst, n);
  else round_bf16(static_cast<const float*>(x), dst, n);
  return dst;
}

namespace {

/**
 * Blocks asynchronous signals for the duration of a native call. oneDNN's JIT f32 gemm
 * (jit_avx512_common_gemm_f32) points RSP into heap memory while it runs, so a signal handled on that thread
 * (SIGPROF from `node --cpu-prof`, SIGINT/SIGTERM, a timer) pushes its frame into the heap and corrupts it
 * (oneDNN issue #4845; reproduced here: `node --cpu-prof` over a loop of 8×256×256 matmuls aborted with
 * "corrupted size vs. prev_size"). Threads OpenMP creates inside a call inherit the mask, so its workers
 * never take such a signal either. Pending signals are delivered when the call returns (≤ one kernel late);
 * synchronous faults stay unblocked.
 */
struct SignalBlock {
#if defined(__unix__) || defined(__APPLE__)
  sigset_t old;
  SignalBlock() {
    sigset_t all;
    sigfillset(&all);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&all, s);
    pthread_sigmask(SIG_BLOCK, &all, &old);
  }
  ~SignalBlock() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
#endif
};

}  // namespace

Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body) {
  Napi::Env env = info.Env();
  // A kernel calls back into JS only for its output allocator; that must not call the addon again
  // (the scratch buffers and the stream are in use).
  thread_local int depth = 0;
  if (depth > 0) throw Napi::Error::New(env, "vilg_native: re-entrant call from the output allocator");
  try {
    std::lock_guard<std::mutex> lock(compute_mutex());
    SignalBlock no_signals;
    struct Depth { Depth() { depth++; } ~Depth() { depth--; } } in_call;
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a JS exception (TypeError/RangeError from the checks above)
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(env, std::string("vilg_native: oneDNN error: ") + e.what() + " (status " +
                                    std::to_string(static_cast<int>(e.status)) + ")");
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "vilg_native: out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("vilg_native: ") + e.what());
  } catch (...) {
    throw Napi::Error::New(env, "vilg_native: unknown C++ exception");
  }
}

}  // namespace vilg
