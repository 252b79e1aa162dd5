// Kernels of the softmax group (not yet written).
#include "common.h"

void RegisterSoftmax(napi_env env, napi_value exports) { (void)env; (void)exports; }
