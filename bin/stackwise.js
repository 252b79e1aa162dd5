#!/usr/bin/env node
// The `stackwise` command: runs the compiled CLI.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(entry)) {
  process.stderr.write('stackwise: not built yet. Run `bash scripts/setup.sh` (or `npm ci && npm run build`) first.\n');
  process.exit(1);
}
await import(entry);
