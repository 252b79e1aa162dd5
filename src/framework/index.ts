// Public face of the framework layer. Adapters and factories (which need the engine) will join
// the specs here.
export * from './json.js';
export * from './specs/index.js';
