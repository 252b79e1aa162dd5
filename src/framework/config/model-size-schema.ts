// The zod entries of the model's size fields (model.d_model, model.n_heads, …), made from the one
// table of them (nn/size-fields.ts): each field's type, whether it is required, and its
// description for the config reference.

import { z } from 'zod';
import { MODEL_SIZE_FIELDS, type ModelSizeField } from '../../nn/index.js';

type Field = (typeof MODEL_SIZE_FIELDS)[number];
type Base<F extends Field> = F['type'] extends 'boolean' ? z.ZodBoolean : z.ZodNumber;
type Entry<F extends Field> = F['required'] extends true ? Base<F> : z.ZodOptional<Base<F>>;
/** The typed zod shape of the size fields, by config name. */
export type ModelSizeShape = { [F in Field as F['name']]: Entry<F> };

function baseSchema(f: ModelSizeField): z.ZodNumber | z.ZodBoolean {
  switch (f.type) {
    case 'positive_int':
      return z.number().int().min(1);
    case 'positive_number':
      return z.number().positive();
    case 'boolean':
      return z.boolean();
  }
}

/** The size fields' entries of the model schema, in the table's order. */
export function modelSizeShape(): ModelSizeShape {
  const fields: readonly ModelSizeField[] = MODEL_SIZE_FIELDS;
  return Object.fromEntries(fields.map((f) => [f.name, (f.required ? baseSchema(f) : baseSchema(f).optional()).describe(f.doc)])) as unknown as ModelSizeShape;
}
