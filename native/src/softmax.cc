// Softmax family: softmax / log-softmax along any axis ([outer, size, inner] views), their fused
// gradients, and fused cross-entropy (log-softmax + NLL, saving the per-row logsumexp) with its
// fused backward. Rows run in parallel; inner loops are vectorised with a polynomial expf that
// GCC can vectorise (std::exp is not vectorised without -ffast-math); sums accumulate in double.
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


// Row maximum; NaN when the row holds a NaN (as the reference does). GCC does not vectorise an
// `omp simd reduction(max)` loop here, so the lanes are explicit: 16 running maxima, plus a
// running Σ x·0 that is NaN exactly when some x is NaN or infinite (checked precisely then).
inline float rowMax(const float* x, int64_t n) {
  constexpr int W = 16;
  const float ninf = -std::numeric_limits<float>::infinity();
  float acc[W], chk[W];
  for (int k = 0; k < W; k++) { acc[k] = ninf; chk[k] = 0.f; }
  int64_t j = 0;
  for (; j + W <= n; j += W) {
#pragma omp simd
    for (int k = 0; k < W; k++) {
      float v = x[j + k];
      acc[k] = v > acc[k] ? v : acc[k];
      chk[k] += v * 0.f;
    }
  }
  float m = ninf, c = 0.f;
  for (; j < n; j++) { m = x[j] > m ? x[j] : m; c += x[j] * 0.f; }
  for (int k = 0; k < W; k++) { m = acc[k] > m ? acc[k] : m; c += chk[k]; }
  if (c != c) {
    for (int64_t i = 0; i < n; i++) if (x[i] != x[i]) return std::numeric_limits<float>::quiet_NaN();
  }
  return m;
}

// Σ exp(x - m) in double.
inline double sumExp(const float* x, int64_t n, float m) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; j++) s += static_cast<double>(vexpf(x[j] - m));
  return s;
}

}  // namespace

// softmax(x, y, outer, size, inner, log)
static void softmax_body(Args& a) {
  const float* x = a.f32(0);
  float* y = a.f32(1);
  int64_t outer = a.integer(2), R = a.integer(3), inner = a.integer(4);
  bool log = a.boolean(5);
  needElems(a, 0, outer * R * inner, "input");
  needElems(a, 1, outer * R * inner, "output");
  const int64_t total = outer * R * inner;
  if (total == 0) return;
  if (inner == 1) {
    parallelFor(outer, total * 8, [&](int64_t o) {
      const float* xr = x + o * R;
      float* yr = y + o * R;
      float m = rowMax(xr, R);
      if (log) {
        // (x − m) − log Σ: exact for the largest entries even when the logits are large.
        float ls = static_cast<float>(std::log(sumExp(xr, R, m)));
#pragma omp simd
        for (int64_t j = 0; j < R; j++) yr[j] = (xr[j] - m) - ls;
      } else {
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < R; j++) {
          float e = vexpf(xr[j] - m);
          yr[j] = e;
          s += static_cast<double>(e);
        }
        float inv = static_cast<float>(1.0 / s);
#pragma omp simd
        for (int64_t j = 0; j < R; j++) yr[j] *= inv;
      }
    });
    return;
  }
  // Softmax over a middle axis: vectorised across a block of columns.
  const int64_t CB = 256;
  const int64_t ncb = (inner + CB - 1) / CB;
  parallelFor(outer * ncb, total * 8, [&](int64_t t) {
    int64_t o = t / ncb, j0 = (t % ncb) * CB, w = std::min(inner, j0 + CB) - j0;
    const float* xb = x + o * R * inner + j0;
    float* yb = y + o * R * inner + j0;
    float m[CB];
    double s[CB];
    int nan[CB];
    for (int64_t j = 0; j < w; j++) { m[j] = -std::numeric_limits<float>::infinity(); s[j] = 0.0; nan[j] = 0; }
    for (int64_t r = 0; r < R; r++) {
      const float* xr = xb + r * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; j++) { m[j] = std::max(m[j], xr[j]); nan[j] |= (xr[j] != xr[j]); }
    }
    for (int64_t j = 0; j < w; j++) if (nan[j]) m[j] = std::numeric_limits<float>::quiet_NaN();
    for (int64_t r = 0; r < R; r++) {
      const float* xr = xb + r * inner;
      float* yr = yb + r * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; j++) {
        float e = vexpf(xr[j] - m[j]);
        if (!log) yr[j] = e;
        s[j] += static_cast<double>(e);
      }
    }
    float k[CB];
    for (int64_t j = 0; j < w; j++) k[j] = log ? static_cast<float>(std::log(s[j])) : static_cast<float>(1.0 / s[j]);
    for (int64_t r = 0; r < R; r++) {
      const float* xr = xb + r * inner;
      float* yr = yb + r * inner;
      if (log) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) yr[j] = (xr[j] - m[j]) - k[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) yr[j] *= k[j];
      }
    }
  });
}
SW_KERNEL(softmax, "softmax")

