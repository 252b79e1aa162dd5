// Elementwise kernels: binary ops with broadcasting, unary ops (activations included) and
// their gradients, fused SwiGLU. Op codes are shared with src/engine/backends/native.
#include "common.h"
#include "vmath.h"
#include <algorithm>
#include <cmath>

using namespace sw;

namespace {

enum Binary { ADD = 0, SUB = 1, MUL = 2, DIV = 3, MAX = 4, MIN = 5, EQ = 6 };
enum Unary {
  NEG = 0, EXP = 1, LOG = 2, SQRT = 3, RSQRT = 4, TANH = 5, SIGMOID = 6, RELU = 7, ABS = 8, SQUARE = 9,
  GELU_TANH = 10, GELU_ERF = 11, SILU = 12, AFFINE = 13, POW = 14, RECIPROCAL = 15
};

template <int OP>
inline float binop(float x, float y) {
  if constexpr (OP == ADD) return x + y;
  else if constexpr (OP == SUB) return x - y;
  else if constexpr (OP == MUL) return x * y;
  else if constexpr (OP == DIV) return x / y;
  else if constexpr (OP == MAX) return x > y || std::isnan(x) ? x : y;
  else if constexpr (OP == MIN) return x < y || std::isnan(x) ? x : y;
  else return x == y ? 1.f : 0.f;
}

// Iterates the output row by row; each row's operand offsets come from the broadcast strides
// (0 along broadcast dimensions), and the innermost loop is unit- or zero-stride.
template <int OP>
void binaryKernel(const float* A, const float* B, float* C, const std::vector<int64_t>& shape,
                  const std::vector<int64_t>& sa, const std::vector<int64_t>& sb) {
  int64_t nd = static_cast<int64_t>(shape.size());
  int64_t total = 1;
  for (auto d : shape) total *= d;
  if (total == 0) return;
  if (nd == 0) { C[0] = binop<OP>(A[0], B[0]); return; }
  int64_t inner = shape[nd - 1];
  int64_t outer = total / inner;
  int64_t ia = sa[nd - 1], ib = sb[nd - 1];
  parallelFor(outer, total, [&](int64_t r) {
    int64_t offA = 0, offB = 0, rem = r;
    for (int64_t d = nd - 2; d >= 0; d--) {
      int64_t idx = rem % shape[d];
      rem /= shape[d];
      offA += idx * sa[d];
      offB += idx * sb[d];
    }
    const float* a = A + offA;
    const float* b = B + offB;
    float* c = C + r * inner;
    if (ia == 1 && ib == 1) {
#pragma omp simd
      for (int64_t j = 0; j < inner; j++) c[j] = binop<OP>(a[j], b[j]);
    } else if (ia == 1 && ib == 0) {
      float bv = b[0];
#pragma omp simd
      for (int64_t j = 0; j < inner; j++) c[j] = binop<OP>(a[j], bv);
    } else if (ia == 0 && ib == 1) {
      float av = a[0];
#pragma omp simd
      for (int64_t j = 0; j < inner; j++) c[j] = binop<OP>(av, b[j]);
    } else {
      for (int64_t j = 0; j < inner; j++) c[j] = binop<OP>(a[j * ia], b[j * ib]);
    }
  });
}

inline float geluTanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.f + vtanhf(k * (x + 0.044715f * x * x * x)));
}
inline float geluTanhGrad(float x) {
  const float k = 0.7978845608028654f;
  float u = k * (x + 0.044715f * x * x * x);
  float t = vtanhf(u);
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * k * (1.f + 3.f * 0.044715f * x * x);
}
inline float geluErf(float x) { return 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f)); }
inline float geluErfGrad(float x) {
  return 0.5f * (1.f + std::erf(x * 0.7071067811865476f)) + x * 0.3989422804014327f * std::exp(-0.5f * x * x);
}
inline float sigmoidf(float x) { return vsigmoidf(x); }

