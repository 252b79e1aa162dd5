// Layout kernels: permuting copies (row copies or tiled 2-D transposes after merging dims),
// strided row-block copies (concat / narrow / split and their gradients), gather along an axis
// and its deterministic scatter-add gradient, and a broadcasting select. Elements are moved as
// 4-byte words, so these serve float32 and int32 tensors alike.
#include "common.h"
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using namespace sw;

namespace {

void needElems(const Args& a, size_t i, int64_t n, const char* what) {
  if (n < 0 || a.buffer(i)->bytes < static_cast<size_t>(n) * 4)
    throw KernelError(std::string(what) + " buffer holds " + std::to_string(a.buffer(i)->bytes / 4) + " elements, the shapes need " + std::to_string(n));
}

uint32_t* words(const Args& a, size_t i) { return static_cast<uint32_t*>(a.buffer(i)->data); }

}  // namespace

// permute(x, out, shape, perm): out dimension i is input dimension perm[i].
static void permute_body(Args& a) {
  const uint32_t* x = words(a, 0);
  uint32_t* y = words(a, 1);
  auto shape = a.ints(2), perm = a.ints(3);
  const int64_t r = static_cast<int64_t>(shape.size());
  if (static_cast<int64_t>(perm.size()) != r) throw KernelError("permutation rank differs from shape rank");
  int64_t total = 1;
  for (auto d : shape) total *= d;
  std::vector<bool> seen(r, false);
  for (auto p : perm) {
    if (p < 0 || p >= r || seen[p]) throw KernelError("invalid permutation");
    seen[p] = true;
  }
  needElems(a, 0, total, "input");
  needElems(a, 1, total, "output");
  if (total == 0) return;

  // 1. Drop size-1 dimensions; relabel the remaining input dimensions.
  std::vector<int64_t> keep(r, -1);
  std::vector<int64_t> s1;
  for (int64_t d = 0; d < r; d++) if (shape[d] != 1) { keep[d] = static_cast<int64_t>(s1.size()); s1.push_back(shape[d]); }
  std::vector<int64_t> p1;
  for (auto p : perm) if (keep[p] >= 0) p1.push_back(keep[p]);
  // 2. Merge runs of output dimensions that read consecutive input dimensions.
  std::vector<std::pair<int64_t, int64_t>> groups;  // (first input dim, count) in output order
  for (size_t i = 0; i < p1.size(); i++) {
    if (!groups.empty() && groups.back().first + groups.back().second == p1[i]) groups.back().second++;
    else groups.push_back({p1[i], 1});
  }
  const int64_t n = static_cast<int64_t>(groups.size());
  if (n <= 1) {  // identity
    std::memcpy(y, x, static_cast<size_t>(total) * 4);
    return;
  }
  // Input dims of the merged view, ordered by their first original input dim.
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t u, int64_t v) { return groups[u].first < groups[v].first; });
  std::vector<int64_t> inSize(n), inStride(n), outPerm(n);  // outPerm[i] = merged input dim of output dim i
  for (int64_t k = 0; k < n; k++) {
    int64_t g = order[k];
    int64_t sz = 1;
    for (int64_t d = groups[g].first; d < groups[g].first + groups[g].second; d++) sz *= s1[d];
    inSize[k] = sz;
    outPerm[g] = k;
  }
  inStride[n - 1] = 1;
  for (int64_t k = n - 2; k >= 0; k--) inStride[k] = inStride[k + 1] * inSize[k + 1];
  std::vector<int64_t> os(n), osz(n), ist(n);  // per output dim: out stride, size, input stride
  for (int64_t i = 0; i < n; i++) { osz[i] = inSize[outPerm[i]]; ist[i] = inStride[outPerm[i]]; }
  os[n - 1] = 1;
  for (int64_t i = n - 2; i >= 0; i--) os[i] = os[i + 1] * osz[i + 1];

  if (outPerm[n - 1] == n - 1) {
    // The innermost dimension stays innermost: copy contiguous rows.
    const int64_t inner = osz[n - 1];
    const int64_t rows = total / inner;
    parallelFor(rows, total, [&](int64_t row) {
      int64_t rem = row, off = 0;
      for (int64_t i = n - 2; i >= 0; i--) { off += (rem % osz[i]) * ist[i]; rem /= osz[i]; }
      std::memcpy(y + row * inner, x + off, static_cast<size_t>(inner) * 4);
    });
    return;
  }
  // Batched 2-D transpose: output dim q reads the contiguous input dim; the last output dim
  // (contiguous in the output) reads input stride sk. Tiles of T x T keep both sides in cache.
  int64_t q = 0;
  while (outPerm[q] != n - 1) q++;
  const int64_t A = osz[q], Bn = osz[n - 1], sk = ist[n - 1], oq = os[q];
  std::vector<int64_t> bd;  // remaining (batch) output dims
  for (int64_t i = 0; i < n - 1; i++) if (i != q) bd.push_back(i);
  const int64_t batch = total / (A * Bn);
  const int64_t T = 32;
  const int64_t ta = (A + T - 1) / T, tb = (Bn + T - 1) / T;
  parallelFor(batch * ta * tb, total, [&](int64_t task) {
    int64_t tbi = task % tb, rest = task / tb;
    int64_t tai = rest % ta, bi = rest / ta;
    int64_t inOff = 0, outOff = 0, rem = bi;
    for (int64_t k = static_cast<int64_t>(bd.size()) - 1; k >= 0; k--) {
      int64_t i = bd[k];
      int64_t v = rem % osz[i];
      rem /= osz[i];
      inOff += v * ist[i];
      outOff += v * os[i];
    }
    int64_t a0 = tai * T, a1 = std::min(A, a0 + T), b0 = tbi * T, b1 = std::min(Bn, b0 + T);
    for (int64_t av = a0; av < a1; av++) {
      uint32_t* dst = y + outOff + av * oq;
      const uint32_t* src = x + inOff + av;
      for (int64_t bv = b0; bv < b1; bv++) dst[bv] = src[bv * sk];
    }
  });
}
SW_KERNEL(permute, "permute")

