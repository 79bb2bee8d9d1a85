// Counts heap allocations made by the calling thread, by interposing malloc and friends in any
// executable this target is linked into. Used by tests and the benchmark to prove that the
// steady-state path allocates nothing.
#ifndef CMALLOC_COUNTER_H
#define CMALLOC_COUNTER_H
#include <stdint.h>

/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made so far
/// by the calling thread.
uint64_t gnet_thread_allocations(void);

#endif