template <int OP>
inline float unop(float x, float p1, float p2) {
  if constexpr (OP == NEG) return -x;
  else if constexpr (OP == EXP) return vexpf(x);
  else if constexpr (OP == LOG) return std::log(x);
  else if constexpr (OP == SQRT) return std::sqrt(x);
  else if constexpr (OP == RSQRT) return 1.f / std::sqrt(x);
  else if constexpr (OP == TANH) return vtanhf(x);
  else if constexpr (OP == SIGMOID) return sigmoidf(x);
  else if constexpr (OP == RELU) return x > 0.f ? x : 0.f;
  else if constexpr (OP == ABS) return std::fabs(x);
  else if constexpr (OP == SQUARE) return x * x;
  else if constexpr (OP == GELU_TANH) return geluTanh(x);
  else if constexpr (OP == GELU_ERF) return geluErf(x);
  else if constexpr (OP == SILU) return x * sigmoidf(x);
  else if constexpr (OP == AFFINE) return x * p1 + p2;
  else if constexpr (OP == POW) return std::pow(x, p1);
  else return 1.f / x;
}

// d(op)/dx given x and y = op(x).
template <int OP>
inline float unopGrad(float x, float y, float p1) {
  if constexpr (OP == NEG) return -1.f;
  else if constexpr (OP == EXP) return y;
  else if constexpr (OP == LOG) return 1.f / x;
  else if constexpr (OP == SQRT) return 0.5f / y;
  else if constexpr (OP == RSQRT) return -0.5f * y * y * y;
  else if constexpr (OP == TANH) return 1.f - y * y;
  else if constexpr (OP == SIGMOID) return y * (1.f - y);
  else if constexpr (OP == RELU) return x > 0.f ? 1.f : 0.f;
  else if constexpr (OP == ABS) return x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f);
  else if constexpr (OP == SQUARE) return 2.f * x;
  else if constexpr (OP == GELU_TANH) return geluTanhGrad(x);
  else if constexpr (OP == GELU_ERF) return geluErfGrad(x);
  else if constexpr (OP == SILU) { float s = sigmoidf(x); return s * (1.f + x * (1.f - s)); }
  else if constexpr (OP == AFFINE) return p1;
  else if constexpr (OP == POW) return p1 * std::pow(x, p1 - 1.f);
  else return -y * y;
}

template <int OP>
void unaryKernel(const float* x, float* y, int64_t n, float p1, float p2) {
  const int64_t chunk = 4096;
  int64_t blocks = (n + chunk - 1) / chunk;
  parallelFor(blocks, n * 8, [&](int64_t blk) {
    int64_t s = blk * chunk, e = std::min(n, s + chunk);
#pragma omp simd
    for (int64_t i = s; i < e; i++) y[i] = unop<OP>(x[i], p1, p2);
  });
}

template <int OP>
void unaryGradKernel(const float* x, const float* y, const float* dy, float* dx, int64_t n, float p1) {
  const int64_t chunk = 4096;
  int64_t blocks = (n + chunk - 1) / chunk;
  parallelFor(blocks, n * 8, [&](int64_t blk) {
    int64_t s = blk * chunk, e = std::min(n, s + chunk);
#pragma omp simd
    for (int64_t i = s; i < e; i++) dx[i] = dy[i] * unopGrad<OP>(x ? x[i] : 0.f, y ? y[i] : 0.f, p1);
  });
}

}  // namespace

// binary(op, A, B, C, outShape, stridesA, stridesB)
static void binary_body(Args& a) {
  int op = static_cast<int>(a.integer(0));
  const float* A = a.f32(1);
  const float* B = a.f32(2);
  float* C = a.f32(3);
  auto shape = a.ints(4), sa = a.ints(5), sb = a.ints(6);
  if (sa.size() != shape.size() || sb.size() != shape.size()) throw KernelError("stride rank differs from shape rank");
  switch (op) {
    case ADD: binaryKernel<ADD>(A, B, C, shape, sa, sb); break;
    case SUB: binaryKernel<SUB>(A, B, C, shape, sa, sb); break;
    case MUL: binaryKernel<MUL>(A, B, C, shape, sa, sb); break;
    case DIV: binaryKernel<DIV>(A, B, C, shape, sa, sb); break;
    case MAX: binaryKernel<MAX>(A, B, C, shape, sa, sb); break;
    case MIN: binaryKernel<MIN>(A, B, C, shape, sa, sb); break;
    case EQ: binaryKernel<EQ>(A, B, C, shape, sa, sb); break;
    default: throw KernelError("unknown binary op code " + std::to_string(op));
  }
}
SW_KERNEL(binary, "binary")

