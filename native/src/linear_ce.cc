// Fused linear + cross-entropy: loss = CE(h·Wᵀ + b, targets) over chunks of rows, so that only one
// [chunk, V] block of logits exists at a time. The gradients for dy = 1 are computed during the
// same pass (the engine scales them by dy in the backward): per chunk the logits block becomes
// dlogits = (softmax − onehot)·wᵢ/D in place, then dh = dlogits·W (one GEMM), dW += dlogitsᵀ·h
// (one GEMM, chunks in row order, so the sum is deterministic) and db += column sums of dlogits
// (double accumulators, rows in order). Ignored rows are skipped entirely: they cost no GEMM work
// (MLM scores ~15% of positions) and get zero gradients. Row statistics accumulate in double.
#include "common.h"
#include "vmath.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace sw;

namespace {

void needElems(const Args& a, size_t i, int64_t n, const char* what) {
  if (n < 0 || a.buffer(i)->bytes < static_cast<size_t>(n) * 4)
    throw KernelError(std::string(what) + " buffer holds " + std::to_string(a.buffer(i)->bytes / 4) + " elements, the shapes need " + std::to_string(n));
}

// Row maximum with 16 explicit lanes (GCC does not vectorise an `omp simd reduction(max)` loop).
// A NaN in the row is not reported here: it reaches the sum of exponentials, so the loss is NaN.
inline float laneMax(const float* x, int64_t n) {
  constexpr int L = 16;
  const float ninf = -std::numeric_limits<float>::infinity();
  float acc[L];
  for (int k = 0; k < L; k++) acc[k] = ninf;
  int64_t j = 0;
  for (; j + L <= n; j += L) {
#pragma omp simd
    for (int k = 0; k < L; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
  }
  float m = ninf;
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  for (int k = 0; k < L; k++) m = acc[k] > m ? acc[k] : m;
  return m;
}

}  // namespace

// linearCrossEntropy(hidden [N, d], weight [V, d], bias [V] | null, targets [N], weights [N] | null,
//                    loss [1], dhidden [N, d] | null, dweight [V, d] | null, dbias [V] | null,
//                    dweights [N] | null, N, d, V, ignoreIndex, sum, chunkRows)
// Gradient buffers that are null are not computed. Throws on a target outside [0, V) that is not
// ignoreIndex (before any work).
static void linearCrossEntropy_body(Args& a) {
  const float* H = a.f32(0);
  const float* W = a.f32(1);
  const float* bias = a.f32OrNull(2);
  const int32_t* t = a.i32(3);
  const float* w = a.f32OrNull(4);
  float* loss = a.f32(5);
  float* dh = a.f32OrNull(6);
  float* dW = a.f32OrNull(7);
  float* db = a.f32OrNull(8);
  float* dwt = a.f32OrNull(9);
  const int64_t N = a.integer(10), d = a.integer(11), V = a.integer(12), ignore = a.integer(13);
  const bool sum = a.boolean(14);
  int64_t chunk = a.integer(15);
  needElems(a, 0, N * d, "hidden");
  needElems(a, 1, V * d, "weight");
  if (bias) needElems(a, 2, V, "bias");
  needElems(a, 3, N, "targets");
  if (w) needElems(a, 4, N, "weights");
  needElems(a, 5, 1, "loss");
  if (dh) needElems(a, 6, N * d, "dhidden");
  if (dW) needElems(a, 7, V * d, "dweight");
  if (db) needElems(a, 8, V, "dbias");
  if (dwt) needElems(a, 9, N, "dweights");
  for (int64_t i = 0; i < N; i++) {
    if (t[i] != ignore && (t[i] < 0 || t[i] >= V))
      throw KernelError("row " + std::to_string(i) + ": target " + std::to_string(t[i]) + " is out of range [0, " + std::to_string(V) +
                        ") and is not the ignoreIndex " + std::to_string(ignore));
  }
  std::vector<int64_t> active;
  active.reserve(static_cast<size_t>(N));
  double D = 0.0;
  for (int64_t i = 0; i < N; i++) {
    if (t[i] == ignore) continue;
    active.push_back(i);
    D += w ? static_cast<double>(w[i]) : 1.0;
  }
  const double norm = sum ? 1.0 : (D == 0.0 ? 0.0 : 1.0 / D);
  // With 'mean' and nothing to score every gradient is 0: skip their work.
  const bool grads = (dh || dW || db) && norm != 0.0;
  if (dh) std::memset(dh, 0, static_cast<size_t>(N * d) * 4);
  if (dW) std::memset(dW, 0, static_cast<size_t>(V * d) * 4);
  if (db) std::memset(db, 0, static_cast<size_t>(V) * 4);
  std::vector<double> nll(static_cast<size_t>(N), 0.0);
  const int64_t nA = static_cast<int64_t>(active.size());
  chunk = std::max<int64_t>(1, std::min(chunk, std::max<int64_t>(nA, 1)));
  std::vector<float> Z(nA > 0 ? static_cast<size_t>(chunk * V) : 0);
  std::vector<float> packedH, packedDh;
  std::vector<double> dbAcc(db ? static_cast<size_t>(V) : 0, 0.0);
  bool firstW = true;
  for (int64_t a0 = 0; a0 < nA; a0 += chunk) {
    const int64_t n = std::min(chunk, nA - a0);
    const int64_t* rows = active.data() + a0;
    // Rows of one chunk are usually consecutive (only CLM's last positions are ignored): then the
    // hidden rows and their gradient are used in place, otherwise packed.
    const bool contiguous = rows[n - 1] - rows[0] == n - 1;
    const float* hc = H + rows[0] * d;
    if (!contiguous) {
      packedH.resize(static_cast<size_t>(n * d));
      for (int64_t r = 0; r < n; r++) std::memcpy(packedH.data() + r * d, H + rows[r] * d, static_cast<size_t>(d) * 4);
      hc = packedH.data();
    }
    float* z = Z.data();
    gemm(false, true, n, V, d, 1.f, hc, d, W, d, 0.f, z, V);
    parallelFor(n, n * V * 8, [&](int64_t r) {
      const int64_t i = rows[r];
      float* zr = z + r * V;
      if (bias) {
#pragma omp simd
        for (int64_t j = 0; j < V; j++) zr[j] += bias[j];
      }
      const float target = zr[t[i]];
      const float m = laneMax(zr, V);
      double s = 0.0;
      if (grads) {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < V; j++) {
          float e = vexpf(zr[j] - m);
          zr[j] = e;
          s += static_cast<double>(e);
        }
      } else {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < V; j++) s += static_cast<double>(vexpf(zr[j] - m));
      }
      const double ls = std::log(s);
      nll[static_cast<size_t>(i)] = (static_cast<double>(m) - static_cast<double>(target)) + ls;
      if (!grads) return;
      // softmax·scale = e·(scale / s); then the one-hot part at the target.
      const double scale = (w ? static_cast<double>(w[i]) : 1.0) * norm;
      const float k = static_cast<float>(scale / s);
#pragma omp simd
      for (int64_t j = 0; j < V; j++) zr[j] *= k;
      zr[t[i]] -= static_cast<float>(scale);
    });
    if (!grads) continue;
    if (db) {
      const int64_t CB = 256, nb = (V + CB - 1) / CB;
      parallelFor(nb, n * V, [&](int64_t b) {
        const int64_t j0 = b * CB, j1 = std::min(V, j0 + CB);
        double* acc = dbAcc.data();
        for (int64_t r = 0; r < n; r++) {
          const float* zr = z + r * V;
#pragma omp simd
          for (int64_t j = j0; j < j1; j++) acc[j] += static_cast<double>(zr[j]);
        }
      });
    }
    if (dh) {
      float* out = dh + rows[0] * d;
      if (!contiguous) {
        packedDh.resize(static_cast<size_t>(n * d));
        out = packedDh.data();
      }
      gemm(false, false, n, d, V, 1.f, z, V, W, d, 0.f, out, d);
      if (!contiguous) for (int64_t r = 0; r < n; r++) std::memcpy(dh + rows[r] * d, out + r * d, static_cast<size_t>(d) * 4);
    }
    if (dW) {
      gemm(true, false, V, d, n, 1.f, z, V, hc, d, firstW ? 0.f : 1.f, dW, d);
      firstW = false;
    }
  }
  double S = 0.0;
  for (int64_t i : active) S += (w ? static_cast<double>(w[i]) : 1.0) * nll[static_cast<size_t>(i)];
  const double L = sum ? S : (D == 0.0 ? 0.0 : S / D);
  loss[0] = static_cast<float>(L);
  if (db && grads) for (int64_t j = 0; j < V; j++) db[j] = static_cast<float>(dbAcc[static_cast<size_t>(j)]);
  if (dwt) {
    for (int64_t i = 0; i < N; i++) {
      const double v = nll[static_cast<size_t>(i)];
      dwt[i] = t[i] == ignore ? 0.f : static_cast<float>(sum ? v : (D == 0.0 ? 0.0 : (v - L) / D));
    }
  }
}
SW_KERNEL(linearCrossEntropy, "linearCrossEntropy")

void RegisterLinearCrossEntropy(napi_env env, napi_value exports) {
  exportFunction(env, exports, "linearCrossEntropy", linearCrossEntropy);
}
