// Kernels of the rope group (not yet written).
#include "common.h"

void RegisterRope(napi_env env, napi_value exports) { (void)env; (void)exports; }
