// The StackWise config: schema (framework/config), parsing with precise errors, files, --set
// overrides, and the resolved config of every phase.
export * from '../../framework/config/index.js';
export * from './resolve.js';
export * from './load.js';
export * from './modes.js';