#define UNARY_CASES(M) \
  M(NEG) M(EXP) M(LOG) M(SQRT) M(RSQRT) M(TANH) M(SIGMOID) M(RELU) M(ABS) M(SQUARE) M(GELU_TANH) M(GELU_ERF) \
  M(SILU) M(AFFINE) M(POW) M(RECIPROCAL)

// unary(op, X, Y, n, p1, p2)
static void unary_body(Args& a) {
  int op = static_cast<int>(a.integer(0));
  const float* x = a.f32(1);
  float* y = a.f32(2);
  int64_t n = a.integer(3);
  float p1 = static_cast<float>(a.number(4)), p2 = static_cast<float>(a.number(5));
  switch (op) {
#define CASE(O) case O: unaryKernel<O>(x, y, n, p1, p2); break;
    UNARY_CASES(CASE)
#undef CASE
    default: throw KernelError("unknown unary op code " + std::to_string(op));
  }
}
SW_KERNEL(unary, "unary")

// unaryGrad(op, X|null, Y|null, dY, dX, n, p1)
static void unaryGrad_body(Args& a) {
  int op = static_cast<int>(a.integer(0));
  const float* x = a.f32OrNull(1);
  const float* y = a.f32OrNull(2);
  const float* dy = a.f32(3);
  float* dx = a.f32(4);
  int64_t n = a.integer(5);
  float p1 = static_cast<float>(a.number(6));
  switch (op) {
#define CASE(O) case O: unaryGradKernel<O>(x, y, dy, dx, n, p1); break;
    UNARY_CASES(CASE)
#undef CASE
    default: throw KernelError("unknown unary op code " + std::to_string(op));
  }
}
SW_KERNEL(unaryGrad, "unaryGrad")

// swiglu(G, U, Y, n): y = silu(g) * u
static void swiglu_body(Args& a) {
  const float* g = a.f32(0);
  const float* u = a.f32(1);
  float* y = a.f32(2);
  int64_t n = a.integer(3);
  const int64_t chunk = 4096;
  parallelFor((n + chunk - 1) / chunk, n * 8, [&](int64_t blk) {
    int64_t s = blk * chunk, e = std::min(n, s + chunk);
#pragma omp simd
    for (int64_t i = s; i < e; i++) y[i] = g[i] * vsigmoidf(g[i]) * u[i];
  });
}
SW_KERNEL(swiglu, "swiglu")

// swigluGrad(G, U, dY, dG, dU, n)
static void swigluGrad_body(Args& a) {
  const float* g = a.f32(0);
  const float* u = a.f32(1);
  const float* dy = a.f32(2);
  float* dg = a.f32(3);
  float* du = a.f32(4);
  int64_t n = a.integer(5);
  const int64_t chunk = 4096;
  parallelFor((n + chunk - 1) / chunk, n * 8, [&](int64_t blk) {
    int64_t s = blk * chunk, e = std::min(n, s + chunk);
#pragma omp simd
    for (int64_t i = s; i < e; i++) {
      float sg = vsigmoidf(g[i]);
      du[i] = dy[i] * g[i] * sg;
      dg[i] = dy[i] * u[i] * sg * (1.f + g[i] * (1.f - sg));
    }
  });
}
SW_KERNEL(swigluGrad, "swigluGrad")

void RegisterElementwiseExtra(napi_env env, napi_value exports);

void RegisterElementwise(napi_env env, napi_value exports) {
  RegisterElementwiseExtra(env, exports);
  exportFunction(env, exports, "binary", binary);
  exportFunction(env, exports, "unary", unary);
  exportFunction(env, exports, "unaryGrad", unaryGrad);
  exportFunction(env, exports, "swiglu", swiglu);
  exportFunction(env, exports, "swigluGrad", swigluGrad);
}

