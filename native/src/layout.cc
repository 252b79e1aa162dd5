// Kernels of the layout group (not yet written).
#include "common.h"

void RegisterLayout(napi_env env, napi_value exports) { (void)env; (void)exports; }
