/* Row lookups and their gradient: an embedding table's gather and segment sum. */
#include <string.h>

#include "kernels.h"

void grove_gather_rows(const float *table, const int *ids, float *out, size_t count, size_t rows, size_t width) {
  for (size_t i = 0; i < count; i++) {
    const int id = ids[i];
    if (id >= 0 && (size_t)id < rows) memcpy(out + i * width, table + (size_t)id * width, width * sizeof(float));
    else memset(out + i * width, 0, width * sizeof(float));
  }
}

void grove_segment_sum_rows(const float *x, const int *segments, float *out, size_t count, size_t segment_count,
                            size_t width) {
  memset(out, 0, segment_count * width * sizeof(float));
  for (size_t i = 0; i < count; i++) {
    const int segment = segments[i];
    if (segment < 0 || (size_t)segment >= segment_count) continue;
    float *to = out + (size_t)segment * width;
    const float *from = x + i * width;
    for (size_t j = 0; j < width; j++) to[j] += from[j];
  }
}
