/* Sums over a contiguous block of axes, in a fixed order so results repeat exactly. */
#include "kernels.h"

#define LANES 8

static float sum_contiguous(const float *x, size_t count) {
  float partial[LANES] = {0};
  size_t i = 0;
  for (; i + LANES <= count; i += LANES)
    for (int lane = 0; lane < LANES; lane++) partial[lane] += x[i + lane];
  float total = 0.0f;
  for (; i < count; i++) total += x[i];
  for (int lane = 0; lane < LANES; lane++) total += partial[lane];
  return total;
}

void grove_sum(const float *x, float *out, size_t outer, size_t reduced, size_t inner) {
  if (inner == 1) {
    for (size_t o = 0; o < outer; o++) out[o] = sum_contiguous(x + o * reduced, reduced);
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
