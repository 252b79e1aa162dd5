// Optimizer kernels: fused in-place AdamW and SGD (one pass over memory, parallel over fixed
// blocks, vectorised), in-place scaling, and a deterministic float64 sum of squares (fixed block
// partials combined in order, so the result does not depend on the thread count).
#include "common.h"
#include <algorithm>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <cmath>
#include <string>
#include <vector>

using namespace sw;

namespace {

constexpr int64_t BLOCK = 8192;

void needElems(const Args& a, size_t i, int64_t n, const char* what) {
  if (n < 0 || a.buffer(i)->bytes < static_cast<size_t>(n) * 4)
    throw KernelError(std::string(what) + " buffer holds " + std::to_string(a.buffer(i)->bytes / 4) + " elements, expected " + std::to_string(n));
}

template <typename F>
void blocks(int64_t n, int64_t workPerElem, F&& fn) {
  const int64_t nb = (n + BLOCK - 1) / BLOCK;
  parallelFor(nb, n * workPerElem, [&](int64_t b) {
    int64_t s = b * BLOCK, e = std::min(n, s + BLOCK);
    fn(s, e);
  });
}

}  // namespace

// adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, biasCorrection1, biasCorrection2)
// PyTorch AdamW: p *= 1 - lr·wd; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
// p -= lr/bc1 · m / (√v / √bc2 + eps).
static void adamw_body(Args& a) {
  float* p = a.f32(0);
  const float* g = a.f32(1);
  float* m = a.f32(2);
  float* v = a.f32(3);
  int64_t n = a.integer(4);
  double lr = a.number(5), b1 = a.number(6), b2 = a.number(7), eps = a.number(8), wd = a.number(9);
  double bc1 = a.number(10), bc2 = a.number(11);
  if (!(bc1 > 0) || !(bc2 > 0)) throw KernelError("bias corrections must be positive (step >= 1, betas < 1)");
  needElems(a, 0, n, "param");
  needElems(a, 1, n, "grad");
  needElems(a, 2, n, "m");
  needElems(a, 3, n, "v");
  const float decay = static_cast<float>(1.0 - lr * wd);
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  const float c1 = static_cast<float>(1.0 - b1), c2 = static_cast<float>(1.0 - b2);
  const float stepSize = static_cast<float>(lr / bc1);
  const float bc2Sqrt = static_cast<float>(std::sqrt(bc2));
  const float feps = static_cast<float>(eps);
  blocks(n, 12, [&](int64_t s, int64_t e) {
#pragma omp simd
    for (int64_t i = s; i < e; i++) {
      float gi = g[i];
      float mi = fb1 * m[i] + c1 * gi;
      float vi = fb2 * v[i] + c2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      float pi = p[i] * decay;
      p[i] = pi - stepSize * (mi / (std::sqrt(vi) / bc2Sqrt + feps));
    }
  });
}
SW_KERNEL(adamw, "adamw")

