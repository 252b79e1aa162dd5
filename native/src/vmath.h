// Vectorisable math for the kernels: GCC 12 leaves loops that call std::exp scalar unless
// -ffast-math is on, so the hot elementwise kernels use these branch-free versions instead.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sw {

// exp(x) to about 1 ulp (Cephes expf): x = n·ln2 + r, |r| ≤ ln2/2, exp(r) by a degree-6
// polynomial, 2^n as the product of two exactly built powers of two, so results underflow
// gracefully to subnormals and 0 (exp(-inf) = 0) and overflow to inf; NaN stays NaN. No
// branches or selects, so GCC vectorises it inside `omp simd` loops.
inline float vexpf(float x) {
  float xc = std::min(std::max(x, -104.0f), 89.0f);
  // Redundant for NaN (max/min keep a NaN first argument), but GCC 12 stops vectorising the
  // callers' loops without it (checked with -fopt-info-vec): keep it.
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

// 1 / (1 + e^-x), through vexpf.
inline float vsigmoidf(float x) { return 1.f / (1.f + vexpf(-x)); }

// tanh(x) = 1 - 2 / (e^{2x} + 1); exact at the saturated ends.
inline float vtanhf(float x) { return 1.f - 2.f / (vexpf(2.f * x) + 1.f); }

}  // namespace sw
