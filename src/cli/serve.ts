/**
 * `stackwise serve [folder] [--port N] [--host H]`: a live, read-only dashboard of the run folders
 * under a folder (default runs/) in the browser, until Ctrl-C. The server is src/io/serve.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_HOST, DEFAULT_PORT, RunServer, isLoopbackHost } from '../io/serve/index.js';
import { METRICS_FILE } from '../io/report/index.js';
import { printJson, runCommand } from './output.js';

const DEFAULT_FOLDER = 'runs';

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n > 65535) throw new InvalidArgumentError(`expected a port number from 0 to 65535 (0: any free port), found '${value}'`);
  return n;
}

interface ServeFlags {
  port: number;
  host: string;
  json?: boolean;
}

/** The folder of run folders to serve: `folder` itself, or its parent when it is a run folder. */
function servedRoot(folder: string): { root: string; note?: string } {
  const path = resolve(folder);
  if (existsSync(path) && !statSync(path).isDirectory()) throw new Error(`${folder}: not a folder (expected a folder of run folders, such as runs/)`);
  if (existsSync(join(path, METRICS_FILE))) return { root: dirname(path), note: `${folder} is a run folder: serving the folder that holds it, ${dirname(path)}` };
  if (!existsSync(path)) return { root: path, note: `${folder} does not exist yet: runs appear as soon as it holds run folders` };
  return { root: path };
}

async function serve(folder: string, opts: ServeFlags): Promise<void> {
  const { root, note } = servedRoot(folder);
  const server = new RunServer({ root, host: opts.host, port: opts.port });
  try {
    await server.start();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new Error(`port ${opts.port} on ${opts.host} is in use: pick another with --port (0 picks a free one)`);
    if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') throw new Error(`--host ${opts.host}: not an address of this machine`);
    throw e;
  }
  const loopback = isLoopbackHost(opts.host);
  if (opts.json) printJson({ type: 'listening', url: server.url, host: opts.host, root, runs: server.list().length });
  else {
    if (note) process.stderr.write(`note: ${note}\n`);
    process.stdout.write(`serving ${root} (${server.list().length} runs) at ${server.url}\nread-only; Ctrl-C stops\n`);
  }
  if (!loopback) {
    process.stderr.write(`warning: listening on ${opts.host}, not only on this machine: anyone who can reach port ${new URL(server.url).port} can read these runs (no authentication)\n`);
  }
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('live dashboard of the run folders under a folder, in the browser (read-only, local)')
    .argument('[folder]', `folder of run folders (default ${DEFAULT_FOLDER}/)`, DEFAULT_FOLDER)
    .option('--port <n>', `port (0: any free port)`, parsePort, DEFAULT_PORT)
    .option('--host <address>', 'address to listen on; anything but loopback prints a warning', DEFAULT_HOST)
    .option('--json', 'print one JSON line with the URL once listening')
    .addHelpText('after', '\nPages: the run list, a live page per run, and /compare (runs overlaid against step, t, tokens or training FLOPs).\nExit codes: 0 stopped with Ctrl-C, 1 cannot listen or bad folder, 2 usage error.')
    .action(async (folder: string, opts: ServeFlags) => {
      await runCommand('serve', opts, () => serve(folder, opts));
    });
}
