// Shared plumbing for the native kernels: argument parsing, buffers, errors, threading.
// Every kernel is a plain N-API function; arguments are buffers (opaque externals made by
// storage.cc), numbers, booleans and arrays of integers (shapes).
#pragma once
#include <node_api.h>
#include <cstdint>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>
#include <omp.h>

namespace sw {

// A block of native memory owned by one storage handle; its slot is reused (under a new
// generation) once the engine frees the handle.
struct Buffer {
  void* data;
  size_t bytes;
  uint32_t gen;
  bool live;
};

struct KernelError : std::runtime_error {
  explicit KernelError(const std::string& m) : std::runtime_error(m) {}
};

// Reads arguments with checks; every failure becomes a JS Error naming the kernel.
struct Args {
  napi_env env;
  const char* kernel;
  napi_value argv[32];
  size_t argc = 32;
  Args(napi_env e, napi_callback_info info, const char* name);
  Buffer* buffer(size_t i) const;
  float* f32(size_t i) const { return static_cast<float*>(buffer(i)->data); }
  int32_t* i32(size_t i) const { return static_cast<int32_t*>(buffer(i)->data); }
  uint8_t* u8(size_t i) const { return static_cast<uint8_t*>(buffer(i)->data); }
  // Optional buffer: JS null/undefined gives nullptr.
  float* f32OrNull(size_t i) const;
  int32_t* i32OrNull(size_t i) const;
  int64_t integer(size_t i) const;
  double number(size_t i) const;
  bool boolean(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  std::vector<double> numbers(size_t i) const;
  // An array of native buffers (none freed).
  std::vector<Buffer*> buffers(size_t i) const;
  std::string str(size_t i) const;
  bool isNullish(size_t i) const;
};

napi_value undefinedValue(napi_env env);
napi_value numberValue(napi_env env, double v);

// Runs a kernel body, turning C++ exceptions into JS errors.
template <typename F>
napi_value guard(napi_env env, const char* name, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::string msg = std::string("native kernel '") + name + "': " + e.what();
    napi_throw_error(env, nullptr, msg.c_str());
    return nullptr;
  }
}

void exportFunction(napi_env env, napi_value exports, const char* name, napi_callback fn);

// Parallel-for over [0, n) with OpenMP only when the work is large enough to pay for it.
// `work` is a rough count of scalar operations in the whole loop.
template <typename F>
inline void parallelFor(int64_t n, int64_t work, F&& fn) {
  if (n <= 1 || work < 32768 || omp_in_parallel()) {
    for (int64_t i = 0; i < n; i++) fn(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) fn(i);
}

// Row-major GEMM: C = alpha * op(A) * op(B) + beta * C. Through cblas when available.
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace sw

#define SW_KERNEL(fn, name) \
  static napi_value fn(napi_env env, napi_callback_info info) { \
    return sw::guard(env, name, [&]() -> napi_value { sw::Args a(env, info, name); fn##_body(a); return sw::undefinedValue(env); }); \
  }

// Group registration functions, one per source file.
void RegisterStorage(napi_env env, napi_value exports);
void RegisterGemm(napi_env env, napi_value exports);
void RegisterElementwise(napi_env env, napi_value exports);
void RegisterReduce(napi_env env, napi_value exports);
void RegisterSoftmax(napi_env env, napi_value exports);
void RegisterNorm(napi_env env, napi_value exports);
void RegisterRope(napi_env env, napi_value exports);
void RegisterEmbedding(napi_env env, napi_value exports);
void RegisterDropout(napi_env env, napi_value exports);
void RegisterAttention(napi_env env, napi_value exports);
void RegisterOptim(napi_env env, napi_value exports);
void RegisterLayout(napi_env env, napi_value exports);
void RegisterQuant(napi_env env, napi_value exports);
void RegisterLinearCrossEntropy(napi_env env, napi_value exports);
