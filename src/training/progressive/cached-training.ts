/**
 * The activation cache in a training run (`model.progressive.activation_cache`): the machine's
 * forward becomes a CachedPrefixForward, so the frozen prefix (embedding + leading frozen stacks)
 * of every training and validation row is computed once and served from the cache while the prefix
 * is unchanged. When nothing is frozen (prefix of 0 stacks) or a batch has no sample ids, the
 * plain forward runs. The cache is exact: a row's key is its sample id and a hash of its tokens,
 * under the prefix's version (structure + weight write versions). The cached prefix runs in eval
 * mode (a frozen trunk applies no dropout): without dropout in the trunk the losses are the same
 * with and without the cache. A model with a time embedding (time-as-input) is never served from
 * the cache: its prefix output depends on each row's noise ratio (CachedPrefixForward).
 */
import type { ModelAdapter } from '../../framework/index.js';
import type { Model } from '../../nn/index.js';
import { ActivationCache, CachedPrefixForward, type ActivationCacheStats } from './activation-cache.js';

export interface ActivationCacheSettings {
  memory_budget_mb: number;
  disk_budget_mb?: number | undefined;
  spill_dir?: string | undefined;
  check_content: boolean;
}

/** What the cache holds now (for the per-phase resource report and the metrics). */
export interface ActivationCacheState extends ActivationCacheStats {
  /** Stacks currently served from the cache (0: nothing frozen at the front). */
  prefixStacks: number;
}

const MB = 1 << 20;

export class CachedTraining {
  readonly cache: ActivationCache;
  readonly forward: CachedPrefixForward;

  constructor(model: Model, settings: ActivationCacheSettings) {
    this.cache = new ActivationCache({
      memoryBudgetBytes: Math.floor(settings.memory_budget_mb * MB),
      ...(settings.disk_budget_mb !== undefined ? { diskBudgetBytes: Math.floor(settings.disk_budget_mb * MB) } : {}),
      ...(settings.spill_dir !== undefined ? { spillDir: settings.spill_dir } : {}),
    });
    this.forward = new CachedPrefixForward(model, { cache: this.cache, checkContent: settings.check_content });
  }

  /**
   * Makes the adapter's trunk go through the cache: its hiddenOverride gives the rack's output, on
   * which the training step runs the fused head + loss (ModelAdapter.loss) and `forward` the head.
   */
  install(adapter: ModelAdapter): void {
    if (adapter.model !== this.forward.model) throw new Error("CachedTraining: the adapter's model is not the one the cache was made for");
    adapter.hiddenOverride = (a, ids, ctx) => {
      const time = a.timeInputs(ctx);
      if (!ctx.sampleIds) return a.model.forwardHidden(ids, { seed: ctx.seed, ...time });
      return this.forward.forwardHidden(ids, ctx.sampleIds, { seed: ctx.seed, ...time }).hidden;
    };
  }

  /**
   * What the cache holds now. Entries computed under a prefix that changed since are dropped first
   * (entries of a prefix that only grew stay, to be advanced): the next forward would drop them
   * anyway, and a phase start's resources record must not count activations never to be served.
   */
  info(): ActivationCacheState {
    const prefixStacks = this.forward.prefixStacks();
    if (this.cache.stats.entries > 0) this.cache.setLineage(this.forward.prefixLineage(prefixStacks));
    return { ...this.cache.stats, prefixStacks };
  }

  dispose(): void {
    this.cache.dispose();
  }
}
