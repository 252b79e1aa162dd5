/**
 * Memory and compute of a training phase: trainable / frozen / adapter parameters; bytes of
 * weights, gradients, optimizer state and cached activations; FLOPs per token of the forward
 * pass, the backward pass and a training step, with and without an activation cache serving the
 * frozen prefix. FLOPs count multiply-adds as 2: a Linear costs 2·in·out per token forward;
 * attention scores and values 4·S_eff·(heads·head_dim) (S_eff = (S+1)/2 when causal).
 * Backward = weight gradients (2·trainable matrix size) plus input gradients of every module the
 * gradient must pass through to reach a trainable parameter: a module's input gradient is needed
 * when a trainable parameter lies upstream of it in the data flow, counted within a block too
 * (norm → q/k/v → attention core → o → norm → gate/up → down), so the first trainable block of a
 * frozen trunk still pays for the gradient through its own layers. A matrix's input gradient
 * costs its forward; the attention core's costs twice its forward (gradients of Q, K and V).
 */
import { INT8_STATE_BLOCK, type Tensor } from '../../engine/index.js';
import { int8StateEligible } from '../../optim/index.js';
import { isLoraParamName as isLoraName, LinearAttention, type Block, type Model, type Module, type Stack } from '../../nn/index.js';
import { isLinearLike, representedSize } from './linear-like.js';
import { parameterEntries } from './operators.js';
import { RampedStack } from './ramp.js';
import { newStackTest, PARAMETER_ROLES, type ParameterRole } from './roles.js';

export type OptimizerKind = 'adamw' | 'sgd' | 'sgd-momentum' | { stateSlots: number };

export interface ResourceReportOptions {
  /** Sequence length (attention cost); default 128. */
  seqLen?: number;
  /** Optimizer whose state is counted (default adamw: 2 slots per trainable element). */
  optimizer?: OptimizerKind;
  /** AdamW's state format: 'int8' counts 8-bit codes and a float32 absmax per 256 for the tensors whose moments go 8-bit (optim int8StateEligible). */
  stateFormat?: 'fp32' | 'int8';
  /** Leading stacks served by an activation cache (with the embedding); default 0. */
  cachedPrefixStacks?: number;
  /** Bytes held by the activation cache (memory + disk), when there is one. */
  cachedActivationBytes?: { memory: number; disk: number };
}

export interface StackReport {
  index: number;
  role: 'new' | 'trunk';
  blocks: number;
  params: number;
  trainable: number;
  adapterParams: number;
  frozen: boolean;
  ramp?: { t0: number; t1: number; gate: number };
  lora?: string[];
  /** The stack's attention when not standard softmax: 'mla', 'linear:elu1', 'linear:favor'. */
  attention?: string;
}

export interface ResourceReport {
  stacks: number;
  blocks: number;
  params: {
    total: number;
    trainable: number;
    frozen: number;
    adapters: number;
    adaptersTrainable: number;
    byRole: Record<ParameterRole, { total: number; trainable: number }>;
  };
  bytes: {
    weights: number;
    grads: number;
    optimizerState: number;
    cachedActivations: { memory: number; disk: number };
    /** weights + grads + optimizer state + cached activations in memory. */
    total: number;
  };
  flopsPerToken: {
    forward: number;
    backward: number;
    train: number;
    /** With the first `cachedPrefixStacks` stacks (and the embedding) served from the cache. */
    forwardCached: number;
    trainCached: number;
  };
  perStack: StackReport[];
}

function stateSlots(o: OptimizerKind): number {
  if (typeof o === 'object') return o.stateSlots;
  return o === 'adamw' ? 2 : o === 'sgd-momentum' ? 1 : 0;
}


/**
 * One stage of the data flow: forward and weight-gradient FLOPs per token, the FLOPs of its input
 * gradient (paid when something upstream trains) and whether it holds a trainable parameter.
 */
