/**
 * Benchmark: cost of evaluating the real Berth program under mocks (what `berth plan` does) as the
 * fleet grows, side by side with three baselines run with the same SDK and mocks: as many plain
 * resources; as many plain resources carrying as many output properties; and Berth's own resources
 * re-created from their captured inputs without the program. Also the longest dependency chain of
 * the resource graph (what bounds `pulumi up` wall time, since Pulumi runs independent resources in
 * parallel).
 *
 *   npx tsx bench/program.ts [sizes...]      default: 1 10 50 100
 *
 * Each measurement runs in a fresh child process (so peak RSS is that run's own).
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as openstack from "@pulumi/openstack";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { loadStack } from "../config/load.ts";
import { PROJECT_ROOT } from "../config/root.ts";
import type { BerthConfig } from "../config/types.ts";
import { berthProgram } from "../program.ts";
import { runUnderMocks, type CapturedResource } from "../plan/mocks.ts";

const self = fileURLToPath(import.meta.url);

/** staging's configuration scaled to `hosts` hosts. */
export function scaledConfig(hosts: number): BerthConfig {
  const base = loadStack(PROJECT_ROOT, "staging");
  const c = structuredClone(base);
  c.hosts.count = hosts;
  c.hosts.names = Array.from({ length: hosts }, (_, i) => `${c.stack}-ci-${i + 1}`);
  c.hosts.addresses = Array.from(
    { length: hosts },
    (_, i) => `10.42.${20 + Math.floor((11 + i) / 256)}.${(11 + i) % 256}`,
  );
  c.openstack.networkCidr = "10.42.0.0/16";
  c.registry.host = c.hosts.names[0] as string;
  c.registry.address = c.hosts.addresses[0] as string;
  // Per-build agents (staging has them) on every host of the scaled fleet.
  c.jenkins.perBuild.hosts = [...c.hosts.names];
  return c;
}

function revive(v: unknown): unknown {
  if (v && typeof v === "object" && (v as { secret?: unknown }).secret === true && "value" in v)
    return pulumi.secret(revive((v as { value: unknown }).value));
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
  return v;
}

type ResourceClass = new (
  name: string,
  args: Record<string, unknown>,
  opts?: pulumi.CustomResourceOptions,
) => pulumi.CustomResource;

const packages: Record<string, unknown> = { command, docker, openstack, random, tls };

/**
 * The SDK class of a type token: `docker:index/container:Container` is `docker.Container`,
 * `openstack:compute/instance:Instance` is `openstack.compute.Instance`, `command:local:Command` is
 * `command.local.Command`, `pulumi:providers:docker` is `docker.Provider`.
 */
export function sdkClass(type: string): ResourceClass {
  const [pkg = "", mod = "", name = ""] = type.split(":");
  const lookup = (path: string[]): unknown =>
    path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], packages);
  const cls =
    pkg === "pulumi" && mod === "providers"
      ? lookup([name, "Provider"])
      : lookup(mod.split("/")[0] === "index" ? [pkg, name] : [pkg, mod.split("/")[0] ?? "", name]);
  if (typeof cls !== "function") throw new Error(`no SDK class for ${type}`);
  return cls as ResourceClass;
}

class Thing extends pulumi.CustomResource {
  constructor(
    name: string,
    props: Record<string, pulumi.Input<string>>,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("bench:index:Thing", name, props, opts);
  }
}

/** Longest path (in resources) through the dependency graph; with the chain itself. */
export function longestChain(resources: CapturedResource[]): { length: number; chain: string[] } {
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const memo = new Map<string, string[]>();
  const visit = (urn: string): string[] => {
    const known = memo.get(urn);
    if (known) return known;
    memo.set(urn, [urn]); // cycle guard
    const r = byUrn.get(urn);
    let best: string[] = [];
    // A resource waits for its dependencies and for its provider (e.g. a container for the host's Docker provider).
    const provider = r?.provider ? r.provider.slice(0, r.provider.lastIndexOf("::")) : undefined;
    for (const d of [...(r?.dependencies ?? []), ...(provider ? [provider] : [])]) {
      if (!byUrn.has(d)) continue;
      const c = visit(d);
      if (c.length > best.length) best = c;
    }
    const chain = [...best, urn];
    memo.set(urn, chain);
    return chain;
  };
  let longest: string[] = [];
  for (const r of resources) {
    const c = visit(r.urn);
    if (c.length > longest.length) longest = c;
  }
  return { length: longest.length, chain: longest.map((u) => u.split("::").pop() ?? u) };
}

