// Entry point of the native addon: each source file registers its group of kernels.
#include "common.h"

static napi_value Init(napi_env env, napi_value exports) {
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
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
