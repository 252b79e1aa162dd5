/**
 * `stackwise serve`'s library side: a read-only live dashboard of a folder of run folders
 * (server.ts), following each run's metrics.jsonl by byte offset (jsonl-tail.ts), with the run's
 * status from its own records (run-status.ts) and the charts' data built through the run report's
 * reader (run-view.ts). The page script is src/io/serve/client/app.js; charts are uPlot.
 */
export { JsonlTail, MAX_LINE_BYTES, type TailUpdate } from './jsonl-tail.js';
export { runStatus, readConfigSummary, RUN_STATES, STALE_AFTER_MIN_MS, type RunState, type RunStatus, type RunConfigSummary } from './run-status.js';
export { buildRunView, listEntryOf, strideFor, MAX_STEP_POINTS, type RunView, type RunListEntry, type StepColumns, type EvalRow, type EventRow, type SampleRow } from './run-view.js';
export { LiveRun } from './live-run.js';
export { decodeSegments, resolveRunFile } from './safe-path.js';
export { RunServer, isLoopbackHost, DEFAULT_HOST, DEFAULT_PORT, MAX_FILE_BYTES, type ServeOptions } from './server.js';
