// Memory: scratch buffers, bf16 conversion, kernel output allocation and glibc tuning.
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"

namespace vilg {

// ---------------------------------------------------------------- scratch

namespace {
struct Slot {
  void* p = nullptr;
  size_t cap = 0;
};
Slot g_slots[8];
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
/** Per-environment (main thread or worker) state: the JS allocator for uninitialised outputs. */
struct EnvData {
  Napi::FunctionReference alloc;
};
constexpr size_t kUninitMinBytes = size_t(64) << 10;
}  // namespace

void set_output_allocator(const Napi::Env& env, const Napi::Function& fn) {
  EnvData* d = env.GetInstanceData<EnvData>();
  if (d == nullptr) {
    d = new EnvData();
    env.SetInstanceData(d);  // deleted by Node when the environment is torn down
  }
  d->alloc = Napi::Persistent(fn);
}

// Kernel outputs are fully overwritten, so large ones come from the JS allocator registered by the
// loader (Buffer.allocUnsafeSlow: malloc, no zero-fill — calloc's memset of a recycled 16 MiB block is
// ~1.2 ms, 10–15% of a bf16 conv); small ones and environments without an allocator use V8's calloc.
Napi::Float32Array new_f32(const Napi::Env& env, size_t n) {
  const size_t bytes = n * sizeof(float);
  EnvData* d = bytes >= kUninitMinBytes ? env.GetInstanceData<EnvData>() : nullptr;
  if (d == nullptr || d->alloc.IsEmpty()) {
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

}  // namespace vilg
