// Rotary position embedding (Hugging Face LLaMA rotate_half layout), forward and inverse
// rotation (its gradient) in one fused kernel.
//
// inv_freq, the angles and cos/sin are computed in float32 exactly as transformers does
// (1 / theta^(2i/rd), angle = inv_freq * float(pos)), cos/sin rounded from double. The
// rotation keeps PyTorch's rounding (q*cos and rotate_half(q)*sin rounded separately, then
// added): floating-point contraction into FMA is switched off for this file.
#include "common.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

using namespace sw;

namespace {

// One head vector: the first 2*half dims rotate, dims [rd, D) are copied.
inline void rotateHead(const float* __restrict x, float* __restrict y, const float* __restrict c,
                       const float* __restrict s, int64_t half, int64_t rd, int64_t D) {
#pragma omp simd
  for (int64_t i = 0; i < half; i++) {
    float a = x[i], b = x[i + half];
    float ac = a * c[i], bs = b * s[i], bc = b * c[i], as = a * s[i];
    y[i] = ac - bs;
    y[i + half] = bc + as;
  }
  if (rd < D) std::memcpy(y + rd, x + rd, static_cast<size_t>(D - rd) * sizeof(float));
}

}  // namespace

// rope(X, Pos|null, Y, B, S, H, D, rotaryDim, theta, positionOffset, inverse, posPerBatch)
static void rope_body(Args& a) {
  const float* x = a.f32(0);
  const int32_t* pos = a.i32OrNull(1);
  float* y = a.f32(2);
  int64_t B = a.integer(3), S = a.integer(4), H = a.integer(5), D = a.integer(6), rd = a.integer(7);
  double theta = a.number(8);
  int64_t offset = a.integer(9);
  bool inverse = a.boolean(10);
  bool perBatch = a.boolean(11);
  if (B < 0 || S < 0 || H < 0 || D < 0) throw KernelError("negative size");
  if (rd < 2 || rd % 2 != 0 || rd > D) throw KernelError("rotaryDim " + std::to_string(rd) + " must be even and in [2, D=" + std::to_string(D) + "]");
  if (!(theta > 0)) throw KernelError("theta must be > 0");
  const int64_t half = rd / 2;
  if (B * S == 0 || H == 0) return;

  // inv_freq in float32, as transformers: 1.0 / (base ** (arange(0, rd, 2).float() / rd)).
  std::vector<float> inv(static_cast<size_t>(half));
  const float base = static_cast<float>(theta);
  for (int64_t i = 0; i < half; i++) {
    float e = static_cast<float>(2 * i) / static_cast<float>(rd);
    float p = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(e)));
    inv[i] = 1.0f / p;
  }

  // cos/sin table, one row per distinct position row: S rows, or B*S with per-batch positions.
  // Without explicit positions the table depends only on (S, rd, theta, offset): it is kept
  // across calls (a training step rotates q and k forward and backward with the same table).
  const int64_t P = (pos && perBatch) ? B * S : S;
  struct Table { int64_t P = -1, half = -1, offset = 0; double theta = 0; std::vector<float> cos, sin; };
  thread_local Table cached;
  Table fresh;
  const bool reuse = !pos && cached.P == P && cached.half == half && cached.theta == theta && cached.offset == offset;
  Table& tab = pos ? fresh : cached;
  if (!reuse) {
    tab.P = P;
    tab.half = half;
    tab.theta = theta;
    tab.offset = offset;
    tab.cos.assign(static_cast<size_t>(P * half), 0.f);
    tab.sin.assign(static_cast<size_t>(P * half), 0.f);
    parallelFor(P, P * half * 40, [&](int64_t t) {
      int64_t p = (pos ? static_cast<int64_t>(pos[t]) : t) + offset;
      float pf = static_cast<float>(p);
      float* c = tab.cos.data() + t * half;
      float* s = tab.sin.data() + t * half;
      for (int64_t i = 0; i < half; i++) {
        float ang = inv[i] * pf;
        c[i] = static_cast<float>(std::cos(static_cast<double>(ang)));
        s[i] = static_cast<float>(std::sin(static_cast<double>(ang)));
      }
    });
  }
  // The inverse rotation (the gradient) uses -sin: a negated copy, exact.
  std::vector<float> negSin;
  if (inverse) {
    negSin.resize(tab.sin.size());
    for (size_t i = 0; i < negSin.size(); i++) negSin[i] = -tab.sin[i];
  }
  const std::vector<float>& cosT = tab.cos;
  const std::vector<float>& sinT = inverse ? negSin : tab.sin;
  parallelFor(B * S, B * S * H * D * 3, [&](int64_t row) {
    int64_t t = (pos && perBatch) ? row : row % S;
    const float* c = cosT.data() + t * half;
    const float* s = sinT.data() + t * half;
    for (int64_t hh = 0; hh < H; hh++) {
      int64_t o = (row * H + hh) * D;
      rotateHead(x + o, y + o, c, s, half, rd, D);
    }
  });
}
SW_KERNEL(rope, "rope")

void RegisterRope(napi_env env, napi_value exports) {
  exportFunction(env, exports, "rope", rope);
}

#pragma GCC pop_options