// adamwGroup([p0, g0, m0, v0, p1, …], sizes, lr, beta1, beta2, eps, weightDecay, bc1s, bc2s):
// the adamw update over every parameter of a group in one parallel region (blocks of all
// tensors in one list) instead of one region per parameter. Elementwise, so the result is the
// same whatever the thread count.
static void adamwGroup_body(Args& a) {
  const std::vector<Buffer*> bufs = a.buffers(0);
  const std::vector<int64_t> sizes = a.ints(1);
  const double lr = a.number(2), b1 = a.number(3), b2 = a.number(4), eps = a.number(5), wd = a.number(6);
  const std::vector<double> bc1 = a.numbers(7), bc2 = a.numbers(8);
  const size_t n = sizes.size();
  if (bufs.size() != 4 * n || bc1.size() != n || bc2.size() != n)
    throw KernelError("expected 4 buffers, a size and two bias corrections per parameter; got " + std::to_string(bufs.size()) +
                      " buffers, " + std::to_string(n) + " sizes, " + std::to_string(bc1.size()) + "/" + std::to_string(bc2.size()) + " corrections");
  struct Block { size_t t; int64_t s, e; };
  std::vector<Block> blocks;
  int64_t total = 0;
  for (size_t t = 0; t < n; t++) {
    const char* what[4] = {"param", "grad", "m", "v"};
    for (int k = 0; k < 4; k++)
      if (sizes[t] < 0 || bufs[4 * t + k]->bytes < static_cast<size_t>(sizes[t]) * 4)
        throw KernelError(std::string(what[k]) + " buffer of parameter " + std::to_string(t) + " is smaller than its size " + std::to_string(sizes[t]));
    if (!(bc1[t] > 0) || !(bc2[t] > 0)) throw KernelError("bias corrections must be positive (step >= 1, betas < 1)");
    for (int64_t s0 = 0; s0 < sizes[t]; s0 += BLOCK) blocks.push_back({t, s0, std::min(sizes[t], s0 + BLOCK)});
    total += sizes[t];
  }
  const float decay = static_cast<float>(1.0 - lr * wd);
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  const float c1 = static_cast<float>(1.0 - b1), c2 = static_cast<float>(1.0 - b2);
  const float feps = static_cast<float>(eps);
  parallelFor(static_cast<int64_t>(blocks.size()), total * 12, [&](int64_t bi) {
    const Block& b = blocks[bi];
    float* p = static_cast<float*>(bufs[4 * b.t]->data);
    const float* g = static_cast<const float*>(bufs[4 * b.t + 1]->data);
    float* m = static_cast<float*>(bufs[4 * b.t + 2]->data);
    float* v = static_cast<float*>(bufs[4 * b.t + 3]->data);
    const float stepSize = static_cast<float>(lr / bc1[b.t]);
    const float bc2Sqrt = static_cast<float>(std::sqrt(bc2[b.t]));
#pragma omp simd
    for (int64_t i = b.s; i < b.e; i++) {
      float gi = g[i];
      float mi = fb1 * m[i] + c1 * gi;
      float vi = fb2 * v[i] + c2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      float pi = p[i] * decay;
      p[i] = pi - stepSize * (mi / (std::sqrt(vi) / bc2Sqrt + feps));
    }
  });
}
SW_KERNEL(adamwGroup, "adamwGroup")

// sgd(p, g, buf | null, n, lr, momentum, dampening, nesterov, weightDecay, firstStep)
static void sgd_body(Args& a) {
  float* p = a.f32(0);
  const float* g = a.f32(1);
  float* buf = a.f32OrNull(2);
  int64_t n = a.integer(3);
  const float lr = static_cast<float>(a.number(4)), mu = static_cast<float>(a.number(5));
  const float damp = static_cast<float>(1.0 - a.number(6));
  const bool nesterov = a.boolean(7);
  const float wd = static_cast<float>(a.number(8));
  const bool first = a.boolean(9);
  needElems(a, 0, n, "param");
  needElems(a, 1, n, "grad");
  if (mu > 0.f && !buf) throw KernelError("momentum > 0 needs a momentum buffer");
  if (buf) needElems(a, 2, n, "momentum buffer");
  blocks(n, 6, [&](int64_t s, int64_t e) {
    if (mu > 0.f) {
#pragma omp simd
      for (int64_t i = s; i < e; i++) {
        float d = g[i] + wd * p[i];
        float b = first ? d : mu * buf[i] + damp * d;
        buf[i] = b;
        d = nesterov ? d + mu * b : b;
        p[i] -= lr * d;
      }
    } else {
#pragma omp simd
      for (int64_t i = s; i < e; i++) p[i] -= lr * (g[i] + wd * p[i]);
    }
  });
}
SW_KERNEL(sgd, "sgd")

// scaleInPlace(x, n, s)
static void scaleInPlace_body(Args& a) {
  float* x = a.f32(0);
  int64_t n = a.integer(1);
  const float s = static_cast<float>(a.number(2));
  needElems(a, 0, n, "tensor");
  blocks(n, 2, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; i++) x[i] *= s;
  });
}
SW_KERNEL(scaleInPlace, "scaleInPlace")

