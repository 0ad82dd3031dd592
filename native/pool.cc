// The output pool (see pool.h). Layout: each size class (4 per power of two, from 4 KiB) carves its blocks
// from slabs — 2 MiB-aligned mappings of a few huge pages, sized so that at most 1/8 is left over — and
// keeps released blocks on a LIFO list (the most recently used memory is the warmest). One global LRU list
// over all warm blocks picks what to evict when the cached bytes pass the cap: a single-block slab is
// unmapped, a block sharing its slab is discarded (MADV_DONTNEED: address kept, memory returned) and
// reused later as a "cold" block; a slab whose carved blocks are all cold is unmapped.
#include "pool.h"

#include <cstdlib>
#include <mutex>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define VILG_POOL_MMAP 1
#endif

namespace vilg {
namespace pool {

namespace {

constexpr size_t kHuge = size_t(2) << 20;
constexpr int kMinShift = 12;                 // log2(kMinBytes)
constexpr int kMaxShift = 50;                 // requests up to 2^50 bytes (kernels cap sizes far lower)
constexpr int kClasses = (kMaxShift + 1 - kMinShift) * 4 + 1;
constexpr size_t kSingleBlockFrom = size_t(16) << 20;  // classes this large get a slab each
static_assert((size_t(1) << kMinShift) == kMinBytes, "kMinShift must match kMinBytes");

struct Slab;

}  // namespace

struct Link {
  Block* prev = nullptr;
  Block* next = nullptr;
};

struct Block {
  char* data = nullptr;
  Slab* slab = nullptr;
  int cls = 0;
  Link in_class;  // its class's warm or cold list
  Link in_lru;    // the global LRU list of warm blocks
};

namespace {

/** An intrusive doubly linked list through the Link member L (no allocation: safe in a deleter). */
template <Link Block::*L>
struct List {
  Block* head = nullptr;
  Block* tail = nullptr;
  bool empty() const { return head == nullptr; }
  void push_front(Block* b) {
    Link& l = b->*L;
    l.prev = nullptr;
    l.next = head;
    if (head != nullptr) (head->*L).prev = b; else tail = b;
    head = b;
  }
  void remove(Block* b) {
    Link& l = b->*L;
    if (l.prev != nullptr) (l.prev->*L).next = l.next; else head = l.next;
    if (l.next != nullptr) (l.next->*L).prev = l.prev; else tail = l.prev;
    l.prev = l.next = nullptr;
  }
  Block* pop_front() {
    Block* b = head;
    if (b != nullptr) remove(b);
    return b;
  }
};

struct Slab {
  char* base = nullptr;
  size_t bytes = 0;
  uint32_t nblocks = 0, carved = 0, cold = 0;
  Block* blocks = nullptr;  // nblocks entries, block i at base + i × class size
};

struct Class {
  List<&Block::in_class> warm, cold;
  Slab* carving = nullptr;  // the slab new blocks are carved from
};

struct State {
  std::mutex mu;
  Class classes[kClasses];
  List<&Block::in_lru> lru;  // warm blocks, most recently released first
  size_t live = 0, cached = 0, mapped = 0, cap = default_max_cached();
  uint64_t hits = 0, misses = 0, evictions = 0;
};

// Never destroyed: V8 may run BackingStore deleters while the process tears down isolates.
State& state() {
  static State* s = new State();
  return *s;
}

size_t class_size(int cls) {
  const size_t base = size_t(1) << (cls / 4 + kMinShift);
  return base + (base / 4) * static_cast<size_t>(cls % 4);
}

/** The class of a request: sizes 2^k × {1, 1.25, 1.5, 1.75}, at most 25% over the request. */
int class_of(size_t bytes) {
  if (bytes < kMinBytes) bytes = kMinBytes;
  int k = 63 - __builtin_clzll(static_cast<unsigned long long>(bytes));
  const size_t base = size_t(1) << k, step = base / 4;
  size_t q = (bytes - base + step - 1) / step;
  if (q == 4) {
    k++;
    q = 0;
  }
  return (k - kMinShift) * 4 + static_cast<int>(q);
}

/**
 * Slab bytes (a multiple of 2 MiB) and blocks per slab for block size s: the fewest huge pages that waste
 * at most 1/8 (always found by 16 × 2 MiB for s < 16 MiB, since the leftover is under one block).
 */
void geometry(size_t s, size_t* bytes, uint32_t* nblocks) {
  size_t m = (s + kHuge - 1) & ~(kHuge - 1);
  if (s < kSingleBlockFrom) {
    for (m = kHuge; m < 16 * kHuge; m += kHuge) {
      if ((m - (m / s) * s) * 8 <= m && m >= s) break;
    }
  }
  *bytes = m;
  *nblocks = static_cast<uint32_t>(m / s);
}

/** `bytes` (a multiple of 2 MiB) of 2 MiB-aligned, huge-page-advised memory, or nullptr. */
char* os_map(size_t bytes) {
#if defined(VILG_POOL_MMAP)
  const size_t len = bytes + kHuge;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kHuge - 1) & ~(uintptr_t(kHuge) - 1);
  const size_t head = aligned - start, tail = len - head - bytes;
  if (head > 0) munmap(p, head);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
#if defined(MADV_HUGEPAGE)
  madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
#endif
  return reinterpret_cast<char*>(aligned);
#else
  return static_cast<char*>(std::aligned_alloc(kHuge, bytes));
#endif
}

void os_unmap(char* p, size_t bytes) {
#if defined(VILG_POOL_MMAP)
  munmap(p, bytes);
#else
  std::free(p);
#endif
}

/** Returns the whole pages inside [p, p + bytes) to the OS, keeping the addresses. */
void os_discard(char* p, size_t bytes) {
#if defined(VILG_POOL_MMAP)
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  if (hi <= lo) return;
#if defined(MADV_DONTNEED)
  madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
#endif
#else
  (void)p;
  (void)bytes;
#endif
}

Slab* new_slab(int cls) {
  const size_t s = class_size(cls);
  Slab* slab = new (std::nothrow) Slab();
  if (slab == nullptr) return nullptr;
  geometry(s, &slab->bytes, &slab->nblocks);
  slab->blocks = new (std::nothrow) Block[slab->nblocks];
  slab->base = slab->blocks != nullptr ? os_map(slab->bytes) : nullptr;
  if (slab->base == nullptr) {
    delete[] slab->blocks;
    delete slab;
    return nullptr;
  }
  for (uint32_t i = 0; i < slab->nblocks; i++) {
    slab->blocks[i].data = slab->base + static_cast<size_t>(i) * s;
    slab->blocks[i].slab = slab;
    slab->blocks[i].cls = cls;
  }
  return slab;
}

void drop_slab(State& st, Class& k, Slab* slab) {
  if (k.carving == slab) k.carving = nullptr;
  st.mapped -= slab->bytes;
  os_unmap(slab->base, slab->bytes);
  delete[] slab->blocks;
  delete slab;
}

/** Releases the least recently returned warm block to the OS (see the header comment). */
void evict(State& st, Block* b) {
  const size_t s = class_size(b->cls);
  Class& k = st.classes[b->cls];
  Slab* slab = b->slab;
  st.lru.remove(b);
  k.warm.remove(b);
  st.cached -= s;
  st.evictions++;
  if (slab->cold + 1 == slab->carved) {  // its last warm or live block: drop the whole slab
    for (uint32_t i = 0; i < slab->carved; i++) {
      if (&slab->blocks[i] != b) k.cold.remove(&slab->blocks[i]);
    }
    drop_slab(st, k, slab);
    return;
  }
  os_discard(b->data, s);
  k.cold.push_front(b);
  slab->cold++;
}

void trim(State& st) {
  while (st.cached > st.cap && !st.lru.empty()) evict(st, st.lru.tail);
}

}  // namespace

Block* acquire(size_t bytes) {
  if (bytes > (size_t(1) << kMaxShift)) return nullptr;
  const int cls = class_of(bytes);
  const size_t s = class_size(cls);
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  Class& k = st.classes[cls];
  Block* b = k.warm.pop_front();
  if (b != nullptr) {
    st.lru.remove(b);
    st.cached -= s;
    st.hits++;
  } else {
    b = k.cold.pop_front();
    if (b != nullptr) {
      b->slab->cold--;
    } else {
      if (k.carving == nullptr || k.carving->carved == k.carving->nblocks) {
        Slab* slab = new_slab(cls);
        if (slab == nullptr) return nullptr;
        k.carving = slab;
        st.mapped += slab->bytes;
      }
      b = &k.carving->blocks[k.carving->carved++];
    }
    st.misses++;
  }
  st.live += s;
  return b;
}

void* data(const Block* b) { return b->data; }

void release(Block* b) noexcept {
  const size_t s = class_size(b->cls);
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  st.live -= s;
  st.classes[b->cls].warm.push_front(b);
  st.lru.push_front(b);
  st.cached += s;
  trim(st);
}

Stats stats() {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  return {st.live, st.cached, st.mapped, st.cap, st.hits, st.misses, st.evictions};
}

void set_max_cached(size_t bytes) {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  st.cap = bytes;
  trim(st);
}

size_t default_max_cached() {
  constexpr size_t kDefault = size_t(512) << 20;
#if defined(VILG_POOL_MMAP) && defined(_SC_PHYS_PAGES)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    const size_t eighth = static_cast<size_t>(pages) * static_cast<size_t>(page) / 8;
    return eighth < kDefault ? eighth : kDefault;
  }
#endif
  return kDefault;
}

}  // namespace pool
}  // namespace vilg
