// Norm kernels: LayerNorm and RMSNorm over the last dimension, forward (saving per-row
// statistics) and fused backward (dx, dweight, dbias in one op).
//
// Row sums are accumulated in double. The weight/bias gradients are column sums over all rows;
// to keep them deterministic whatever the thread count, rows are cut into a fixed number of
// chunks that depends only on the shape; each chunk accumulates its own partial sums (double)
// and the partials are then added in chunk order.
#include "common.h"
#include <algorithm>
#include <cmath>
#include <vector>

using namespace sw;

namespace {

// Number of row chunks for the column-sum partials: a function of the shape only.
int64_t chunkCount(int64_t rows, int64_t D) {
  if (rows <= 0) return 1;
  // At least ~16k elements per chunk, at most 64 chunks.
  int64_t byWork = std::max<int64_t>(1, (rows * D) / 16384);
  return std::max<int64_t>(1, std::min<int64_t>({rows, byWork, 64}));
}

void combinePartials(const std::vector<double>& part, int64_t chunks, int64_t D, int64_t slot, int64_t slots, float* out) {
  parallelFor((D + 255) / 256, chunks * D, [&](int64_t blk) {
    int64_t j0 = blk * 256, j1 = std::min(D, j0 + 256);
    for (int64_t j = j0; j < j1; j++) {
      double s = 0;
      for (int64_t c = 0; c < chunks; c++) s += part[(c * slots + slot) * D + j];
      out[j] = static_cast<float>(s);
    }
  });
}

}  // namespace

// layerNorm(X, W|null, B|null, Y, Mean, Rstd, rows, D, eps)
static void layerNorm_body(Args& a) {
  const float* x = a.f32(0);
  const float* w = a.f32OrNull(1);
  const float* b = a.f32OrNull(2);
  float* y = a.f32(3);
  float* mean = a.f32(4);
  float* rstd = a.f32(5);
  int64_t rows = a.integer(6), D = a.integer(7);
  double eps = a.number(8);
  if (rows < 0 || D < 1) throw KernelError("bad sizes rows=" + std::to_string(rows) + " D=" + std::to_string(D));
  parallelFor(rows, rows * D * 6, [&](int64_t r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < D; j++) s += xr[j];
    double m = s / static_cast<double>(D);
    double v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < D; j++) { double d = xr[j] - m; v += d * d; }
    double rs = 1.0 / std::sqrt(v / static_cast<double>(D) + eps);
    float mf = static_cast<float>(m), rf = static_cast<float>(rs);
    mean[r] = mf;
    rstd[r] = rf;
    if (w && b) {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rf * w[j] + b[j];
    } else if (w) {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rf * w[j];
    } else if (b) {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rf + b[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rf;
    }
  });
}
SW_KERNEL(layerNorm, "layerNorm")

// layerNormGrad(X, W|null, Mean, Rstd, dY, dX, dW|null, dB|null, rows, D)
static void layerNormGrad_body(Args& a) {
  const float* x = a.f32(0);
  const float* w = a.f32OrNull(1);
  const float* mean = a.f32(2);
  const float* rstd = a.f32(3);
  const float* dy = a.f32(4);
  float* dx = a.f32(5);
  float* dw = a.f32OrNull(6);
  float* db = a.f32OrNull(7);
  int64_t rows = a.integer(8), D = a.integer(9);
  if (rows < 0 || D < 1) throw KernelError("bad sizes rows=" + std::to_string(rows) + " D=" + std::to_string(D));
  const int64_t slots = (dw ? 1 : 0) + (db ? 1 : 0);
  const int64_t chunks = chunkCount(rows, D);
  const int64_t per = (rows + chunks - 1) / chunks;
  std::vector<double> part(static_cast<size_t>(slots > 0 ? chunks * slots * D : 0), 0.0);
  const int64_t wSlot = 0, bSlot = dw ? 1 : 0;
  const double invD = 1.0 / static_cast<double>(D);
  parallelFor(chunks, rows * D * 10, [&](int64_t c) {
    double* pw = dw ? part.data() + (c * slots + wSlot) * D : nullptr;
    double* pb = db ? part.data() + (c * slots + bSlot) * D : nullptr;
    int64_t r0 = c * per, r1 = std::min(rows, r0 + per);
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * D;
      const float* dyr = dy + r * D;
      float* dxr = dx + r * D;
      const float m = mean[r], rs = rstd[r];
      double sg = 0, sgx = 0;
      if (w) {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - m) * rs;
          float g = dyr[j] * w[j];
          sg += g;
          sgx += static_cast<double>(g) * xh;
        }
      } else {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - m) * rs;
          sg += dyr[j];
          sgx += static_cast<double>(dyr[j]) * xh;
        }
      }
      const float ca = static_cast<float>(sg * invD), cb = static_cast<float>(sgx * invD);
      if (w) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - m) * rs;
          dxr[j] = rs * (dyr[j] * w[j] - ca - xh * cb);
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - m) * rs;
          dxr[j] = rs * (dyr[j] - ca - xh * cb);
        }
      }
      if (pw) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) pw[j] += static_cast<double>(dyr[j]) * ((xr[j] - m) * rs);
      }
      if (pb) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) pb[j] += dyr[j];
      }
    }
  });
  if (dw) combinePartials(part, chunks, D, wSlot, slots, dw);
  if (db) combinePartials(part, chunks, D, bSlot, slots, db);
}
SW_KERNEL(layerNormGrad, "layerNormGrad")

