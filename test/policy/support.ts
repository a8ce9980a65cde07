/**
 * Builds the argument objects @pulumi/policy 1.21 hands to policies (see its policy.d.ts and
 * server.js), and runs one policy, collecting the violations it reports.
 */
import { createRequire } from "node:module";
import type {
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";

const require = createRequire(import.meta.url);
/** The framework's own preview proxy: reading an unknown value throws, as under `pulumi preview`. */
const proxy = require("@pulumi/policy/proxy.js") as {
  unknownCheckingProxy<T extends object>(o: T): T;
  unknownStringValue: string;
  unknownNumberValue: string;
  unknownArrayValue: string;
};
export const UNKNOWN_STRING = proxy.unknownStringValue;
export const UNKNOWN_NUMBER = proxy.unknownNumberValue;
export const UNKNOWN_ARRAY = proxy.unknownArrayValue;

export type Props = Record<string, unknown>;

export function urnOf(stack: string, type: string, name: string): string {
  return `urn:pulumi:${stack}::berth::${type}::${name}`;
}

function options(o: Partial<PolicyResourceOptions> = {}): PolicyResourceOptions {
  return {
    protect: false,
    ignoreChanges: [],
    aliases: [],
    customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    additionalSecretOutputs: [],
    ...o,
  };
}

const typeOf = (cls: unknown) => (cls as { __pulumiType?: string }).__pulumiType;

function notApplicable(reason?: string): never {
  throw new Error(`not applicable: ${reason ?? ""}`);
}

export interface ResourceSpec {
  type: string;
  name: string;
  props: Props;
  stack?: string;
  opts?: Partial<PolicyResourceOptions>;
}

export function resourceArgs(spec: ResourceSpec): ResourceValidationArgs {
  const props = proxy.unknownCheckingProxy(structuredClone(spec.props));
  return {
    type: spec.type,
    props,
    urn: urnOf(spec.stack ?? "testing", spec.type, spec.name),
    name: spec.name,
    opts: options(spec.opts),
    stackTags: new Map(),
    isType: (cls) => typeOf(cls) === spec.type,
    asType: ((cls: unknown) =>
      typeOf(cls) === spec.type ? props : undefined) as ResourceValidationArgs["asType"],
    getConfig: <T extends object>() => ({}) as T,
    notApplicable,
  };
}

export interface Violation {
  message: string;
  urn?: string;
}

export async function validateResource(
  policy: ResourceValidationPolicy,
  spec: ResourceSpec,
): Promise<Violation[]> {
  const found: Violation[] = [];
  const validations = Array.isArray(policy.validateResource)
    ? policy.validateResource
    : policy.validateResource
      ? [policy.validateResource]
      : [];
  for (const v of validations)
    await v(resourceArgs(spec), (message, urn) => found.push({ message, ...(urn ? { urn } : {}) }));
  return found;
}

export interface StackResourceSpec extends ResourceSpec {
  /** Provider URN (the Docker host). */
  provider?: string;
  /** Property → names (within the same list) of the resources it depends on. */
  propertyDependencies?: Record<string, string[]>;
}

export function stackResources(specs: StackResourceSpec[]): PolicyResource[] {
  const byName = new Map<string, PolicyResource>();
  const out = specs.map((s): PolicyResource => {
    const props = proxy.unknownCheckingProxy(structuredClone(s.props));
    const r: PolicyResource = {
      type: s.type,
      props,
      urn: urnOf(s.stack ?? "testing", s.type, s.name),
      name: s.name,
      opts: options(s.opts),
      ...(s.provider
        ? {
            provider: {
              type: "pulumi:providers:docker",
              props: {},
              urn: s.provider,
              name: s.provider.split("::").pop()!,
            },
          }
        : {}),
      dependencies: [],
      propertyDependencies: {},
      isType: (cls) => typeOf(cls) === s.type,
      asType: () => undefined,
    };
    byName.set(s.name, r);
    return r;
  });
  specs.forEach((s, i) => {
    const r = out[i]!;
    for (const [prop, names] of Object.entries(s.propertyDependencies ?? {})) {
      const deps = names.map((n) => byName.get(n)!);
      r.propertyDependencies[prop] = deps;
      r.dependencies.push(...deps);
    }
  });
  return out;
}

export async function validateStack(
  policy: StackValidationPolicy,
  resources: PolicyResource[],
): Promise<Violation[]> {
  const found: Violation[] = [];
  const args: StackValidationArgs = {
    resources,
    stackTags: new Map(),
    getConfig: <T extends object>() => ({}) as T,
    notApplicable,
  };
  await policy.validateStack(args, (message, urn) => found.push({ message, ...(urn ? { urn } : {}) }));
  return found;
}
