// The one definition of "final train loss" used by the report's summary, loss chart and phase table.

/** Steps averaged: single-step losses are noisy, so the final figure is a mean over the last ones. */
export const FINAL_LOSS_WINDOW = 20;

/** Mean of the last FINAL_LOSS_WINDOW finite losses (fewer when fewer were logged); undefined when none. */
export function finalTrainLoss(losses: readonly (number | null | undefined)[]): number | undefined {
  const finiteLosses = losses.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (finiteLosses.length === 0) return undefined;
  const tail = finiteLosses.slice(-FINAL_LOSS_WINDOW);
  return tail.reduce((a, b) => a + b, 0) / tail.length;
}

/** How the figure is labelled wherever it appears. */
export const FINAL_LOSS_LABEL = `final train loss (mean of the last ${FINAL_LOSS_WINDOW} steps)`;
