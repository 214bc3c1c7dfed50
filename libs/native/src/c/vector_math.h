/*
 * exp and sums written so the compiler vectorises them (no libm call, no branch, a fixed
 * lane order): the same inputs give the same bits on every run.
 */
#ifndef GROVE_VECTOR_MATH_H
#define GROVE_VECTOR_MATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* e^x to about 2 ulp over the float range (Cephes' expf polynomial after 2^n range reduction). */
static inline float grove_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  /* Round x·log2(e) to the nearest integer by the 1.5·2²³ trick: plain arithmetic, so it vectorises. */
  const float n = (x * 1.44269504089f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float mantissa = p * r * r + r + 1.0f;
  const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return mantissa * scale;
}

#define GROVE_LANES 8

/* Σ x[i] in eight interleaved partial sums, added in a fixed order. */
static inline float grove_sum_lanes(const float *x, size_t count) {
  float partial[GROVE_LANES] = {0};
  size_t i = 0;
  for (; i + GROVE_LANES <= count; i += GROVE_LANES)
    for (int lane = 0; lane < GROVE_LANES; lane++) partial[lane] += x[i + lane];
  float total = 0.0f;
  for (; i < count; i++) total += x[i];
  for (int lane = 0; lane < GROVE_LANES; lane++) total += partial[lane];
  return total;
}

/* Σ x[i]·y[i], the same way. */
static inline float grove_dot_lanes(const float *x, const float *y, size_t count) {
  float partial[GROVE_LANES] = {0};
  size_t i = 0;
  for (; i + GROVE_LANES <= count; i += GROVE_LANES)
    for (int lane = 0; lane < GROVE_LANES; lane++) partial[lane] += x[i + lane] * y[i + lane];
  float total = 0.0f;
  for (; i < count; i++) total += x[i] * y[i];
  for (int lane = 0; lane < GROVE_LANES; lane++) total += partial[lane];
  return total;
}

#endif
