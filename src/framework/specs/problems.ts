// A disagreement between two fields, usually of two different specs (e.g. embedding vs head).
// Both sides are named with their paths and values so the reader can fix either one.

import { describeValue, type SpecIssue } from './fields.js';

export interface SpecSide {
  /** Dotted path of the field, e.g. `embedding.vocab_size`. */
  path: string;
  value: unknown;
}

export interface CompatibilityProblem {
  /** Short name of the quantity that disagrees: 'vocab_size', 'd_model', 'attention', ... */
  field: string;
  /** The side used as the reference. */
  left: SpecSide;
  /** The side reported as wrong (it is the one `expected` talks about). */
  right: SpecSide;
  /** What `right` should have been, e.g. "the same value as embedding.vocab_size". */
  expected: string;
  /** Why the rule exists, when that is not obvious. */
  reason?: string;
  /** One line naming both sides: `right.path: expected ..., found ... (left.path = ...)`. */
  message: string;
}

export function conflict(
  field: string,
  left: SpecSide,
  right: SpecSide,
  expected: string,
  reason?: string,
): CompatibilityProblem {
  const problem: CompatibilityProblem = { field, left, right, expected, message: '' };
  if (reason !== undefined) problem.reason = reason;
  problem.message = `${right.path}: expected ${expected}, found ${describeValue(right.value)} (${context(problem)})`;
  return problem;
}

function context(p: CompatibilityProblem): string {
  return `${p.left.path} = ${describeValue(p.left.value)}${p.reason ? `; ${p.reason}` : ''}`;
}

/** The same problem as a single-spec validation issue (used when both sides are in one spec). */
export function problemToIssue(p: CompatibilityProblem): SpecIssue {
  return { path: p.right.path, expected: p.expected, found: describeValue(p.right.value), hint: context(p) };
}

export class IncompatibleSpecsError extends Error {
  readonly problems: readonly CompatibilityProblem[];
  constructor(problems: readonly CompatibilityProblem[]) {
    super(
      problems.length === 1
        ? `incompatible specs: ${problems[0]!.message}`
        : `incompatible specs (${problems.length} problems):\n` + problems.map((p) => `  ${p.message}`).join('\n'),
    );
    this.name = 'IncompatibleSpecsError';
    this.problems = problems;
  }
}
