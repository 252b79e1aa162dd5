export * from './phase.js';
export * from './phase-schedule.js';
export * from './time-controller.js';
export * from './merge.js';
export * from './simple-schedule.js';
