// Specs: plain serialisable descriptions of each plane, their validation and compatibility.
// Field names are snake_case because specs mirror config files (YAML/JSON) one to one.
export * from './objective.js';
export * from './fields.js';
export * from './problems.js';
export * from './batch.js';
export * from './embedding.js';
export * from './rack.js';
export * from './head.js';
export * from './optimizer.js';
export * from './data.js';
export * from './compatibility.js';
