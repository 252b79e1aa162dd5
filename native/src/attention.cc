// Fused scaled dot-product attention over the [batch, seq, heads, head_dim] layout, with causal
// masking (bottom-right aligned: query i sees key j iff j <= i + Sk - S), a key padding mask
// and grouped-query attention (query head h reads kv head h / (H / Hkv)).
//
// Forward: per (batch, head, tile of BR query rows) the score block tile × keys is computed by
// sgemm into per-thread scratch (never the whole B·H·S·Sk tensor), masked, soft-maxed and
// multiplied by V with sgemm straight into the output rows (leading dimension H·D). Key ranges
// that no row of the tile can see (causal future, leading / trailing padding) are skipped.
// The per-row logsumexp is saved for the backward pass. Kᵀ (and Vᵀ for the backward) are
// first copied per (batch, kv head) into [D, Sk] panels: OpenBLAS's row-major A·Bᵀ path is 1.5x
// to 20x slower than A·B for these small shapes with power-of-two leading dimensions.
//
// Backward: per (batch, kv head, chunk) the probabilities are recomputed tile by tile from q, k
// and the logsumexp; dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)) (rowsum(P ⊙ dP) =
// rowsum(dO ⊙ O), from the tile in cache), dQ = dS·K·scale,
// dK += dSᵀ·Q·scale. A task owns its kv head's dK/dV rows (or a private partial buffer when the
// heads of one group are split into several chunks, summed afterwards in chunk order), so the
// result is race-free and independent of the thread count.
#include "common.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

using namespace sw;

namespace {

constexpr int64_t BR = 32;  // query rows per tile

// The row loops (mask, softmax, exp) use GCC/Clang vector extensions on 16 floats: GCC does
// not reliably vectorise them from scalar code (it splits loops on `j < end` and drops the
// vectorised copy of `omp simd` reductions), and these loops are a quarter of the run time.
typedef float f16 __attribute__((vector_size(64)));
typedef float f8 __attribute__((vector_size(32)));
typedef double d8 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
typedef uint8_t u16 __attribute__((vector_size(16)));
constexpr int64_t VL = 16;

inline f16 loadv(const float* p) { f16 v; std::memcpy(&v, p, sizeof v); return v; }
inline void storev(float* p, f16 v) { std::memcpy(p, &v, sizeof v); }
inline f16 splat(float x) { return f16{} + x; }
inline float hmax(f16 v) { float m = v[0]; for (int l = 1; l < VL; l++) m = std::max(m, v[l]); return m; }
// Adds the 16 lanes of v to two 8-lane double accumulators.
inline void accumulate(d8& lo, d8& hi, f16 v) {
  f8 a, b;
  std::memcpy(&a, &v, sizeof a);
  std::memcpy(&b, reinterpret_cast<const char*>(&v) + sizeof a, sizeof b);
  lo += __builtin_convertvector(a, d8);
  hi += __builtin_convertvector(b, d8);
}

// exp(x) for x <= ~0 on 16 lanes (Cephes polynomial, ~1 ulp); exactly 0 below -87, so a
// hidden score (-inf) gives 0.
inline f16 expNeg(f16 x) {
  const i16 under = x < splat(-87.f);
  x = x < splat(-87.f) ? splat(-87.f) : x;
  x = x > splat(88.f) ? splat(88.f) : x;
  // n = round(x / ln 2) with the 1.5·2^23 shifter; r = x − n·ln 2 in two parts.
  const f16 shifter = splat(12582912.f);
  const f16 fx = (x * 1.44269504088896341f + shifter) - shifter;
  const f16 r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  const f16 z = r * r;
  f16 y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
           1.6666665459e-1f) * r + 5.0000001201e-1f;
  y = y * z + r + 1.f;
  const i16 bits = (__builtin_convertvector(fx, i16) + 127) << 23;
  const f16 res = y * (f16)bits;  // bit reinterpretation (same-size vector cast)
  return under ? splat(0.f) : res;
}

