// Register-blocked GEMM micro-kernels for the fused kernels (attention tiles), in two vector
// widths chosen at run time: W = 16 floats (AVX-512, 32 vector registers) and W = 8 floats
// (AVX2 / FMA, 16 registers). Both are compiled into every build: with -march=native on an
// AVX2 machine the 16-wide type is lowered to pairs of 8-wide instructions and never chosen;
// on an AVX-512 machine the 8-wide path runs the AVX2-shaped blocking on 256-bit registers
// (STACKWISE_SIMD=avx2 forces it, so tests exercise it here too).
//
// C[MR × NV·W] (= or +=) Σ_k A[r·as + k·ak] · B[k·ldb + c]: A is read by scalar broadcasts with
// any strides (so Aᵀ costs nothing), B rows are contiguous vectors, C is a row-major tile.
#pragma once
// The 16-wide type is passed between inline functions only, so the ABI note GCC gives for it on
// builds without AVX-512 does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#include <cstdint>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace sw {

typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

template <int W> struct SimdOf;
// AVX-512: 6 rows × 4 vectors = 24 accumulators + 4 B vectors + 1 broadcast of 32 registers.
template <> struct SimdOf<16> { typedef v16f V; static constexpr int MR = 6, NV = 4; };
// AVX2: 6 rows × 2 vectors = 12 accumulators + 2 B vectors + 1 broadcast of 16 registers.
template <> struct SimdOf<8> { typedef v8f V; static constexpr int MR = 6, NV = 2; };

// a·b + c in one rounding where the machine has FMA, written out rather than left to the
// compiler: g++ contracts a*b+c into an FMA by default even under -std=c++17 (-ffp-contract=fast
// for C++; only ISO C modes turn it off), but where it does so is its choice, and the
// micro-kernels' rounding should not depend on it.
inline v16f fmadd(v16f a, v16f b, v16f c) {
#if defined(__AVX512F__)
  return (v16f)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__)
  v8f al, ah, bl, bh, cl, ch;
  std::memcpy(&al, &a, 32); std::memcpy(&ah, reinterpret_cast<const char*>(&a) + 32, 32);
  std::memcpy(&bl, &b, 32); std::memcpy(&bh, reinterpret_cast<const char*>(&b) + 32, 32);
  std::memcpy(&cl, &c, 32); std::memcpy(&ch, reinterpret_cast<const char*>(&c) + 32, 32);
  v8f rl = (v8f)_mm256_fmadd_ps((__m256)al, (__m256)bl, (__m256)cl), rh = (v8f)_mm256_fmadd_ps((__m256)ah, (__m256)bh, (__m256)ch);
  v16f r;
  std::memcpy(&r, &rl, 32); std::memcpy(reinterpret_cast<char*>(&r) + 32, &rh, 32);
  return r;
#else
  return a * b + c;
#endif
}
inline v8f fmadd(v8f a, v8f b, v8f c) {
#if defined(__FMA__)
  return (v8f)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

// Every lane = x. (Not `V{} + x`: 0 + x is not x for x = -0, so GCC keeps a scalar add that
// competes with the FMAs for the same ports.)
template <class V> inline V bcast(float x);
template <> inline v16f bcast<v16f>(float x) { return v16f{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
template <> inline v8f bcast<v8f>(float x) { return v8f{x, x, x, x, x, x, x, x}; }

template <class V> inline V loadu(const float* p) { V v; std::memcpy(&v, p, sizeof v); return v; }
template <class V> inline void storeu(float* p, V v) { std::memcpy(p, &v, sizeof v); }

template <int W, int MR, int NV, bool ACC>
__attribute__((always_inline)) inline void microTile(int64_t K, const float* A, int64_t as, int64_t ak, const float* B, int64_t ldb,
                                                     float* C, int64_t ldc) {
  typedef typename SimdOf<W>::V V;
  V acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[r][v] = ACC ? loadu<V>(C + r * ldc + v * W) : V{};
  for (int64_t k = 0; k < K; k++) {
    V b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) b[v] = loadu<V>(B + k * ldb + v * W);
    const float* a = A + k * ak;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const V x = bcast<V>(a[r * as]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[r][v] = fmadd(x, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) storeu<V>(C + r * ldc + v * W, acc[r][v]);
}

// MR rows (compile time) × nvec vectors of W columns (run time), NV vectors at a time.
template <int W, int MR, bool ACC>
inline void microRows(int64_t K, const float* A, int64_t as, int64_t ak, const float* B, int64_t ldb, float* C, int64_t ldc,
                      int64_t nvec) {
  constexpr int NV = SimdOf<W>::NV;
  int64_t v = 0;
  for (; v + NV <= nvec; v += NV) microTile<W, MR, NV, ACC>(K, A, as, ak, B + v * W, ldb, C + v * W, ldc);
  switch (nvec - v) {
    case 1: microTile<W, MR, 1, ACC>(K, A, as, ak, B + v * W, ldb, C + v * W, ldc); break;
    case 2: if constexpr (NV > 2) microTile<W, MR, 2, ACC>(K, A, as, ak, B + v * W, ldb, C + v * W, ldc); break;
    case 3: if constexpr (NV > 3) microTile<W, MR, 3, ACC>(K, A, as, ak, B + v * W, ldb, C + v * W, ldc); break;
    default: break;
  }
}

// One strip of mr ≤ MR rows: C[mr × nvec·W] (+)= A·B.
template <int W, bool ACC>
inline void microStrip(int64_t mr, int64_t K, const float* A, int64_t as, int64_t ak, const float* B, int64_t ldb, float* C,
                       int64_t ldc, int64_t nvec) {
  static_assert(SimdOf<W>::MR == 6, "the row switch below covers 1..6 rows");
  switch (mr) {
    case 6: microRows<W, 6, ACC>(K, A, as, ak, B, ldb, C, ldc, nvec); break;
    case 5: microRows<W, 5, ACC>(K, A, as, ak, B, ldb, C, ldc, nvec); break;
    case 4: microRows<W, 4, ACC>(K, A, as, ak, B, ldb, C, ldc, nvec); break;
    case 3: microRows<W, 3, ACC>(K, A, as, ak, B, ldb, C, ldc, nvec); break;
    case 2: microRows<W, 2, ACC>(K, A, as, ak, B, ldb, C, ldc, nvec); break;
    case 1: microRows<W, 1, ACC>(K, A, as, ak, B, ldb, C, ldc, nvec); break;
    default: break;
  }
}

// The vector width the fused kernels use in this process: 16 where the build and the CPU have
// AVX-512, else 8. STACKWISE_SIMD=avx2 asks for the 8-wide path, avx512 insists on the 16-wide
// one (an error where it is missing), auto (or unset) chooses. Read once per process; throws
// (std::runtime_error naming the variable) on any other value.
int simdWidth();
// "avx512" or "avx2" (the path simdWidth chose), for `stackwise info`.
const char* simdName();

}  // namespace sw
