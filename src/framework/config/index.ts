// The config schema of every plane (zod) and its error reporting. Parsing whole configs with
// schedules lives in training/config (it needs the phase schedule).
export * from './errors.js';
export * from './schema.js';
export * from './tree.js';
