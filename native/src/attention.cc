// Fused scaled dot-product attention over the [batch, seq, heads, head_dim] layout, with causal
// masking (bottom-right aligned: query i sees key j iff j <= i + Sk - S), a key padding mask
// and grouped-query attention (query head h reads kv head h / (H / Hkv)).
//
// Blocked like FlashAttention: per (batch, head, tile of BR query rows) the keys are visited in
// blocks of BC; the BR × BC score block is computed by register-blocked micro-kernels
// (microkernel.h, AVX-512 or AVX2 chosen at run time) into per-thread scratch that stays in L1,
// soft-maxed online (running row max and sum, the output tile rescaled when the max grows) and
// multiplied into the output tile. Under causal masking each strip of rows only computes the
// columns its last row can see, so the work is the visible triangle plus one strip-sized edge.
// The per-row logsumexp is saved for the backward pass. Kᵀ (and Vᵀ for the backward) are copied
// once per (batch, kv head) into [D, Sk] panels whose rows are the micro-kernels' B vectors.
//
// Backward: per (batch, kv head, chunk) task the probabilities are recomputed block by block from
// q, k and the logsumexp: P = exp(S − lse), dP = dO·Vᵀ, dS = P ⊙ (dP − δ) with δ = rowsum(dO ⊙ O),
// dV += Pᵀ·dO, dK += dSᵀ·Q·scale, dQ += dS·K·scale (dS is scaled once, as it is made). The dQ tile
// accumulates in its output rows across the key blocks; a task owns its kv head's dK/dV rows
// (or a private partial when the heads of one group are split into several chunks, summed
// afterwards in chunk order). Every sum therefore has
// one order fixed by the shapes: results are bit-identical whatever the thread count.
#include "common.h"
#include "microkernel.h"
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace sw;

namespace {

constexpr int64_t BR = 64;  // query rows per tile
constexpr int64_t BC = 64;  // keys per block (online softmax over blocks)

// The row loops (mask, softmax, exp) use GCC/Clang vector extensions: GCC does not reliably
// vectorise them from scalar code (it splits loops on `j < end` and drops the vectorised copy of
// `omp simd` reductions), and these loops are a quarter of the run time. They are as wide as the
// build's registers: 16 floats with AVX-512, else 8. (A 16-wide vector on an AVX2 build is a
// pair of registers of 16: the exp polynomial then spilled to the stack, and attention ran at a
// third of its speed.) Rows stay padded to 16 floats (VL) either way.
typedef float f8 __attribute__((vector_size(32)));
constexpr int64_t VL = 16;
#if defined(__AVX512F__)
constexpr int64_t RL = 16;
#else
constexpr int64_t RL = 8;
#endif
typedef float rowf __attribute__((vector_size(RL * 4)));
typedef int32_t rowi __attribute__((vector_size(RL * 4)));
typedef uint8_t rowb __attribute__((vector_size(RL)));

inline rowf loadv(const float* p) { rowf v; std::memcpy(&v, p, sizeof v); return v; }
inline void storev(float* p, rowf v) { std::memcpy(p, &v, sizeof v); }
inline rowf splat(float x) { return bcast<rowf>(x); }
// A row vector folded to 8 lanes by `op` on its halves (16 lanes), or as it is (8 lanes).
template <class Op>
inline f8 fold8(rowf v, Op op) {
  f8 a;
  std::memcpy(&a, &v, sizeof a);
  if constexpr (RL == 16) {
    f8 b;
    std::memcpy(&b, reinterpret_cast<const char*>(&v) + sizeof a, sizeof b);
    a = op(a, b);
  }
  return a;
}
// Horizontal max and sum by halving trees (a fixed order: deterministic), instead of 15-step
// serial chains that cost more than the row's arithmetic at small blocks.
inline float hmax(rowf v) {
  const f8 a = fold8(v, [](f8 x, f8 y) { return x > y ? x : y; });
  float m[8];
  std::memcpy(m, &a, sizeof m);
  const float x = std::max(std::max(m[0], m[4]), std::max(m[1], m[5])), y = std::max(std::max(m[2], m[6]), std::max(m[3], m[7]));
  return std::max(x, y);
}
inline float hsum(rowf v) {
  const f8 a = fold8(v, [](f8 x, f8 y) { return x + y; });
  float m[8];
  std::memcpy(m, &a, sizeof m);
  return ((m[0] + m[4]) + (m[1] + m[5])) + ((m[2] + m[6]) + (m[3] + m[7]));
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
thread_local std::vector<float> tScoresA, tScoresB, tAcc, tPack, tTask;

// Leading dimension of the transposed [D, Sk] panels: padded to 16 floats, and away from
// multiples of 256 floats (cache-set aliasing).
// 16 more columns than keys: a block that starts off a multiple of 16 reads whole vectors past Sk.
inline int64_t panelLd(int64_t Sk) {
  int64_t ld = (Sk + 31) / 16 * 16;
  if (ld % 256 == 0) ld += 16;
  return std::max<int64_t>(ld, 16);
}

#if !defined(__AVX512F__) && defined(__AVX__)
// dst[c * ldd + r] = src[r * lds + c] for an 8 × 8 block (the AVX2 build's blocks), in
// registers: unpack pairs of rows, 2-float shuffles, then swap 128-bit halves.
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int k = 0; k < 4; k++) {
    t[k] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x20);
    t[k + 4] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x31);
  }
  for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + i * ldd, t[i]);
}
#endif

