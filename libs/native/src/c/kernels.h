/* Float32 kernels over caller-owned memory (the wasm backend's heap). Row-major throughout. */
#ifndef GROVE_KERNELS_H
#define GROVE_KERNELS_H

#include <stddef.h>

/* c[i] = op(a[i]) · op(b[i]) (+ bias per column, then ReLU when asked) for i < batch; a step of 0 broadcasts. */
void grove_matmul(const float *a, const float *b, float *c, const float *bias, int relu, size_t batch,
                  size_t a_step, size_t b_step, int m, int n, int k, int transpose_a, int transpose_b);

/* out[o, i] = Σ_r x[o, r, i]: any contiguous block of reduced axes. */
void grove_sum(const float *x, float *out, size_t outer, size_t reduced, size_t inner);

/* out[i] = table[ids[i]] (zeros for an id out of range); the gradient sums rows into their segments. */
void grove_gather_rows(const float *table, const int *ids, float *out, size_t count, size_t rows, size_t width);
void grove_segment_sum_rows(const float *x, const int *segments, float *out, size_t count, size_t segment_count,
                            size_t width);

void grove_rms_norm(const float *x, const float *weight, float *y, size_t rows, size_t width, float epsilon);
void grove_rms_norm_grad(const float *dy, const float *x, const float *weight, float *dx, float *dweight,
                         size_t rows, size_t width, float epsilon);

void grove_gelu(const float *x, float *y, size_t size);
void grove_gelu_grad(const float *dy, const float *x, float *dx, size_t size);

/* Rotary phases on x [batch·length, heads·head_width]; `inverse` applies the transpose (the gradient). */
void grove_rotary(const float *x, const float *cos, const float *sin, float *y, size_t rows, size_t length,
                  size_t heads, size_t head_width, int inverse);

/* Causal attention on q, k, v [batch·length, heads·head_width], heads side by side in the columns. */
void grove_attention(const float *q, const float *k, const float *v, float *out, float *probabilities,
                     size_t batch, size_t length, size_t heads, size_t head_width, float scale);
/* Returns 0 when scratch memory could not be had. */
int grove_attention_grad(const float *q, const float *k, const float *v, const float *probabilities,
                         const float *dout, float *dq, float *dk, float *dv, size_t batch, size_t length,
                         size_t heads, size_t head_width, float scale);

/* Mean cross-entropy of logits [rows, classes] against class ids; writes the softmax too. */
float grove_softmax_cross_entropy(const float *logits, const int *targets, float *probabilities, size_t rows,
                                  size_t classes);
void grove_softmax_cross_entropy_grad(const float *probabilities, const int *targets, float scale, float *dlogits,
                                      size_t rows, size_t classes);

typedef struct {
  float learning_rate, beta1, beta2, epsilon, decay, correction1, correction2;
} grove_adamw_settings;
void grove_adamw(const float *param, const float *grad, const float *m, const float *v, float *param_out,
                 float *m_out, float *v_out, size_t size, const grove_adamw_settings *settings);

void grove_set_blas_threads(int threads);

#endif
