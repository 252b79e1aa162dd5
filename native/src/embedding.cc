// Embedding: row gather and its gradient, a deterministic scatter-add.
//
// The gradient is tiled into (vocabulary range × column block) tasks. Every task owns its tile
// of dW outright, scans all ids in position order and adds the dY rows whose id falls in its
// range: no atomics, no races, and each element is summed in position order, exactly like a
// sequential loop, whatever the thread count.
#include "common.h"
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using namespace sw;

namespace {

std::string multiIndex(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  int64_t rem = flat;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; d--) {
    int64_t n = shape[d] > 0 ? shape[d] : 1;
    idx[d] = rem % n;
    rem /= n;
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); d++) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

void checkIds(const int32_t* ids, int64_t N, int64_t V, const std::vector<int64_t>& shape) {
  for (int64_t n = 0; n < N; n++) {
    int32_t id = ids[n];
    if (id < 0 || id >= V) {
      std::string dims = "[";
      for (size_t d = 0; d < shape.size(); d++) dims += (d ? ", " : "") + std::to_string(shape[d]);
      dims += "]";
      throw KernelError("id " + std::to_string(id) + " at position " + std::to_string(n) + " (index " + multiIndex(shape, n) +
                        " of ids " + dims + ") is out of range [0, " + std::to_string(V) + ") for a weight with " +
                        std::to_string(V) + " rows");
    }
  }
}

}  // namespace

// embedding(W, Ids, Y, N, V, D, idsShape)
static void embedding_body(Args& a) {
  const float* w = a.f32(0);
  const int32_t* ids = a.i32(1);
  float* y = a.f32(2);
  int64_t N = a.integer(3), V = a.integer(4), D = a.integer(5);
  auto shape = a.ints(6);
  if (N < 0 || V < 0 || D < 0) throw KernelError("negative size");
  checkIds(ids, N, V, shape);
  if (D == 0) return;
  parallelFor(N, N * D, [&](int64_t n) {
    std::memcpy(y + n * D, w + static_cast<int64_t>(ids[n]) * D, static_cast<size_t>(D) * sizeof(float));
  });
}
SW_KERNEL(embedding, "embedding")

// embeddingGrad(Ids, dY, dW, N, V, D, idsShape): dW[ids[n]] += dY[n], dW zeroed here.
static void embeddingGrad_body(Args& a) {
  const int32_t* ids = a.i32(0);
  const float* dy = a.f32(1);
  float* dw = a.f32(2);
  int64_t N = a.integer(3), V = a.integer(4), D = a.integer(5);
  auto shape = a.ints(6);
  if (N < 0 || V < 0 || D < 0) throw KernelError("negative size");
  checkIds(ids, N, V, shape);
  if (V == 0 || D == 0) return;
  const int64_t CB = 64;
  const int64_t nCB = (D + CB - 1) / CB;
  // Enough tiles to feed the threads; the tiling depends on the shape only.
  const int64_t nVR = std::max<int64_t>(1, std::min<int64_t>(V, (64 + nCB - 1) / nCB));
  const int64_t vPer = (V + nVR - 1) / nVR;
  parallelFor(nVR * nCB, N * D + V * D, [&](int64_t task) {
    const int64_t vr = task / nCB, cb = task % nCB;
    const int64_t v0 = vr * vPer, v1 = std::min(V, v0 + vPer);
    const int64_t c0 = cb * CB, c1 = std::min(D, c0 + CB), w = c1 - c0;
    if (v0 >= v1) return;
    for (int64_t v = v0; v < v1; v++) std::memset(dw + v * D + c0, 0, static_cast<size_t>(w) * sizeof(float));
    for (int64_t n = 0; n < N; n++) {
      const int64_t id = ids[n];
      if (id < v0 || id >= v1) continue;
      float* dst = dw + id * D + c0;
      const float* src = dy + n * D + c0;
#pragma omp simd
      for (int64_t j = 0; j < w; j++) dst[j] += src[j];
    }
  });
}
SW_KERNEL(embeddingGrad, "embeddingGrad")

void RegisterEmbedding(napi_env env, napi_value exports) {
  exportFunction(env, exports, "embedding", embedding);
  exportFunction(env, exports, "embeddingGrad", embeddingGrad);
}
