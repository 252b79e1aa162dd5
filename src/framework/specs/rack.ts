// RackSpec: the ordered stacks of transformer blocks between embedding and head, with what each
// stack currently is (frozen, LoRA, storage format, attention mode, shape).

import {
  describeValue,
  FieldReader,
  POSITIVE_INT,
  POSITIVE_NUMBER,
  specCodec,
  type SpecIssue,
} from './fields.js';
import { conflict, problemToIssue, type CompatibilityProblem } from './problems.js';

import { STORAGE_FORMATS } from '../../engine/index.js';
import {
  ATTENTION_KINDS, ATTENTION_MODES, DEFAULT_ROPE_THETA, FFN_KINDS, LINEAR_FEATURE_MAPS, LORA_TARGETS, NORM_KINDS, NORM_POSITIONS, STACK_POSITIONALS,
  type AttentionMode, type FfnKind, type LoraSpec, type LoraTarget, type NormKind, type NormPosition, type RackSpec,
  type StackPositional, type StackSpec, type WeightFormat,
} from '../../nn/index.js';

// The vocabulary and spec shapes are defined in nn (kinds.ts, lora-names.ts, spec.ts) and engine
// (storage formats); re-exported here under the names specs have always used.
export {
  ATTENTION_MODES, DEFAULT_ROPE_THETA, FFN_KINDS, LORA_TARGETS, NORM_KINDS, NORM_POSITIONS, STACK_POSITIONALS,
  type AttentionMode, type FfnKind, type LoraSpec, type LoraTarget, type NormKind, type NormPosition, type RackSpec,
  type StackPositional, type StackSpec, type WeightFormat,
};
/** Storage formats of a stack's weights (engine's STORAGE_FORMATS). */
export const WEIGHT_FORMATS = STORAGE_FORMATS;
/** Formats that cannot receive gradient updates (the stack must be frozen; LoRA may train on top). */
export const QUANTIZED_WEIGHT_FORMATS: readonly WeightFormat[] = ['int8', 'nf4'];


function readLora(value: unknown, path: string, issues: SpecIssue[], ffn: FfnKind): LoraSpec {
  const r = new FieldReader(value, path, issues, 'a LoRA object');
  const rank = r.number('rank', POSITIVE_INT);
  const lora: LoraSpec = {
    rank,
    alpha: r.number('alpha', POSITIVE_NUMBER, Number.isNaN(rank) ? undefined : rank),
    targets: r.list('targets', (v, p) => {
      if (typeof v === 'string' && (LORA_TARGETS as readonly string[]).includes(v)) return v as LoraTarget;
      issues.push({ path: p, expected: `one of ${LORA_TARGETS.map((t) => `'${t}'`).join(', ')}`, found: describeValue(v) });
      return 'q';
    }, ['q', 'k', 'v', 'o']),
  };
  if (r.valid && lora.targets.length === 0) r.issue('targets', 'at least one target', lora.targets);
  if (new Set(lora.targets).size !== lora.targets.length) r.issue('targets', 'each target at most once', lora.targets);
  if (ffn !== 'swiglu' && lora.targets.includes('gate')) {
    r.issue('targets', `no 'gate' target for a '${ffn}' FFN (only SwiGLU has a gate projection)`, lora.targets);
  }
  if (r.valid) r.finish();
  return lora;
}