#if defined(__AVX512F__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which -Wuninitialized reports
// (GCC bug 105593): silenced for this function only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
// dst[c * ldd + r] = src[r * lds + c] for a 16 × 16 block, in registers: unpack pairs of rows,
// then 2-float, 4-float and 8-float lane shuffles (64 shuffles, no spills). The generic-vector
// version below compiles to stack spills and ran at a tenth of this speed.
inline void transpose16x16(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 16; i += 8) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
      t[i + k] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0x88);
      t[i + k + 4] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0xDD);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < 8; k++) {
    r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
    r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xDD);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * ldd, r[i]);
}
#pragma GCC diagnostic pop
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
      if (jn == VL && dn == VL) {
#if defined(__AVX512F__)
        transpose16x16(x + j0 * ldk + d0, ldk, xt + d0 * ld + j0, ld);
        continue;
#elif defined(__AVX__)
        for (int64_t jb = 0; jb < VL; jb += 8)
          for (int64_t db = 0; db < VL; db += 8) transpose8x8(x + (j0 + jb) * ldk + d0 + db, ldk, xt + (d0 + db) * ld + j0 + jb, ld);
        continue;
#endif
      }
      for (int64_t d = 0; d < dn; d++)
        for (int64_t j = 0; j < jn; j++) xt[(d0 + d) * ld + j0 + j] = x[(j0 + j) * ldk + d0 + d];
    }
  }
}

inline int64_t pad16(int64_t n) { return (n + VL - 1) / VL * VL; }

// The lanes j0..j0+RL-1 of a row that are visible: before `end` (causal) and not padding.
inline rowi laneIota() {
  rowi v;
  for (int i = 0; i < RL; i++) v[i] = i;
  return v;
}
template <bool MASK>
inline rowi visible(int64_t j0, int64_t end, const uint8_t* keep) {
  rowi vis = (laneIota() + static_cast<int32_t>(j0)) < static_cast<int32_t>(end);
  if (MASK) {
    rowb k;
    std::memcpy(&k, keep + j0, sizeof k);
    vis &= __builtin_convertvector(k, rowi) != 0;
  }
  return vis;
}

// The exclusive end (absolute key index) of what query row i of batch b may see; keys before
// the batch's first unpadded key are never visible, so the end is at least lo.
inline int64_t rowEndAbs(const Problem& p, int64_t b, int64_t i) {
  int64_t e = p.hi[b];
  if (p.causal) e = std::min(e, i + p.Sk - p.S + 1);
  return std::max(e, p.lo[b]);
}

