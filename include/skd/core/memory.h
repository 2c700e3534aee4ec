// Host memory: the C library allocator's settings for tensor workloads.
#pragma once

namespace skd {

// glibc's malloc serves blocks above its mmap threshold (dynamic, 128 KB at start) from fresh
// mmap()s that are unmapped again on free, so every large CPU tensor of every step page-faults its
// memory in anew (measured: up to a third of WPAC's statistics pass in the kernel). This fixes the
// threshold at its 32 MB maximum and keeps freed memory for reuse (trim threshold 1 GB, top pad
// 256 MB). Call once at start, before large allocations; MALLOC_MMAP_THRESHOLD_ /
// MALLOC_TRIM_THRESHOLD_ / MALLOC_TOP_PAD_ set in the environment win. Nothing on other C libraries.
void tune_host_allocator();

}  // namespace skd
