// The recipes at tiny size (and one mixed config beyond them) that the model-manifest and resume
// tests run: the overrides that make each recipe train in a fraction of a second on synthetic data.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type ParsedConfig } from '../../src/training/index.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository's recipes folder (from the compiled test folder or the sources). */
export const RECIPES = [resolve(here, '../../../recipes'), resolve(here, '../../recipes')].find((p) => existsSync(p))!;

export const TINY = [
  'data.corpus={kind: synthetic, vocab_size: 48, tokens: 4000, branching: 1}', 'data.tokenizer=none', 'data.batch_size=4', 'data.seq_len=16', 'data.eval_batches=1',
  'training.eval_every=0', 'training.checkpoint_every=0', 'training.progress=off', 'training.tensorboard=false', 'optimizer.lr=0.01',
];
export const SMALL = ['model.d_model=16', 'model.n_heads=2', 'model.d_ff=32'];
export const RECIPE_SETS: Record<string, string[]> = {
  'progressive-system.yaml': [...SMALL, 'model.blocks_per_stack=1', 'model.progressive.stack_lora.rank=2', 'model.progressive.stack_lora.alpha=4', 'model.progressive.stack_lora.max_rank=4', 'model.progressive.progressive_lora.rank=2', 'model.progressive.progressive_lora.alpha=4', 'training.total_steps=12'],
  'warmup-main.yaml': [...SMALL, 'model.blocks_per_stack=1', 'schedule[0].overrides.data.seq_len=8', 'training.total_steps=8'],
  // Prepend, progressive LoRA on every projection, an NF4 trunk (adapters only), time-as-depth.
  'right-to-left-diffusion.yaml': ['model.d_model=64', 'model.n_heads=2', 'model.d_ff=64', 'model.blocks_per_stack=1', 'model.progressive.progressive_lora.rank=2', 'model.progressive.progressive_lora.alpha=4', 'training.total_steps=8'],
  'progressive-stacking.yaml': [...SMALL, 'training.total_steps=12'],
  'layer-wise.yaml': [...SMALL, 'training.total_steps=8'],
  'stack-wise-cached.yaml': [...SMALL, 'model.n_stacks=3', 'training.total_steps=9', 'data.corpus={kind: synthetic, vocab_size: 48, tokens: 600, branching: 1}'],
};

// Beyond the recipes: prepend with stack LoRA and progressive LoRA on an NF4 trunk, a ramp-in
// stopped half open, a time embedding and a tied head.
export const MIXED = {
  model: {
    preset: 'llama', d_model: 32, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1, attention: 'bidirectional', tie_embeddings: true, time_embedding: { features: 8 },
    progressive: {
      direction: 'prepend', growth: { kind: 'ramp', t0: 0.5, t1: 1 }, freeze: 'adapters_only_trunk', trunk_format: 'nf4',
      stack_lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, progressive_lora: { rank: 2, alpha: 4, targets: ['o', 'down'] },
    },
  },
  data: { corpus: { kind: 'synthetic', vocab_size: 40, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 1, objective: 'diffusion' },
  optimizer: { lr: 0.01 },
  training: { total_steps: 12, progress: 'off', tensorboard: false, eval_every: 0 },
  schedule: [{ name: 'one', start_t: 0, end_t: 0.5 }, { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2 } } }],
};


/** The config of a recipe of RECIPE_SETS (or 'mixed': MIXED) at tiny size, training into `runDir`. */
export function recipeConfig(name: string, runDir: string): ParsedConfig | Record<string, unknown> {
  const set = RECIPE_SETS[name];
  if (set) return loadConfig(join(RECIPES, name), { set: [...TINY, `training.run_dir=${runDir}`, ...set] });
  if (name !== 'mixed') throw new Error(`no recipe set '${name}'`);
  return { ...MIXED, training: { ...MIXED.training, run_dir: runDir } };
}