// Online softmax of one score row of a key block over its padded width w; e = visible columns
// (causal), keep = padding mask at the block start. The row becomes the unnormalised
// probabilities exp(s·scale − m) (0 where hidden); m and l (running max and sum) are updated.
// Returns the factor the row's output accumulator must be multiplied by (exp(m_old − m_new)).
// exp(x) for x <= 0 on RL lanes (Cephes polynomial, ~1 ulp; no upper clamp needed); exactly 0
// below -87, so a hidden score (-inf) gives 0.
inline rowf expNonPos(rowf x) {
  const rowi under = x < splat(-87.f);
  x = under ? splat(-87.f) : x;
  const rowf shifter = splat(12582912.f);
  const rowf fx = (x * 1.44269504088896341f + shifter) - shifter;
  const rowf r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  const rowf z = r * r;
  rowf y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
           1.6666665459e-1f) * r + 5.0000001201e-1f;
  y = y * z + r + 1.f;
  const rowi bits = (__builtin_convertvector(fx, rowi) + 127) << 23;
  return under ? splat(0.f) : y * (rowf)bits;
}

template <bool MASK>
inline float onlineRow(float* s, int64_t w, int64_t e, const uint8_t* keep, float scale, float& m, float& l) {
  const rowf ninf = splat(-INFINITY);
  rowf mv = ninf;
  if (!MASK && e == w) {  // a fully visible row: no masking
    for (int64_t j = 0; j < w; j += RL) {
      const rowf v = loadv(s + j) * scale;
      storev(s + j, v);
      mv = v > mv ? v : mv;
    }
  } else {
    for (int64_t j = 0; j < w; j += RL) {
      rowf v = loadv(s + j) * scale;
      v = visible<MASK>(j, e, keep) ? v : ninf;
      storev(s + j, v);
      mv = v > mv ? v : mv;
    }
  }
  const float mn = std::max(m, hmax(mv));
  if (mn == -INFINITY) {
    std::memset(s, 0, sizeof(float) * w);
    return 1.f;
  }
  const float alpha = m == -INFINITY ? 0.f : std::exp(m - mn);
  rowf sv = {};
  for (int64_t j = 0; j < w; j += RL) {
    const rowf x = expNonPos(loadv(s + j) - mn);
    storev(s + j, x);
    sv += x;
  }
  l = l * alpha + hsum(sv);
  m = mn;
  return alpha;
}

// One row of the backward over width w: the scores in pr become P = exp(s·scale − lse) and dP
// in dpr becomes dS·scale = P ⊙ (dP − δ)·scale (the scale of dQ = dS·K·scale and dK = dSᵀ·Q·scale
// applied once here, so both accumulate finished values); hidden columns (and stale ones past e)
// become 0.
template <bool MASK>
inline void gradRow(float* pr, float* dpr, int64_t w, int64_t e, const uint8_t* keep, float scale, float lse, float delta) {
  if (lse == -INFINITY) {
    std::memset(pr, 0, sizeof(float) * w);
    std::memset(dpr, 0, sizeof(float) * w);
    return;
  }
  for (int64_t j = 0; j < w; j += RL) {
    const rowi vis = visible<MASK>(j, e, keep);
    const rowf p = vis ? expNonPos(loadv(pr + j) * scale - lse) : splat(0.f);
    storev(pr + j, p);
    storev(dpr + j, vis ? p * (loadv(dpr + j) - delta) * scale : splat(0.f));
  }
}

// Rows [0, rows) of src (stride ld, D floats each) into dst [rows, Dp], zero-padded.
inline void packRows(const float* src, int64_t ld, int64_t rows, int64_t D, int64_t Dp, float* dst) {
  for (int64_t r = 0; r < rows; r++) {
    std::memcpy(dst + r * Dp, src + r * ld, sizeof(float) * D);
    std::memset(dst + r * Dp + D, 0, sizeof(float) * (Dp - D));
  }
}

// The B-operand rows of one (batch, kv head) of K or V: the tensor itself when D is a multiple
// of 16 (whole vectors never cross a row), else the zero-padded copy made in the prologue.
struct RowsView {
  const float* base;  // row 0 of this kv head
  int64_t ld;
};
inline RowsView kvRows(const Problem& p, const float* X, const float* packed, int64_t bg) {
  const int64_t b = bg / p.Hkv, g = bg % p.Hkv, Dp = pad16(p.D);
  if (p.D == Dp) return {X + b * p.Sk * p.ldk() + g * p.D, p.ldk()};
  return {packed + bg * p.Sk * Dp, Dp};
}
inline void packKvRows(const Problem& p, const float* X, float* packed, int64_t bg) {
  const int64_t b = bg / p.Hkv, g = bg % p.Hkv, Dp = pad16(p.D);
  if (p.D != Dp) packRows(X + b * p.Sk * p.ldk() + g * p.D, p.ldk(), p.Sk, p.D, Dp, packed + bg * p.Sk * Dp);
}

