// Quantized storage of frozen Linear weights W [rows = out, cols = in] and the matmul reading it.
// Formats and layouts are described in src/engine/ops/quant.ts; codes: nf4 0, int8 1, fp16 2, bf16 3.
//
// Exactness: quantize and dequantize are bit-identical to the TypeScript reference. Every float
// operation is one IEEE single operation (no fused multiply-add: fp-contract is off for this
// file), thresholds are float midpoints computed the same way on both sides, sums are in double
// in a fixed order.
//
// The quantized matmul never materialises W: forward, it dequantizes a tile of TN rows of W into
// per-thread scratch and calls sgemm (y[:, tile] = x · tileᵀ); the input gradient dequantizes a
// tile of TK columns (dx[:, tile] = dy · W[:, tile]). Tiles are independent (each output element
// is computed by exactly one sgemm call whose shape depends only on the problem shape), so the
// result does not depend on the number of threads.
#include "common.h"
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>
#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>
#endif

#pragma GCC optimize("fp-contract=off")
// GCC 12 reports the deliberately undefined pass-through operand of AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

using namespace sw;

namespace {

enum Format { NF4 = 0, INT8 = 1, FP16 = 2, BF16 = 3 };
constexpr int64_t NF4_BLOCK = 64;
constexpr int64_t DQ_BLOCK = 256;

const float NF4_LEVELS[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};

struct Nf4Mids {
  float m[15];
  Nf4Mids() {
    for (int k = 0; k < 15; k++) {
      float s = NF4_LEVELS[k] + NF4_LEVELS[k + 1];
      m[k] = s * 0.5f;
    }
  }
};
const Nf4Mids NF4_MIDS;

inline int nf4Code(float v) {
  int q = 0;
  for (int k = 0; k < 15; k++) q += v > NF4_MIDS.m[k] ? 1 : 0;
  return q;
}

// A quantized weight as the kernels see it.
struct QW {
  int fmt = 0;
  bool dq = false;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
  const float* scales = nullptr;   // nf4 absmax (no dq) or int8 row scales
  const uint8_t* qscales = nullptr;  // nf4 dq: 8-bit scale codes
  const float* scales2 = nullptr;  // nf4 dq: absmax per 256 scales
  float offset = 0.f;              // nf4 dq: mean of the scales
  const float* code = nullptr;     // nf4 dq: the dynamic map (256 values)
};

inline float nf4Scale(const QW& q, int64_t b) {
  if (!q.dq) return q.scales[b];
  float t = q.code[q.qscales[b]] * q.scales2[b / DQ_BLOCK];
  return t + q.offset;
}

inline float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    float v = static_cast<float>(mant) * 5.9604644775390625e-08f;  // mant · 2^-24, exact
    return sign ? -v : v;
  }
  uint32_t bits = exp == 0x1f ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp + 112u) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint32_t shiftRoundEven(uint32_t value, int shift) {
  uint32_t kept = value >> shift;
  uint32_t rest = value & ((1u << shift) - 1u);
  uint32_t half = 1u << (shift - 1);
  return (rest > half || (rest == half && (kept & 1u))) ? kept + 1u : kept;
}

inline uint16_t floatToHalf(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  uint32_t sign = (bits >> 16) & 0x8000u;
  int32_t exp32 = static_cast<int32_t>((bits >> 23) & 0xffu);
  uint32_t mant32 = bits & 0x7fffffu;
  if (exp32 == 0xff) return static_cast<uint16_t>(mant32 == 0 ? (sign | 0x7c00u) : (sign | 0x7e00u | (mant32 >> 13)));
  int32_t exp16 = exp32 - 127 + 15;
  if (exp16 >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exp16 <= 0) {
    if (exp16 < -10) return static_cast<uint16_t>(sign);
    return static_cast<uint16_t>(sign | shiftRoundEven(mant32 | 0x800000u, 14 - exp16));
  }
  return static_cast<uint16_t>(sign | shiftRoundEven((static_cast<uint32_t>(exp16) << 23) | mant32, 13));
}

inline uint16_t floatToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

