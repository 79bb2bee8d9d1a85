#include "CBenchKernels.h"

size_t gnet_c_decode_length_field(const uint8_t *buf, size_t len, uint64_t *checksum) {
    size_t off = 0, frames = 0;
    uint64_t sum = 0;
    while (off + 4 <= len) {
        uint32_t n = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 | (uint32_t)buf[off + 2] << 8 | buf[off + 3];
        if (n > 16u << 20) break;                      /* the same maximum as Gnet's default */
        if (off + 4 + n > len) break;
        sum += (n ? buf[off + 4] : 0) + n;
        off += 4 + (size_t)n;
        frames++;
    }
    *checksum += sum;
    return frames;
}