// Forward of one tile: rows [i0, i0 + rows) of head h in batch b.
template <int W, bool MASK>
void forwardTile(const Problem& p, const float* Q, const float* KT, int64_t ldt, RowsView vr, float* O, float* LSE, int64_t b,
                 int64_t h, int64_t t, float* sc, float* acc) {
  constexpr int64_t MR = SimdOf<W>::MR;
  const int64_t D = p.D, Dp = pad16(D), ldq = p.ldq(), g = h / (p.H / p.Hkv);
  const int64_t i0 = t * BR, rows = std::min(BR, p.S - i0);
  int64_t kb, ke;
  p.keyRange(b, i0, rows, kb, ke);
  const float* q = Q + (b * p.S + i0) * ldq + h * D;
  float* o = O + (b * p.S + i0) * ldq + h * D;
  float* lse = LSE + (b * p.H + h) * p.S + i0;
  if (ke <= kb || D == 0) {
    // No visible key: zeros. D == 0: every score is 0, so lse = log(number of visible keys).
    for (int64_t r = 0; r < rows; r++) {
      std::memset(o + r * ldq, 0, sizeof(float) * D);
      int64_t n = 0;
      for (int64_t j = kb; j < std::min(ke, rowEndAbs(p, b, i0 + r)); j++) n += MASK ? p.keep[b * p.Sk + j] : 1;
      lse[r] = n ? std::log(static_cast<float>(n)) : -INFINITY;
    }
    return;
  }
  float m[BR], l[BR];
  int64_t endAbs[BR];
  for (int64_t r = 0; r < rows; r++) {
    m[r] = -INFINITY;
    l[r] = 0.f;
    endAbs[r] = rowEndAbs(p, b, i0 + r);
  }
  std::memset(acc, 0, sizeof(float) * rows * Dp);
  const float* kt = KT + (b * p.Hkv + g) * D * ldt;
  const uint8_t* keep = MASK ? p.keep.data() + b * p.Sk : nullptr;
  for (int64_t j0 = kb; j0 < ke; j0 += BC) {
    const int64_t n = std::min(BC, ke - j0);
    int64_t cn[BR / MR + 1];
    for (int64_t r0 = 0, s = 0; r0 < rows; r0 += MR, s++) {
      const int64_t mr = std::min(MR, rows - r0);
      cn[s] = std::clamp<int64_t>(endAbs[r0 + mr - 1] - j0, 0, n);
      if (cn[s] > 0) microStrip<W, false>(mr, D, q + r0 * ldq, ldq, 1, kt + j0, ldt, sc + r0 * BC, BC, pad16(cn[s]) / W);
    }
    for (int64_t r = 0; r < rows; r++) {
      const int64_t w = pad16(cn[r / MR]);
      if (w == 0) continue;
      const int64_t e = std::clamp<int64_t>(endAbs[r] - j0, 0, n);
      const float alpha = onlineRow<MASK>(sc + r * BC, w, e, MASK ? keep + j0 : nullptr, p.scale, m[r], l[r]);
      if (alpha != 1.f) {
        float* ar = acc + r * Dp;
        for (int64_t d = 0; d < Dp; d += RL) storev(ar + d, loadv(ar + d) * alpha);
      }
    }
    for (int64_t r0 = 0, s = 0; r0 < rows; r0 += MR, s++) {
      if (cn[s] == 0) continue;
      const int64_t mr = std::min(MR, rows - r0);
      microStrip<W, true>(mr, cn[s], sc + r0 * BC, BC, 1, vr.base + j0 * vr.ld, vr.ld, acc + r0 * Dp, Dp, Dp / W);
    }
  }
  for (int64_t r = 0; r < rows; r++) {
    float* orow = o + r * ldq;
    if (l[r] == 0.f) {
      std::memset(orow, 0, sizeof(float) * D);
      lse[r] = -INFINITY;
      continue;
    }
    const float inv = 1.f / l[r];
    for (int64_t d = 0; d < D; d++) orow[d] = acc[r * Dp + d] * inv;
    lse[r] = m[r] + std::log(l[r]);
  }
}

