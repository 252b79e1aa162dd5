// Softmax family: softmax / log-softmax along any axis ([outer, size, inner] views), their fused
// gradients, and fused cross-entropy (log-softmax + NLL, saving the per-row logsumexp) with its
// fused backward. Rows run in parallel; inner loops are vectorised with a polynomial expf that
// GCC can vectorise (std::exp is not vectorised without -ffast-math); sums accumulate in double.
#include "common.h"
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

// exp(x) to about 1 ulp (Cephes expf): x = n·ln2 + r, |r| ≤ ln2/2, exp(r) by a degree-6
// polynomial, 2^n as the product of two exactly built powers of two, so results underflow
// gracefully to subnormals and 0 (exp(-inf) = 0) and overflow to inf; NaN stays NaN. No
// branches or selects, so GCC vectorises it inside `omp simd` loops.
inline float vexpf(float x) {
  float xc = std::min(std::max(x, -104.0f), 89.0f);
  xc = x != x ? x : xc;
  // Round to nearest with the 1.5·2^23 trick (floorf does not vectorise without -ffast-math);
  // the integer n sits in the low mantissa bits of t.
  const float magic = 12582912.0f;
  float t = xc * 1.44269504088896341f + magic;
  int32_t tb;
  std::memcpy(&tb, &t, sizeof tb);
  int32_t ni = tb - 0x4B400000;
  float n = t - magic;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  int32_t n1 = ni >> 1, n2 = ni - n1;
  int32_t b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, sizeof s1);
  std::memcpy(&s2, &b2, sizeof s2);
  return e * s1 * s2;
}

inline float rowMax(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; j++) m = std::max(m, x[j]);
  // A NaN anywhere makes the row NaN (as the reference does); max() above ignores NaN.
  int anyNan = 0;
#pragma omp simd reduction(| : anyNan)
  for (int64_t j = 0; j < n; j++) anyNan |= (x[j] != x[j]);
  return anyNan ? std::numeric_limits<float>::quiet_NaN() : m;
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
        float lse = static_cast<float>(static_cast<double>(m) + std::log(sumExp(xr, R, m)));
#pragma omp simd
        for (int64_t j = 0; j < R; j++) yr[j] = xr[j] - lse;
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
    for (int64_t j = 0; j < w; j++) k[j] = log ? static_cast<float>(static_cast<double>(m[j]) + std::log(s[j])) : static_cast<float>(1.0 / s[j]);
    for (int64_t r = 0; r < R; r++) {
      const float* xr = xb + r * inner;
      float* yr = yb + r * inner;
      if (log) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) yr[j] = xr[j] - k[j];
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
    float l = static_cast<float>(static_cast<double>(m) + std::log(sumExp(xr, V, m)));
    lse[i] = l;
    nll[i] = static_cast<double>(l) - static_cast<double>(xr[t[i]]);
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