/** Host names that a resource of another host depends on (a chain that serialises hosts). */
export function crossHostDependencies(resources: CapturedResource[], hosts: string[]): string[] {
  const hostOf = (name: string) => hosts.find((h) => name === h || name.startsWith(`${h}-`));
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const found = new Set<string>();
  for (const r of resources) {
    const h = hostOf(r.name);
    if (!h) continue;
    for (const d of r.dependencies) {
      const dn = byUrn.get(d)?.name;
      const dh = dn ? hostOf(dn) : undefined;
      if (dh && dh !== h) found.add(`${r.name} -> ${dn}`);
    }
  }
  return [...found].sort();
}

/** Counts the output properties the SDK creates (each is an Output with four promises). */
function countOutputProperties(): () => number {
  const rpc = createRequire(import.meta.url)("@pulumi/pulumi/runtime/rpc.js") as {
    transferProperties: (onto: unknown, label: string, props: Record<string, unknown>) => unknown;
  };
  const original = rpc.transferProperties;
  let count = 0;
  rpc.transferProperties = (onto, label, props) => {
    count += Object.keys(props).filter((k) => k !== "id" && k !== "urn").length;
    return original(onto, label, props);
  };
  return () => count;
}

async function child(kind: string, hosts: number): Promise<void> {
  // The same-resources baseline needs the berth run's inputs: capture them before the clock starts.
  const replay =
    kind === "same"
      ? (await runUnderMocks("staging", () => berthProgram(scaledConfig(hosts)))).resources.filter(
          (r) => r.custom,
        )
      : [];
  // Configuration loading (schema compilation, git revision lookup) happens once per process, before the clock.
  const config = scaledConfig(hosts);
  // Warm-up, the same for every kind: the SDK packages load their resource modules lazily on first
  // use and the JIT warms up; that one-off cost is not evaluation.
  const one = scaledConfig(1);
  await runUnderMocks(one.stack, () => berthProgram(one));
  const properties = countOutputProperties();
  const t0 = process.hrtime.bigint();
  let resources: CapturedResource[];
  if (kind === "same") {
    // The same SDK classes (with every output they declare) and the same inputs, without program
    // logic, components or dependencies.
    const classes = replay.map((r) => sdkClass(r.type));
    resources = (
      await runUnderMocks("same", () => {
        replay.forEach((r, i) => {
          const Class = classes[i] as ResourceClass;
          new Class(`${r.name}-${i}`, revive(r.inputs) as Record<string, unknown>);
        });
      })
    ).resources;
  } else if (kind === "berth") {
    resources = (await runUnderMocks(config.stack, () => berthProgram(config))).resources;
  } else if (kind === "wide") {
    // Plain resources again, as many as Berth's, with as many output properties in total as Berth's.
    const count = Number(process.env.BENCH_COUNT);
    const total = Number(process.env.BENCH_PROPERTIES);
    resources = (
      await runUnderMocks("wide", () => {
        for (let i = 0; i < count; i++) {
          const n = Math.floor((total * (i + 1)) / count) - Math.floor((total * i) / count);
          const props: Record<string, string> = {};
          for (let k = 0; k < n; k++) props[`p${k}`] = `v${i}-${k}`;
          new Thing(`thing-${i}`, props);
        }
      })
    ).resources;
  } else {
    const count = Number(process.env.BENCH_COUNT);
    resources = (
      await runUnderMocks("baseline", () => {
        for (let i = 0; i < count; i++) new Thing(`thing-${i}`, { value: `v${i}` });
      })
    ).resources;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const chain = kind === "berth" ? longestChain(resources) : { length: 1, chain: [] };
  const cross = kind === "berth" ? crossHostDependencies(resources, scaledConfig(hosts).hosts.names) : [];
  const result: Result = {
    ms,
    rssMiB: process.resourceUsage().maxRSS / 1024,
    resources: resources.length,
    properties: properties(),
    chain,
    cross,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

interface Result {
  ms: number;
  rssMiB: number;
  resources: number;
  /** Output properties the SDK created (summed over resources). */
  properties: number;
  chain: { length: number; chain: string[] };
  cross: string[];
}

function measure(kind: string, hosts: number, count = 0, properties = 0): Result {
  const r = spawnSync(process.execPath, ["--import", "tsx", self, "--child", kind, String(hosts)], {
    encoding: "utf8",
    env: { ...process.env, BENCH_COUNT: String(count), BENCH_PROPERTIES: String(properties) },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${kind} ${hosts} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Result;
}

const row = (cells: (string | number)[]) => console.log(`| ${cells.join(" | ")} |`);

async function parent(sizes: number[]): Promise<void> {
  console.log(
    `Program evaluation under mocks (fresh process per run; node ${process.version}, ${new Date().toISOString()})\n`,
  );
  const header = [
    "hosts",
    "resources",
    "output properties",
    "berth ms",
    "plain ms",
    "plain, as many properties ms",
    "same resources ms",
    "berth / plain",
    "berth / plain, as many properties",
    "berth / same resources",
    "berth res/s",
    "plain res/s",
    "berth MiB",
    "plain MiB",
    "plain, as many properties MiB",
    "longest chain",
  ];
  row(header);
  row(header.map(() => "---"));
  const chains: { hosts: number; chain: Result["chain"]; cross: string[] }[] = [];
  for (const n of sizes) {
    const b = measure("berth", n);
    const base = measure("baseline", n, b.resources);
    const wide = measure("wide", n, b.resources, b.properties);
    const same = measure("same", n);
    chains.push({ hosts: n, chain: b.chain, cross: b.cross });
    const perSecond = (r: Result) => ((r.resources / r.ms) * 1000).toFixed(0);
    row([
      n,
      b.resources,
      b.properties,
      b.ms.toFixed(0),
      base.ms.toFixed(0),
      wide.ms.toFixed(0),
      same.ms.toFixed(0),
      (b.ms / base.ms).toFixed(2),
      (b.ms / wide.ms).toFixed(2),
      (b.ms / same.ms).toFixed(2),
      perSecond(b),
      perSecond(base),
      b.rssMiB.toFixed(0),
      base.rssMiB.toFixed(0),
      wide.rssMiB.toFixed(0),
      b.chain.length,
    ]);
  }
  console.log(
    [
      "",
      "plain: as many trivial resources (one property each) as Berth registers.",
      "plain, as many properties: as many trivial resources, with as many output properties in total as Berth's",
      "  (every output a provider class declares is an Output with its own promises, set or not).",
      "same resources: Berth's custom resources re-created from their captured inputs with the same SDK",
      "  classes, without program logic, components or dependencies.",
    ].join("\n"),
  );
  console.log("\nLongest dependency chain (resources in sequence):");
  for (const c of chains) console.log(`  ${c.hosts} hosts: ${c.chain.length}: ${c.chain.chain.join(" -> ")}`);
  const cross = chains.flatMap((c) => c.cross);
  console.log(
    cross.length === 0
      ? "\nNo resource of one host depends on another host's resources."
      : `\nCross-host dependencies:\n  ${[...new Set(cross)].join("\n  ")}`,
  );
}

const args = process.argv.slice(2);
// Run only as a script (other benchmarks import scaledConfig and longestChain).
if (process.argv[1] === self) {
  if (args[0] === "--child") await child(args[1] ?? "berth", Number(args[2]));
  else await parent(args.length > 0 ? args.map(Number) : [1, 10, 50, 100]);
}