inline float bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Dequantizes the flat range [start, start + len) of W (row-major) into out[0, len).
void dequantFlat(const QW& q, int64_t start, int64_t len, float* out) {
  const int64_t end = start + len;
  switch (q.fmt) {
    case NF4: {
      int64_t i = start;
      while (i < end) {
        const int64_t b = i / NF4_BLOCK;
        const int64_t bend = std::min(end, (b + 1) * NF4_BLOCK);
        const float s = nf4Scale(q, b);
        alignas(64) float T[16];
        for (int c = 0; c < 16; c++) T[c] = NF4_LEVELS[c] * s;
        float* o = out - start;  // o[j] is element j
        int64_t j = i;
        if (j & 1) { o[j] = T[q.data[j >> 1] & 15]; j++; }
#if defined(__AVX512F__)
        {
          const __m512 tab = _mm512_load_ps(T);
          const __m512i shifts = _mm512_set_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
          for (; j + 16 <= bend; j += 16) {
            __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q.data + (j >> 1)));
            __m128i dup = _mm_unpacklo_epi8(bytes, bytes);  // b0 b0 b1 b1 …
            __m512i idx = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(dup), shifts);
            _mm512_storeu_ps(o + j, _mm512_maskz_permutexvar_ps(static_cast<__mmask16>(0xffff), idx, tab));
          }
        }
#endif
        for (; j + 1 < bend; j += 2) {
          const uint8_t byte = q.data[j >> 1];
          o[j] = T[byte >> 4];
          o[j + 1] = T[byte & 15];
        }
        if (j < bend) { o[j] = T[q.data[j >> 1] >> 4]; j++; }
        i = bend;
      }
      break;
    }
    case INT8: {
      const int8_t* d = reinterpret_cast<const int8_t*>(q.data);
      int64_t i = start;
      while (i < end) {
        const int64_t r = i / q.cols;
        const int64_t rend = std::min(end, (r + 1) * q.cols);
        const float s = q.scales[r];
        float* o = out + (i - start);
        const int8_t* src = d + i;
        const int64_t n = rend - i;
#pragma omp simd
        for (int64_t k = 0; k < n; k++) o[k] = static_cast<float>(src[k]) * s;
        i = rend;
      }
      break;
    }
    case FP16: {
      const uint8_t* d = q.data + 2 * start;
#if defined(__F16C__)
      int64_t k = 0;
      for (; k + 8 <= len; k += 8) {
        __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + 2 * k));
        _mm256_storeu_ps(out + k, _mm256_cvtph_ps(h));
      }
      for (; k < len; k++) out[k] = halfToFloat(static_cast<uint16_t>(d[2 * k] | (d[2 * k + 1] << 8)));
#else
      for (int64_t k = 0; k < len; k++) out[k] = halfToFloat(static_cast<uint16_t>(d[2 * k] | (d[2 * k + 1] << 8)));
#endif
      break;
    }
    case BF16: {
      const uint8_t* d = q.data + 2 * start;
#pragma omp simd
      for (int64_t k = 0; k < len; k++) {
        uint32_t bits = static_cast<uint32_t>(d[2 * k] | (d[2 * k + 1] << 8)) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        out[k] = f;
      }
      break;
    }
  }
}

// W[r0:r1, c0:c1] into out with leading dimension ldo.
void dequantTile(const QW& q, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* out, int64_t ldo) {
  for (int64_t r = r0; r < r1; r++) dequantFlat(q, r * q.cols + c0, c1 - c0, out + (r - r0) * ldo);
}

void needBytes(const Args& a, size_t i, int64_t bytes, const char* what) {
  if (a.isNullish(i)) throw KernelError(std::string(what) + " buffer missing");
  if (static_cast<int64_t>(a.buffer(i)->bytes) < bytes)
    throw KernelError(std::string(what) + " buffer holds " + std::to_string(a.buffer(i)->bytes) + " bytes, expected at least " + std::to_string(bytes));
}

// Reads a quantized weight: (fmt, dq, rows, cols) at `at`, then data, s1, s2, s3, code at at+4…at+8.
QW readQW(const Args& a, size_t at) {
  QW q;
  q.fmt = static_cast<int>(a.integer(at));
  q.dq = a.boolean(at + 1);
  q.rows = a.integer(at + 2);
  q.cols = a.integer(at + 3);
  if (q.fmt < 0 || q.fmt > 3) throw KernelError("unknown format code " + std::to_string(q.fmt));
  if (q.rows < 1 || q.cols < 1) throw KernelError("bad weight shape [" + std::to_string(q.rows) + ", " + std::to_string(q.cols) + "]");
  if (q.dq && q.fmt != NF4) throw KernelError("double quantization applies to nf4 only");
  const int64_t n = q.rows * q.cols;
  const size_t d = at + 4;
  switch (q.fmt) {
    case NF4: {
      const int64_t nb = (n + NF4_BLOCK - 1) / NF4_BLOCK;
      needBytes(a, d, (n + 1) / 2, "packed data");
      q.data = a.u8(d);
      if (q.dq) {
        needBytes(a, d + 1, nb, "scale codes");
        needBytes(a, d + 2, 4 * ((nb + DQ_BLOCK - 1) / DQ_BLOCK), "second-level absmax");
        needBytes(a, d + 3, 4, "offset");
        needBytes(a, d + 4, 4 * 256, "dynamic map");
        q.qscales = a.u8(d + 1);
        q.scales2 = a.f32(d + 2);
        q.offset = a.f32(d + 3)[0];
        q.code = a.f32(d + 4);
      } else {
        needBytes(a, d + 1, 4 * nb, "absmax");
        q.scales = a.f32(d + 1);
      }
      break;
    }
    case INT8:
      needBytes(a, d, n, "packed data");
      needBytes(a, d + 1, 4 * q.rows, "row scales");
      q.data = a.u8(d);
      q.scales = a.f32(d + 1);
      break;
    default:
      needBytes(a, d, 2 * n, "packed data");
      q.data = a.u8(d);
  }
  return q;
}

