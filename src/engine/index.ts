// The engine's public surface: tensors, autograd, ops, backends.
export * from './dtype.js';
export * from './shape.js';
export * from './random.js';
export * from './tensor.js';
export {
  getBackend, setBackend, withBackend, getPrecision, setPrecision, withPrecision,
  isNativeAvailable, nativeKernelNames, hasNativeKernel, kernel, referenceKernel,
  startProfile, stopProfile, profileRows, formatProfile, type KernelProfileRow,
  type BackendName, type Precision, type KernelMap,
} from './kernels.js';
export * from './ops/index.js';
export { nativeAddon, nativeLoadError } from './backends/native.js';
export * from './optim/index.js';
export * from './io/safetensors.js';
