/* Sums over a contiguous block of axes, in a fixed order so results repeat exactly. */
#include "kernels.h"
#include "vector_math.h"

void grove_sum(const float *x, float *out, size_t outer, size_t reduced, size_t inner) {
  if (inner == 1) {
    for (size_t o = 0; o < outer; o++) out[o] = grove_sum_lanes(x + o * reduced, reduced);
    return;
  }
  for (size_t o = 0; o < outer; o++) {
    float *row = out + o * inner;
    const float *block = x + o * reduced * inner;
    for (size_t i = 0; i < inner; i++) row[i] = 0.0f;
    for (size_t r = 0; r < reduced; r++)
      for (size_t i = 0; i < inner; i++) row[i] += block[r * inner + i];
  }
}
