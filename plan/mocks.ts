/**
 * Runs the Berth program in-process under Pulumi's runtime mocks and captures every resource it
 * registers: type, name, URN, parent, inputs (with secrets marked), provider and dependencies.
 * `berth render`, `berth plan` and the component tests use it, so they all run the real program.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import type { Json } from "../lib/json.ts";

/** Pulumi's wire marker for a secret value. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A value in captured inputs: plain JSON, or a secret wrapping its value. */
export interface SecretMark {
  secret: true;
  value: Json;
}

export interface CapturedResource {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  parent?: string;
  provider?: string;
  /** Inputs as the engine receives them; secrets appear as `{ secret: true, value }`. */
  inputs: Record<string, unknown>;
  /** URNs this resource depends on (explicit and through its inputs). */
  dependencies: string[];
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  /** URNs this resource was known by before (its `aliases`), for matching it with an older plan. */
  aliases: string[];
  id?: string;
  /** The output state the mock returned. */
  state: Record<string, unknown>;
}

export interface CapturedRun<T> {
  resources: CapturedResource[];
  result: T;
}

const hex = (s: string) => createHash("sha256").update(s).digest("hex");
/** A stable UUID-shaped ID from a resource's type and name. */
export function mockId(type: string, name: string): string {
  const h = hex(`${type}::${name}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function mockPem(kind: string, name: string): string {
  const body = Buffer.from(`berth mock ${kind} for ${name} ${hex(name).slice(0, 32)}`).toString("base64");
  return `-----BEGIN ${kind}-----\n${body}\n-----END ${kind}-----\n`;
}

/** Outputs the providers would compute, made deterministic from names. */
function providerOutputs(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
): Record<string, unknown> {
  switch (type) {
    case "openstack:networking/floatingIp:FloatingIp": {
      const n = Number(/-(\d+)-fip$/.exec(name)?.[1] ?? parseInt(hex(name).slice(0, 2), 16) % 200);
      return { address: `203.0.113.${10 + n}` };
    }
    case "tls:index/privateKey:PrivateKey":
      return {
        privateKeyPem: mockPem("PRIVATE KEY", name),
        publicKeyPem: mockPem("PUBLIC KEY", name),
        publicKeyOpenssh: `ssh-ed25519 ${Buffer.from(name).toString("base64")} mock`,
        privateKeyOpenssh: mockPem("OPENSSH PRIVATE KEY", name),
      };
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `sha256:${hex(String(inputs.name))}` };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: mockPem("CERTIFICATE", name) };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: mockPem("CERTIFICATE REQUEST", name) };
    case "random:index/randomPassword:RandomPassword":
    case "random:index/randomString:RandomString":
      return {
        result: `mock-${hex(name).slice(0, Number(inputs.length ?? 24))}`.slice(
          0,
          Number(inputs.length ?? 24) + 5,
        ),
      };
    case "openstack:compute/instance:Instance":
      return { accessIpV4: "" };
    default:
      return {};
  }
}

function unwrap(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG_KEY] === SECRET_SIG) return { secret: true, value: unwrap(o.value) };
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x)]));
  }
  return v;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProvider(): string;
  getObject(): { toJavaScript(): unknown } | undefined;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (v: { getUrnsList(): string[] }, k: string) => void): void };
  getProtect(): boolean;
  getRetainondelete?(): boolean;
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  getAliasesList?(): AliasProto[];
  getAliasurnsList?(): string[];
}

/** pulumirpc.Alias: an old URN, or a spec of what differed (name, type, parent) from the resource. */
interface AliasProto {
  getUrn(): string;
  getSpec():
    { getName(): string; getType(): string; getParenturn(): string; getNoparent(): boolean } | undefined;
}

type Monitor = {
  registerResource(req: RegisterRequest, cb: (err: unknown, res: unknown) => void): unknown;
  registerResourceOutputs(req: unknown, cb: (err: unknown, res: unknown) => void): unknown;
  newUrn?(parent: string, type: string, name: string): string;
};

/** Options of {@link runUnderMocks}. */
export interface MockOptions {
  project?: string;
  preview?: boolean;
  /**
   * Outputs to use instead of the mock's own for one resource (undefined: the mock's). Opt-in, for
   * end-to-end tests that need real material where the mock has placeholders, e.g. real SSH host
   * keys for `tls:index/privateKey:PrivateKey`, so outputs computed from them (agentKnownHosts) are real.
   */
  outputs?: (
    type: string,
    name: string,
    inputs: Record<string, unknown>,
  ) => Record<string, unknown> | undefined;
}

/**
 * Runs `program` under mocks for `stack` and returns every registered resource in registration
 * order, once all registrations have settled.
 */
export async function runUnderMocks<T>(
  stack: string,
  program: () => T,
  opts: MockOptions = {},
): Promise<CapturedRun<T>> {
  const project = opts.project ?? "berth";
  const states = new Map<string, { id: string; state: Record<string, unknown> }>();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const id = args.custom ? mockId(args.type, args.name) : "";
        const inputs = args.inputs as Record<string, unknown>;
        const state = {
          ...inputs,
          ...(opts.outputs?.(args.type, args.name, inputs) ??
            providerOutputs(args.type, args.name, args.inputs)),
        };
        states.set(`${args.type}::${args.name}`, { id, state });
        return { id: args.custom ? id : undefined, state };
      },
      call(args) {
        const inputs = args.inputs as Record<string, unknown>;
        if (args.token === "openstack:networking/getNetwork:getNetwork")
          return { ...inputs, id: mockId(args.token, String(inputs.name)) };
        if (args.token === "openstack:images/getImage:getImage")
          return { ...inputs, id: mockId(args.token, String(inputs.name)) };
        return inputs;
      },
    },
    project,
    stack,
    opts.preview ?? false,
  );
  const captured: CapturedResource[] = [];
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const type = req.getType();
    const name = req.getName();
    const parent = req.getParent() || undefined;
    const deps = new Set(req.getDependenciesList());
    req.getPropertydependenciesMap().forEach((v) => v.getUrnsList().forEach((u) => deps.add(u)));
    // The mock monitor's own URN (parent type + type + name), so parents, providers and
    // dependencies, which carry the same URNs, match.
    const urn = monitor.newUrn
      ? monitor.newUrn(parent ?? "", type, name)
      : `urn:pulumi:${stack}::${project}::${type}::${name}`;
    const urnOf = (p: string, t: string, n: string) =>
      monitor.newUrn ? monitor.newUrn(p, t, n) : `urn:pulumi:${stack}::${project}::${t}::${n}`;
    const aliases = [
      ...(req.getAliasurnsList?.() ?? []),
      ...(req.getAliasesList?.() ?? []).map((a) => {
        const spec = a.getSpec();
        if (a.getUrn() || !spec) return a.getUrn();
        const aliasParent = spec.getNoparent() ? "" : spec.getParenturn() || (parent ?? "");
        return urnOf(aliasParent, spec.getType() || type, spec.getName() || name);
      }),
    ].filter((u) => u !== "" && u !== urn);
    const entry: CapturedResource = {
      urn,
      type,
      name,
      custom: req.getCustom(),
      ...(parent ? { parent } : {}),
      ...(req.getProvider() ? { provider: req.getProvider() } : {}),
      inputs: (unwrap(req.getObject()?.toJavaScript() ?? {}) ?? {}) as Record<string, unknown>,
      dependencies: [...deps].sort(),
      protect: req.getProtect(),
      retainOnDelete: req.getRetainondelete?.() ?? false,
      deleteBeforeReplace: req.getDeletebeforereplace(),
      ignoreChanges: req.getIgnorechangesList(),
      aliases,
      state: {},
    };
    captured.push(entry);
    return original(req, (err, res) => {
      const s = states.get(`${type}::${name}`);
      if (s) {
        entry.id = s.id || undefined;
        entry.state = s.state;
      }
      cb(err, res);
    });
  };
  // Components register their outputs once those resolve; a run is over when every component has.
  let outputsRegistered = 0;
  const originalOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) =>
    originalOutputs(req, (err, res) => {
      outputsRegistered++;
      cb(err, res);
    });
  const restore = offlineRuntime();
  try {
    const result = program();
    await settle(captured, () => outputsRegistered >= captured.filter((c) => !c.custom).length);
    return { resources: captured, result };
  } finally {
    restore();
  }
}

const sdkRequire = createRequire(import.meta.url);

/** The SDK internals an offline run replaces (see {@link offlineRuntime}). */
interface SdkDebugHooks {
  debuggable: { debuggablePromise?: (p: Promise<unknown>, ctx: unknown) => Promise<unknown> };
  resource: { callsites?: () => unknown[] };
}

function sdkDebugHooks(): SdkDebugHooks {
  return {
    debuggable: sdkRequire("@pulumi/pulumi/runtime/debuggable.js") as SdkDebugHooks["debuggable"],
    resource: pulumi.Resource as unknown as SdkDebugHooks["resource"],
  };
}

/** Whether the SDK still has the debugging aids an offline run turns off (a test pins this). */
export function offlineHooksPresent(): { debuggablePromise: boolean; callsites: boolean } {
  const h = sdkDebugHooks();
  return {
    debuggablePromise: typeof h.debuggable.debuggablePromise === "function",
    callsites: typeof h.resource.callsites === "function",
  };
}

/**
 * Turns off, for one offline run, the SDK's debugging aids that nobody reads offline and that
 * dominated the cost of evaluating a large stack (docs/performance.md):
 * - stack traces: the SDK records one for every internal promise and every resource; formatted
 *   through tsx's source maps they were most of a run. Kept short and unmapped.
 * - `debuggablePromise`: every output property of every resource gets four promises, each wrapped
 *   with a debug id, a context string (containing the input's value), a stack trace, an entry in a
 *   leak-detection set and two more promises; that is 290 000 wrappers for 50 hosts. Offline the
 *   wrapper is the identity (the leak report it feeds is printed at process exit of `pulumi up`).
 * - `Resource.callsites`: captures an unlimited stack per resource to send its source position to
 *   the engine; the mock monitor ignores it.
 * Returns the function that puts everything back.
 */
function offlineRuntime(): () => void {
  const { stackTraceLimit } = Error;
  const sourceMaps = process.sourceMapsEnabled;
  const hooks = sdkDebugHooks();
  const { debuggablePromise } = hooks.debuggable;
  const { callsites } = hooks.resource;
  Error.stackTraceLimit = 0;
  process.setSourceMapsEnabled(false);
  if (debuggablePromise) hooks.debuggable.debuggablePromise = (p) => p;
  if (callsites) hooks.resource.callsites = () => [];
  return () => {
    Error.stackTraceLimit = stackTraceLimit;
    process.setSourceMapsEnabled(sourceMaps);
    if (debuggablePromise) hooks.debuggable.debuggablePromise = debuggablePromise;
    if (callsites) hooks.resource.callsites = callsites;
  };
}

/** Waits until the program's registrations and outputs have all resolved. */
async function settle(captured: CapturedResource[], componentsDone: () => boolean): Promise<void> {
  const waitForRPCs = (pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> }).waitForRPCs;
  let last = -1;
  for (let i = 0; i < 2000; i++) {
    if (waitForRPCs) await waitForRPCs();
    await new Promise((r) => setImmediate(r));
    if (captured.length === last && componentsDone()) {
      await new Promise((r) => setTimeout(r, 2));
      if (captured.length === last && componentsDone()) return;
    }
    last = captured.length;
  }
  throw new Error(`the program's registrations did not settle (${captured.length} resources registered)`);
}

/** Resolves an Output (or plain value) to its value and whether it is secret, under mocks. */
export async function resolveOutput<T>(o: pulumi.Input<T>): Promise<{ value: T; secret: boolean }> {
  const out = pulumi.output(o);
  const value = await new Promise<T>((resolve) => out.apply((v) => resolve(v as T)));
  const secret = await (out as unknown as { isSecret: Promise<boolean> }).isSecret;
  return { value, secret };
}
