// Kernels of the reduce group (not yet written).
#include "common.h"

void RegisterReduce(napi_env env, napi_value exports) { (void)env; (void)exports; }
