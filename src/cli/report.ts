/**
 * `stackwise report <run-dir>`: (re)generates the run report — report.html plus one SVG per chart —
 * from the run folder's metrics.jsonl (and a previous report-data.json for what the metrics lack).
 */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { readRunReportData, writeRunReport } from '../io/report/index.js';
import { printJson, runCommand } from './output.js';

export interface ReportCommandResult {
  html: string;
  charts: Record<string, string>;
  data: string;
  steps: number;
  evals: number;
  events: number;
  notes: string[];
}

export function regenerateReport(runDir: string, opts: { name?: string } = {}): ReportCommandResult {
  if (!existsSync(runDir)) throw new Error(`${runDir}: no such run folder`);
  if (!statSync(runDir).isDirectory()) throw new Error(`${runDir}: not a folder (expected a run folder)`);
  const data = readRunReportData(runDir);
  if (opts.name) data.run_name = opts.name;
  const files = writeRunReport(runDir, data);
  return { ...files, steps: data.steps.length, evals: data.evals.length, events: data.events.length, notes: data.notes ?? [] };
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('regenerate the run report (report.html + one SVG per chart) from a run folder\'s metrics.jsonl')
    .argument('<run-dir>', 'run folder holding metrics.jsonl')
    .option('--name <name>', 'run name shown in the report (default: from the metrics, else the folder name)')
    .option('--json', 'print one JSON object with the files written')
    .addHelpText('after', '\nExit codes: 0 ok, 1 missing folder or unreadable metrics, 2 usage error.')
    .action(async (runDir: string, opts: { name?: string; json?: boolean }) => {
      await runCommand('report', opts, () => {
        const r = regenerateReport(runDir, opts);
        if (opts.json) { printJson({ ok: true, ...r }); return; }
        process.stdout.write(`wrote ${r.html} (${r.steps} steps, ${r.evals} evaluations, ${r.events} events)\n`);
        for (const p of Object.values(r.charts)) process.stdout.write(`      ${p}\n`);
        for (const n of r.notes) process.stdout.write(`note: ${n}\n`);
      });
    });
}