// softmaxGrad(y, dy, dx, outer, size, inner, log):
//   softmax:     dx = y · (dy − Σ dy·y)
//   log-softmax: dx = dy − exp(y) · Σ dy
static void softmaxGrad_body(Args& a) {
  const float* y = a.f32(0);
  const float* dy = a.f32(1);
  float* dx = a.f32(2);
  int64_t outer = a.integer(3), R = a.integer(4), inner = a.integer(5);
  bool log = a.boolean(6);
  const int64_t total = outer * R * inner;
  needElems(a, 0, total, "y");
  needElems(a, 1, total, "dy");
  needElems(a, 2, total, "dx");
  if (total == 0) return;
  if (inner == 1) {
    parallelFor(outer, total * 6, [&](int64_t o) {
      const float* yr = y + o * R;
      const float* gr = dy + o * R;
      float* dr = dx + o * R;
      double s = 0.0;
      if (log) {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < R; j++) s += static_cast<double>(gr[j]);
        float sf = static_cast<float>(s);
#pragma omp simd
        for (int64_t j = 0; j < R; j++) dr[j] = gr[j] - vexpf(yr[j]) * sf;
      } else {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < R; j++) s += static_cast<double>(gr[j]) * static_cast<double>(yr[j]);
        float sf = static_cast<float>(s);
#pragma omp simd
        for (int64_t j = 0; j < R; j++) dr[j] = yr[j] * (gr[j] - sf);
      }
    });
    return;
  }
  const int64_t CB = 256;
  const int64_t ncb = (inner + CB - 1) / CB;
  parallelFor(outer * ncb, total * 6, [&](int64_t t) {
    int64_t o = t / ncb, j0 = (t % ncb) * CB, w = std::min(inner, j0 + CB) - j0;
    const int64_t base = o * R * inner + j0;
    double s[CB];
    float sf[CB];
    for (int64_t j = 0; j < w; j++) s[j] = 0.0;
    for (int64_t r = 0; r < R; r++) {
      const float* yr = y + base + r * inner;
      const float* gr = dy + base + r * inner;
      if (log) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) s[j] += static_cast<double>(gr[j]);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) s[j] += static_cast<double>(gr[j]) * static_cast<double>(yr[j]);
      }
    }
    for (int64_t j = 0; j < w; j++) sf[j] = static_cast<float>(s[j]);
    for (int64_t r = 0; r < R; r++) {
      const float* yr = y + base + r * inner;
      const float* gr = dy + base + r * inner;
      float* dr = dx + base + r * inner;
      if (log) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) dr[j] = gr[j] - vexpf(yr[j]) * sf[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) dr[j] = yr[j] * (gr[j] - sf[j]);
      }
    }
  });
}
SW_KERNEL(softmaxGrad, "softmaxGrad")

namespace {

// Sequential scan; the first bad target is reported (before any parallel work starts).
void checkTargets(const int32_t* t, int64_t N, int64_t V, int64_t ignore) {
  for (int64_t i = 0; i < N; i++) {
    if (t[i] != ignore && (t[i] < 0 || t[i] >= V))
      throw KernelError("row " + std::to_string(i) + ": target " + std::to_string(t[i]) + " is out of range [0, " + std::to_string(V) +
                        ") and is not the ignoreIndex " + std::to_string(ignore));
  }
}

double denominator(const int32_t* t, const float* w, int64_t N, int64_t ignore) {
  double d = 0.0;
  for (int64_t i = 0; i < N; i++) if (t[i] != ignore) d += w ? static_cast<double>(w[i]) : 1.0;
  return d;
}

}  // namespace

