/**
 * The TypeScript types of a stack's `berth:*` values, derived from the JSON Schema
 * (config/schema.ts) by json-schema-to-ts, so that the schema ajv validates with and the types the
 * program reads cannot disagree. A key added to the schema appears here by itself.
 *
 * - {@link BerthInput}: what a stack file may hold; keys with a schema `default` are optional.
 * - {@link BerthValidated}: what `validateRaw` returns: the same values after ajv applied the
 *   schema's defaults (`useDefaults`), so keys with a `default` are present.
 *
 * The resolved configuration the program uses (config/types.ts) is built from these in
 * config/load.ts, with what the schema cannot say: derived names and addresses, secrets, limits.
 */
import type { FromSchema } from "json-schema-to-ts";
import type { berthSchema } from "./schema.ts";

/** The `berth:*` values as a stack file gives them (keys without the `berth:` namespace). */
export type BerthInput = FromSchema<typeof berthSchema, { keepDefaultedPropertiesOptional: true }>;

/** The `berth:*` values once validated, with the schema's defaults applied. */
export type BerthValidated = FromSchema<typeof berthSchema>;
