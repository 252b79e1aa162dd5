/**
 * What `stackwise serve` sends to the browser besides data: the HTML shell of each page (the page
 * script builds the rest), the page script and styles (src/io/serve/client, plain files with no
 * build step) and uPlot from its npm package, all read once at start-up and served locally.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeXml } from '../report/index.js';
import { EVENT_STYLE, PHASE_COLORS, STATE_COLORS } from '../report/charts.js';

export type PageKind = 'list' | 'run' | 'compare';

/** The report's palette, so that phases and events look the same in both. */
const THEME_JSON = JSON.stringify({ phase_colors: PHASE_COLORS, event_style: EVENT_STYLE, state_colors: STATE_COLORS }).replace(/</g, '\\u003c');

/** The HTML shell of a page; `run` names the run of a run page. */
export function pageHtml(page: PageKind, title: string, run?: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>${escapeXml(title)} · stackwise serve</title>
<link rel="icon" href="data:," />
<link rel="stylesheet" href="/static/uplot.css" />
<link rel="stylesheet" href="/static/app.css" />
</head>
<body data-page="${page}"${run !== undefined ? ` data-run="${escapeXml(run)}"` : ''}>
<header><a class="brand" href="/">stackwise serve</a><nav><a href="/">runs</a><a href="/compare">compare</a></nav><span id="conn" class="conn">connecting…</span></header>
<main id="app"></main>
<script type="application/json" id="sw-theme">${THEME_JSON}</script>
<script src="/static/uplot.js"></script>
<script type="module" src="/static/app.js"></script>
</body>
</html>
`;
}

function findClientDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'src', 'io', 'serve', 'client');
    if (existsSync(join(candidate, 'app.js'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('stackwise serve: the page script (src/io/serve/client/app.js) is missing from the package');
    dir = parent;
  }
}

export interface StaticAsset { type: string; body: Buffer }

export function loadAssets(): Map<string, StaticAsset> {
  const require = createRequire(import.meta.url);
  const client = findClientDir();
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  return new Map<string, StaticAsset>([
    ['uplot.js', { type: js, body: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js')) }],
    ['uplot.css', { type: css, body: readFileSync(require.resolve('uplot/dist/uPlot.min.css')) }],
    ['app.js', { type: js, body: readFileSync(join(client, 'app.js')) }],
    ['app.css', { type: css, body: readFileSync(join(client, 'app.css')) }],
  ]);
}