interface ModuleCost { fwd: number; wgrad: number; inputGrad: number; trainable: boolean }

/**
 * Forward and weight-gradient FLOPs per token of the matrices in `modules`: every projection (fp32
 * or quantized) costs 2·in·out (+ 2·r·(in+out) for an adapter); other rank-2 parameters (a head's
 * decoder) 2·size. Weight gradients count only trainable matrices; the input gradient of a matrix
 * costs its forward.
 */
function matrixCost(...modules: Module[]): ModuleCost {
  let fwd = 0, wgrad = 0, trainable = false;
  for (const m of modules) {
    const covered = new Set<Tensor>();
    for (const [, mod] of m.namedModules()) {
      if (!isLinearLike(mod)) continue;
      const base = 2 * mod.inFeatures * mod.outFeatures;
      fwd += base;
      for (const [n, t] of mod.ownParameters()) {
        covered.add(t);
        if (n === 'lora_A' || n === 'lora_B') {
          fwd += 2 * t.size;
          if (t.requiresGrad) wgrad += 2 * t.size;
        } else if (n === 'weight' && t.requiresGrad) wgrad += base;
      }
    }
    for (const [, t] of parameterEntries(m)) {
      if (t.requiresGrad) trainable = true;
      if (covered.has(t) || t.rank !== 2) continue;
      fwd += 2 * t.size;
      if (t.requiresGrad) wgrad += 2 * t.size;
    }
  }
  return { fwd, wgrad, inputGrad: fwd, trainable };
}

/** The stages of a block in data-flow order (pre-norm or post-norm). */
function blockStages(b: Block, S: number): ModuleCost[] {
  const coreFwd = b.attn.coreFlopsPerToken(S);
  const children = b.attn.namedChildren();
  const attnIn = matrixCost(...children.filter(([n]) => n !== 'o').map(([, m]) => m));
  const out = matrixCost(...children.filter(([n]) => n === 'o').map(([, m]) => m));
  const core: ModuleCost = { fwd: coreFwd, wgrad: 0, inputGrad: 2 * coreFwd, trainable: false };
  const ffn = b.ffn;
  const ffnIn = matrixCost(...(ffn.gate ? [ffn.gate, ffn.up] : [ffn.up]));
  const down = matrixCost(ffn.down);
  const attnNorm = matrixCost(b.attnNorm), ffnNorm = matrixCost(b.ffnNorm);
  return b.config.normPosition === 'pre'
    ? [attnNorm, attnIn, core, out, ffnNorm, ffnIn, down]
    : [attnIn, core, out, attnNorm, ffnIn, down, ffnNorm];
}

function blockCosts(stack: Stack, S: number): ModuleCost[][] {
  const skip = stack instanceof RampedStack && stack.gate === 0;
  return stack.blocks.toArray().map((b) => {
    const stages = blockStages(b, S);
    // A closed ramp gate (0) skips the stack: no compute, but its parameters still count as trainable.
    return skip ? stages.map((c) => ({ fwd: 0, wgrad: 0, inputGrad: 0, trainable: c.trainable })) : stages;
  });
}