// copyRows(src, dst, rows, rowLen, srcStride, srcOffset, dstStride, dstOffset), in elements:
// dst[dstOffset + r * dstStride + j] = src[srcOffset + r * srcStride + j].
static void copyRows_body(Args& a) {
  const uint32_t* src = words(a, 0);
  uint32_t* dst = words(a, 1);
  int64_t rows = a.integer(2), len = a.integer(3), ss = a.integer(4), so = a.integer(5), ds = a.integer(6), dof = a.integer(7);
  if (rows < 0 || len < 0 || ss < 0 || so < 0 || ds < 0 || dof < 0) throw KernelError("negative size, stride or offset");
  if (rows == 0 || len == 0) return;
  needElems(a, 0, so + (rows - 1) * ss + len, "source");
  needElems(a, 1, dof + (rows - 1) * ds + len, "destination");
  const int64_t CH = 65536;
  const int64_t nch = (len + CH - 1) / CH;
  parallelFor(rows * nch, rows * len, [&](int64_t t) {
    int64_t r = t / nch, c = t % nch;
    int64_t j0 = c * CH, j1 = std::min(len, j0 + CH);
    std::memcpy(dst + dof + r * ds + j0, src + so + r * ss + j0, static_cast<size_t>(j1 - j0) * 4);
  });
}
SW_KERNEL(copyRows, "copyRows")

// indexSelect(x, ids, out, outer, size, inner, n): out[o, i, :] = x[o, ids[i], :].
static void indexSelect_body(Args& a) {
  const uint32_t* x = words(a, 0);
  const int32_t* ids = a.i32(1);
  uint32_t* y = words(a, 2);
  int64_t outer = a.integer(3), R = a.integer(4), inner = a.integer(5), n = a.integer(6);
  needElems(a, 1, n, "ids");
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= R) throw KernelError("ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) + " is out of range [0, " + std::to_string(R) + ")");
  needElems(a, 0, outer * R * inner, "input");
  needElems(a, 2, outer * n * inner, "output");
  if (inner == 1) {
    parallelFor(outer, outer * n, [&](int64_t o) {
      const uint32_t* xs = x + o * R;
      uint32_t* ys = y + o * n;
      for (int64_t i = 0; i < n; i++) ys[i] = xs[ids[i]];
    });
    return;
  }
  parallelFor(outer * n, outer * n * inner, [&](int64_t t) {
    int64_t o = t / n, i = t % n;
    std::memcpy(y + t * inner, x + (o * R + ids[i]) * inner, static_cast<size_t>(inner) * 4);
  });
}
SW_KERNEL(indexSelect, "indexSelect")

