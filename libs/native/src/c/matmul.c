/* Matrix products through OpenBLAS: transposes are sgemm flags, never copies. */
#include <cblas.h>

#include "kernels.h"

void grove_matmul(const float *a, const float *b, float *c, const float *bias, int relu, size_t batch,
                  size_t a_step, size_t b_step, int m, int n, int k, int transpose_a, int transpose_b) {
  const int lda = transpose_a ? m : k;
  const int ldb = transpose_b ? k : n;
  for (size_t i = 0; i < batch; i++) {
    float *out = c + i * (size_t)m * n;
    float beta = 0.0f;
    if (bias) {
      for (int row = 0; row < m; row++)
        for (int col = 0; col < n; col++) out[(size_t)row * n + col] = bias[col];
      beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans, m,
                n, k, 1.0f, a + i * a_step, lda, b + i * b_step, ldb, beta, out, n);
    if (relu)
      for (size_t j = 0; j < (size_t)m * n; j++) out[j] = out[j] > 0.0f ? out[j] : 0.0f;
  }
}

void grove_set_blas_threads(int threads) { openblas_set_num_threads(threads); }