// sumSquares(x, n) -> number: Σ x² in double over fixed blocks, combined in block order.
static napi_value sumSquares(napi_env env, napi_callback_info info) {
  return guard(env, "sumSquares", [&]() -> napi_value {
    Args a(env, info, "sumSquares");
    const float* x = a.f32(0);
    int64_t n = a.integer(1);
    needElems(a, 0, n, "tensor");
    const int64_t nb = (n + BLOCK - 1) / BLOCK;
    std::vector<double> part(static_cast<size_t>(nb), 0.0);
    parallelFor(nb, n * 2, [&](int64_t b) {
      int64_t s = b * BLOCK, e = std::min(n, s + BLOCK);
      double acc = 0.0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = s; i < e; i++) acc += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      part[b] = acc;
    });
    double total = 0.0;
    for (double v : part) total += v;
    return numberValue(env, total);
  });
}

// ---- 8-bit block-wise AdamW (bitsandbytes' Adam8bit, blockwise) ------------------------------
// State: m as signed and v as unsigned 8-bit codes into the dynamic quantization maps (codeS,
// codeU: 256 sorted floats), one float32 absmax per block of `bs` elements. Per block: dequantize
// m and v, take the AdamW step with the new (unquantized) moments, then requantize them against
// the block's new absmax, each value to its nearest code (ties to the lower code; a positive v
// to the smallest positive code at least). Blocks are
// independent, so the result does not depend on the thread count.

