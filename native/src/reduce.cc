// Reductions: multi-axis sums (staged [outer, reduce, inner] reductions accumulated in double),
// max / arg-max along one axis and the max gradient scatter. Every sum is split into chunks whose
// boundaries depend only on the shape, and the partial sums are combined in a fixed order, so the
// results do not depend on the number of threads.
#include "common.h"
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace sw;

namespace {

void needElems(const Args& a, size_t i, int64_t n, const char* what) {
  if (n < 0 || a.buffer(i)->bytes < static_cast<size_t>(n) * 4)
    throw KernelError(std::string(what) + " buffer holds " + std::to_string(a.buffer(i)->bytes / 4) + " elements, the shapes need " + std::to_string(n));
}

// out[o, j] = sum_r in[o, r, j], in double.
template <typename T>
void sumStage(const T* in, double* out, int64_t outer, int64_t R, int64_t inner) {
  const int64_t total = outer * R * inner;
  if (outer * inner == 0) return;
  if (R == 0) {
    std::fill(out, out + outer * inner, 0.0);
    return;
  }
  if (inner == 1) {
    const int64_t CH = 16384;
    const int64_t nch = (R + CH - 1) / CH;
    if (nch == 1) {
      parallelFor(outer, total, [&](int64_t o) {
        const T* row = in + o * R;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t r = 0; r < R; r++) s += static_cast<double>(row[r]);
        out[o] = s;
      });
      return;
    }
    std::vector<double> part(static_cast<size_t>(outer * nch));
    parallelFor(outer * nch, total, [&](int64_t t) {
      int64_t o = t / nch, c = t % nch;
      const T* row = in + o * R;
      int64_t s0 = c * CH, s1 = std::min(R, s0 + CH);
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t r = s0; r < s1; r++) s += static_cast<double>(row[r]);
      part[t] = s;
    });
    for (int64_t o = 0; o < outer; o++) {
      double s = 0.0;
      for (int64_t c = 0; c < nch; c++) s += part[o * nch + c];
      out[o] = s;
    }
    return;
  }
  // inner > 1: tasks over (outer, chunk of reduced rows, block of columns); vectorised over columns.
  const int64_t CB = 2048;
  const int64_t ncb = (inner + CB - 1) / CB;
  // Split the reduced rows into chunks only when (outer, column block) tasks are too few to
  // share out: aim at about 64 tasks, each with at least 64K elements (shape-only rule).
  int64_t nch = 1;
  if (outer * ncb < 64) {
    const int64_t want = (64 + outer * ncb - 1) / (outer * ncb);
    nch = std::max<int64_t>(1, std::min<int64_t>({R, want, (R * inner) / 65536}));
  }
  std::vector<double> partBuf;
  double* part = out;
  if (nch > 1) {
    partBuf.assign(static_cast<size_t>(outer * nch * inner), 0.0);
    part = partBuf.data();
  }
  const int64_t rowsPer = (R + nch - 1) / nch;
  parallelFor(outer * nch * ncb, total, [&](int64_t t) {
    int64_t cb = t % ncb, rest = t / ncb;
    int64_t c = rest % nch, o = rest / nch;
    int64_t j0 = cb * CB, j1 = std::min(inner, j0 + CB);
    int64_t r0 = c * rowsPer, r1 = std::min(R, r0 + rowsPer);
    double* acc = part + (o * nch + c) * inner;
    for (int64_t j = j0; j < j1; j++) acc[j] = 0.0;
    for (int64_t r = r0; r < r1; r++) {
      const T* row = in + (o * R + r) * inner;
#pragma omp simd
      for (int64_t j = j0; j < j1; j++) acc[j] += static_cast<double>(row[j]);
    }
  });
  if (nch > 1) {
    for (int64_t o = 0; o < outer; o++) {
      double* dst = out + o * inner;
      const double* p0 = part + o * nch * inner;
      for (int64_t j = 0; j < inner; j++) dst[j] = p0[j];
      for (int64_t c = 1; c < nch; c++) {
        const double* pc = p0 + c * inner;
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) dst[j] += pc[j];
      }
    }
  }
}

// Index of the first maximum of row[0..n) (n >= 1); the first NaN when there is one. One pass
// with 16 explicit lanes, each keeping its running maximum and the first index reaching it (a
// strict > keeps the first); among lanes holding the overall maximum the smallest index wins.
// A running Σ x·0 turns NaN exactly when some x is NaN or infinite (then checked precisely).
int64_t firstMax(const float* row, int64_t n) {
  constexpr int W = 16;
  const float ninf = -std::numeric_limits<float>::infinity();
  float acc[W], chk[W];
  int32_t ai[W];
  for (int k = 0; k < W; k++) { acc[k] = ninf; chk[k] = 0.f; ai[k] = -1; }
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const int32_t base = static_cast<int32_t>(j);
#pragma omp simd
    for (int k = 0; k < W; k++) {
      float v = row[j + k];
      bool gt = v > acc[k];
      acc[k] = gt ? v : acc[k];
      ai[k] = gt ? base + k : ai[k];
      chk[k] += v * 0.f;
    }
  }
  float best = ninf, c = 0.f;
  int64_t at = -1;
  for (; j < n; j++) {
    if (row[j] > best) { best = row[j]; at = j; }
    c += row[j] * 0.f;
  }
  for (int k = 0; k < W; k++) {
    c += chk[k];
    if (ai[k] < 0) continue;
    if (acc[k] > best || (acc[k] == best && (at < 0 || ai[k] < at))) { best = acc[k]; at = ai[k]; }
  }
  if (c != c) {
    for (int64_t i = 0; i < n; i++) if (row[i] != row[i]) return i;
  }
  if (at < 0) {  // every element is -inf
    at = 0;
  }
  return at;
}

}  // namespace

