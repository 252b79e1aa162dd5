// Kernels of the norm group (not yet written).
#include "common.h"

void RegisterNorm(napi_env env, napi_value exports) { (void)env; (void)exports; }
