// Small helpers for reading tokenizer files (ours and Hugging Face's) with messages that quote
// what was found.

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A found value for an error message: "missing", or its JSON cut to 60 characters. */
export function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
