/**
 * Readers for raw (not yet validated) configuration values: the cross-field checks run on what the
 * stack file holds, which may also have schema errors, so they read defensively.
 */

/** A parsed YAML/JSON object. */
export type Obj = Record<string, unknown>;

/** True for a plain object (not null, not an array). */
export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** `o[k1][k2]…`, or undefined as soon as a level is not an object. */
export const get = (o: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>((acc, k) => (isObj(acc) ? acc[k] : undefined), o);

/** The value when it is an integer. */
export const int = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isInteger(v) ? v : undefined;

/** The value when it is a finite number. */
export const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;