// Backward of one tile (rows [i0, i0 + rows) of head h in batch b): dQ rows written, dK/dV
// accumulated (unscaled dK) into dk/dv [Sk, Dp].
template <int W, bool MASK>
void backwardTile(const Problem& p, const float* Q, const float* O, const float* DO, const float* LSE, const float* KT,
                  const float* VT, int64_t ldt, RowsView kr, float* DQ, int64_t b, int64_t h, int64_t t, float* P, float* dP,
                  float* dqacc, float* pack, float* dk, float* dv, int64_t ldkv) {
  constexpr int64_t MR = SimdOf<W>::MR;
  const int64_t D = p.D, Dp = pad16(D), ldq = p.ldq(), g = h / (p.H / p.Hkv);
  const int64_t i0 = t * BR, rows = std::min(BR, p.S - i0);
  int64_t kb, ke;
  p.keyRange(b, i0, rows, kb, ke);
  const int64_t off = (b * p.S + i0) * ldq + h * D;
  const float *q = Q + off, *dO = DO + off, *o = O + off;
  float* dq = DQ + off;
  const float* lse = LSE + (b * p.H + h) * p.S + i0;
  if (ke <= kb || D == 0) {
    for (int64_t r = 0; r < rows; r++) std::memset(dq + r * ldq, 0, sizeof(float) * D);
    return;
  }
  // Q and dO rows as B operands of dK += dSᵀ·Q and dV += Pᵀ·dO.
  RowsView qr{q, ldq}, dor{dO, ldq};
  if (D != Dp) {
    packRows(q, ldq, rows, D, Dp, pack);
    packRows(dO, ldq, rows, D, Dp, pack + BR * Dp);
    qr = {pack, Dp};
    dor = {pack + BR * Dp, Dp};
  }
  float delta[BR];
  int64_t endAbs[BR];
  for (int64_t r = 0; r < rows; r++) {
    // δ = rowsum(dO ⊙ O) on RL lanes, then a fixed-order tree: one order for every thread count.
    const float *dr = dO + r * ldq, *orow = o + r * ldq;
    rowf sv = {};
    int64_t d = 0;
    for (; d + RL <= D; d += RL) sv += loadv(dr + d) * loadv(orow + d);
    float s = hsum(sv);
    for (; d < D; d++) s += dr[d] * orow[d];
    delta[r] = s;
    endAbs[r] = rowEndAbs(p, b, i0 + r);
  }
  // dQ accumulates in place when its rows hold whole vectors (D a multiple of 16), else in scratch.
  const bool direct = D == Dp;
  if (direct) {
    dqacc = dq;
    for (int64_t r = 0; r < rows; r++) std::memset(dq + r * ldq, 0, sizeof(float) * D);
  } else {
    std::memset(dqacc, 0, sizeof(float) * rows * Dp);
  }
  const int64_t ldqa = direct ? ldq : Dp;
  const int64_t bg = b * p.Hkv + g;
  const float* kt = KT + bg * D * ldt;
  const float* vt = VT + bg * D * ldt;
  const uint8_t* keep = MASK ? p.keep.data() + b * p.Sk : nullptr;
  for (int64_t j0 = kb; j0 < ke; j0 += BC) {
    const int64_t n = std::min(BC, ke - j0), wn = pad16(n);
    int64_t cn[BR / MR + 1];
    for (int64_t r0 = 0, s = 0; r0 < rows; r0 += MR, s++) {
      const int64_t mr = std::min(MR, rows - r0);
      cn[s] = std::clamp<int64_t>(endAbs[r0 + mr - 1] - j0, 0, n);
      if (cn[s] == 0) continue;
      const int64_t nv = pad16(cn[s]) / W;
      microStrip<W, false>(mr, D, q + r0 * ldq, ldq, 1, kt + j0, ldt, P + r0 * BC, BC, nv);
      microStrip<W, false>(mr, D, dO + r0 * ldq, ldq, 1, vt + j0, ldt, dP + r0 * BC, BC, nv);
    }
    // Rows whose strip saw nothing are never read below (they precede the first row that sees
    // any key of this block); the others are cleaned over the whole block width.
    for (int64_t r = 0; r < rows; r++) {
      if (cn[r / MR] == 0) continue;
      const int64_t e = std::clamp<int64_t>(endAbs[r] - j0, 0, n);
      gradRow<MASK>(P + r * BC, dP + r * BC, wn, e, MASK ? keep + j0 : nullptr, p.scale, lse[r], delta[r]);
    }
    // dV += Pᵀ·dO and dK += dSᵀ·Q over strips of keys, each from the first row that sees it.
    for (int64_t jj = 0; jj < n; jj += MR) {
      const int64_t mj = std::min(MR, n - jj);
      int64_t rf = 0;
      if (p.causal) rf = std::clamp<int64_t>(j0 + jj - (i0 + p.Sk - p.S), 0, rows);
      for (int64_t r = rf; r < rows && cn[r / MR] == 0; r++) rf = r + 1;  // defensive: rows never computed
      if (rf >= rows) continue;
      microStrip<W, true>(mj, rows - rf, P + rf * BC + jj, 1, BC, dor.base + rf * dor.ld, dor.ld, dv + (j0 + jj) * ldkv, ldkv, Dp / W);
      microStrip<W, true>(mj, rows - rf, dP + rf * BC + jj, 1, BC, qr.base + rf * qr.ld, qr.ld, dk + (j0 + jj) * ldkv, ldkv, Dp / W);
    }
    // dQ += dS·K.
    for (int64_t r0 = 0, s = 0; r0 < rows; r0 += MR, s++) {
      if (cn[s] == 0) continue;
      const int64_t mr = std::min(MR, rows - r0);
      microStrip<W, true>(mr, cn[s], dP + r0 * BC, BC, 1, kr.base + j0 * kr.ld, kr.ld, dqacc + r0 * ldqa, ldqa, Dp / W);
    }
  }
  if (!direct)
    for (int64_t r = 0; r < rows; r++) std::memcpy(dq + r * ldq, dqacc + r * Dp, sizeof(float) * D);
}

