/**
 * Deterministic JSON: object keys sorted (by UTF-16 code units, like `Array.prototype.sort`),
 * `undefined` object members dropped, arrays kept in order. The same value always gives the same
 * bytes, which keeps a host's `userData` (and so the server) stable across runs.
 */
import type { IgnitionConfig } from "./model.ts";
import { internalError } from "../renderers/common.ts";

/** A JSON value as the serialiser accepts it (objects may carry `undefined` members, which are dropped). */
export type JsonInput =
  string | number | boolean | null | readonly JsonInput[] | { readonly [key: string]: JsonInput | undefined };

function canonicalise(value: JsonInput | undefined, where: string): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") {
    return value;
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) {
      throw internalError(`stableStringify: cannot serialise non-finite number at ${where}`);
    }
    return value;
  }
  if (value === undefined) {
    throw internalError(`stableStringify: cannot serialise undefined at ${where}`);
  }
  if (Array.isArray(value)) {
    return value.map((item: JsonInput, i) => canonicalise(item, `${where}[${i}]`));
  }
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      throw internalError(`stableStringify: cannot serialise a non-plain object at ${where}`);
    }
    const out: Record<string, unknown> = {};
    const record = value as { readonly [key: string]: JsonInput | undefined };
    for (const key of Object.keys(record).sort()) {
      const member = record[key];
      if (member !== undefined) {
        out[key] = canonicalise(member, `${where}.${key}`);
      }
    }
    return out;
  }
  throw internalError(`stableStringify: cannot serialise a ${typeof value} at ${where}`);
}

/**
 * Serialises `value` canonically. `indent` (spaces) is for humans and snapshots; user data uses the
 * compact default.
 */
export function stableStringify(value: JsonInput, indent?: number): string {
  return JSON.stringify(canonicalise(value, "$"), null, indent);
}

/** Serialises an Ignition config canonically (compact unless `indent` is given). */
export function serializeIgnition(config: IgnitionConfig, indent?: number): string {
  return stableStringify(config as unknown as JsonInput, indent);
}