export function readStackSpec(value: unknown, path: string, issues: SpecIssue[]): StackSpec {
  const r = new FieldReader(value, path, issues);
  const n_heads = r.number('n_heads', POSITIVE_INT);
  const ffn = r.choice('ffn', FFN_KINDS, 'swiglu');
  const spec: StackSpec = {
    n_blocks: r.number('n_blocks', POSITIVE_INT),
    n_heads,
    n_kv_heads: r.number('n_kv_heads', POSITIVE_INT, Number.isNaN(n_heads) ? undefined : n_heads),
    d_ff: r.number('d_ff', POSITIVE_INT),
    attention: r.choice('attention', ATTENTION_MODES),
    norm: r.choice('norm', NORM_KINDS, 'rmsnorm'),
    norm_position: r.choice('norm_position', NORM_POSITIONS, 'pre'),
    ffn,
    positional: r.choice('positional', STACK_POSITIONALS, 'rope'),
    frozen: r.boolean('frozen', false),
    weight_format: r.choice('weight_format', WEIGHT_FORMATS, 'fp32'),
  };
  if (r.has('attention_kind')) {
    const kind = r.choice('attention_kind', ATTENTION_KINDS);
    if (kind !== 'standard') spec.attention_kind = kind;
  }
  if (r.has('feature_map')) {
    if (spec.attention_kind === 'linear') spec.feature_map = r.choice('feature_map', LINEAR_FEATURE_MAPS);
    else r.issue('feature_map', "nothing unless attention_kind is 'linear'", r.raw('feature_map'));
  }
  if (spec.positional === 'rope') {
    spec.rope_theta = r.number('rope_theta', POSITIVE_NUMBER, DEFAULT_ROPE_THETA);
  } else if (r.has('rope_theta')) {
    r.issue('rope_theta', "nothing when positional is 'none'", r.raw('rope_theta'));
  }
  if (QUANTIZED_WEIGHT_FORMATS.includes(spec.weight_format) && !spec.frozen) {
    r.issue(
      'weight_format',
      `a trainable format (${WEIGHT_FORMATS.filter((f) => !QUANTIZED_WEIGHT_FORMATS.includes(f)).join(', ')}) for a stack that is not frozen`,
      spec.weight_format,
      'quantized weights receive no gradient updates; set frozen: true (LoRA can still train on top)',
    );
  }
  if (r.has('lora')) spec.lora = readLora(r.raw('lora'), r.pathOf('lora'), issues, ffn);
  if (r.valid) r.finish();
  return spec;
}

/**
 * Shape rules inside one rack: stacks.length = n_stacks, n_heads divides d_model, n_kv_heads
 * divides n_heads, and RoPE gets an even head dimension (it rotates pairs of channels).
 */
export function rackShapeProblems(rack: RackSpec, path = 'rack'): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  const dModel = { path: `${path}.d_model`, value: rack.d_model };
  if (rack.stacks.length !== rack.n_stacks) {
    problems.push(
      conflict(
        'n_stacks',
        { path: `${path}.n_stacks`, value: rack.n_stacks },
        { path: `${path}.stacks`, value: `${rack.stacks.length} stack(s)` },
        `one entry per stack (${rack.n_stacks})`,
      ),
    );
  }
  rack.stacks.forEach((stack, i) => {
    const at = `${path}.stacks[${i}]`;
    const heads = { path: `${at}.n_heads`, value: stack.n_heads };
    if (rack.d_model % stack.n_heads !== 0) {
      problems.push(conflict('n_heads', dModel, heads, `a divisor of ${path}.d_model`));
    } else if (stack.positional === 'rope' && (rack.d_model / stack.n_heads) % 2 !== 0) {
      problems.push(
        conflict('n_heads', dModel, heads, `a head count giving an even head dimension for RoPE`, `head dimension = ${rack.d_model / stack.n_heads}`),
      );
    }
    if (stack.n_heads % stack.n_kv_heads !== 0) {
      problems.push(conflict('n_kv_heads', heads, { path: `${at}.n_kv_heads`, value: stack.n_kv_heads }, `a divisor of ${at}.n_heads`));
    }
  });
  return problems;
}

export function readRackSpec(value: unknown, path: string, issues: SpecIssue[]): RackSpec {
  const before = issues.length;
  const r = new FieldReader(value, path, issues);
  const spec: RackSpec = {
    d_model: r.number('d_model', POSITIVE_INT),
    n_stacks: r.number('n_stacks', POSITIVE_INT),
    stacks: r.list('stacks', (v, p) => readStackSpec(v, p, issues)),
  };
  if (r.valid) r.finish();
  // Shape rules only make sense once every number is valid.
  if (issues.length === before) issues.push(...rackShapeProblems(spec, path).map(problemToIssue));
  return spec;
}

const rackCodec = specCodec(readRackSpec, 'rack');
/** Checks a rack spec and returns a normalised copy; throws SpecValidationError listing every issue. */
export const validateRackSpec = rackCodec.validate;
export const rackSpecToJSON = rackCodec.toJSON;
/** Accepts JSON text or parsed JSON; validates. */
export const rackSpecFromJSON = rackCodec.fromJSON;

/** Convenience: a rack of `n_stacks` identical stacks (validated). */
export function uniformRackSpec(options: {
  d_model: number;
  n_stacks: number;
  stack: Partial<StackSpec> & Pick<StackSpec, 'n_blocks' | 'n_heads' | 'd_ff' | 'attention'>;
}): RackSpec {
  const stacks = Array.from({ length: options.n_stacks }, () => structuredClone(options.stack));
  return validateRackSpec({ d_model: options.d_model, n_stacks: options.n_stacks, stacks });
}
