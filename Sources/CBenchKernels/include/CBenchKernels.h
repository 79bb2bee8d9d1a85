// Straightforward C loops the benchmark compares Gnet's Swift code against.
#ifndef CBENCH_KERNELS_H
#define CBENCH_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Walks `len` bytes of frames with a 4-byte big-endian length field followed by that many
/// payload bytes; returns the number of whole frames and adds each frame's first payload byte
/// and payload length to `*checksum`.
size_t gnet_c_decode_length_field(const uint8_t *buf, size_t len, uint64_t *checksum);

#endif
