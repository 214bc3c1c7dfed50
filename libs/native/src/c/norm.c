/* RMSNorm and GELU (sigmoid form) with their gradients, one pass each. */
#include <math.h>

#include "kernels.h"
#include "vector_math.h"

static float inverse_rms(const float *x, size_t width, float epsilon) {
  return 1.0f / sqrtf(grove_dot_lanes(x, x, width) / (float)width + epsilon);
}

void grove_rms_norm(const float *x, const float *weight, float *y, size_t rows, size_t width, float epsilon) {
  for (size_t row = 0; row < rows; row++) {
    const float *in = x + row * width;
    float *out = y + row * width;
    const float scale = inverse_rms(in, width, epsilon);
    for (size_t i = 0; i < width; i++) out[i] = in[i] * scale * weight[i];
  }
}

/* With r = 1/rms(x) and g = dy·w: dx = r·g − r³·x·mean(g·x), dw = Σ_rows dy·x·r. */
void grove_rms_norm_grad(const float *dy, const float *x, const float *weight, float *dx, float *dweight,
                         size_t rows, size_t width, float epsilon) {
  for (size_t i = 0; i < width; i++) dweight[i] = 0.0f;
  for (size_t row = 0; row < rows; row++) {
    const float *in = x + row * width;
    const float *grad = dy + row * width;
    float *out = dx + row * width;
    const float r = inverse_rms(in, width, epsilon);
    float partial[GROVE_LANES] = {0};
    size_t i = 0;
    for (; i + GROVE_LANES <= width; i += GROVE_LANES)
      for (int lane = 0; lane < GROVE_LANES; lane++) partial[lane] += grad[i + lane] * weight[i + lane] * in[i + lane];
    float dot = 0.0f;
    for (; i < width; i++) dot += grad[i] * weight[i] * in[i];
    for (int lane = 0; lane < GROVE_LANES; lane++) dot += partial[lane];
    const float correction = r * r * r * dot / (float)width;
    for (size_t i = 0; i < width; i++) {
      out[i] = r * grad[i] * weight[i] - correction * in[i];
      dweight[i] += grad[i] * in[i] * r;
    }
  }
}

#define GELU_SCALE 1.702f

static inline float sigmoid(float x) { return 1.0f / (1.0f + grove_exp(-x)); }

void grove_gelu(const float *x, float *y, size_t size) {
  for (size_t i = 0; i < size; i++) y[i] = x[i] * sigmoid(GELU_SCALE * x[i]);
}

/* d/dx x·σ(ax) = σ + a·x·σ·(1 − σ) */
void grove_gelu_grad(const float *dy, const float *x, float *dx, size_t size) {
  for (size_t i = 0; i < size; i++) {
    const float gate = sigmoid(GELU_SCALE * x[i]);
    dx[i] = dy[i] * (gate + GELU_SCALE * x[i] * gate * (1.0f - gate));
  }
}