export function resourceReport(model: Model, roles: Map<Tensor, ParameterRole>, newStacks: Stack | ReadonlySet<Stack> | null, opts: ResourceReportOptions = {}): ResourceReport {
  const isNew = newStackTest(newStacks);
  const S = opts.seqLen ?? 128;
  const entries = parameterEntries(model);
  const byRole = Object.fromEntries(PARAMETER_ROLES.map((r) => [r, { total: 0, trainable: 0 }])) as ResourceReport['params']['byRole'];
  let total = 0, trainable = 0, adapters = 0, adaptersTrainable = 0, weights = 0, grads = 0, stateBytes = 0;
  for (const [name, t] of entries) {
    const n = representedSize(t);
    total += n;
    weights += t.bytes;
    const role = roles.get(t);
    if (role) { byRole[role].total += n; if (t.requiresGrad) byRole[role].trainable += n; }
    if (t.requiresGrad) {
      trainable += n; grads += t.bytes;
      stateBytes += opts.stateFormat === 'int8' && int8StateEligible(t.size, name) ? 4 * Math.ceil(t.size / 4) + 4 * Math.ceil(t.size / INT8_STATE_BLOCK) : t.bytes;
    }
    if (isLoraName(name)) { adapters += n; if (t.requiresGrad) adaptersTrainable += n; }
  }
  const optimizerState = stateSlots(opts.optimizer ?? 'adamw') * stateBytes;
  const cached = opts.cachedActivationBytes ?? { memory: 0, disk: 0 };

  // FLOPs: modules in data-flow order.
  const stacks = model.rack.stacks.toArray();
  const inputs = [model.embedding, ...(model.timeEmbedding ? [model.timeEmbedding] : [])];
  // The lookup costs nothing per token; a trainable embedding (or time embedding) needs the gradient of everything after it.
  const emb: ModuleCost = { fwd: 0, wgrad: 0, inputGrad: 0, trainable: inputs.some((m) => m.parameters().some((t) => t.requiresGrad)) };
  const perStackBlocks = stacks.map((s) => blockCosts(s, S).flat());
  const head = model.head;
  const finalNorm = head.finalNorm ? matrixCost(head.finalNorm) : null;
  const normParams = new Set(head.finalNorm ? head.finalNorm.parameters() : []);
  const headCost: ModuleCost = { ...matrixCost(head), trainable: parameterEntries(head).some(([, t]) => t.requiresGrad && !normParams.has(t)) };
  const order: ModuleCost[] = [emb, ...perStackBlocks.flat(), ...(finalNorm ? [finalNorm] : []), headCost];
  let upstream = false, backward = 0;
  for (const m of order) {
    backward += m.wgrad + (upstream ? m.inputGrad : 0);
    upstream ||= m.trainable;
  }
  const forward = order.reduce((a, m) => a + m.fwd, 0);
  const k = Math.min(opts.cachedPrefixStacks ?? 0, stacks.length);
  const prefixFwd = perStackBlocks.slice(0, k).flat().reduce((a, m) => a + m.fwd, 0);

  const perStack: StackReport[] = stacks.map((s, i) => {
    const es = parameterEntries(s);
    const r: StackReport = {
      index: i,
      role: isNew(s) ? 'new' : 'trunk',
      blocks: s.length,
      params: es.reduce((a, [, t]) => a + representedSize(t), 0),
      trainable: es.reduce((a, [, t]) => a + (t.requiresGrad ? t.size : 0), 0),
      adapterParams: es.reduce((a, [n, t]) => a + (isLoraName(n) ? t.size : 0), 0),
      frozen: es.every(([, t]) => !t.requiresGrad),
    };
    if (s instanceof RampedStack) r.ramp = { t0: s.t0, t1: s.t1, gate: s.gate };
    const lora = [...new Set(s.namedModules().filter(([, m]) => isLinearLike(m) && m.lora).map(([p]) => p.split('.').pop()!))];
    if (lora.length) r.lora = lora;
    const attn = s.blocks.length > 0 ? s.blocks.at(0).attn : null;
    if (attn && attn.kind !== 'standard') r.attention = attn instanceof LinearAttention ? `linear:${attn.featureMap}` : attn.kind;
    return r;
  });

  return {
    stacks: stacks.length,
    blocks: model.rack.numBlocks,
    params: { total, trainable, frozen: total - trainable, adapters, adaptersTrainable, byRole },
    bytes: { weights, grads, optimizerState, cachedActivations: cached, total: weights + grads + optimizerState + cached.memory },
    flopsPerToken: {
      forward,
      backward,
      train: forward + backward,
      forwardCached: forward - prefixFwd,
      trainCached: forward - prefixFwd + backward,
    },
    perStack,
  };
}
