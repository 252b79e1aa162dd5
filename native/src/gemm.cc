// GEMM: cblas (OpenBLAS) when it was found at build time, else an own blocked kernel.
// Batched form: a strided batch of independent GEMMs (attention heads, bmm).
#include "common.h"
#include <algorithm>
#include <cstring>
#include <cstdlib>
#ifdef STACKWISE_HAVE_CBLAS
#include <cblas.h>
extern "C" char* openblas_get_corename(void);
extern "C" int openblas_get_num_threads(void);
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_parallel(void);
#endif

namespace sw {

// Blocked fallback: packs op(A) and op(B) tiles into contiguous scratch so the inner loop
// runs unit-stride over N and vectorises; rows of C are split across threads.
static void gemmFallback(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                         const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t MC = 64, KC = 256, NC = 512;
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * ldc;
    if (beta == 0.f) std::memset(c, 0, sizeof(float) * N);
    else if (beta != 1.f) for (int64_t j = 0; j < N; j++) c[j] *= beta;
  }
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    int64_t kc = std::min(KC, K - k0);
    for (int64_t j0 = 0; j0 < N; j0 += NC) {
      int64_t nc = std::min(NC, N - j0);
      std::vector<float> bp(kc * nc);
      for (int64_t k = 0; k < kc; k++)
        for (int64_t j = 0; j < nc; j++)
          bp[k * nc + j] = tB ? B[(j0 + j) * ldb + (k0 + k)] : B[(k0 + k) * ldb + (j0 + j)];
      int64_t blocks = (M + MC - 1) / MC;
      parallelFor(blocks, M * nc * kc, [&](int64_t blk) {
        int64_t i0 = blk * MC, mc = std::min(MC, M - i0);
        for (int64_t i = 0; i < mc; i++) {
          float* c = C + (i0 + i) * ldc + j0;
          for (int64_t k = 0; k < kc; k++) {
            float av = alpha * (tA ? A[(k0 + k) * lda + (i0 + i)] : A[(i0 + i) * lda + (k0 + k)]);
            const float* b = bp.data() + k * nc;
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) c[j] += av * b[j];
          }
        }
      });
    }
  }
}

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
#ifdef STACKWISE_HAVE_CBLAS
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
#else
  gemmFallback(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

}  // namespace sw

using namespace sw;

// matmul(A, B, C, M, N, K, transA, transB, batch, strideA, strideB, strideC, alpha, beta)
// Row-major; op(A) is M×K, op(B) is K×N, C is M×N; strides in elements (0 = shared operand).
static void matmul_body(Args& a) {
  const float* A = a.f32(0);
  const float* B = a.f32(1);
  float* C = a.f32(2);
  int64_t M = a.integer(3), N = a.integer(4), K = a.integer(5);
  bool tA = a.boolean(6), tB = a.boolean(7);
  int64_t batch = a.integer(8), sA = a.integer(9), sB = a.integer(10), sC = a.integer(11);
  float alpha = static_cast<float>(a.number(12)), beta = static_cast<float>(a.number(13));
  if (a.buffer(0)->bytes < static_cast<size_t>(((batch - 1) * sA + M * K) * 4) ||
      a.buffer(1)->bytes < static_cast<size_t>(((batch - 1) * sB + K * N) * 4) ||
      a.buffer(2)->bytes < static_cast<size_t>(((batch - 1) * sC + M * N) * 4))
    throw KernelError("operand buffers are smaller than the shapes say");
  int64_t lda = tA ? M : K, ldb = tB ? K : N, ldc = N;
  // Many small products: one thread per product with single-threaded BLAS (OpenBLAS runs
  // single-threaded inside an OpenMP parallel region). Few large ones: threaded BLAS each.
  bool small = M * N * K < 128 * 128 * 128;
  if (a.argc > 14 && a.boolean(14)) {
    // The built-in GEMM, callable even when OpenBLAS is present so tests can check it.
    for (int64_t b = 0; b < batch; b++) gemmFallback(tA, tB, M, N, K, alpha, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, ldc);
    return;
  }
  if (batch > 1 && small) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < batch; b++) gemm(tA, tB, M, N, K, alpha, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, ldc);
  } else {
    for (int64_t b = 0; b < batch; b++) gemm(tA, tB, M, N, K, alpha, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, ldc);
  }
}
SW_KERNEL(matmul, "matmul")

// info() -> { blas, coreName, threads }
static napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, v;
  napi_create_object(env, &obj);
#ifdef STACKWISE_HAVE_CBLAS
  const char* core = openblas_get_corename();
  napi_create_string_utf8(env, "openblas", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "blas", v);
  napi_create_string_utf8(env, core ? core : "unknown", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "coreName", v);
  napi_set_named_property(env, obj, "blasThreads", numberValue(env, openblas_get_num_threads()));
  // 0 = sequential build, 1 = pthreads, 2 = OpenMP
  napi_set_named_property(env, obj, "blasParallel", numberValue(env, openblas_get_parallel()));
#else
  napi_create_string_utf8(env, "builtin", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "blas", v);
  napi_create_string_utf8(env, "builtin-blocked", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "coreName", v);
  napi_set_named_property(env, obj, "blasThreads", numberValue(env, omp_get_max_threads()));
  napi_set_named_property(env, obj, "blasParallel", numberValue(env, 2));
#endif
  napi_set_named_property(env, obj, "threads", numberValue(env, omp_get_max_threads()));
  return obj;
}

// setNumThreads(n): one setting for our kernels and BLAS (both run on the same OpenMP runtime).
static void setNumThreads_body(Args& a) {
  int n = static_cast<int>(a.integer(0));
  if (n < 1) throw KernelError("thread count must be >= 1");
  omp_set_num_threads(n);
#ifdef STACKWISE_HAVE_CBLAS
  openblas_set_num_threads(n);
#endif
}
SW_KERNEL(setNumThreads, "setNumThreads")

void RegisterGemm(napi_env env, napi_value exports) {
  exportFunction(env, exports, "matmul", matmul);
  exportFunction(env, exports, "info", Info);
  exportFunction(env, exports, "setNumThreads", setNumThreads);
}
