// Kernels of the embedding group (not yet written).
#include "common.h"

void RegisterEmbedding(napi_env env, napi_value exports) { (void)env; (void)exports; }