struct Problem {
  int64_t B, S, Sk, H, Hkv, D;
  bool causal;
  float scale;
  // Key padding: keep[b * Sk + j] (1 = attend), and per batch the visible key range [lo, hi).
  std::vector<uint8_t> keep;
  std::vector<int64_t> lo, hi;
  bool hasMask = false;

  int64_t tiles() const { return (S + BR - 1) / BR; }
  int64_t ldq() const { return H * D; }
  int64_t ldk() const { return Hkv * D; }

  // The keys a tile of rows [i0, i0 + rows) of batch b may see: [kb, ke).
  void keyRange(int64_t b, int64_t i0, int64_t rows, int64_t& kb, int64_t& ke) const {
    kb = lo[b];
    ke = hi[b];
    if (causal) ke = std::min(ke, std::max<int64_t>(0, i0 + rows + Sk - S));
  }
  // How many of the keys [kb, ke) row i sees at most (causal limit); the rest are hidden.
  int64_t rowEnd(int64_t i, int64_t kb, int64_t ke) const {
    if (!causal) return ke - kb;
    return std::clamp<int64_t>(i + Sk - S + 1 - kb, 0, ke - kb);
  }
};

void readMask(Args& a, size_t maskArg, size_t isIntArg, Problem& p) {
  p.lo.assign(p.B, 0);
  p.hi.assign(p.B, p.Sk);
  if (a.isNullish(maskArg)) return;
  bool isInt = a.boolean(isIntArg);
  Buffer* buf = a.buffer(maskArg);
  if (buf->bytes < static_cast<size_t>(p.B * p.Sk * 4)) throw KernelError("keyMask buffer is smaller than [B, Sk]");
  p.hasMask = true;
  p.keep.assign(p.B * p.Sk + 16, 0);  // 16 zeros past the end: row loops run padded widths
  for (int64_t i = 0; i < p.B * p.Sk; i++)
    p.keep[i] = isInt ? (static_cast<const int32_t*>(buf->data)[i] != 0) : (static_cast<const float*>(buf->data)[i] != 0.f);
  for (int64_t b = 0; b < p.B; b++) {
    const uint8_t* k = p.keep.data() + b * p.Sk;
    int64_t l = 0, h = p.Sk;
    while (l < h && !k[l]) l++;
    while (h > l && !k[h - 1]) h--;
    p.lo[b] = l;
    p.hi[b] = h;
  }
}

void readDims(Args& a, size_t first, Problem& p) {
  p.B = a.integer(first);
  p.S = a.integer(first + 1);
  p.Sk = a.integer(first + 2);
  p.H = a.integer(first + 3);
  p.Hkv = a.integer(first + 4);
  p.D = a.integer(first + 5);
  p.causal = a.boolean(first + 6);
  p.scale = static_cast<float>(a.number(first + 7));
  if (p.B < 0 || p.S < 0 || p.Sk < 0 || p.D < 0 || p.H < 1 || p.Hkv < 1 || p.H % p.Hkv != 0)
    throw KernelError("bad sizes: B " + std::to_string(p.B) + ", S " + std::to_string(p.S) + ", Sk " + std::to_string(p.Sk) +
                      ", H " + std::to_string(p.H) + ", Hkv " + std::to_string(p.Hkv) + ", D " + std::to_string(p.D));
}

void needBytes(Args& a, size_t i, int64_t elems, const char* what) {
  if (a.buffer(i)->bytes < static_cast<size_t>(elems) * 4) throw KernelError(std::string(what) + " buffer is smaller than its shape");
}

// Scratch kept across calls, so that a training step does not page-fault fresh memory in every
// call; a buffer that grew past 64 MiB is released after the call (see releaseLarge).
inline float* scratch(std::vector<float>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}
inline void releaseLarge(std::vector<float>& v) {
  if (v.capacity() * sizeof(float) > (size_t(64) << 20)) std::vector<float>().swap(v);
}
thread_local std::vector<float> tScoresA, tScoresB, tPanelK, tPanelV, tPartial;

