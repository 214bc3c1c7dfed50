/*
 * Causal multi-head attention straight from the [rows, heads·head_width] layout of the
 * projections: each head is a column block, reached through sgemm's leading dimension,
 * so no head is ever transposed or copied. Scores, mask and softmax are one pass.
 */
#include <cblas.h>
#include <stdlib.h>

#include "kernels.h"
#include "vector_math.h"

/* Softmax of row `row` over columns 0..row; the masked columns are exactly 0. */
static void causal_softmax_row(float *scores, size_t row, size_t length) {
  float largest = scores[0];
  for (size_t j = 1; j <= row; j++) largest = scores[j] > largest ? scores[j] : largest;
  for (size_t j = 0; j <= row; j++) scores[j] = grove_exp(scores[j] - largest);
  const float inverse = 1.0f / grove_sum_lanes(scores, row + 1);
  for (size_t j = 0; j <= row; j++) scores[j] *= inverse;
  for (size_t j = row + 1; j < length; j++) scores[j] = 0.0f;
}

void grove_attention(const float *q, const float *k, const float *v, float *out, float *probabilities,
                     size_t batch, size_t length, size_t heads, size_t head_width, float scale) {
  const int T = (int)length, d = (int)head_width, width = (int)(heads * head_width);
  for (size_t b = 0; b < batch; b++) {
    for (size_t h = 0; h < heads; h++) {
      const size_t at = b * length * width + h * head_width;
      float *p = probabilities + (b * heads + h) * length * length;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d, scale, q + at, width, k + at, width, 0.0f, p, T);
      for (size_t row = 0; row < length; row++) causal_softmax_row(p + row * length, row, length);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, T, 1.0f, p, T, v + at, width, 0.0f, out + at,
                  width);
    }
  }
}

/* dS = P ⊙ (dP − rowsum(dP ⊙ P)) with dP = dO·Vᵀ; dQ = s·dS·K, dK = s·dSᵀ·Q, dV = Pᵀ·dO. */
int grove_attention_grad(const float *q, const float *k, const float *v, const float *probabilities,
                         const float *dout, float *dq, float *dk, float *dv, size_t batch, size_t length,
                         size_t heads, size_t head_width, float scale) {
  const int T = (int)length, d = (int)head_width, width = (int)(heads * head_width);
  float *ds = malloc(length * length * sizeof(float));
  if (!ds) return 0;
  for (size_t b = 0; b < batch; b++) {
    for (size_t h = 0; h < heads; h++) {
      const size_t at = b * length * width + h * head_width;
      const float *p = probabilities + (b * heads + h) * length * length;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d, 1.0f, dout + at, width, v + at, width, 0.0f, ds,
                  T);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, d, T, 1.0f, p, T, dout + at, width, 0.0f, dv + at,
                  width);
      for (size_t row = 0; row < length; row++) {
        float *grad = ds + row * length;
        const float *prob = p + row * length;
        const float dot = grove_dot_lanes(grad, prob, row + 1);
        for (size_t j = 0; j <= row; j++) grad[j] = prob[j] * (grad[j] - dot);
        for (size_t j = row + 1; j < length; j++) grad[j] = 0.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, T, scale, ds, T, k + at, width, 0.0f, dq + at,
                  width);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, d, T, scale, ds, T, q + at, width, 0.0f, dk + at,
                  width);
    }
  }
  free(ds);
  return 1;
}

/*
 * y = x⊙cos + rotate_half(x)⊙sin per head, rotate_half(x) = [−x₂, x₁]. The map is linear,
 * so its gradient is its transpose: dx = dy⊙cos + rotate_halfᵀ(dy⊙sin), rotate_halfᵀ(u) = [u₂, −u₁].
 */
void grove_rotary(const float *x, const float *cos, const float *sin, float *y, size_t rows, size_t length,
                  size_t heads, size_t head_width, int inverse) {
  const size_t half = head_width / 2, width = heads * head_width;
  for (size_t row = 0; row < rows; row++) {
    const float *c = cos + (row % length) * head_width;
    const float *s = sin + (row % length) * head_width;
    for (size_t h = 0; h < heads; h++) {
      const float *in = x + row * width + h * head_width;
      float *out = y + row * width + h * head_width;
      for (size_t i = 0; i < half; i++) {
        const float first = in[i], second = in[i + half];
        if (inverse) {
          out[i] = first * c[i] + second * s[i + half];
          out[i + half] = second * c[i + half] - first * s[i];
        } else {
          out[i] = first * c[i] - second * s[i];
          out[i + half] = second * c[i + half] + first * s[i + half];
        }
      }
    }
  }
}
