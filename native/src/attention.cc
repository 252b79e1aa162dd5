// Kernels of the attention group (not yet written).
#include "common.h"

void RegisterAttention(napi_env env, napi_value exports) { (void)env; (void)exports; }
