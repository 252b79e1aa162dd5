/**
 * What `stackwise forward <hf-folder> --inputs <case.safetensors> --out <result.safetensors>`
 * computes: load the folder through our import (PEFT adapter applied when present, base frozen),
 * read input_ids (and attention_mask, token_type_ids, labels, position_ids when present), and return, under
 * the names the golden fixtures use: logits, hidden_states.{i}, loss and grad.{hf_name} for every
 * trainable parameter (adapter tensors by their adapter_model.safetensors keys), plus
 * merged_logits when an adapter is applied.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { mergeLora, unmergeLora, type Model } from '../../nn/index.js';
import { readSafetensors, toInt32, writeSafetensors, type SafeTensor } from '../safetensors.js';
import { loadHF, hfTensorsOf, type LoadHFOptions, type LoadedHF } from './model-io.js';
import { peftTensorsOf } from './peft.js';
import { HFFormatError, hostOfTensor, safeOfHost } from './weights.js';
import type { HostTensor } from './mapping.js';

export interface CaseInputs {
  inputIds: Tensor;
  attentionMask?: Tensor;
  tokenTypeIds?: Tensor;
  labels?: Tensor;
  positionIds?: Tensor;
}

/** Reads the integer inputs of a case file (I64/I32 accepted) as int32 tensors. */
export function readCaseInputs(path: string, backend?: E.Backend | string): CaseInputs {
  const file = readSafetensors(path);
  const get = (name: string, required: boolean, ranks: number[] = [2]): Tensor | undefined => {
    const t = file.tensors.get(name);
    if (!t) {
      if (required) throw new HFFormatError(`${path}: no '${name}' tensor`);
      return undefined;
    }
    if (!['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'].includes(t.dtype)) throw new HFFormatError(`${path}: '${name}' must be an integer tensor, found ${t.dtype}`);
    if (!ranks.includes(t.shape.length)) throw new HFFormatError(`${path}: '${name}' must be [B, S]${ranks.includes(1) ? ' (or [B] for sequence classes)' : ''}, found [${t.shape.join(', ')}]`);
    return E.keep(E.tensor(toInt32(t), t.shape, { dtype: 'int32', backend }));
  };
  const inputIds = get('input_ids', true)!;
  const out: CaseInputs = { inputIds };
  const am = get('attention_mask', false); if (am) out.attentionMask = am;
  const tt = get('token_type_ids', false); if (tt) out.tokenTypeIds = tt;
  const lb = get('labels', false, [1, 2]); if (lb) out.labels = lb;
  const pi = get('position_ids', false); if (pi) out.positionIds = pi;
  return out;
}

export interface ForwardCaseResult {
  /** Result tensors by fixture name (host float32 data). */
  tensors: Map<string, HostTensor>;
  loaded: LoadedHF;
}

/**
 * Runs a model on case inputs: forward with hidden states, loss (when labels are given, with the
 * causal shift for LM heads) and backward; gradients by HF name.
 */
export function runCase(model: Model, inputs: CaseInputs, opts: { adapter?: boolean } = {}): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  model.zeroGrad();
  E.tidy(() => {
    const { logits, hiddenStates } = model.forward(inputs.inputIds, {
      attentionMask: inputs.attentionMask ?? null,
      tokenTypeIds: inputs.tokenTypeIds ?? null,
      positions: inputs.positionIds ?? null,
      outputHiddenStates: true,
    });
    out.set('logits', hostOfTensor(logits));
    hiddenStates!.forEach((h, i) => out.set(`hidden_states.${i}`, hostOfTensor(h)));
    if (inputs.labels) {
      const loss = model.loss(logits, inputs.labels);
      out.set('loss', hostOfTensor(loss));
      loss.backward();
    }
  });
  if (inputs.labels) {
    const grads = opts.adapter
      ? peftTensorsOf(model, (t) => t.grad).tensors
      : hfTensorsOf(model, (t) => (t.requiresGrad ? t.grad : null));
    for (const [k, g] of grads) out.set(`grad.${k}`, g);
  }
  if (opts.adapter) {
    mergeLora(model);
    try {
      E.tidy(() => {
        const { logits } = E.noGrad(() => model.forward(inputs.inputIds, { attentionMask: inputs.attentionMask ?? null, tokenTypeIds: inputs.tokenTypeIds ?? null, positions: inputs.positionIds ?? null }));
        out.set('merged_logits', hostOfTensor(logits));
      });
    } finally {
      unmergeLora(model);
    }
  }
  model.zeroGrad();
  return out;
}

/** Loads `folder`, runs the inputs in `inputsPath`, and returns the named result tensors. */
export function forwardCase(folder: string, inputsPath: string, opts: LoadHFOptions = {}): ForwardCaseResult {
  const loaded = loadHF(folder, opts);
  loaded.model.eval();
  const inputs = readCaseInputs(inputsPath, loaded.model.backend);
  try {
    const tensors = runCase(loaded.model, inputs, { adapter: loaded.adapter !== undefined });
    return { tensors, loaded };
  } finally {
    for (const t of Object.values(inputs)) (t as Tensor).dispose();
  }
}

/** forwardCase, written to a safetensors file (F32). */
export function writeForwardCase(folder: string, inputsPath: string, outPath: string, opts: LoadHFOptions = {}): ForwardCaseResult {
  const result = forwardCase(folder, inputsPath, opts);
  const safe = new Map<string, SafeTensor>();
  for (const [k, h] of result.tensors) safe.set(k, safeOfHost(h));
  writeSafetensors(outPath, safe, { generator: 'stackwise forward' });
  return result;
}
