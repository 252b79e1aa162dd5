/** Hugging Face import/export: configs, weights (LLaMA, GPT-2, BERT), PEFT LoRA adapters, forward cases. */
export * from './config.js';
export * from './mapping.js';
export * from './weights.js';
export * from './shards.js';
export * from './stream-load.js';
export * from './model-io.js';
export * from './peft.js';
export * from './forward-case.js';
export * from './tokenizer.js';
export * from './pretrained.js';
