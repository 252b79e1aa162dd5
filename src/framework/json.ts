// JSON value types shared by specs, configs and phase overrides. Specs and configs are plain data
// so they can be written to run folders and checkpoints and read back unchanged.

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
/** `undefined` members are allowed so TypeScript optional fields fit; JSON.stringify drops them. */
export interface JsonObject {
  [key: string]: JsonValue | undefined;
}

/** True for `{...}` literals and JSON-parsed objects; false for arrays, null, class instances. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