template <int W>
void runForward(const Problem& p, const float* Q, const float* K, const float* V, float* O, float* LSE) {
  const int64_t T = p.tiles(), items = p.B * p.H * T, kvHeads = p.B * p.Hkv, Dp = pad16(p.D);
  const int64_t work = p.B * p.H * p.S * p.Sk * p.D, ldt = panelLd(p.Sk);
  // The calling thread's scratch, shared with the team through plain pointers.
  thread_local std::vector<float> panelK, rowsV;
  float* KT = scratch(panelK, kvHeads * p.D * ldt + VL);
  float* VP = p.D != Dp ? scratch(rowsV, kvHeads * p.Sk * Dp) : nullptr;
#pragma omp parallel if (items > 1 && work >= 32768 && !omp_in_parallel())
  {
#pragma omp for schedule(dynamic)
    for (int64_t bg = 0; bg < kvHeads; bg++) {
      transposePanel(p, K, KT, bg);
      packKvRows(p, V, VP, bg);
    }
    float* sc = scratch(tScoresA, BR * BC);
    float* acc = scratch(tAcc, BR * Dp);
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < items; it++) {
      const int64_t t = it % T, bh = it / T, h = bh % p.H, b = bh / p.H;
      const RowsView vr = kvRows(p, V, VP, b * p.Hkv + h / (p.H / p.Hkv));
      if (p.hasMask) forwardTile<W, true>(p, Q, KT, ldt, vr, O, LSE, b, h, t, sc, acc);
      else forwardTile<W, false>(p, Q, KT, ldt, vr, O, LSE, b, h, t, sc, acc);
    }
  }
  releaseLarge(panelK);
  releaseLarge(rowsV);
}

