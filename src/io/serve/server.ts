/**
 * `stackwise serve`: a read-only local web server over a folder of run folders, built on Node's
 * own `http` module (no framework: the server has a handful of GET routes, and every byte it sends
 * is decided here — fewer dependencies, nothing between a request path and the file check).
 *
 *   /                      the run list            /api/runs            the list as JSON
 *   /run/<name>            a run's live page       /api/runs/<name>     a run's view as JSON
 *   /compare?runs=a,b&x=   runs overlaid           /api/stream?runs=&list=1   server-sent events
 *   /files/<name>/<path>   a file of a run folder (report.html, config.yaml, …), at most MAX_FILE_BYTES
 *   /static/…              the page script and styles, uPlot (from its npm package)
 *
 * Live updates: a timer polls every listed run (a stat, then only the appended bytes are read) and
 * pushes to each open page what changed since it last heard: the new points of the step series and
 * the small parts (evaluations, phases, events, …) whose content changed.
 *
 * Safe by default: binds 127.0.0.1; only GET/HEAD; requests whose Host header is not the address
 * served are refused (DNS rebinding); files only from run folders (see safe-path.ts); served run
 * files are sandboxed (no script runs in our origin).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readdirSync, openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { METRICS_FILE } from '../report/index.js';
import { loadAssets, pageHtml, type PageKind, type StaticAsset } from './pages.js';
import { LiveRun } from './live-run.js';
import { listEntryOf, type RunListEntry, type RunView } from './run-view.js';
import { decodeSegments, resolveRunFile } from './safe-path.js';

export const DEFAULT_PORT = 6106;
export const DEFAULT_HOST = '127.0.0.1';
/** Largest run file served (a checkpoint's weights are not for the browser). */
export const MAX_FILE_BYTES = 16 << 20;
/** Open event streams at once, and runs per stream. */
export const MAX_STREAMS = 64;
export const MAX_STREAM_RUNS = 12;
const RESCAN_MS = 2000;
const KEEPALIVE_MS = 15_000;

export interface ServeOptions {
  /** The folder of run folders. */
  root: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** How often run files are checked for new records. */
  pollMs?: number;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const WILDCARD = new Set(['0.0.0.0', '::', '[::]']);

/** Whether `host` only listens on this machine. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || /^127\./.test(host);
}

const FILE_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8', '.yaml': 'text/plain; charset=utf-8', '.yml': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8', '.log': 'text/plain; charset=utf-8', '.md': 'text/plain; charset=utf-8',
};

const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** Files of run folders: no script, an opaque origin. */
const FILE_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:";

interface Stream {
  res: ServerResponse;
  list: boolean;
  runs: string[];
  listJson: string;
  sent: Map<string, SentRun>;
}

interface SentRun {
  generation: number;
  view: RunView | null;
  stride: number;
  count: number;
  lastStep: number | undefined;
  parts: Map<string, string>;
}

/** The parts of a view sent whole when their content changes. */
const VIEW_PARTS = ['status', 'config', 'total_steps', 'updated', 'last_step', 'evals', 'phases', 'markers', 'events', 'stack_svg', 'resources', 'samples', 'summary', 'notes', 'counts'] as const;

export class RunServer {
  readonly root: string;
  readonly host: string;
  private readonly port: number;
  private readonly pollMs: number;
  private readonly runs = new Map<string, LiveRun>();
  private readonly streams = new Set<Stream>();
  private readonly assets: Map<string, StaticAsset>;
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private lastScan = 0;
  private boundPort = 0;

  constructor(opts: ServeOptions) {
    this.root = resolve(opts.root);
    this.host = opts.host ?? DEFAULT_HOST;
    this.port = opts.port ?? DEFAULT_PORT;
    this.pollMs = opts.pollMs ?? 500;
    this.assets = loadAssets();
  }