namespace {

inline uint8_t nearestCode(const float* code, float x) {
  // The largest index with code[idx] <= x (code is sorted ascending; 0 when x is below code[0]),
  // then the nearer of it and its upper neighbour, in eight fixed steps.
  int lo = 0;
#pragma GCC unroll 8
  for (int step = 128; step > 0; step >>= 1) lo += code[lo + step] <= x ? step : 0;
  const int hi = lo < 255 ? lo + 1 : 255;
  return (x - code[lo] <= code[hi] - x) ? static_cast<uint8_t>(lo) : static_cast<uint8_t>(hi);
}

// GCC 12's AVX-512 intrinsics start from an undefined vector, which -Wmaybe-uninitialized
// reports (GCC bug 105593); the reads of x stay within n.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// out[i] = nearestCode(code, x[i]) for n values: the same eight steps and the same comparisons,
// so the same codes, on 16 (AVX-512) or 8 (AVX2) lanes. (One scalar search at a time, a chain of
// dependent loads that mispredicted half its steps, made the 8-bit AdamW update 35 % of a 1.1B
// stack-wise training step.)
//
// AVX-512: at step s the candidate is code[lo + s] with lo a multiple of 2s, one of the 128/s
// values code[s], code[3s], code[5s], …: from registers by permutes (one register up to 16
// values, permutex2var pairs beyond), not by gathers, which are slow on some CPUs (Zen 4). The
// values at lo and at the last candidate that failed are carried along, so the final choice
// between the two neighbours needs no load either.
#if defined(__AVX512F__)
struct SearchTables {
  __m512 r[19];  // level L (s = 128 >> L) uses registers base[L] .. base[L] + max(1, 2^L / 16) - 1
  float first;
  static constexpr int base[8] = {0, 1, 2, 3, 4, 5, 7, 11};  // 19 registers in all
  explicit SearchTables(const float* code) {
    alignas(64) float t[16];
    for (int L = 0; L < 8; L++) {
      const int s = 128 >> L, count = 1 << L, regs = std::max(1, count / 16);
      for (int k = 0; k < regs; k++) {
        for (int j = 0; j < 16; j++) {
          const int idx = k * 16 + j;
          t[j] = idx < count ? code[(2 * idx + 1) * s] : 0.f;
        }
        r[base[L] + k] = _mm512_load_ps(t);
      }
    }
    first = code[0];
  }
  // The candidate values code[lo + s] at level L, where j = lo >> (8 - L).
  __m512 at(int L, __m512i j) const {
    const __m512* b = r + base[L];
    if (L <= 4) return _mm512_permutexvar_ps(j, b[0]);
    if (L == 5) return _mm512_permutex2var_ps(b[0], j, b[1]);
    const __m512 v01 = _mm512_permutex2var_ps(b[0], j, b[1]), v23 = _mm512_permutex2var_ps(b[2], j, b[3]);
    const __m512 lo = _mm512_mask_blend_ps(_mm512_test_epi32_mask(j, _mm512_set1_epi32(32)), v01, v23);
    if (L == 6) return lo;
    const __m512 v45 = _mm512_permutex2var_ps(b[4], j, b[5]), v67 = _mm512_permutex2var_ps(b[6], j, b[7]);
    const __m512 hi = _mm512_mask_blend_ps(_mm512_test_epi32_mask(j, _mm512_set1_epi32(32)), v45, v67);
    return _mm512_mask_blend_ps(_mm512_test_epi32_mask(j, _mm512_set1_epi32(64)), lo, hi);
  }
};
#endif

void nearestCodes(const float* code, const float* x, int64_t n, uint8_t* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const SearchTables tab(code);
  const __m512 inf = _mm512_set1_ps(INFINITY);
  for (; i + 16 <= n; i += 16) {
    const __m512 xv = _mm512_loadu_ps(x + i);
    __m512i lo = _mm512_setzero_si512();
    __m512 vlo = _mm512_set1_ps(tab.first), vhi = inf;
#pragma GCC unroll 8
    for (int L = 0; L < 8; L++) {
      const int s = 128 >> L;
      const __m512 val = tab.at(L, _mm512_srli_epi32(lo, 8 - L));
      const __mmask16 le = _mm512_cmp_ps_mask(val, xv, _CMP_LE_OQ);
      lo = _mm512_mask_add_epi32(lo, le, lo, _mm512_set1_epi32(s));
      vlo = _mm512_mask_mov_ps(vlo, le, val);
      vhi = _mm512_mask_mov_ps(val, le, vhi);
    }
    // hi = lo + 1 (lo when lo is 255: vhi is then +inf, and lo wins, as hi = lo would).
    const __mmask16 takeLo = _mm512_cmp_ps_mask(_mm512_sub_ps(xv, vlo), _mm512_sub_ps(vhi, xv), _CMP_LE_OQ);
    const __m512i pick = _mm512_mask_mov_epi32(_mm512_add_epi32(lo, _mm512_set1_epi32(1)), takeLo, lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(_mm512_min_epi32(pick, _mm512_set1_epi32(255))));
  }
#elif defined(__AVX2__)
  // Gathers here, CH vectors searched side by side to overlap the latencies of their chains.
  constexpr int CH = 4;
  const __m256i one = _mm256_set1_epi32(1), top = _mm256_set1_epi32(255);
  for (; i + 8 <= n; ) {
    const int ch = static_cast<int>(std::min<int64_t>(CH, (n - i) / 8));
    __m256 xv[CH];
    __m256i lo[CH];
#pragma GCC unroll 4
    for (int c = 0; c < CH; c++) {
      xv[c] = c < ch ? _mm256_loadu_ps(x + i + 8 * c) : _mm256_setzero_ps();
      lo[c] = _mm256_setzero_si256();
    }
    for (int step = 128; step > 0; step >>= 1) {
      const __m256i st = _mm256_set1_epi32(step);
#pragma GCC unroll 4
      for (int c = 0; c < CH; c++) {
        const __m256i cand = _mm256_add_epi32(lo[c], st);
        const __m256 le = _mm256_cmp_ps(_mm256_i32gather_ps(code, cand, 4), xv[c], _CMP_LE_OQ);
        lo[c] = _mm256_blendv_epi8(lo[c], cand, _mm256_castps_si256(le));
      }
    }
#pragma GCC unroll 4
    for (int c = 0; c < CH; c++) {
      if (c >= ch) break;
      const __m256i hi = _mm256_min_epi32(_mm256_add_epi32(lo[c], one), top);
      const __m256 below = _mm256_sub_ps(xv[c], _mm256_i32gather_ps(code, lo[c], 4));
      const __m256 above = _mm256_sub_ps(_mm256_i32gather_ps(code, hi, 4), xv[c]);
      const __m256i pick = _mm256_blendv_epi8(hi, lo[c], _mm256_castps_si256(_mm256_cmp_ps(below, above, _CMP_LE_OQ)));
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), pick);
      for (int k = 0; k < 8; k++) out[i + 8 * c + k] = static_cast<uint8_t>(lanes[k]);
    }
    i += 8 * ch;
  }
#endif
  for (; i < n; i++) out[i] = nearestCode(code, x[i]);
}
#pragma GCC diagnostic pop

}  // namespace

