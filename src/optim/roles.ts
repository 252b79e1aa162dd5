// Parameter roles: the one vocabulary for what a parameter is, used by optimizer groups
// (optimizer.param_groups[].name, optim/groups.ts), by the progressive builder's groups and
// resource report (training/progressive), and by model.progressive.group_lr_scale. The names are
// the config's (snake_case).

/**
 * Roles a parameter can have by its name and shape, in precedence order (optim/groups.ts):
 *   adapters   LoRA tensors (lora_A, lora_B)
 *   no_decay   1-d tensors: norm weights and biases (conventionally not decayed)
 *   embedding  the token/position embedding and the time embedding
 *   head       the head (a tied decoder is the embedding's table and counts as embedding)
 *   new_stack  a stack that is new in this phase
 *   trunk      any other stack
 */
export const PARAM_ROLES = ['adapters', 'no_decay', 'embedding', 'head', 'new_stack', 'trunk'] as const;
export type ParamRole = (typeof PARAM_ROLES)[number];

/** Where a parameter sits: the roles that partition a model's tensors. */
export const PLACE_ROLES = ['embedding', 'head', 'new_stack', 'trunk'] as const satisfies readonly ParamRole[];
export type PlaceRole = (typeof PLACE_ROLES)[number];

/**
 * The two kinds of adapter of a progressive run, refining 'adapters': stack_lora on each new
 * stack, progressive_lora on the trunk.
 */
export const ADAPTER_ROLES = ['stack_lora', 'progressive_lora'] as const;
export type AdapterRole = (typeof ADAPTER_ROLES)[number];

/** The optimizer groups a progressive run makes (and the keys of model.progressive.group_lr_scale). */
export const PROGRESSIVE_GROUPS = ['new_stack', 'trunk', ...ADAPTER_ROLES, 'no_decay'] as const;
export type ProgressiveGroup = (typeof PROGRESSIVE_GROUPS)[number];

/** Whether a parameter's dotted name puts it in the embedding role: the token/position
 * embedding (`embedding.…`) and the time embedding (`time.…`). */
export function isEmbeddingParamName(name: string): boolean {
  return name.startsWith('embedding.') || name.startsWith('time.');
}
