/**
 * Benchmark: cost of evaluating the real Berth program under mocks (what `berth plan` does) as the
 * fleet grows, against a baseline program that registers the same number of plain resources with
 * the same SDK and mocks; and the longest dependency chain of the resource graph (what bounds
 * `pulumi up` wall time, since Pulumi runs independent resources in parallel).
 *
 *   npx tsx bench/program.ts [sizes...]      default: 1 10 50 100
 *
 * Each measurement runs in a fresh child process (so peak RSS is that run's own).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
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

/** A resource of the captured type with the captured inputs (secrets re-marked), and no program logic. */
class Replayed extends pulumi.CustomResource {}

function revive(v: unknown): unknown {
  if (v && typeof v === "object" && (v as { secret?: unknown }).secret === true && "value" in v)
    return pulumi.secret(revive((v as { value: unknown }).value));
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
  return v;
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

async function child(kind: string, hosts: number): Promise<void> {
  // The replay baseline needs the berth run's inputs: capture them before the clock starts.
  const replay =
    kind === "replay"
      ? (await runUnderMocks("staging", () => berthProgram(scaledConfig(hosts)))).resources.filter(
          (r) => r.custom,
        )
      : [];
  // Configuration loading (schema compilation, git revision lookup) happens once per process, before the clock.
  const config = scaledConfig(hosts);
  // Warm-up with one host: the SDK packages load their resource modules lazily on first use; that
  // one-off cost is not evaluation.
  if (kind === "berth") {
    const one = scaledConfig(1);
    await runUnderMocks(one.stack, () => berthProgram(one));
  }
  const t0 = process.hrtime.bigint();
  let resources: CapturedResource[];
  if (kind === "replay") {
    resources = (
      await runUnderMocks("replay", () => {
        replay.forEach(
          (r, i) =>
            new Replayed(r.type, `${r.name}-${i}`, revive(r.inputs) as Record<string, pulumi.Input<unknown>>),
        );
      })
    ).resources;
  } else if (kind === "berth") {
    resources = (await runUnderMocks(config.stack, () => berthProgram(config))).resources;
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
  process.stdout.write(
    JSON.stringify({
      ms,
      rssMiB: process.resourceUsage().maxRSS / 1024,
      resources: resources.length,
      chain,
      cross,
    }) + "\n",
  );
}

interface Result {
  ms: number;
  rssMiB: number;
  resources: number;
  chain: { length: number; chain: string[] };
  cross: string[];
}

function measure(kind: string, hosts: number, count?: number): Result {
  const r = spawnSync(process.execPath, ["--import", "tsx", self, "--child", kind, String(hosts)], {
    encoding: "utf8",
    env: { ...process.env, BENCH_COUNT: String(count ?? 0) },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${kind} ${hosts} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Result;
}

async function parent(sizes: number[]): Promise<void> {
  console.log(
    `Program evaluation under mocks (fresh process per run; node ${process.version}, ${new Date().toISOString()})`,
  );
  console.log(
    "hosts | resources | berth ms | plain baseline ms | same-inputs baseline ms | berth res/s | plain res/s | ratio to plain | ratio to same-inputs | berth MiB | plain MiB | same-inputs MiB | longest chain",
  );
  console.log("---|---|---|---|---|---|---|---|---|---|---|---|---");
  const chains: { hosts: number; chain: Result["chain"]; cross: string[] }[] = [];
  for (const n of sizes) {
    const b = measure("berth", n);
    const base = measure("baseline", n, b.resources);
    const same = measure("replay", n);
    chains.push({ hosts: n, chain: b.chain, cross: b.cross });
    console.log(
      [
        n,
        b.resources,
        b.ms.toFixed(0),
        base.ms.toFixed(0),
        same.ms.toFixed(0),
        ((b.resources / b.ms) * 1000).toFixed(0),
        ((base.resources / base.ms) * 1000).toFixed(0),
        (b.ms / base.ms).toFixed(2),
        (b.ms / same.ms).toFixed(2),
        b.rssMiB.toFixed(0),
        base.rssMiB.toFixed(0),
        same.rssMiB.toFixed(0),
        b.chain.length,
      ].join(" | "),
    );
  }
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
if (args[0] === "--child") await child(args[1] ?? "berth", Number(args[2]));
else await parent(args.length > 0 ? args.map(Number) : [1, 10, 50, 100]);