// rmsNorm(X, W|null, Y, Rstd, rows, D, eps)
static void rmsNorm_body(Args& a) {
  const float* x = a.f32(0);
  const float* w = a.f32OrNull(1);
  float* y = a.f32(2);
  float* rstd = a.f32(3);
  int64_t rows = a.integer(4), D = a.integer(5);
  double eps = a.number(6);
  if (rows < 0 || D < 1) throw KernelError("bad sizes rows=" + std::to_string(rows) + " D=" + std::to_string(D));
  parallelFor(rows, rows * D * 4, [&](int64_t r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < D; j++) s += static_cast<double>(xr[j]) * xr[j];
    float rf = static_cast<float>(1.0 / std::sqrt(s / static_cast<double>(D) + eps));
    rstd[r] = rf;
    // As LlamaRMSNorm: weight * (x * rstd), in float32.
    if (w) {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = w[j] * (xr[j] * rf);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = xr[j] * rf;
    }
  });
}
SW_KERNEL(rmsNorm, "rmsNorm")

// rmsNormGrad(X, W|null, Rstd, dY, dX, dW|null, rows, D)
static void rmsNormGrad_body(Args& a) {
  const float* x = a.f32(0);
  const float* w = a.f32OrNull(1);
  const float* rstd = a.f32(2);
  const float* dy = a.f32(3);
  float* dx = a.f32(4);
  float* dw = a.f32OrNull(5);
  int64_t rows = a.integer(6), D = a.integer(7);
  if (rows < 0 || D < 1) throw KernelError("bad sizes rows=" + std::to_string(rows) + " D=" + std::to_string(D));
  const int64_t chunks = chunkCount(rows, D);
  const int64_t per = (rows + chunks - 1) / chunks;
  std::vector<double> part(static_cast<size_t>(dw ? chunks * D : 0), 0.0);
  const double invD = 1.0 / static_cast<double>(D);
  parallelFor(chunks, rows * D * 8, [&](int64_t c) {
    double* pw = dw ? part.data() + c * D : nullptr;
    int64_t r0 = c * per, r1 = std::min(rows, r0 + per);
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * D;
      const float* dyr = dy + r * D;
      float* dxr = dx + r * D;
      const float rs = rstd[r];
      double sgx = 0;
      if (w) {
#pragma omp simd reduction(+ : sgx)
        for (int64_t j = 0; j < D; j++) sgx += static_cast<double>(dyr[j] * w[j]) * (xr[j] * rs);
      } else {
#pragma omp simd reduction(+ : sgx)
        for (int64_t j = 0; j < D; j++) sgx += static_cast<double>(dyr[j]) * (xr[j] * rs);
      }
      const float cc = static_cast<float>(sgx * invD);
      if (w) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dxr[j] = rs * (dyr[j] * w[j] - (xr[j] * rs) * cc);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dxr[j] = rs * (dyr[j] - (xr[j] * rs) * cc);
      }
      if (pw) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) pw[j] += static_cast<double>(dyr[j]) * (xr[j] * rs);
      }
    }
  });
  if (dw) combinePartials(part, chunks, D, 0, 1, dw);
}
SW_KERNEL(rmsNormGrad, "rmsNormGrad")