  /** Starts listening; resolves to the URL to open. */
  async start(): Promise<string> {
    this.scan();
    this.server = createServer((req, res) => {
      try {
        this.handle(req, res);
      } catch (e) {
        if (!res.headersSent) this.send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(e as Error).message}\n`);
        else res.destroy();
      }
    });
    await new Promise<void>((ok, fail) => {
      this.server!.once('error', fail);
      this.server!.listen(this.port, this.host, () => ok());
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    this.timer = setInterval(() => this.tick(), this.pollMs);
    this.keepalive = setInterval(() => { for (const s of this.streams) s.res.write(': keepalive\n\n'); }, KEEPALIVE_MS);
    return this.url;
  }

  get url(): string {
    const h = this.host.includes(':') && !this.host.startsWith('[') ? `[${this.host}]` : this.host;
    return `http://${WILDCARD.has(this.host) ? '127.0.0.1' : h}:${this.boundPort}/`;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.keepalive) clearInterval(this.keepalive);
    this.timer = this.keepalive = null;
    for (const s of this.streams) s.res.end();
    this.streams.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((ok) => { server.close(() => ok()); server.closeAllConnections(); });
  }

  /** The run list, newest change first. */
  list(now = Date.now()): RunListEntry[] {
    return [...this.runs.values()].map((r) => listEntryOf(r.currentView(now))).sort((a, b) => (b.updated ?? '').localeCompare(a.updated ?? '') || a.name.localeCompare(b.name));
  }

  // ---- polling -----------------------------------------------------------------------------

  /** Finds the run folders: real (not symlinked) folders of the root holding metrics.jsonl or config.yaml. */
  private scan(): void {
    this.lastScan = Date.now();
    let names: string[] = [];
    try {
      names = readdirSync(this.root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
        .map((d) => d.name)
        .filter((n) => existsSync(join(this.root, n, METRICS_FILE)) || existsSync(join(this.root, n, 'config.yaml')));
    } catch { /* the folder may not exist yet */ }
    const keep = new Set(names);
    for (const name of [...this.runs.keys()]) if (!keep.has(name)) this.runs.delete(name);
    for (const name of names) {
      if (!this.runs.has(name)) {
        const run = new LiveRun(name, join(this.root, name));
        run.poll();
        this.runs.set(name, run);
      }
    }
  }

  private tick(): void {
    if (Date.now() - this.lastScan >= RESCAN_MS) this.scan();
    for (const run of this.runs.values()) run.poll();
    const now = Date.now();
    for (const s of this.streams) this.push(s, now);
  }

  private push(s: Stream, now: number): void {
    if (s.list) {
      const json = JSON.stringify(this.list(now));
      if (json !== s.listJson) {
        s.listJson = json;
        s.res.write(`event: list\ndata: ${json}\n\n`);
      }
    }
    for (const name of s.runs) {
      const run = this.runs.get(name);
      if (!run) continue;
      const delta = this.delta(run, s, now);
      if (delta) s.res.write(`event: run\ndata: ${JSON.stringify(delta)}\n\n`);
    }
  }

  /** What a page lacks of a run's current view (null when nothing). */
  private delta(run: LiveRun, s: Stream, now: number): Record<string, unknown> | null {
    const view = run.currentView(now);
    let sent = s.sent.get(run.name);
    if (sent && sent.view === view && sent.generation === run.generation) return null;
    if (!sent || sent.generation !== run.generation) {
      sent = { generation: run.generation, view: null, stride: 0, count: 0, lastStep: undefined, parts: new Map() };
      s.sent.set(run.name, sent);
    }
    const cols = view.steps;
    const n = cols.step.length;
    const fresh = sent.stride !== cols.stride || sent.count > n || (sent.count > 0 && cols.step[sent.count - 1] !== sent.lastStep);
    const from = fresh ? 0 : sent.count;
    const out: Record<string, unknown> = { name: run.name };
    if (fresh || from < n) {
      const lrs: Record<string, unknown[]> = {};
      for (const [g, col] of Object.entries(cols.lrs)) lrs[g] = col.slice(from);
      out['steps'] = {
        from, stride: cols.stride, step: cols.step.slice(from), t: cols.t.slice(from), tokens: cols.tokens.slice(from), flops: cols.flops.slice(from),
        loss: cols.loss.slice(from), tokens_per_s: cols.tokens_per_s.slice(from), lr: cols.lr.slice(from), lrs,
      };
    }
    for (const key of VIEW_PARTS) {
      const json = JSON.stringify(view[key]);
      if (sent.parts.get(key) !== json) {
        sent.parts.set(key, json);
        out[key] = view[key];
      }
    }
    sent.view = view;
    sent.stride = cols.stride;
    sent.count = n;
    sent.lastStep = n ? cols.step[n - 1] : undefined;
    return Object.keys(out).length > 1 ? out : null;
  }

  // ---- requests ----------------------------------------------------------------------------

  private allowedHost(req: IncomingMessage): boolean {
    if (WILDCARD.has(this.host)) return true;
    const header = req.headers.host;
    if (!header) return false;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header);
    if (!m) return false;
    const name = m[1]!.toLowerCase();
    if (m[2] !== undefined && Number(m[2]) !== this.boundPort) return false;
    return name === this.host.toLowerCase() || name === `[${this.host.toLowerCase()}]` || (isLoopbackHost(this.host) && LOOPBACK.has(name));
  }

  /** The run of that name; a folder created since the last scan is found at once. */
  private run(name: string): LiveRun | undefined {
    if (!this.runs.has(name) && Date.now() - this.lastScan > 100) this.scan();
    return this.runs.get(name);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      this.send(res, 405, 'text/plain; charset=utf-8', 'read-only: only GET and HEAD\n');
      return;
    }
    if (!this.allowedHost(req)) {
      this.send(res, 403, 'text/plain; charset=utf-8', 'unexpected Host header\n');
      return;
    }
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    if (path === '/') return this.page(res, 'list', 'Runs');
    if (path === '/compare') return this.page(res, 'compare', 'Compare runs');
    if (path.startsWith('/run/')) {
      const seg = decodeSegments(path.slice(5));
      if (!seg || seg.length !== 1 || !this.run(seg[0]!)) return this.notFound(res);
      return this.page(res, 'run', seg[0]!, seg[0]);
    }
    if (path.startsWith('/static/')) {
      const asset = this.assets.get(path.slice(8));
      if (!asset) return this.notFound(res);
      return this.send(res, 200, asset.type, asset.body, { 'Cache-Control': 'no-cache' });
    }
    if (path === '/api/runs') return this.json(res, { runs: this.list() });
    if (path.startsWith('/api/runs/')) {
      const seg = decodeSegments(path.slice(10));
      const run = seg && seg.length === 1 ? this.run(seg[0]!) : undefined;
      if (!run) return this.notFound(res);
      return this.json(res, run.currentView(Date.now()));
    }
    if (path === '/api/stream') return this.stream(req, res, query);
    if (path.startsWith('/files/')) {
      const seg = decodeSegments(path.slice(7));
      const file = seg ? resolveRunFile(this.root, (n) => this.runs.has(n), seg) : null;
      if (!file) return this.notFound(res);
      return this.file(res, file);
    }
    this.notFound(res);
  }

  private send(res: ServerResponse, code: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(code, {
      'Content-Type': type,
      'Content-Length': String(bytes.length),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': PAGE_CSP,
      'Cache-Control': 'no-store',
      ...headers,
    });
    res.end(res.req.method === 'HEAD' ? undefined : bytes);
  }

  private notFound(res: ServerResponse): void {
    this.send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  private json(res: ServerResponse, value: unknown): void {
    this.send(res, 200, 'application/json; charset=utf-8', JSON.stringify(value));
  }

  private page(res: ServerResponse, page: PageKind, title: string, run?: string): void {
    this.send(res, 200, 'text/html; charset=utf-8', pageHtml(page, title, run));
  }

  private file(res: ServerResponse, path: string): void {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size > MAX_FILE_BYTES) {
        this.send(res, 413, 'text/plain; charset=utf-8', `file of ${size} bytes: larger than the ${MAX_FILE_BYTES} bytes served\n`);
        return;
      }
      const body = Buffer.alloc(size);
      let done = 0;
      while (done < size) {
        const n = readSync(fd, body, done, size - done, done);
        if (n <= 0) break;
        done += n;
      }
      const type = FILE_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
      this.send(res, 200, type, body.subarray(0, done), { 'Content-Security-Policy': FILE_CSP });
    } finally {
      closeSync(fd);
    }
  }

  private stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    if (this.streams.size >= MAX_STREAMS) {
      this.send(res, 503, 'text/plain; charset=utf-8', `too many open pages (${MAX_STREAMS})\n`);
      return;
    }
    const runs = [...new Set((query.get('runs') ?? '').split(',').filter((n) => n !== ''))].slice(0, MAX_STREAM_RUNS);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      Connection: 'keep-alive',
    });
    if (req.method === 'HEAD') { res.end(); return; }
    res.write('retry: 2000\n\n');
    const s: Stream = { res, list: query.get('list') === '1', runs, listJson: '', sent: new Map() };
    this.streams.add(s);
    const drop = () => this.streams.delete(s);
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop); // a page gone mid-write: forget it, never crash the server
    const missing = runs.filter((n) => !this.run(n));
    if (missing.length) res.write(`event: missing\ndata: ${JSON.stringify(missing)}\n\n`);
    this.push(s, Date.now());
  }
}
