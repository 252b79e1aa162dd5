// Inverted dropout with a counter-based mask. Element i is kept iff
//   bits(i) = mix32(mix32(lo(i) ^ key1) ^ (key2 + hi(i) * 0x9e3779b9)) >= threshold
// (the same function as src/engine/ops/dropout.ts), and kept values are multiplied by the
// float32 scale 1 / (1 - p). The mask depends only on the keys and the index: identical on
// both backends and for every thread count; the backward reruns this kernel on dY.
#include "common.h"
#include <algorithm>
#include <cstdint>

using namespace sw;

namespace {

inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Elements [s, e) (within one 2^32-aligned block).
void dropoutChunk(const float* __restrict x, float* __restrict y, int64_t, int64_t s, int64_t e, uint32_t key1,
                  uint32_t key2, uint32_t th, float sc) {
  const uint32_t hiTerm = key2 + static_cast<uint32_t>(static_cast<uint64_t>(s) >> 32) * 0x9e3779b9u;
  const uint32_t lo0 = static_cast<uint32_t>(s);
  const float* __restrict xs = x + s;
  float* __restrict ys = y + s;
  const int32_t len = static_cast<int32_t>(e - s);
#pragma omp simd
  for (int32_t i = 0; i < len; i++) {
    uint32_t bits = mix32(mix32((lo0 + static_cast<uint32_t>(i)) ^ key1) ^ hiTerm);
    ys[i] = xs[i] * (bits >= th ? sc : 0.f);
  }
}

}  // namespace

// dropout(X, Y, n, key1, key2, threshold, scale)
static void dropout_body(Args& a) {
  const float* x = a.f32(0);
  float* y = a.f32(1);
  int64_t n = a.integer(2);
  int64_t k1 = a.integer(3), k2 = a.integer(4), thr = a.integer(5);
  double scale = a.number(6);
  if (n < 0) throw KernelError("negative size");
  if (k1 < 0 || k1 > 0xffffffffLL || k2 < 0 || k2 > 0xffffffffLL) throw KernelError("keys must be 32-bit unsigned integers");
  if (thr < 0 || thr > 0xffffffffLL) throw KernelError("threshold must be a 32-bit unsigned integer");
  const uint32_t key1 = static_cast<uint32_t>(k1), key2 = static_cast<uint32_t>(k2), th = static_cast<uint32_t>(thr);
  const float sc = static_cast<float>(scale);
  // Chunks of 4096 never straddle a multiple of 2^32, so the high word is constant per chunk.
  const int64_t chunk = 4096;
  parallelFor((n + chunk - 1) / chunk, n * 12, [=](int64_t blk) {
    dropoutChunk(x, y, n, blk * chunk, std::min(n, blk * chunk + chunk), key1, key2, th, sc);
  });
}
SW_KERNEL(dropout, "dropout")

void RegisterDropout(napi_env env, napi_value exports) {
  exportFunction(env, exports, "dropout", dropout);
}