// addRmsNorm(X, R, W|null, S, Y, Rstd, rows, D, eps): the residual add fused into the norm,
// S = X + R and Y = RMSNorm(S) in one pass over each row (S is written once, read from cache).
static void addRmsNorm_body(Args& a) {
  const float* x = a.f32(0);
  const float* res = a.f32(1);
  const float* w = a.f32OrNull(2);
  float* sum = a.f32(3);
  float* y = a.f32(4);
  float* rstd = a.f32(5);
  int64_t rows = a.integer(6), D = a.integer(7);
  double eps = a.number(8);
  if (rows < 0 || D < 1) throw KernelError("bad sizes rows=" + std::to_string(rows) + " D=" + std::to_string(D));
  parallelFor(rows, rows * D * 5, [&](int64_t r) {
    const float* xr = x + r * D;
    const float* rr = res + r * D;
    float* sr = sum + r * D;
    float* yr = y + r * D;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < D; j++) {
      const float v = xr[j] + rr[j];
      sr[j] = v;
      s += static_cast<double>(v) * v;
    }
    float rf = static_cast<float>(1.0 / std::sqrt(s / static_cast<double>(D) + eps));
    rstd[r] = rf;
    if (w) {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = w[j] * (sr[j] * rf);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = sr[j] * rf;
    }
  });
}
SW_KERNEL(addRmsNorm, "addRmsNorm")

// addRmsNormGrad(S, W|null, Rstd, dY|null, dS|null, dX, dW|null, rows, D): the gradient of the
// sum S = X + R (the same for X and R): dS (what reached S directly) + RMSNorm's input gradient
// from dY, in one pass; dW as in rmsNormGrad (chunked, deterministic).
static void addRmsNormGrad_body(Args& a) {
  const float* x = a.f32(0);
  const float* w = a.f32OrNull(1);
  const float* rstd = a.f32(2);
  const float* dy = a.f32OrNull(3);
  const float* dsIn = a.f32OrNull(4);
  float* dx = a.f32(5);
  float* dw = a.f32OrNull(6);
  int64_t rows = a.integer(7), D = a.integer(8);
  if (rows < 0 || D < 1) throw KernelError("bad sizes rows=" + std::to_string(rows) + " D=" + std::to_string(D));
  const int64_t chunks = chunkCount(rows, D);
  const int64_t per = (rows + chunks - 1) / chunks;
  std::vector<double> part(static_cast<size_t>(dw ? chunks * D : 0), 0.0);
  const double invD = 1.0 / static_cast<double>(D);
  parallelFor(chunks, rows * D * 8, [&](int64_t c) {
    double* pw = dw ? part.data() + c * D : nullptr;
    int64_t r0 = c * per, r1 = std::min(rows, r0 + per);
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * D;
      const float* ds = dsIn ? dsIn + r * D : nullptr;
      float* dxr = dx + r * D;
      if (!dy) {
        for (int64_t j = 0; j < D; j++) dxr[j] = ds ? ds[j] : 0.f;
        continue;
      }
      const float* dyr = dy + r * D;
      const float rs = rstd[r];
      double sgx = 0;
#pragma omp simd reduction(+ : sgx)
      for (int64_t j = 0; j < D; j++) sgx += static_cast<double>(dyr[j] * (w ? w[j] : 1.f)) * (xr[j] * rs);
      const float cc = static_cast<float>(sgx * invD);
      if (ds) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dxr[j] = ds[j] + rs * (dyr[j] * (w ? w[j] : 1.f) - (xr[j] * rs) * cc);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dxr[j] = rs * (dyr[j] * (w ? w[j] : 1.f) - (xr[j] * rs) * cc);
      }
      if (pw) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) pw[j] += static_cast<double>(dyr[j]) * (xr[j] * rs);
      }
    }
  });
  if (dw) combinePartials(part, chunks, D, 0, 1, dw);
}
SW_KERNEL(addRmsNormGrad, "addRmsNormGrad")

void RegisterNorm(napi_env env, napi_value exports) {
  exportFunction(env, exports, "addRmsNorm", addRmsNorm);
  exportFunction(env, exports, "addRmsNormGrad", addRmsNormGrad);
  exportFunction(env, exports, "layerNorm", layerNorm);
  exportFunction(env, exports, "layerNormGrad", layerNormGrad);
  exportFunction(env, exports, "rmsNorm", rmsNorm);
  exportFunction(env, exports, "rmsNormGrad", rmsNormGrad);
}