// Leading dimension of the transposed [D, Sk] panels: padded to 16 floats, and away from
// multiples of 256 floats (cache-set aliasing).
inline int64_t panelLd(int64_t Sk) {
  int64_t ld = (Sk + 15) / 16 * 16;
  if (ld % 256 == 0) ld += 16;
  return std::max<int64_t>(ld, 16);
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define SW_HAVE_SHUFFLEVECTOR 1
// In-register transpose of 16 rows of 16 floats: four butterfly stages that swap the
// off-diagonal blocks of size 8, 4, 2 and 1.
inline void transpose16(f16* a) {
  for (int r = 0; r < 8; r++) {
    const f16 x = a[r], y = a[r + 8];
    a[r] = __builtin_shufflevector(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    a[r + 8] = __builtin_shufflevector(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  }
  for (int r = 0; r < 16; r++) {
    if (r & 4) continue;
    const f16 x = a[r], y = a[r + 4];
    a[r] = __builtin_shufflevector(x, y, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    a[r + 4] = __builtin_shufflevector(x, y, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  }
  for (int r = 0; r < 16; r++) {
    if (r & 2) continue;
    const f16 x = a[r], y = a[r + 2];
    a[r] = __builtin_shufflevector(x, y, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
    a[r + 2] = __builtin_shufflevector(x, y, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
  }
  for (int r = 0; r < 16; r += 2) {
    const f16 x = a[r], y = a[r + 1];
    a[r] = __builtin_shufflevector(x, y, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    a[r + 1] = __builtin_shufflevector(x, y, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
  }
}
#endif

// XT[bg][d][j] = X[b, j, g, d] for the kv head bg = b * Hkv + g, by 16×16 blocks.
inline void transposePanel(const Problem& p, const float* X, float* XT, int64_t bg) {
  const int64_t b = bg / p.Hkv, g = bg % p.Hkv, ld = panelLd(p.Sk), ldk = p.ldk();
  const float* x = X + b * p.Sk * ldk + g * p.D;
  float* xt = XT + bg * p.D * ld;
  for (int64_t j0 = 0; j0 < p.Sk; j0 += VL) {
    const int64_t jn = std::min(VL, p.Sk - j0);
    for (int64_t d0 = 0; d0 < p.D; d0 += VL) {
      const int64_t dn = std::min(VL, p.D - d0);
#ifdef SW_HAVE_SHUFFLEVECTOR
      if (jn == VL && dn == VL) {
        f16 t[VL];
        for (int64_t j = 0; j < VL; j++) t[j] = loadv(x + (j0 + j) * ldk + d0);
        transpose16(t);
        for (int64_t d = 0; d < VL; d++) storev(xt + (d0 + d) * ld + j0, t[d]);
        continue;
      }
#endif
      for (int64_t d = 0; d < dn; d++)
        for (int64_t j = 0; j < jn; j++) xt[(d0 + d) * ld + j0 + j] = x[(j0 + j) * ldk + d0 + d];
    }
  }
}

// Rows of score scratch are padded to whole vectors; the padding columns hold junk that the
// visibility test below hides.
inline int64_t padded(int64_t n) { return (n + VL - 1) / VL * VL; }

// The lanes j0..j0+15 of a row that are visible: before `end` (causal) and not padding.
template <bool MASK>
inline i16 visible(int64_t j0, int64_t end, const uint8_t* keep) {
  const i16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  i16 vis = (iota + static_cast<int32_t>(j0)) < static_cast<int32_t>(end);
  if (MASK) {
    u16 k;
    std::memcpy(&k, keep + j0, sizeof k);
    vis &= __builtin_convertvector(k, i16) != 0;
  }
  return vis;
}

// Softmax of one score row in place over its padded width w; hidden keys get 0. Returns the
// logsumexp (-inf when no key is visible; the row is then all zeros).
template <bool MASK>
inline float softmaxRow(float* s, int64_t w, int64_t end, const uint8_t* keep) {
  const f16 ninf = splat(-INFINITY);
  f16 mv = ninf;
  for (int64_t j = 0; j < w; j += VL) {
    f16 v = loadv(s + j);
    v = visible<MASK>(j, end, keep) ? v : ninf;
    storev(s + j, v);
    mv = v > mv ? v : mv;
  }
  const float m = hmax(mv);
  if (m == -INFINITY) {
    std::memset(s, 0, sizeof(float) * w);
    return -INFINITY;
  }
  d8 lo = {}, hi = {};
  for (int64_t j = 0; j < w; j += VL) {
    const f16 e = expNeg(loadv(s + j) - m);
    storev(s + j, e);
    accumulate(lo, hi, e);
  }
  double sum = 0;
  for (int l = 0; l < 8; l++) sum += lo[l] + hi[l];
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < w; j += VL) storev(s + j, loadv(s + j) * inv);
  return m + static_cast<float>(std::log(sum));
}

// One row of the backward over its padded width w: the probabilities p = exp(s − lse) (hidden
// keys 0) replace the scores in `pr`, and dS = p ⊙ (dP − Σ p·dP) replaces dP in `dpr`.
// (Σ_j p_j·dP_j equals rowsum(dO ⊙ O) and is computed from the tile in cache instead of
// re-reading the output.)
template <bool MASK>
inline void gradRow(float* pr, float* dpr, int64_t w, int64_t end, const uint8_t* keep, float lse) {
  if (lse == -INFINITY) {
    std::memset(pr, 0, sizeof(float) * w);
    std::memset(dpr, 0, sizeof(float) * w);
    return;
  }
  d8 lo = {}, hi = {};
  for (int64_t j = 0; j < w; j += VL) {
    f16 p = expNeg(loadv(pr + j) - lse);
    p = visible<MASK>(j, end, keep) ? p : splat(0.f);
    storev(pr + j, p);
    accumulate(lo, hi, p * loadv(dpr + j));
  }
  double delta = 0;
  for (int l = 0; l < 8; l++) delta += lo[l] + hi[l];
  const float dl = static_cast<float>(delta);
  for (int64_t j = 0; j < w; j += VL) storev(dpr + j, loadv(pr + j) * (loadv(dpr + j) - dl));
}

}  // namespace

// attentionForward(q, k, v, keyMask | null, maskIsInt, out, lse, B, S, Sk, H, Hkv, D, causal, scale)
static void attentionForward_body(Args& a) {
  Problem p;
  readDims(a, 7, p);
  const float* Q = a.f32(0);
  const float* K = a.f32(1);
  const float* V = a.f32(2);
  float* O = a.f32(5);
  float* LSE = a.f32(6);
  needBytes(a, 0, p.B * p.S * p.H * p.D, "q");
  needBytes(a, 1, p.B * p.Sk * p.Hkv * p.D, "k");
  needBytes(a, 2, p.B * p.Sk * p.Hkv * p.D, "v");
  needBytes(a, 5, p.B * p.S * p.H * p.D, "out");
  needBytes(a, 6, p.B * p.H * p.S, "lse");
  readMask(a, 3, 4, p);
  const int64_t T = p.tiles(), items = p.B * p.H * T, group = p.H / p.Hkv;
  const int64_t work = p.B * p.H * p.S * p.Sk * p.D;
  const int64_t ldq = p.ldq(), ldk = p.ldk(), ldt = panelLd(p.Sk), kvHeads = p.B * p.Hkv;
  float* KT = scratch(tPanelK, kvHeads * p.D * ldt);

#pragma omp parallel if (items > 1 && work >= 32768 && !omp_in_parallel())
  {
#pragma omp for schedule(dynamic)
    for (int64_t bg = 0; bg < kvHeads; bg++) transposePanel(p, K, KT, bg);
    float* sc = scratch(tScoresA, BR * padded(p.Sk));
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < items; it++) {
      const int64_t t = it % T, bh = it / T, h = bh % p.H, b = bh / p.H, g = h / group;
      const int64_t i0 = t * BR, rows = std::min(BR, p.S - i0);
      int64_t kb, ke;
      p.keyRange(b, i0, rows, kb, ke);
      const float* q = Q + (b * p.S + i0) * ldq + h * p.D;
      float* o = O + (b * p.S + i0) * ldq + h * p.D;
      float* lse = LSE + (b * p.H + h) * p.S + i0;
      const int64_t n = ke - kb;
      if (n <= 0) {
        for (int64_t r = 0; r < rows; r++) {
          std::memset(o + r * ldq, 0, sizeof(float) * p.D);
          lse[r] = -INFINITY;
        }
        continue;
      }
      const float* kt = KT + (b * p.Hkv + g) * p.D * ldt + kb;
      const float* v = V + (b * p.Sk + kb) * ldk + g * p.D;
      const uint8_t* keep = p.hasMask ? p.keep.data() + b * p.Sk + kb : nullptr;
      const int64_t w = padded(n);
      gemm(false, false, rows, n, p.D, p.scale, q, ldq, kt, ldt, 0.f, sc, w);
      for (int64_t r = 0; r < rows; r++) {
        const int64_t end = p.rowEnd(i0 + r, kb, ke);
        lse[r] = keep ? softmaxRow<true>(sc + r * w, w, end, keep) : softmaxRow<false>(sc + r * w, w, end, nullptr);
      }
      gemm(false, false, rows, p.D, n, 1.f, sc, w, v, ldk, 0.f, o, ldq);
    }
    releaseLarge(tScoresA);
  }
  releaseLarge(tPanelK);
}
SW_KERNEL(attentionForward, "attentionForward")

// attentionBackward(q, k, v, lse, dOut, keyMask | null, maskIsInt, dq, dk, dv,
//                   B, S, Sk, H, Hkv, D, causal, scale)
static void attentionBackward_body(Args& a) {
  Problem p;
  readDims(a, 10, p);
  const float* Q = a.f32(0);
  const float* K = a.f32(1);
  const float* V = a.f32(2);
  const float* LSE = a.f32(3);
  const float* DO = a.f32(4);
  float* DQ = a.f32(7);
  float* DK = a.f32(8);
  float* DV = a.f32(9);
  const int64_t nq = p.B * p.S * p.H * p.D, nk = p.B * p.Sk * p.Hkv * p.D;
  needBytes(a, 0, nq, "q");
  needBytes(a, 1, nk, "k");
  needBytes(a, 2, nk, "v");
  needBytes(a, 3, p.B * p.H * p.S, "lse");
  needBytes(a, 4, nq, "dOut");
  needBytes(a, 7, nq, "dq");
  needBytes(a, 8, nk, "dk");
  needBytes(a, 9, nk, "dv");
  readMask(a, 5, 6, p);
  const int64_t T = p.tiles(), group = p.H / p.Hkv, perGroup = group * T;
  const int64_t ldq = p.ldq(), ldk = p.ldk(), D = p.D, Sk = p.Sk;
  const int64_t work = p.B * p.H * p.S * p.Sk * p.D;

  // Chunks per (batch, kv head): enough independent tasks to keep cores busy when B·Hkv is
  // small. Chosen from the shapes only, so results do not depend on the thread count.
  const int64_t kvTasks = p.B * p.Hkv;
  int64_t NC = std::min<int64_t>(perGroup, std::max<int64_t>(1, (32 + kvTasks - 1) / std::max<int64_t>(kvTasks, 1)));
  while (NC > 1 && NC * nk * 2 * 4 > (int64_t(256) << 20)) NC--;
  if (work < 32768) NC = 1;
  float* partial = NC > 1 ? scratch(tPartial, NC * nk * 2) : nullptr;
  const int64_t tasks = kvTasks * NC, ldt = panelLd(Sk);
  float* KT = scratch(tPanelK, kvTasks * D * ldt);
  float* VT = scratch(tPanelV, kvTasks * D * ldt);

#pragma omp parallel if (tasks > 1 && work >= 32768 && !omp_in_parallel())
  {
#pragma omp for schedule(dynamic)
    for (int64_t bg = 0; bg < kvTasks; bg++) {
      transposePanel(p, K, KT, bg);
      transposePanel(p, V, VT, bg);
    }
    float* P = scratch(tScoresA, BR * padded(Sk));
    float* dP = scratch(tScoresB, BR * padded(Sk));
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; task++) {
      const int64_t c = task % NC, bg = task / NC, g = bg % p.Hkv, b = bg / p.Hkv;
      // dK/dV accumulators: the output rows themselves, or this chunk's partial [Sk, D].
      float *dk, *dv;
      int64_t ld;
      if (NC == 1) {
        dk = DK + b * Sk * ldk + g * D;
        dv = DV + b * Sk * ldk + g * D;
        ld = ldk;
      } else {
        dk = partial + ((c * kvTasks + bg) * 2) * Sk * D;
        dv = dk + Sk * D;
        ld = D;
      }
      for (int64_t j = 0; j < Sk; j++) {
        std::memset(dk + j * ld, 0, sizeof(float) * D);
        std::memset(dv + j * ld, 0, sizeof(float) * D);
      }
      const float* kBase = K + b * Sk * ldk + g * D;
      for (int64_t item = c; item < perGroup; item += NC) {
        const int64_t h = g * group + item / T, t = item % T;
        const int64_t i0 = t * BR, rows = std::min(BR, p.S - i0);
        const int64_t off = (b * p.S + i0) * ldq + h * D;
        const float *q = Q + off, *dO = DO + off;
        float* dq = DQ + off;
        const float* lse = LSE + (b * p.H + h) * p.S + i0;
        int64_t kb, ke;
        p.keyRange(b, i0, rows, kb, ke);
        const int64_t n = ke - kb;
        if (n <= 0) {
          for (int64_t r = 0; r < rows; r++) std::memset(dq + r * ldq, 0, sizeof(float) * D);
          continue;
        }
        const float* k = kBase + kb * ldk;
        const float* kt = KT + bg * D * ldt + kb;
        const float* vt = VT + bg * D * ldt + kb;
        const uint8_t* keep = p.hasMask ? p.keep.data() + b * Sk + kb : nullptr;
        const int64_t w = padded(n);
        gemm(false, false, rows, n, D, p.scale, q, ldq, kt, ldt, 0.f, P, w);
        gemm(false, false, rows, n, D, 1.f, dO, ldq, vt, ldt, 0.f, dP, w);
        for (int64_t r = 0; r < rows; r++) {
          const int64_t end = p.rowEnd(i0 + r, kb, ke);
          if (keep) gradRow<true>(P + r * w, dP + r * w, w, end, keep, lse[r]);
          else gradRow<false>(P + r * w, dP + r * w, w, end, nullptr, lse[r]);
        }
        gemm(true, false, n, D, rows, 1.f, P, w, dO, ldq, 1.f, dv + kb * ld, ld);
        gemm(false, false, rows, D, n, p.scale, dP, w, k, ldk, 0.f, dq, ldq);
        gemm(true, false, n, D, rows, p.scale, dP, w, q, ldq, 1.f, dk + kb * ld, ld);
      }
    }
    releaseLarge(tScoresA);
    releaseLarge(tScoresB);
  }

  if (NC > 1) {
    // Sum the chunks' partials in chunk order: parallel over (batch, key, kv head) rows.
    const int64_t nRows = p.B * Sk * p.Hkv;
    parallelFor(nRows, nRows * D * NC * 2, [&](int64_t row) {
      const int64_t g = row % p.Hkv, j = (row / p.Hkv) % Sk, b = row / (p.Hkv * Sk), bg = b * p.Hkv + g;
      float* dk = DK + row * D;
      float* dv = DV + row * D;
      for (int64_t d = 0; d < D; d++) dk[d] = dv[d] = 0.f;
      for (int64_t c = 0; c < NC; c++) {
        const float* pk = partial + ((c * kvTasks + bg) * 2) * Sk * D + j * D;
        const float* pv = pk + Sk * D;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) {
          dk[d] += pk[d];
          dv[d] += pv[d];
        }
      }
    });
  }
  releaseLarge(tPanelK);
  releaseLarge(tPanelV);
  releaseLarge(tPartial);
}
SW_KERNEL(attentionBackward, "attentionBackward")

void RegisterAttention(napi_env env, napi_value exports) {
  exportFunction(env, exports, "attentionForward", attentionForward);
  exportFunction(env, exports, "attentionBackward", attentionBackward);
}
