export { NativeBackend, NativeStorage, h, hOrNull } from './backend.js';
export { loadNativeAddon, nativeLoadError, coreType, type NativeAddon } from './addon.js';
