// The layer rule and the no-cycle rule, checked over the import graph of src/ (read with the
// TypeScript compiler's parser, so type-only imports count too):
//   - a folder of src/ imports only folders of a lower layer (LAYERS below; the README's Layout);
//   - no import cycle between files, at run time or type level.
// A new violation fails with the importing file, the imported file and the rule it breaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './io/support.js';

/** Layer of each folder of src/: a folder may import only folders with a smaller number. */
export const LAYERS: Readonly<Record<string, number>> = {
  engine: 0,
  data: 1,
  nn: 1,
  optim: 2,
  framework: 3,
  io: 4,
  training: 5,
  cli: 6,
};

/**
 * Known cycles still to be broken, each with why it is allowed for now. A cycle found here must
 * lie entirely inside one entry's files; an entry that no longer matches any cycle fails the test
 * so the list only shrinks.
 */
const KNOWN_CYCLES: { files: RegExp; why: string }[] = [];

interface Edge { from: string; to: string; typeOnly: boolean }

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function isTypeOnly(st: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isImportDeclaration(st)) {
    const c = st.importClause;
    if (!c) return false; // a side-effect import runs the module
    if (c.isTypeOnly) return true;
    const nb = c.namedBindings;
    return !c.name && nb !== undefined && ts.isNamedImports(nb) && nb.elements.length > 0 && nb.elements.every((e) => e.isTypeOnly);
  }
  if (st.isTypeOnly) return true;
  const ec = st.exportClause;
  return ec !== undefined && ts.isNamedExports(ec) && ec.elements.length > 0 && ec.elements.every((e) => e.isTypeOnly);
}

/** Every relative import of src/ (static, re-export and dynamic), as repository-relative paths. */
function importGraph(root: string): { files: string[]; edges: Edge[] } {
  const files = sourceFiles(join(root, 'src')).map((f) => relative(root, f)).sort();
  const edges: Edge[] = [];
  for (const file of files) {
    const sf = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
    const add = (spec: string, typeOnly: boolean) => {
      if (!spec.startsWith('.')) return;
      edges.push({ from: file, to: normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts'), typeOnly });
    };
    const visit = (n: ts.Node): void => {
      if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
        add(n.moduleSpecifier.text, isTypeOnly(n));
      } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) {
        add(n.arguments[0].text, false);
      } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
        add(n.argument.literal.text, true);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return { files, edges };
}

const folderOf = (file: string): string => file.split('/')[1]!;

/** Strongly connected components with more than one file (Tarjan). */
function cycles(files: string[], edges: Edge[]): string[][] {
  const adj = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const e of edges) adj.get(e.from)?.push(e.to);
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of adj.get(v) ?? []) {
      if (!adj.has(w)) continue;
      if (!index.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) out.push(c.sort());
    }
  };
  for (const f of files) if (!index.has(f)) strong(f);
  return out;
}

const root = repoRoot();
const { files, edges } = importGraph(root);

test('import graph: every relative import resolves to a file of src/', () => {
  const known = new Set(files);
  const missing = edges.filter((e) => !known.has(e.to)).map((e) => `${e.from} imports ${e.to}, which does not exist`);
  assert.deepEqual(missing, []);
  assert.ok(files.length > 100 && edges.length > 300, `the graph looks empty (${files.length} files, ${edges.length} imports)`);
});

test('layers: a folder imports only folders below it (engine < data, nn < optim < framework < io < training < cli)', () => {
  const folders = new Set(files.map(folderOf));
  assert.deepEqual([...folders].filter((f) => !(f in LAYERS)), [], 'every folder of src/ has a layer');
  const violations = edges
    .filter((e) => folderOf(e.from) !== folderOf(e.to) && LAYERS[folderOf(e.to)]! >= LAYERS[folderOf(e.from)]!)
    .map((e) => `${e.from} imports ${e.to}${e.typeOnly ? ' (type only)' : ''}: ${folderOf(e.from)} (layer ${LAYERS[folderOf(e.from)]}) may not import ${folderOf(e.to)} (layer ${LAYERS[folderOf(e.to)]})`);
  assert.deepEqual(violations, []);
});

test('no import cycles between files, at run time or type level', () => {
  const found = cycles(files, edges);
  const unexplained = found.filter((c) => !KNOWN_CYCLES.some((k) => c.every((f) => k.files.test(f))));
  const stale = KNOWN_CYCLES.filter((k) => !found.some((c) => c.every((f) => k.files.test(f)))).map((k) => `known cycle ${k.files} no longer occurs: remove it from KNOWN_CYCLES`);
  const describe = (c: string[]) => {
    const inCycle = new Set(c);
    const links = edges.filter((e) => inCycle.has(e.from) && inCycle.has(e.to)).map((e) => `  ${e.from} → ${e.to}${e.typeOnly ? ' (type)' : ''}`);
    return `cycle of ${c.length} files:\n${links.join('\n')}`;
  };
  assert.deepEqual([...unexplained.map(describe), ...stale], []);
});