std::string where(int64_t i, int64_t cols) {
  return "weight element " + std::to_string(i) + " (row " + std::to_string(i / cols) + ", column " + std::to_string(i % cols) + ")";
}

[[noreturn]] void throwNonFinite(const float* w, int64_t from, int64_t to, int64_t cols) {
  for (int64_t i = from; i < to; i++) {
    if (!std::isfinite(w[i])) {
      throw KernelError(where(i, cols) + " is " + (std::isnan(w[i]) ? "NaN" : (w[i] > 0 ? "Infinity" : "-Infinity")) + "; quantization needs finite values");
    }
  }
  throw KernelError("non-finite weight value");
}

// Index of the nearest dynamic-map value (ties to the lower one): first threshold >= v.
inline int codeIndex(const float* mids, float v) {
  int lo = 0, hi = 255;
  while (lo < hi) {
    int mid = (lo + hi) >> 1;
    if (mids[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

}  // namespace

// quantize(fmt, dq, rows, cols, w, code|null, data, s1|null, s2|null, s3|null)
//   nf4: s1 = absmax f32 (no dq) | scale codes u8 (dq); s2 = second-level absmax; s3 = offset.
//   int8: s1 = row scales. fp16/bf16: data only.
static void quantize_body(Args& a) {
  const int fmt = static_cast<int>(a.integer(0));
  const bool dq = a.boolean(1);
  const int64_t rows = a.integer(2), cols = a.integer(3);
  if (fmt < 0 || fmt > 3) throw KernelError("unknown format code " + std::to_string(fmt));
  if (rows < 1 || cols < 1) throw KernelError("bad weight shape");
  if (dq && fmt != NF4) throw KernelError("double quantization applies to nf4 only");
  const int64_t n = rows * cols;
  needBytes(a, 4, 4 * n, "weight");
  const float* w = a.f32(4);
  switch (fmt) {
    case NF4: {
      const int64_t nb = (n + NF4_BLOCK - 1) / NF4_BLOCK;
      needBytes(a, 6, (n + 1) / 2, "packed data");
      uint8_t* out = a.u8(6);
      std::vector<float> absmax(static_cast<size_t>(nb));
      std::vector<char> bad(static_cast<size_t>(nb), 0);
      parallelFor(nb, n, [&](int64_t b) {
        const int64_t i0 = b * NF4_BLOCK, i1 = std::min(n, i0 + NF4_BLOCK);
        float m = 0.f;
        bool ok = true;
        for (int64_t i = i0; i < i1; i++) {
          const float v = std::fabs(w[i]);
          ok = ok && v <= FLT_MAX;
          m = v > m ? v : m;
        }
        absmax[b] = m;
        bad[b] = !ok;
      });
      for (int64_t b = 0; b < nb; b++)
        if (bad[b]) throwNonFinite(w, b * NF4_BLOCK, std::min(n, (b + 1) * NF4_BLOCK), cols);
      std::vector<float> used;
      const float* scales = absmax.data();
      if (dq) {
        needBytes(a, 5, 4 * 256, "dynamic map");
        const float* code = a.f32(5);
        const int64_t nb2 = (nb + DQ_BLOCK - 1) / DQ_BLOCK;
        needBytes(a, 7, nb, "scale codes");
        needBytes(a, 8, 4 * nb2, "second-level absmax");
        needBytes(a, 9, 4, "offset");
        uint8_t* qs = a.u8(7);
        float* a2 = a.f32(8);
        double sum = 0;
        for (int64_t b = 0; b < nb; b++) sum += absmax[b];
        const float offset = static_cast<float>(sum / static_cast<double>(nb));
        a.f32(9)[0] = offset;
        float mids[255];
        for (int k = 0; k < 255; k++) {
          float s = code[k] + code[k + 1];
          mids[k] = s * 0.5f;
        }
        used.resize(static_cast<size_t>(nb));
        for (int64_t j = 0; j < nb2; j++) {
          const int64_t b0 = j * DQ_BLOCK, b1 = std::min(nb, b0 + DQ_BLOCK);
          float m = 0.f;
          for (int64_t b = b0; b < b1; b++) {
            const float c = std::fabs(absmax[b] - offset);
            m = c > m ? c : m;
          }
          a2[j] = m;
          for (int64_t b = b0; b < b1; b++) {
            const float v = m == 0.f ? 0.f : (absmax[b] - offset) / m;
            const int c = codeIndex(mids, v);
            qs[b] = static_cast<uint8_t>(c);
            const float t = code[c] * m;
            used[b] = t + offset;
          }
        }
        scales = used.data();
      } else {
        needBytes(a, 7, 4 * nb, "absmax");
        std::memcpy(a.f32(7), absmax.data(), sizeof(float) * static_cast<size_t>(nb));
      }
      // Encode: blocks of 64 elements are 32 whole bytes, so blocks never share a byte.
      parallelFor(nb, n * 4, [&](int64_t b) {
        const int64_t i0 = b * NF4_BLOCK, i1 = std::min(n, i0 + NF4_BLOCK);
        const float s = scales[b];
        for (int64_t i = i0; i < i1; i += 2) {
          const int c0 = nf4Code(s == 0.f ? 0.f : w[i] / s);
          const int c1 = i + 1 < i1 ? nf4Code(s == 0.f ? 0.f : w[i + 1] / s) : 0;
          out[i >> 1] = static_cast<uint8_t>((c0 << 4) | c1);
        }
      });
      break;
    }
    case INT8: {
      needBytes(a, 6, n, "packed data");
      needBytes(a, 7, 4 * rows, "row scales");
      int8_t* out = reinterpret_cast<int8_t*>(a.u8(6));
      float* sc = a.f32(7);
      std::vector<char> bad(static_cast<size_t>(rows), 0);
      parallelFor(rows, n * 4, [&](int64_t r) {
        const float* wr = w + r * cols;
        float m = 0.f;
        bool ok = true;
        for (int64_t c = 0; c < cols; c++) {
          const float v = std::fabs(wr[c]);
          ok = ok && v <= FLT_MAX;
          m = v > m ? v : m;
        }
        bad[r] = !ok;
        if (!ok) return;
        const float s = m / 127.f;
        sc[r] = s;
        int8_t* o = out + r * cols;
        for (int64_t c = 0; c < cols; c++) {
          float q = 0.f;
          if (s != 0.f) {
            q = std::round(wr[c] / s);
            q = q > 127.f ? 127.f : (q < -127.f ? -127.f : q);
          }
          o[c] = static_cast<int8_t>(q);
        }
      });
      for (int64_t r = 0; r < rows; r++)
        if (bad[r]) throwNonFinite(w, r * cols, (r + 1) * cols, cols);
      break;
    }
    default: {
      needBytes(a, 6, 2 * n, "packed data");
      uint8_t* out = a.u8(6);
      const bool half = fmt == FP16;
      const int64_t chunk = 4096, chunks = (n + chunk - 1) / chunk;
      std::vector<int64_t> firstBad(static_cast<size_t>(chunks), -1);
      parallelFor(chunks, n * 4, [&](int64_t ch) {
        const int64_t i0 = ch * chunk, i1 = std::min(n, i0 + chunk);
        for (int64_t i = i0; i < i1; i++) {
          const float x = w[i];
          const uint16_t bits = half ? floatToHalf(x) : floatToBf16(x);
          if (!(std::fabs(x) <= FLT_MAX) || (half && (bits & 0x7c00u) == 0x7c00u)) {
            if (firstBad[ch] < 0) firstBad[ch] = i;
          }
          out[2 * i] = static_cast<uint8_t>(bits & 0xffu);
          out[2 * i + 1] = static_cast<uint8_t>(bits >> 8);
        }
      });
      for (int64_t ch = 0; ch < chunks; ch++) {
        const int64_t i = firstBad[ch];
        if (i < 0) continue;
        if (!std::isfinite(w[i])) throwNonFinite(w, i, i + 1, cols);
        throw KernelError(where(i, cols) + " = " + std::to_string(w[i]) + " overflows fp16 (largest finite value 65504); use bf16 for this weight");
      }
    }
  }
}
SW_KERNEL(quantize, "quantize")

// dequantize(fmt, dq, rows, cols, data, s1, s2, s3, code, out)
static void dequantize_body(Args& a) {
  const QW q = readQW(a, 0);
  const int64_t n = q.rows * q.cols;
  needBytes(a, 9, 4 * n, "output");
  float* out = a.f32(9);
  const int64_t chunk = 16384, chunks = (n + chunk - 1) / chunk;
  parallelFor(chunks, n * 2, [&](int64_t ch) {
    const int64_t i0 = ch * chunk;
    dequantFlat(q, i0, std::min(chunk, n - i0), out + i0);
  });
}
SW_KERNEL(dequantize, "dequantize")

namespace {

// Tile sizes depend on the shape only (never on the thread count): 128 rows (or columns), fewer
// for very long ones so that a thread's scratch stays within 8 MiB (2^21 floats), at least 16.
int64_t tileFor(int64_t length) {
  const int64_t t = ((int64_t{1} << 21) / std::max<int64_t>(length, 1)) / 16 * 16;
  return std::max<int64_t>(16, std::min<int64_t>(128, t));
}
int64_t rowTile(int64_t cols) { return tileFor(cols); }
int64_t colTile(int64_t rows) { return tileFor(rows); }

template <typename Body>
void forTiles(int64_t tiles, int64_t scratchFloats, int64_t work, Body&& body) {
  const bool par = tiles > 1 && work >= 32768 && !omp_in_parallel() && omp_get_max_threads() > 1;
  if (!par) {
    std::vector<float> scratch(static_cast<size_t>(scratchFloats));
    for (int64_t t = 0; t < tiles; t++) body(t, scratch.data());
    return;
  }
#pragma omp parallel
  {
    std::vector<float> scratch(static_cast<size_t>(scratchFloats));
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; t++) body(t, scratch.data());
  }
}

}  // namespace

// quantLinear(fmt, dq, rows, cols, data, s1, s2, s3, code, x, M, bias|null, y): y = x · Wᵀ + b
static void quantLinear_body(Args& a) {
  const QW q = readQW(a, 0);
  const int64_t N = q.rows, K = q.cols;
  const int64_t M = a.integer(10);
  needBytes(a, 9, 4 * M * K, "input");
  needBytes(a, 12, 4 * M * N, "output");
  const float* x = a.f32(9);
  const float* bias = a.f32OrNull(11);
  if (bias) needBytes(a, 11, 4 * N, "bias");
  float* y = a.f32(12);
  if (M == 0) return;
  const int64_t TN = std::min(N, rowTile(K));
  const int64_t tiles = (N + TN - 1) / TN;
  forTiles(tiles, TN * K, 2 * M * N * K, [&](int64_t t, float* scratch) {
    const int64_t n0 = t * TN, nt = std::min(TN, N - n0);
    dequantTile(q, n0, n0 + nt, 0, K, scratch, K);
    gemm(false, true, M, nt, K, 1.f, x, K, scratch, K, 0.f, y + n0, N);
    if (bias) {
      for (int64_t m = 0; m < M; m++) {
        float* yr = y + m * N + n0;
        const float* br = bias + n0;
#pragma omp simd
        for (int64_t j = 0; j < nt; j++) yr[j] += br[j];
      }
    }
  });
}
SW_KERNEL(quantLinear, "quantLinear")

// quantLinearGradInput(fmt, dq, rows, cols, data, s1, s2, s3, code, dy, M, dx): dx = dy · W
static void quantLinearGradInput_body(Args& a) {
  const QW q = readQW(a, 0);
  const int64_t N = q.rows, K = q.cols;
  const int64_t M = a.integer(10);
  needBytes(a, 9, 4 * M * N, "output gradient");
  needBytes(a, 11, 4 * M * K, "input gradient");
  const float* dy = a.f32(9);
  float* dx = a.f32(11);
  if (M == 0) return;
  const int64_t TK = std::min(K, colTile(N));
  const int64_t tiles = (K + TK - 1) / TK;
  forTiles(tiles, N * TK, 2 * M * N * K, [&](int64_t t, float* scratch) {
    const int64_t k0 = t * TK, kt = std::min(TK, K - k0);
    dequantTile(q, 0, N, k0, k0 + kt, scratch, kt);
    gemm(false, false, M, kt, N, 1.f, dy, N, scratch, kt, 0.f, dx + k0, K);
  });
}
SW_KERNEL(quantLinearGradInput, "quantLinearGradInput")

void RegisterQuant(napi_env env, napi_value exports) {
  exportFunction(env, exports, "quantize", quantize);
  exportFunction(env, exports, "dequantize", dequantize);
  exportFunction(env, exports, "quantLinear", quantLinear);
  exportFunction(env, exports, "quantLinearGradInput", quantLinearGradInput);
}