// adamw8bit(p, g, mq, mAbsmax, vq, vAbsmax, codeS, codeU, n, bs, lr, beta1, beta2, eps, weightDecay, bc1, bc2)
// (GCC reports the normalised moments as maybe uninitialised where nearestCodes is inlined; every
// element it reads, [0, len), is written just before.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
static void adamw8bit_body(Args& a) {
  float* p = a.f32(0);
  const float* g = a.f32(1);
  uint8_t* mq = a.u8(2);
  float* mAbs = a.f32(3);
  uint8_t* vq = a.u8(4);
  float* vAbs = a.f32(5);
  const float* codeS = a.f32(6);
  const float* codeU = a.f32(7);
  int64_t n = a.integer(8), bs = a.integer(9);
  double lr = a.number(10), b1 = a.number(11), b2 = a.number(12), eps = a.number(13), wd = a.number(14);
  double bc1 = a.number(15), bc2 = a.number(16);
  if (!(bc1 > 0) || !(bc2 > 0)) throw KernelError("bias corrections must be positive (step >= 1, betas < 1)");
  if (bs < 1 || bs > 4096) throw KernelError("block size must be in [1, 4096]");
  const int64_t nb = (n + bs - 1) / bs;
  needElems(a, 0, n, "param");
  needElems(a, 1, n, "grad");
  if (a.buffer(2)->bytes < static_cast<size_t>(n) || a.buffer(4)->bytes < static_cast<size_t>(n)) throw KernelError("8-bit state buffers hold fewer than n bytes");
  needElems(a, 3, nb, "m absmax");
  needElems(a, 5, nb, "v absmax");
  needElems(a, 6, 256, "signed code");
  needElems(a, 7, 256, "unsigned code");
  const float decay = static_cast<float>(1.0 - lr * wd);
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  const float c1 = static_cast<float>(1.0 - b1), c2 = static_cast<float>(1.0 - b2);
  const float stepSize = static_cast<float>(lr / bc1);
  const float bc2Sqrt = static_cast<float>(std::sqrt(bc2));
  const float feps = static_cast<float>(eps);
  parallelFor(nb, n * 40, [&](int64_t b) {
    const int64_t s = b * bs, e = std::min(n, s + bs);
    float mBuf[4096], vBuf[4096];
    const float ma = mAbs[b], va = vAbs[b];
    float mMax = 0.f, vMax = 0.f;
    for (int64_t i = s; i < e; i++) {
      float gi = g[i];
      float mi = fb1 * (codeS[mq[i]] * ma) + c1 * gi;
      float vi = fb2 * (codeU[vq[i]] * va) + c2 * gi * gi;
      mBuf[i - s] = mi;
      vBuf[i - s] = vi;
      mMax = std::max(mMax, std::fabs(mi));
      vMax = std::max(vMax, vi);
      float pi = p[i] * decay;
      p[i] = pi - stepSize * (mi / (std::sqrt(vi) / bc2Sqrt + feps));
    }
    mAbs[b] = mMax;
    vAbs[b] = vMax;
    const int64_t len = e - s;
    float mNorm[4096], vNorm[4096];
    for (int64_t i = 0; i < len; i++) {
      mNorm[i] = mMax > 0.f ? mBuf[i] / mMax : 0.f;
      vNorm[i] = vMax > 0.f ? vBuf[i] / vMax : 0.f;
    }
    nearestCodes(codeS, mNorm, len, mq + s);
    nearestCodes(codeU, vNorm, len, vq + s);
    // A positive second moment never becomes 0: √v = 0 under a nonzero m would make the next
    // step m/eps (a row of an embedding that sat out a batch, its v tiny against the block's max).
    for (int64_t i = 0; i < len; i++) if (vq[s + i] == 0 && vBuf[i] > 0.f) vq[s + i] = 1;
  });
}
#pragma GCC diagnostic pop
SW_KERNEL(adamw8bit, "adamw8bit")

void RegisterOptim(napi_env env, napi_value exports) {
  exportFunction(env, exports, "adamw8bit", adamw8bit);
  exportFunction(env, exports, "adamw", adamw);
  exportFunction(env, exports, "adamwGroup", adamwGroup);
  exportFunction(env, exports, "sgd", sgd);
  exportFunction(env, exports, "scaleInPlace", scaleInPlace);
  exportFunction(env, exports, "sumSquares", sumSquares);
}
