/**
 * Reading what a program registered under Pulumi's mocks (plan/mocks.ts): URN keys, secret-wrapped
 * values, and the shapes of a container's inputs. Shared by the component tests.
 */
/**
 * `type::name` of a URN. The harness's own `urn` field and the URNs the SDK reports (parents,
 * dependencies, providers) spell the parent-type chain differently, so resources are matched by
 * their last type and name (unique in this program).
 */
export function keyOf(urn: string): string {
  const parts = urn.split("::");
  const types = parts[2] ?? "";
  return `${types.split("$").pop()}::${parts.slice(3).join("::")}`;
}

export interface Upload {
  file: string;
  content?: unknown;
  permissions?: string;
}
export interface VolumeMount {
  volumeName?: string;
  hostPath?: string;
  containerPath: string;
}

export const isSecret = (v: unknown): v is { secret: true; value: unknown } =>
  typeof v === "object" && v !== null && (v as { secret?: unknown }).secret === true && "value" in v;
/** The value, secret or not. */
export const reveal = (v: unknown): unknown => (isSecret(v) ? reveal(v.value) : v);
export const list = <T>(v: unknown): T[] => (reveal(v) as T[] | undefined) ?? [];

/** Every string in `v` outside secret-wrapped subtrees. */
export function publicStrings(v: unknown, out: string[] = []): string[] {
  if (isSecret(v)) return out;
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => publicStrings(x, out));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => publicStrings(x, out));
  return out;
}
