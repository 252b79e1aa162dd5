// Kernels of the optim group (not yet written).
#include "common.h"

void RegisterOptim(napi_env env, napi_value exports) { (void)env; (void)exports; }
