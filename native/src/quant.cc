// Kernels of the quant group (being written).
#include "common.h"

void RegisterQuant(napi_env env, napi_value exports) { (void)env; (void)exports; }
