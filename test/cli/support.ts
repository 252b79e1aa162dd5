// Shared helpers for the CLI tests (not a test file itself).
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { FIXTURES_DIR, repoRoot } from '../io/support.js';

export const ROOT = repoRoot();
export { repoRoot, FIXTURES_DIR };
export const BIN = join(ROOT, 'bin', 'stackwise.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/stackwise.js ...args` and returns its exit status and output. */
export function stackwise(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, STACKWISE_DEBUG: '' }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
