// Kernels of the dropout group (not yet written).
#include "common.h"

void RegisterDropout(napi_env env, napi_value exports) { (void)env; (void)exports; }
