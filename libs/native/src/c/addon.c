/*
 * N-API entry points. Every call takes the wasm heap's ArrayBuffer, then byte offsets of
 * the tensors in it and their sizes; each region is checked to lie inside the buffer.
 */
#include <node_api.h>
#include <stdint.h>

#include "kernels.h"

#define MAX_NUMBERS 16

typedef struct {
  napi_env env;
  char *heap;
  size_t length;
  double n[MAX_NUMBERS];
} Call;

static int begin(napi_env env, napi_callback_info info, size_t numbers, Call *call) {
  napi_value argv[MAX_NUMBERS + 1];
  size_t argc = MAX_NUMBERS + 1;
  call->env = env;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != numbers + 1) {
    napi_throw_type_error(env, NULL, "wrong number of arguments to a native kernel");
    return 0;
  }
  void *data;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &call->length) != napi_ok) {
    napi_throw_type_error(env, NULL, "the first argument of a native kernel must be an ArrayBuffer");
    return 0;
  }
  call->heap = data;
  for (size_t i = 0; i < numbers; i++) {
    if (napi_get_value_double(env, argv[i + 1], &call->n[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "native kernel arguments after the buffer must be numbers");
      return 0;
    }
  }
  return 1;
}

static size_t count(const Call *call, int index) { return (size_t)call->n[index]; }

/* The 4-byte elements [offset, offset + elements) of the heap, or NULL with an exception pending. */
static void *region(Call *call, int index, size_t elements) {
  const double offset = call->n[index];
  if (offset < 0 || (uint64_t)offset % 4 != 0 || (size_t)offset + elements * 4 > call->length) {
    napi_throw_range_error(call->env, NULL, "a native kernel's tensor lies outside the wasm heap");
    return NULL;
  }
  return call->heap + (size_t)offset;
}

#define REGION(name, type, index, elements)                      \
  type *name = (type *)region(&call, index, (size_t)(elements)); \
  if (!name) return NULL

/* (heap, a, b, c, bias or -1, relu, batch, aStep, bStep, m, n, k, transposeA, transposeB) */
static napi_value matmul(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 13, &call)) return NULL;
  const size_t batch = count(&call, 5), a_step = count(&call, 6), b_step = count(&call, 7);
  const size_t m = count(&call, 8), n = count(&call, 9), k = count(&call, 10);
  const size_t a_batches = a_step ? batch : 1, b_batches = b_step ? batch : 1;
  REGION(a, const float, 0, a_batches * m * k);
  REGION(b, const float, 1, b_batches * k * n);
  REGION(c, float, 2, batch * m * n);
  const float *bias = NULL;
  if (call.n[3] >= 0) {
    REGION(given, const float, 3, n);
    bias = given;
  }
  grove_matmul(a, b, c, bias, call.n[4] != 0, batch, a_step, b_step, (int)m, (int)n, (int)k, call.n[11] != 0,
               call.n[12] != 0);
  return NULL;
}

/* (heap, x, out, outer, reduced, inner) */
static napi_value sum(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 5, &call)) return NULL;
  const size_t outer = count(&call, 2), reduced = count(&call, 3), inner = count(&call, 4);
  REGION(x, const float, 0, outer * reduced * inner);
  REGION(out, float, 1, outer * inner);
  grove_sum(x, out, outer, reduced, inner);
  return NULL;
}

/* (heap, table, ids, out, count, rows, width) */
static napi_value gather_rows(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 6, &call)) return NULL;
  const size_t n = count(&call, 3), rows = count(&call, 4), width = count(&call, 5);
  REGION(table, const float, 0, rows * width);
  REGION(ids, const int, 1, n);
  REGION(out, float, 2, n * width);
  grove_gather_rows(table, ids, out, n, rows, width);
  return NULL;
}

/* (heap, x, segments, out, count, segmentCount, width) */
static napi_value segment_sum_rows(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 6, &call)) return NULL;
  const size_t n = count(&call, 3), segments = count(&call, 4), width = count(&call, 5);
  REGION(x, const float, 0, n * width);
  REGION(ids, const int, 1, n);
  REGION(out, float, 2, segments * width);
  grove_segment_sum_rows(x, ids, out, n, segments, width);
  return NULL;
}

/* (heap, x, weight, y, rows, width, epsilon) */
static napi_value rms_norm(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 6, &call)) return NULL;
  const size_t rows = count(&call, 3), width = count(&call, 4);
  REGION(x, const float, 0, rows * width);
  REGION(weight, const float, 1, width);
  REGION(y, float, 2, rows * width);
  grove_rms_norm(x, weight, y, rows, width, (float)call.n[5]);
  return NULL;
}

/* (heap, dy, x, weight, dx, dweight, rows, width, epsilon) */
static napi_value rms_norm_grad(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 8, &call)) return NULL;
  const size_t rows = count(&call, 5), width = count(&call, 6);
  REGION(dy, const float, 0, rows * width);
  REGION(x, const float, 1, rows * width);
  REGION(weight, const float, 2, width);
  REGION(dx, float, 3, rows * width);
  REGION(dweight, float, 4, width);
  grove_rms_norm_grad(dy, x, weight, dx, dweight, rows, width, (float)call.n[7]);
  return NULL;
}

/* (heap, x, y, size) */
static napi_value gelu(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 3, &call)) return NULL;
  REGION(x, const float, 0, count(&call, 2));
  REGION(y, float, 1, count(&call, 2));
  grove_gelu(x, y, count(&call, 2));
  return NULL;
}

