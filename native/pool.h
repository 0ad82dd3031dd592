// The output pool: size-classed blocks of memory that stay mapped (and faulted in) between kernel calls.
//
// Why: a kernel output is a new ArrayBuffer each call, and V8 frees dead ones only at GC (roughly every
// 64 MB of new ArrayBuffer memory). Fresh memory costs a page fault per 4 KiB page on first touch, ~13 µs
// on our VMs — a 1 MiB output faults for ~3 ms, 4× the 512³ matmul that fills it. The pool hands out
// blocks that were touched before, and carves new ones from 2 MiB-aligned slabs advised for transparent
// huge pages, whose first touch costs ~0.3 µs per 4 KiB instead.
//
// Blocks go back to the pool from V8's BackingStore deleter, which runs on whatever thread sweeps the
// ArrayBuffer (usually a GC helper thread): everything here is under one mutex and never calls into V8.
// Warm (cached) bytes are capped; over the cap the least recently returned blocks are released to the OS.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vilg {
namespace pool {

/** Smallest request the pool serves; smaller outputs stay on V8's own (zero-filled) allocation. */
constexpr size_t kMinBytes = size_t(4) << 10;

struct Block;

/**
 * A block of at least `bytes` bytes (64-byte aligned; contents undefined). Returns nullptr when the pool
 * cannot map memory, and the caller falls back to another allocator.
 */
Block* acquire(size_t bytes);
/** The block's memory. */
void* data(const Block* b);
/** Gives a block back (its memory may be handed out again at once). Safe from any thread. */
void release(Block* b) noexcept;

struct Stats {
  size_t live_bytes;    // blocks handed out and not yet released (class-rounded sizes)
  size_t cached_bytes;  // released blocks kept mapped and warm for reuse
  size_t mapped_bytes;  // address space the pool holds (slabs, including never-carved tails)
  size_t max_cached_bytes;
  uint64_t hits;       // requests served by a warm block
  uint64_t misses;     // requests that needed a new or discarded block
  uint64_t evictions;  // warm blocks released to the OS to respect the cap
};
Stats stats();

/** Caps the warm cached bytes, evicting at once when over. 0 keeps nothing cached. */
void set_max_cached(size_t bytes);
/** The default cap: min(512 MiB, physical memory / 8). */
size_t default_max_cached();

}  // namespace pool
}  // namespace vilg
