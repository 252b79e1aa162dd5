/** The tensor engine: tensors, ops, tape autograd, memory scopes and backends. */
import './setup.js';
export type { DType, TypedArray } from './dtype.js';
export type { Shape } from './shape.js';
export { sizeOf, formatShape, broadcastShapes, sameShape } from './shape.js';
export { formatBytes } from './units.js';
export type { Backend, Storage, MemoryInfo } from './backend.js';
export { Tensor, isTensor } from './tensor.js';
export { tidy, keep, scopeDepth } from './scope.js';
export { noGrad, isGradEnabled, backward, type TapeNode, type BackwardOptions } from './autograd.js';
export { enableGrad } from './grad-mode.js';
export { checkpoint } from './checkpoint.js';
export { registerKernel, registerGradient, registerInPlaceOp, mutatedInputs, mutatedInputsOf, getKernel, hasKernel, registeredOps, kernelBackends, getGradient, declareNonDifferentiable, nonDifferentiableReason, declareReferenceOnly, referenceOnlyReason, type Kernel, type GradientFn, type GradContext } from './registry.js';
export { runOp, setWriteCheck } from './run-op.js';
export { getBackend, getDefaultBackend, setDefaultBackend, availableBackends } from './backend-registry.js';
export { engineInfo, setNumThreads, memoryInfo, type EngineInfo } from './info.js';
export { measureGemmPeak, GEMM_PEAK_SIZES, type GemmPeak } from './peak.js';
export { startProfiling, stopProfiling, median, type OpTiming } from './profiler.js';
export * from './ops/index.js';
