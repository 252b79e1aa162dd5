// Validation loss of a model on a data adapter's held-out batches, written with the public
// engine API (no gradients, eval mode, full logits) — what `stackwise eval` computes.
import * as E from 'stackwise/engine';
import type { BatchSource, ModelAdapter } from 'stackwise/framework';

export function validationLoss(model: ModelAdapter, data: BatchSource): number {
  const backend = model.model.backend;
  const wasTraining = model.model.training;
  model.model.eval();
  let sum = 0;
  let scored = 0;
  try {
    for (const batch of data.evalBatches?.(0, 1) ?? []) {
      const loss = E.noGrad(() =>
        E.tidy(() => {
          const ids = E.tensor(batch.inputIds, [batch.batch, batch.seqLen], { dtype: 'int32', backend });
          const targets = E.tensor(batch.targets, [batch.batch, batch.seqLen], { dtype: 'int32', backend });
          return E.crossEntropy(model.forward(ids, { seed: 0, step: 0 }), targets).item();
        }),
      );
      sum += loss * batch.scored;
      scored += batch.scored;
    }
  } finally {
    if (wasTraining) model.model.train();
  }
  if (scored === 0) throw new Error('validationLoss: the data has no validation batches');
  return sum / scored;
}