/* (heap, dy, x, dx, size) */
static napi_value gelu_grad(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 4, &call)) return NULL;
  const size_t size = count(&call, 3);
  REGION(dy, const float, 0, size);
  REGION(x, const float, 1, size);
  REGION(dx, float, 2, size);
  grove_gelu_grad(dy, x, dx, size);
  return NULL;
}

/* (heap, x, cos, sin, y, rows, length, heads, headWidth, inverse) */
static napi_value rotary(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 9, &call)) return NULL;
  const size_t rows = count(&call, 4), length = count(&call, 5), heads = count(&call, 6), d = count(&call, 7);
  REGION(x, const float, 0, rows * heads * d);
  REGION(cos, const float, 1, length * d);
  REGION(sin, const float, 2, length * d);
  REGION(y, float, 3, rows * heads * d);
  grove_rotary(x, cos, sin, y, rows, length, heads, d, call.n[8] != 0);
  return NULL;
}

/* (heap, q, k, v, out, probabilities, batch, length, heads, headWidth, scale) */
static napi_value attention(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 10, &call)) return NULL;
  const size_t batch = count(&call, 5), length = count(&call, 6), heads = count(&call, 7), d = count(&call, 8);
  const size_t size = batch * length * heads * d;
  REGION(q, const float, 0, size);
  REGION(k, const float, 1, size);
  REGION(v, const float, 2, size);
  REGION(out, float, 3, size);
  REGION(p, float, 4, batch * heads * length * length);
  grove_attention(q, k, v, out, p, batch, length, heads, d, (float)call.n[9]);
  return NULL;
}

/* (heap, q, k, v, probabilities, dout, dq, dk, dv, batch, length, heads, headWidth, scale) */
static napi_value attention_grad(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 13, &call)) return NULL;
  const size_t batch = count(&call, 8), length = count(&call, 9), heads = count(&call, 10), d = count(&call, 11);
  const size_t size = batch * length * heads * d;
  REGION(q, const float, 0, size);
  REGION(k, const float, 1, size);
  REGION(v, const float, 2, size);
  REGION(p, const float, 3, batch * heads * length * length);
  REGION(dout, const float, 4, size);
  REGION(dq, float, 5, size);
  REGION(dk, float, 6, size);
  REGION(dv, float, 7, size);
  if (!grove_attention_grad(q, k, v, p, dout, dq, dk, dv, batch, length, heads, d, (float)call.n[12])) {
    napi_throw_error(env, NULL, "out of memory in the attention gradient");
    return NULL;
  }
  return NULL;
}

/* (heap, logits, targets, probabilities, rows, classes) → mean loss */
static napi_value softmax_cross_entropy(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 5, &call)) return NULL;
  const size_t rows = count(&call, 3), classes = count(&call, 4);
  REGION(logits, const float, 0, rows * classes);
  REGION(targets, const int, 1, rows);
  REGION(p, float, 2, rows * classes);
  napi_value result;
  napi_create_double(env, grove_softmax_cross_entropy(logits, targets, p, rows, classes), &result);
  return result;
}

/* (heap, probabilities, targets, dlogits, rows, classes, scale) */
static napi_value softmax_cross_entropy_grad(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 6, &call)) return NULL;
  const size_t rows = count(&call, 3), classes = count(&call, 4);
  REGION(p, const float, 0, rows * classes);
  REGION(targets, const int, 1, rows);
  REGION(dlogits, float, 2, rows * classes);
  grove_softmax_cross_entropy_grad(p, targets, (float)call.n[5], dlogits, rows, classes);
  return NULL;
}

/* (heap, param, grad, m, v, paramOut, mOut, vOut, size, lr, beta1, beta2, epsilon, decay, correction1, correction2) */
static napi_value adamw(napi_env env, napi_callback_info info) {
  Call call;
  if (!begin(env, info, 15, &call)) return NULL;
  const size_t size = count(&call, 7);
  REGION(param, const float, 0, size);
  REGION(grad, const float, 1, size);
  REGION(m, const float, 2, size);
  REGION(v, const float, 3, size);
  REGION(param_out, float, 4, size);
  REGION(m_out, float, 5, size);
  REGION(v_out, float, 6, size);
  const grove_adamw_settings settings = {(float)call.n[8],  (float)call.n[9],  (float)call.n[10], (float)call.n[11],
                                         (float)call.n[12], (float)call.n[13], (float)call.n[14]};
  grove_adamw(param, grad, m, v, param_out, m_out, v_out, size, &settings);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  int32_t threads = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || napi_get_value_int32(env, argv[0], &threads) != napi_ok || threads < 1) {
    napi_throw_type_error(env, NULL, "setThreads takes a positive integer");
    return NULL;
  }
  grove_set_blas_threads(threads);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor functions[] = {
      {"matmul", NULL, matmul, NULL, NULL, NULL, napi_default, NULL},
      {"sum", NULL, sum, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, gather_rows, NULL, NULL, NULL, napi_default, NULL},
      {"segmentSumRows", NULL, segment_sum_rows, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNorm", NULL, rms_norm, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNormGrad", NULL, rms_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"rotary", NULL, rotary, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, attention, NULL, NULL, NULL, napi_default, NULL},
      {"attentionGrad", NULL, attention_grad, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxCrossEntropy", NULL, softmax_cross_entropy, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxCrossEntropyGrad", NULL, softmax_cross_entropy_grad, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, adamw, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(functions) / sizeof(functions[0]), functions);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
