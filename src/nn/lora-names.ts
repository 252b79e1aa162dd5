// The LoRA vocabulary: which linear layers an adapter can wrap and what its tensors are called.
// Every test of "is this an adapter tensor?" goes through isLoraParamName.

/** Linear layers a LoRA adapter can wrap (config and spec names); 'gate' exists only in SwiGLU FFNs. */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** The adapter's own parameters on a wrapped Linear: y = W x + (alpha / rank) · B (A x). */
export const LORA_PARAM_NAMES = ['lora_A', 'lora_B'] as const;
export type LoraParamName = (typeof LORA_PARAM_NAMES)[number];

/** Whether a dotted parameter name (`rack.stacks.0.blocks.1.attn.q.lora_A`) is an adapter tensor. */
export function isLoraParamName(name: string): boolean {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return (LORA_PARAM_NAMES as readonly string[]).includes(last);
}