template <int W>
void runBackward(const Problem& p, const float* Q, const float* K, const float* V, const float* O, const float* LSE,
                 const float* DO, float* DQ, float* DK, float* DV) {
  const int64_t T = p.tiles(), group = p.H / p.Hkv, perGroup = group * T, D = p.D, Dp = pad16(D), Sk = p.Sk;
  const int64_t ldk = p.ldk(), nk = p.B * Sk * p.Hkv * D, work = p.B * p.H * p.S * p.Sk * p.D;
  // Chunks per (batch, kv head): enough independent tasks to keep cores busy when B·Hkv is
  // small. Chosen from the shapes only, so results do not depend on the thread count.
  const int64_t kvTasks = p.B * p.Hkv;
  int64_t NC = std::min<int64_t>(perGroup, std::max<int64_t>(1, (32 + kvTasks - 1) / std::max<int64_t>(kvTasks, 1)));
  while (NC > 1 && NC * nk * 2 * 4 > (int64_t(256) << 20)) NC--;
  if (work < 32768) NC = 1;
  const int64_t tasks = kvTasks * NC, ldt = panelLd(Sk);
  thread_local std::vector<float> panelK, panelV, rowsK, partial;
  float* KT = scratch(panelK, kvTasks * D * ldt + VL);
  float* VT = scratch(panelV, kvTasks * D * ldt + VL);
  float* KP = D != Dp ? scratch(rowsK, kvTasks * Sk * Dp) : nullptr;
  float* part = NC > 1 ? scratch(partial, NC * nk * 2) : nullptr;

#pragma omp parallel if (tasks > 1 && work >= 32768 && !omp_in_parallel())
  {
#pragma omp for schedule(dynamic)
    for (int64_t bg = 0; bg < kvTasks; bg++) {
      transposePanel(p, K, KT, bg);
      transposePanel(p, V, VT, bg);
      packKvRows(p, K, KP, bg);
    }
    float* P = scratch(tScoresA, BR * BC);
    float* dP = scratch(tScoresB, BR * BC);
    float* dqacc = scratch(tAcc, BR * Dp);
    float* pack = scratch(tPack, 2 * BR * Dp);
    float* dkv = scratch(tTask, 2 * Sk * Dp);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; task++) {
      const int64_t c = task % NC, bg = task / NC, g = bg % p.Hkv, b = bg / p.Hkv;
      // One chunk and whole-vector rows: accumulate straight into this kv head's rows of dK/dV.
      const bool direct = NC == 1 && D == Dp;
      float *dk = dkv, *dv = dkv + Sk * Dp;
      int64_t ldkv = Dp;
      if (direct) {
        dk = DK + b * Sk * ldk + g * D;
        dv = DV + b * Sk * ldk + g * D;
        ldkv = ldk;
        for (int64_t j = 0; j < Sk; j++) {
          std::memset(dk + j * ldk, 0, sizeof(float) * D);
          std::memset(dv + j * ldk, 0, sizeof(float) * D);
        }
      } else {
        std::memset(dkv, 0, sizeof(float) * 2 * Sk * Dp);
      }
      const RowsView kr = kvRows(p, K, KP, bg);
      for (int64_t item = c; item < perGroup; item += NC) {
        const int64_t h = g * group + item / T, t = item % T;
        if (p.hasMask) backwardTile<W, true>(p, Q, O, DO, LSE, KT, VT, ldt, kr, DQ, b, h, t, P, dP, dqacc, pack, dk, dv, ldkv);
        else backwardTile<W, false>(p, Q, O, DO, LSE, KT, VT, ldt, kr, DQ, b, h, t, P, dP, dqacc, pack, dk, dv, ldkv);
      }
      if (direct) continue;
      // Out: this kv head's rows of dK/dV, or this chunk's partial [Sk, D] pair.
      float *ok, *ov;
      int64_t ld;
      if (NC == 1) {
        ok = DK + b * Sk * ldk + g * D;
        ov = DV + b * Sk * ldk + g * D;
        ld = ldk;
      } else {
        ok = part + ((c * kvTasks + bg) * 2) * Sk * D;
        ov = ok + Sk * D;
        ld = D;
      }
      for (int64_t j = 0; j < Sk; j++) {
        std::memcpy(ok + j * ld, dk + j * Dp, sizeof(float) * D);
        std::memcpy(ov + j * ld, dv + j * Dp, sizeof(float) * D);
      }
    }
    releaseLarge(tTask);
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
        const float* pk = part + ((c * kvTasks + bg) * 2) * Sk * D + j * D;
        const float* pv = pk + Sk * D;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) {
          dk[d] += pk[d];
          dv[d] += pv[d];
        }
      }
    });
  }
  releaseLarge(panelK);
  releaseLarge(panelV);
  releaseLarge(rowsK);
  releaseLarge(partial);
}

}  // namespace

