/**
 * JSON values as the Docker Engine API and Pulumi's mocks hand them over, and a path reader for
 * them. Generic: nothing here knows Berth.
 */

/** A JSON value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Reads a field path of a JSON value (array elements by index); undefined when any step is absent. */
export function at(value: Json | undefined, ...path: (string | number)[]): Json | undefined {
  let cur: Json | undefined = value;
  for (const key of path) {
    if (cur === null || cur === undefined || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, Json>)[key as string];
  }
  return cur;
}
