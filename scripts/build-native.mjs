// Builds the native addon with node-gyp. Serialised with a lock file so that parallel
// invocations (several terminals, test watchers) never race on the same build folder.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'build', '.lock');
mkdirSync(join(root, 'build'), { recursive: true });

function sleep(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }
for (let i = 0; ; i++) {
  try { mkdirSync(lock); break; } catch {
    // A lock older than 10 minutes belongs to a build that died.
    try { if (Date.now() - statSync(lock).mtimeMs > 600_000) { rmSync(lock, { recursive: true, force: true }); continue; } } catch { /* gone */ }
    if (i === 0) console.error('[stackwise] waiting for another native build to finish…');
    sleep(500);
  }
}
let status = 1;
try {
  // npm tells its lifecycle scripts where its bundled node-gyp is; run directly, look beside npm.
  const gyp = process.env.npm_config_node_gyp
    ?? join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const cmd = process.execPath;
  const base = [gyp];
  // Build against the headers of the running Node when they are installed beside it, so no
  // header download is needed (this machine has no network besides the package registries).
  const localHeaders = join(dirname(process.execPath), '..', 'include', 'node', 'node_api.h');
  const nodedir = process.env.npm_config_nodedir ?? (existsSync(localHeaders) ? join(dirname(process.execPath), '..') : undefined);
  const configureArgs = nodedir ? ['configure', `--nodedir=${nodedir}`] : ['configure'];
  const configure = spawnSync(cmd, [...base, ...configureArgs], { cwd: root, stdio: 'inherit' });
  status = configure.status ?? 1;
  if (status === 0) {
    const build = spawnSync(cmd, [...base, 'build', '-j', '2'], { cwd: root, stdio: 'inherit' });
    status = build.status ?? 1;
  }
} finally {
  rmSync(lock, { recursive: true, force: true });
}
process.exit(status);