// reduceSum(x, out, xSize, stages[outer, reduce, inner, ...], scale)
static void reduceSum_body(Args& a) {
  const float* x = a.f32(0);
  float* out = a.f32(1);
  int64_t n = a.integer(2);
  auto st = a.ints(3);
  double scale = a.number(4);
  if (st.size() % 3 != 0) throw KernelError("stages must be [outer, reduce, inner] triples");
  needElems(a, 0, n, "input");
  int64_t size = n;
  for (size_t s = 0; s < st.size(); s += 3) {
    if (st[s] < 0 || st[s + 1] < 0 || st[s + 2] < 0 || st[s] * st[s + 1] * st[s + 2] != size)
      throw KernelError("stage " + std::to_string(s / 3) + " does not match the " + std::to_string(size) + " elements it reduces");
    size = st[s] * st[s + 2];
  }
  needElems(a, 1, size, "output");
  if (st.empty()) {
    parallelFor(n, n, [&](int64_t i) { out[i] = static_cast<float>(x[i] * scale); });
    return;
  }
  std::vector<double> cur, next;
  for (size_t s = 0; s < st.size(); s += 3) {
    next.assign(static_cast<size_t>(st[s] * st[s + 2]), 0.0);
    if (s == 0) sumStage<float>(x, next.data(), st[s], st[s + 1], st[s + 2]);
    else sumStage<double>(cur.data(), next.data(), st[s], st[s + 1], st[s + 2]);
    cur.swap(next);
  }
  for (int64_t i = 0; i < size; i++) out[i] = static_cast<float>(cur[i] * scale);
}
SW_KERNEL(reduceSum, "reduceSum")

// maxAxis(x, vals|null, idx, outer, reduce, inner): first maximum along the middle axis; NaN wins.
static void maxAxis_body(Args& a) {
  const float* x = a.f32(0);
  float* vals = a.f32OrNull(1);
  int32_t* idx = a.i32(2);
  int64_t outer = a.integer(3), R = a.integer(4), inner = a.integer(5);
  if (R <= 0) throw KernelError("cannot take the max over an empty axis");
  needElems(a, 0, outer * R * inner, "input");
  if (vals) needElems(a, 1, outer * inner, "values");
  needElems(a, 2, outer * inner, "indices");
  const int64_t total = outer * R * inner;
  if (inner == 1) {
    parallelFor(outer, total, [&](int64_t o) {
      const float* row = x + o * R;
      int64_t at = firstMax(row, R);
      if (vals) vals[o] = row[at];
      idx[o] = static_cast<int32_t>(at);
    });
    return;
  }
  const int64_t CB = 256;
  const int64_t ncb = (inner + CB - 1) / CB;
  parallelFor(outer * ncb, total, [&](int64_t t) {
    int64_t o = t / ncb, j0 = (t % ncb) * CB, j1 = std::min(inner, j0 + CB), w = j1 - j0;
    float best[CB];
    int32_t at[CB];
    const float* base = x + o * R * inner + j0;
    for (int64_t j = 0; j < w; j++) { best[j] = base[j]; at[j] = 0; }
    for (int64_t r = 1; r < R; r++) {
      const float* row = base + r * inner;
      const int32_t rr = static_cast<int32_t>(r);
#pragma omp simd
      for (int64_t j = 0; j < w; j++) {
        float v = row[j];
        bool take = v > best[j] || (v != v && best[j] == best[j]);
        best[j] = take ? v : best[j];
        at[j] = take ? rr : at[j];
      }
    }
    for (int64_t j = 0; j < w; j++) {
      if (vals) vals[o * inner + j0 + j] = best[j];
      idx[o * inner + j0 + j] = at[j];
    }
  });
}
SW_KERNEL(maxAxis, "maxAxis")

// maxAxisGrad(dy, idx, dx, outer, reduce, inner): dx (zero-filled) [o, idx[o, j], j] = dy[o, j].
static void maxAxisGrad_body(Args& a) {
  const float* dy = a.f32(0);
  const int32_t* idx = a.i32(1);
  float* dx = a.f32(2);
  int64_t outer = a.integer(3), R = a.integer(4), inner = a.integer(5);
  needElems(a, 0, outer * inner, "dy");
  needElems(a, 1, outer * inner, "indices");
  needElems(a, 2, outer * R * inner, "dx");
  for (int64_t i = 0; i < outer * inner; i++)
    if (idx[i] < 0 || idx[i] >= R) throw KernelError("index " + std::to_string(idx[i]) + " at " + std::to_string(i) + " is out of range [0, " + std::to_string(R) + ")");
  parallelFor(outer, outer * inner * 4, [&](int64_t o) {
    for (int64_t j = 0; j < inner; j++) dx[(o * R + idx[o * inner + j]) * inner + j] = dy[o * inner + j];
  });
}
SW_KERNEL(maxAxisGrad, "maxAxisGrad")

void RegisterReduce(napi_env env, napi_value exports) {
  exportFunction(env, exports, "reduceSum", reduceSum);
  exportFunction(env, exports, "maxAxis", maxAxis);
  exportFunction(env, exports, "maxAxisGrad", maxAxisGrad);
}
