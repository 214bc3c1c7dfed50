/* Softmax cross-entropy against class ids, and the AdamW update: one pass each. */
#include <math.h>

#include "kernels.h"
#include "vector_math.h"

float grove_softmax_cross_entropy(const float *logits, const int *targets, float *probabilities, size_t rows,
                                  size_t classes) {
  double total = 0.0;
  for (size_t row = 0; row < rows; row++) {
    const float *in = logits + row * classes;
    float *out = probabilities + row * classes;
    float largest = in[0];
    for (size_t j = 1; j < classes; j++) largest = in[j] > largest ? in[j] : largest;
    for (size_t j = 0; j < classes; j++) out[j] = grove_exp(in[j] - largest);
    const float sum = grove_sum_lanes(out, classes);
    const float inverse = 1.0f / sum;
    for (size_t j = 0; j < classes; j++) out[j] *= inverse;
    const int target = targets[row];
    if (target >= 0 && (size_t)target < classes) total += logf(sum) + largest - in[target];
  }
  return (float)(total / (double)rows);
}

void grove_softmax_cross_entropy_grad(const float *probabilities, const int *targets, float scale, float *dlogits,
                                      size_t rows, size_t classes) {
  for (size_t row = 0; row < rows; row++) {
    const float *p = probabilities + row * classes;
    float *out = dlogits + row * classes;
    for (size_t j = 0; j < classes; j++) out[j] = p[j] * scale;
    const int target = targets[row];
    if (target >= 0 && (size_t)target < classes) out[target] -= scale;
  }
}

void grove_adamw(const float *param, const float *grad, const float *m, const float *v, float *param_out,
                 float *m_out, float *v_out, size_t size, const grove_adamw_settings *s) {
  const float keep = 1.0f - s->learning_rate * s->decay;
  for (size_t i = 0; i < size; i++) {
    const float g = grad[i];
    const float first = s->beta1 * m[i] + (1.0f - s->beta1) * g;
    const float second = s->beta2 * v[i] + (1.0f - s->beta2) * g * g;
    const float update = (first / s->correction1) / (sqrtf(second / s->correction2) + s->epsilon);
    m_out[i] = first;
    v_out[i] = second;
    param_out[i] = param[i] * keep - s->learning_rate * update;
  }
}