namespace sw {
int simdWidth() {
  static const int width = [] {
    const char* env = std::getenv("STACKWISE_SIMD");
    const std::string want = env ? env : "auto";
    bool have512 = false;
#if defined(__AVX512F__)
    have512 = __builtin_cpu_supports("avx512f");
#endif
    if (want == "avx2") return 8;
    if (want == "avx512") {
      if (!have512) throw KernelError("STACKWISE_SIMD=avx512, but this build or CPU has no AVX-512 (use avx2 or auto)");
      return 16;
    }
    if (want != "auto" && !want.empty())
      throw KernelError("STACKWISE_SIMD must be auto, avx2 or avx512, found '" + want + "'");
    return have512 ? 16 : 8;
  }();
  return width;
}
const char* simdName() { return simdWidth() == 16 ? "avx512" : "avx2"; }
}  // namespace sw

// attentionForward(q, k, v, keyMask | null, maskIsInt, out, lse, B, S, Sk, H, Hkv, D, causal, scale)
static void attentionForward_body(Args& a) {
  Problem p;
  readDims(a, 7, p);
  needBytes(a, 0, p.B * p.S * p.H * p.D, "q");
  needBytes(a, 1, p.B * p.Sk * p.Hkv * p.D, "k");
  needBytes(a, 2, p.B * p.Sk * p.Hkv * p.D, "v");
  needBytes(a, 5, p.B * p.S * p.H * p.D, "out");
  needBytes(a, 6, p.B * p.H * p.S, "lse");
  readMask(a, 3, 4, p);
  if (p.B == 0 || p.S == 0) return;
  if (simdWidth() == 16) runForward<16>(p, a.f32(0), a.f32(1), a.f32(2), a.f32(5), a.f32(6));
  else runForward<8>(p, a.f32(0), a.f32(1), a.f32(2), a.f32(5), a.f32(6));
}
SW_KERNEL(attentionForward, "attentionForward")

// attentionBackward(q, k, v, out, lse, dOut, keyMask | null, maskIsInt, dq, dk, dv,
//                   B, S, Sk, H, Hkv, D, causal, scale)
static void attentionBackward_body(Args& a) {
  Problem p;
  readDims(a, 11, p);
  const int64_t nq = p.B * p.S * p.H * p.D, nk = p.B * p.Sk * p.Hkv * p.D;
  needBytes(a, 0, nq, "q");
  needBytes(a, 1, nk, "k");
  needBytes(a, 2, nk, "v");
  needBytes(a, 3, nq, "out");
  needBytes(a, 4, p.B * p.H * p.S, "lse");
  needBytes(a, 5, nq, "dOut");
  needBytes(a, 8, nq, "dq");
  needBytes(a, 9, nk, "dk");
  needBytes(a, 10, nk, "dv");
  readMask(a, 6, 7, p);
  if (p.B == 0) return;
  if (p.S == 0) {
    std::memset(a.f32(9), 0, sizeof(float) * nk);
    std::memset(a.f32(10), 0, sizeof(float) * nk);
    return;
  }
  if (simdWidth() == 16) runBackward<16>(p, a.f32(0), a.f32(1), a.f32(2), a.f32(3), a.f32(4), a.f32(5), a.f32(8), a.f32(9), a.f32(10));
  else runBackward<8>(p, a.f32(0), a.f32(1), a.f32(2), a.f32(3), a.f32(4), a.f32(5), a.f32(8), a.f32(9), a.f32(10));
}
SW_KERNEL(attentionBackward, "attentionBackward")

// simdInfo(): the micro-kernel path in use ("avx512" | "avx2").
static napi_value simdInfo(napi_env env, napi_callback_info) {
  return guard(env, "simdInfo", [&]() -> napi_value {
    napi_value s;
    napi_create_string_utf8(env, simdName(), NAPI_AUTO_LENGTH, &s);
    return s;
  });
}

void RegisterAttention(napi_env env, napi_value exports) {
  exportFunction(env, exports, "attentionForward", attentionForward);
  exportFunction(env, exports, "attentionBackward", attentionBackward);
  exportFunction(env, exports, "simdInfo", simdInfo);
}