// indexSelectGrad(dy, ids, dx, outer, size, inner, n): dx[o, v, :] = sum over i with ids[i] == v
// of dy[o, i, :], added in ascending i (deterministic; each output row belongs to one task).
static void indexSelectGrad_body(Args& a) {
  const float* dy = a.f32(0);
  const int32_t* ids = a.i32(1);
  float* dx = a.f32(2);
  int64_t outer = a.integer(3), R = a.integer(4), inner = a.integer(5), n = a.integer(6);
  needElems(a, 1, n, "ids");
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= R) throw KernelError("ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) + " is out of range [0, " + std::to_string(R) + ")");
  needElems(a, 0, outer * n * inner, "dy");
  needElems(a, 2, outer * R * inner, "dx");
  // Positions grouped by target (counting sort keeps ascending i within a target).
  std::vector<int64_t> start(static_cast<size_t>(R) + 1, 0), pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) start[ids[i] + 1]++;
  for (int64_t v = 0; v < R; v++) start[v + 1] += start[v];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; i++) pos[fill[ids[i]]++] = i;
  }
  parallelFor(outer * R, outer * (n + R) * inner, [&](int64_t t) {
    int64_t o = t / R, v = t % R;
    float* dst = dx + t * inner;
    for (int64_t k = start[v]; k < start[v + 1]; k++) {
      const float* src = dy + (o * n + pos[k]) * inner;
      if (k == start[v]) {
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) dst[j] = src[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) dst[j] += src[j];
      }
    }
  });
}
SW_KERNEL(indexSelectGrad, "indexSelectGrad")

// where(mask, a, b, out, shape, stridesMask, stridesA, stridesB, maskIsFloat)
static void where_body(Args& a) {
  const void* mask = a.buffer(0)->data;
  const uint32_t* A = words(a, 1);
  const uint32_t* B = words(a, 2);
  uint32_t* C = words(a, 3);
  auto shape = a.ints(4), sm = a.ints(5), sa = a.ints(6), sb = a.ints(7);
  bool maskFloat = a.boolean(8);
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (static_cast<int64_t>(sm.size()) != nd || static_cast<int64_t>(sa.size()) != nd || static_cast<int64_t>(sb.size()) != nd)
    throw KernelError("stride rank differs from shape rank");
  int64_t total = 1;
  for (auto d : shape) total *= d;
  needElems(a, 3, total, "output");
  if (total == 0) return;
  auto span = [&](const std::vector<int64_t>& s) {
    int64_t m = 0;
    for (int64_t d = 0; d < nd; d++) m += (shape[d] - 1) * s[d];
    return m + 1;
  };
  needElems(a, 0, span(sm), "mask");
  needElems(a, 1, span(sa), "a");
  needElems(a, 2, span(sb), "b");
  const float* mf = static_cast<const float*>(mask);
  const int32_t* mi = static_cast<const int32_t*>(mask);
  const int64_t inner = nd == 0 ? 1 : shape[nd - 1];
  const int64_t rows = total / inner;
  const int64_t im = nd ? sm[nd - 1] : 0, ia = nd ? sa[nd - 1] : 0, ib = nd ? sb[nd - 1] : 0;
  parallelFor(rows, total, [&](int64_t r) {
    int64_t om = 0, oa = 0, ob = 0, rem = r;
    for (int64_t d = nd - 2; d >= 0; d--) {
      int64_t v = rem % shape[d];
      rem /= shape[d];
      om += v * sm[d];
      oa += v * sa[d];
      ob += v * sb[d];
    }
    uint32_t* c = C + r * inner;
    if (im == 1 && ia == 1 && ib == 1) {
      if (maskFloat) {
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) c[j] = mf[om + j] != 0.f ? A[oa + j] : B[ob + j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) c[j] = mi[om + j] != 0 ? A[oa + j] : B[ob + j];
      }
    } else {
      for (int64_t j = 0; j < inner; j++) {
        bool m = maskFloat ? mf[om + j * im] != 0.f : mi[om + j * im] != 0;
        c[j] = m ? A[oa + j * ia] : B[ob + j * ib];
      }
    }
  });
}
SW_KERNEL(where, "where")

void RegisterLayout(napi_env env, napi_value exports) {
  exportFunction(env, exports, "permute", permute);
  exportFunction(env, exports, "copyRows", copyRows);
  exportFunction(env, exports, "indexSelect", indexSelect);
  exportFunction(env, exports, "indexSelectGrad", indexSelectGrad);
  exportFunction(env, exports, "where", where);
}