// crossEntropy(logits [N, V], targets [N], weights [N] | null, loss [1], lse [N], N, V, ignoreIndex, sum)
static void crossEntropy_body(Args& a) {
  const float* x = a.f32(0);
  const int32_t* t = a.i32(1);
  const float* w = a.f32OrNull(2);
  float* loss = a.f32(3);
  float* lse = a.f32(4);
  int64_t N = a.integer(5), V = a.integer(6), ignore = a.integer(7);
  bool sum = a.boolean(8);
  needElems(a, 1, N, "targets");
  checkTargets(t, N, V, ignore);
  needElems(a, 0, N * V, "logits");
  if (w) needElems(a, 2, N, "weights");
  needElems(a, 3, 1, "loss");
  needElems(a, 4, N, "lse");
  std::vector<double> nll(static_cast<size_t>(N), 0.0);
  parallelFor(N, N * V * 8, [&](int64_t i) {
    if (t[i] == ignore) { lse[i] = 0.f; return; }
    const float* xr = x + i * V;
    float m = rowMax(xr, V);
    double ls = std::log(sumExp(xr, V, m));
    lse[i] = static_cast<float>(static_cast<double>(m) + ls);
    nll[i] = (static_cast<double>(m) - static_cast<double>(xr[t[i]])) + ls;
  });
  double S = 0.0;
  for (int64_t i = 0; i < N; i++) if (t[i] != ignore) S += (w ? static_cast<double>(w[i]) : 1.0) * nll[i];
  double D = denominator(t, w, N, ignore);
  loss[0] = static_cast<float>(sum ? S : (D == 0.0 ? 0.0 : S / D));
}
SW_KERNEL(crossEntropy, "crossEntropy")

// crossEntropyGrad(logits, targets, weights | null, lse, loss, dy, dlogits, dweights | null, N, V, ignoreIndex, sum)
//   dlogits[i] = (softmax(x_i) − onehot(t_i)) · w_i / D · dy   (D = 1 for 'sum'); 0 for ignored rows
//   dweights[i] = dy · nll_i ('sum') or dy · (nll_i − loss) / D ('mean')
static void crossEntropyGrad_body(Args& a) {
  const float* x = a.f32(0);
  const int32_t* t = a.i32(1);
  const float* w = a.f32OrNull(2);
  const float* lse = a.f32(3);
  const float* loss = a.f32(4);
  const float* dy = a.f32(5);
  float* dx = a.f32(6);
  float* dw = a.f32OrNull(7);
  int64_t N = a.integer(8), V = a.integer(9), ignore = a.integer(10);
  bool sum = a.boolean(11);
  needElems(a, 1, N, "targets");
  checkTargets(t, N, V, ignore);
  needElems(a, 0, N * V, "logits");
  if (w) needElems(a, 2, N, "weights");
  needElems(a, 3, N, "lse");
  needElems(a, 4, 1, "loss");
  needElems(a, 5, 1, "dy");
  needElems(a, 6, N * V, "dlogits");
  if (dw) needElems(a, 7, N, "dweights");
  const double D = denominator(t, w, N, ignore);
  const double g = dy[0], L = loss[0];
  parallelFor(N, N * V * 6, [&](int64_t i) {
    float* dr = dx + i * V;
    if (t[i] == ignore || (!sum && D == 0.0)) {
      std::memset(dr, 0, static_cast<size_t>(V) * 4);
      if (dw) dw[i] = 0.f;
      return;
    }
    const float* xr = x + i * V;
    const double wi = w ? static_cast<double>(w[i]) : 1.0;
    const float scale = static_cast<float>(wi * g / (sum ? 1.0 : D));
    const float l = lse[i];
    const int64_t nv = V;
#pragma omp simd
    for (int64_t j = 0; j < nv; j++) dr[j] = vexpf(xr[j] - l) * scale;
    dr[t[i]] -= scale;
    if (dw) {
      double nll = static_cast<double>(l) - static_cast<double>(xr[t[i]]);
      dw[i] = static_cast<float>(g * (sum ? nll : (nll - L) / D));
    }
  });
}
SW_KERNEL(crossEntropyGrad, "crossEntropyGrad")

void RegisterSoftmax(napi_env env, napi_value exports) {
  exportFunction(env, exports, "softmax", softmax);
  exportFunction(env, exports, "softmaxGrad", softmaxGrad);
  exportFunction(env, exports, "crossEntropy", crossEntropy);
  exportFunction(env, exports, "crossEntropyGrad", crossEntropyGrad);
}