// ---- Broadcast helpers used by gradients ----

namespace {
// Sums `in` (shape `shape`) into `out`, whose strides over `shape` are `so` (0 = reduced).
void sumToShapeKernel(const float* in, float* out, const std::vector<int64_t>& shape, const std::vector<int64_t>& so, int64_t outSize) {
  int64_t nd = static_cast<int64_t>(shape.size());
  int64_t total = 1;
  for (auto d : shape) total *= d;
  for (int64_t i = 0; i < outSize; i++) out[i] = 0.f;
  if (total == 0) return;
  // Common case: only leading dimensions are reduced ([rows, cols] -> [cols]).
  int64_t lead = 0;
  while (lead < nd && so[lead] == 0) lead++;
  bool suffixKept = true;
  for (int64_t d = lead; d < nd; d++) if (so[d] == 0 && shape[d] != 1) suffixKept = false;
  if (suffixKept) {
    int64_t rows = 1;
    for (int64_t d = 0; d < lead; d++) rows *= shape[d];
    int64_t cols = total / rows;
    const int64_t CB = 256;
    parallelFor((cols + CB - 1) / CB, total, [&](int64_t blk) {
      int64_t c0 = blk * CB, c1 = std::min(cols, c0 + CB);
      for (int64_t r = 0; r < rows; r++) {
        const float* row = in + r * cols;
#pragma omp simd
        for (int64_t c = c0; c < c1; c++) out[c] += row[c];
      }
    });
    return;
  }
  // General case: one pass in input order (sequential keeps it deterministic).
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < total; i++) {
    out[off] += in[i];
    for (int64_t d = nd - 1; d >= 0; d--) {
      idx[d]++;
      off += so[d];
      if (idx[d] < shape[d]) break;
      off -= so[d] * shape[d];
      idx[d] = 0;
    }
  }
}
}  // namespace

// sumToShape(in, out, inShape, outStridesOverInShape, outSize)
static void sumToShape_body(Args& a) {
  const float* in = a.f32(0);
  float* out = a.f32(1);
  auto shape = a.ints(2), so = a.ints(3);
  int64_t outSize = a.integer(4);
  if (so.size() != shape.size()) throw KernelError("stride rank differs from shape rank");
  sumToShapeKernel(in, out, shape, so, outSize);
}
SW_KERNEL(sumToShape, "sumToShape")

// broadcastTo(in, out, outShape, inStridesOverOutShape)
static void broadcastTo_body(Args& a) {
  const float* in = a.f32(0);
  float* out = a.f32(1);
  auto shape = a.ints(2), si = a.ints(3);
  int64_t nd = static_cast<int64_t>(shape.size());
  int64_t total = 1;
  for (auto d : shape) total *= d;
  if (total == 0) return;
  if (nd == 0) { out[0] = in[0]; return; }
  int64_t inner = shape[nd - 1], outer = total / inner, is = si[nd - 1];
  parallelFor(outer, total, [&](int64_t r) {
    int64_t off = 0, rem = r;
    for (int64_t d = nd - 2; d >= 0; d--) { off += (rem % shape[d]) * si[d]; rem /= shape[d]; }
    float* o = out + r * inner;
    for (int64_t j = 0; j < inner; j++) o[j] = in[off + j * is];
  });
}
SW_KERNEL(broadcastTo, "broadcastTo")

// addRowVector(Y, b, rows, cols): Y[r, :] += b (the bias of a Linear)
static void addRowVector_body(Args& a) {
  float* y = a.f32(0);
  const float* b = a.f32(1);
  int64_t rows = a.integer(2), cols = a.integer(3);
  parallelFor(rows, rows * cols, [&](int64_t r) {
    float* row = y + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; c++) row[c] += b[c];
  });
}
SW_KERNEL(addRowVector, "addRowVector")

void RegisterElementwiseExtra(napi_env env, napi_value exports) {
  exportFunction(env, exports, "sumToShape", sumToShape);
  exportFunction(env, exports, "broadcastTo", broadcastTo);
  exportFunction(env, exports, "addRowVector", addRowVector);
}
