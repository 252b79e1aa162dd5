// Entry point of the native addon: each source file registers its group of kernels.
#include "common.h"
#include <malloc.h>

static napi_value Init(napi_env env, napi_value exports) {
  // A training step frees and re-allocates the same buffer sizes every step. Keep freed blocks
  // in the heap (instead of returning them to the OS with munmap) so the next step reuses them
  // without page faults: serve blocks up to 256 MiB from the heap and trim it only past 1 GiB.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  RegisterStorage(env, exports);
  RegisterGemm(env, exports);
  RegisterElementwise(env, exports);
  RegisterReduce(env, exports);
  RegisterSoftmax(env, exports);
  RegisterNorm(env, exports);
  RegisterRope(env, exports);
  RegisterEmbedding(env, exports);
  RegisterDropout(env, exports);
  RegisterAttention(env, exports);
  RegisterOptim(env, exports);
  RegisterLayout(env, exports);
  RegisterQuant(env, exports);
  RegisterLinearCrossEntropy(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
