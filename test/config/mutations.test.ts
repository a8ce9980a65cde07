/**
 * Property test (issue #14): seeded random mutations of the shipped stacks. Every mutated stack is
 * either refused by `berth validate` with a message naming a field (never a stack trace, never an
 * uncaught exception), or validates, renders every host's Ignition, and, for a sample, plans
 * cleanly with the real `berth plan` under mocks.
 *
 * Reproduce a run with BERTH_MUTATION_SEED=<seed> (the failure message prints the seed and the
 * mutations of the failing case); BERTH_MUTATIONS=<n> changes how many cases run.
 */
import { cli } from "../support/cli.ts";
import { afterAll, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { PROJECT_ROOT } from "../../config/root.ts";

const SEED = Number(process.env.BERTH_MUTATION_SEED ?? 1414);
const CASES = Number(process.env.BERTH_MUTATIONS ?? 200);
/** Plan (under mocks) one accepted case in this many; every accepted case is validated and rendered. */
const PLAN_EVERY = 6;

/** mulberry32: a small seeded PRNG, so a seed replays the same cases. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

const NUMBERS = [
  0,
  -1,
  1,
  2,
  3,
  7,
  22,
  63,
  64,
  65,
  200,
  201,
  443,
  1023,
  1024,
  2201,
  2376,
  5432,
  6379,
  8443,
  27017,
  32768,
  60999,
  65000,
  65535,
  65536,
  1.5,
  2 ** 31,
];
const STRINGS = [
  "",
  " ",
  "x",
  "UPPER",
  "a\nb",
  "nul\u0000",
  "tab\there",
  "x".repeat(300),
  "../../etc/passwd.json",
  "/etc/passwd.json",
  "Ωmega",
  "trailing.",
  "ends-with-dash-",
  "Europe/Rome",
  "Mars/Olympus",
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 x@y",
  "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
  "registry",
  "dnsmasq",
  "jenkins-agent-1",
  "redis",
];
const CIDRS = [
  "0.0.0.0/0",
  "0.0.0.0/1",
  "128.0.0.0/1",
  "172.17.0.0/16",
  "172.17.5.0/24",
  "127.0.0.0/8",
  "10.42.10.0/28",
  "10.42.10.0/30",
  "10.42.10.1/24",
  "198.51.100.40/32",
  "172.30.0.0/24",
  "10.0.0.0/8",
];
const TYPES: Json[] = [null, true, 0, "str", [], {}, ["a"], { x: 1 }];

function leaves(v: Json, path: Path = []): Path[] {
  const out: Path[] = [path];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...leaves(x, [...path, i])));
  else if (v && typeof v === "object")
    for (const [k, x] of Object.entries(v)) out.push(...leaves(x, [...path, k]));
  return out;
}

function at(root: Json, path: Path): Json | undefined {
  let v: Json | undefined = root;
  for (const k of path) v = v && typeof v === "object" ? (v as Record<string | number, Json>)[k] : undefined;
  return v;
}

function setAt(root: Json, path: Path, value: Json | undefined): void {
  const parent = at(root, path.slice(0, -1));
  const key = path[path.length - 1];
  if (!parent || typeof parent !== "object" || key === undefined) return;
  if (Array.isArray(parent) && typeof key === "number") {
    if (value === undefined) parent.splice(key, 1);
    else parent[key] = value;
  } else {
    const o = parent as Record<string, Json>;
    if (value === undefined) Reflect.deleteProperty(o, key);
    else o[key] = value;
  }
}

interface Mutated {
  stack: string;
  /** The file written as stacks/Pulumi.<file>.yaml. */
  file: string;
  config: Json;
  log: string[];
}

/** A key line with only its type in the blob, and a 512-bit RSA key: well-formed lines, useless keys. */
const HEADER_ONLY_KEY = `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519")]).toString("base64")} x@y`;
const RSA_512_KEY = (() => {
  const jwk = generateKeyPairSync("rsa", { modulusLength: 512 }).publicKey.export({ format: "jwk" });
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return [len, b];
  };
  const n = Buffer.concat([Buffer.alloc(1), Buffer.from(jwk.n as string, "base64url")]);
  const blob = Buffer.concat([
    ...field(Buffer.from("ssh-rsa")),
    ...field(Buffer.from(jwk.e as string, "base64url")),
    ...field(n),
  ]);
  return `ssh-rsa ${blob.toString("base64")} x@y`;
})();

/** Values of the same kind as `old`, odd but often well-formed, so that many cases pass the schema. */
function oddValue(pick: <T>(xs: readonly T[]) => T, old: Json | undefined): Json {
  if (typeof old === "number")
    return Number.isInteger(old) ? pick(NUMBERS.filter((n) => Number.isInteger(n))) : pick(NUMBERS);
  if (typeof old !== "string") return structuredClone(pick(TYPES));
  if (/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(old)) return pick(CIDRS);
  if (/^\d+\.\d+\.\d+\.\d+$/.test(old))
    return pick(["172.30.0.1", "172.30.0.200", "172.17.0.1", "127.0.0.1", "10.42.10.11", "0.0.0.0"]);
  if (/^(ssh|ecdsa|sk)-/.test(old))
    return pick([HEADER_ONLY_KEY, RSA_512_KEY, `${old}\u0000`, old.split(" ").slice(0, 2).join(" ")]);
  if (/^[A-Z][a-z]+\/[A-Z]/.test(old))
    return pick(["Mars/Olympus", "europe/rome", "Etc/GMT+5", "UTC", "US/Eastern"]);
  if (/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(old) && !old.includes("@"))
    return pick([
      `${old}.`,
      old.toUpperCase(),
      `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${old}`,
      `${old}\n`,
      `x-${old}`,
    ]);
  return pick([...STRINGS, `${old}.`, `${old}\n`, ` ${old}`, `${old}-x`, old.toUpperCase()]);
}

function mutate(r: () => number, base: Record<string, Json>): Mutated {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const from = pick(["testing", "staging", "production", "pr"] as const);
  const stack = from === "pr" ? `pr-${1 + Math.floor(r() * 9999)}` : from;
  const file = from === "pr" ? "testing" : from;
  const config = structuredClone(base[file]) as Json;
  const log: string[] = [`stack ${stack}${from === "pr" ? " (derived from a mutated testing)" : ""}`];
  const count = 1 + Math.floor(r() * 2);
  for (let n = 0; n < count; n++) {
    const paths = leaves(config).filter((p) => p.length > 1 && String(p[0]).startsWith("berth:"));
    const path = pick(paths);
    const old = at(config, path);
    const where = path.join(".");
    const op = r();
    if (op < 0.6) {
      // A value of the same kind: boundary numbers, CIDRs incl. halves of the world, odd names.
      const v = oddValue(pick, old);
      setAt(config, path, v);
      log.push(`${where} = ${JSON.stringify(v)}`);
    } else if (op < 0.7 && Array.isArray(old) && old.length > 0) {
      old.push(structuredClone(pick(old)));
      log.push(`duplicate an item of ${where}`);
    } else if (op < 0.78) {
      // A name Berth uses itself, as a network holder or a production-like service.
      const services = at(config, ["berth:services"]) as Record<string, Json> | undefined;
      const name = pick([
        "dnsmasq",
        "registry",
        "registry-nginx",
        "jenkins-agent-1",
        "redis",
        "mongodb",
        "app-holder",
        "mongodb-cluster-a-node-1",
      ]);
      if (services && Array.isArray(services.networkHolders) && r() < 0.5) {
        services.networkHolders.push(name);
        log.push(`add network holder ${name}`);
      } else if (services && Array.isArray(services.productionLike)) {
        services.productionLike.push({
          name,
          kind: pick(["redis", "mongodb", "postgres"]),
          address: `172.30.0.${50 + Math.floor(r() * 70)}`,
        });
        log.push(`add production-like service ${name}`);
      }
    } else if (op < 0.86) {
      setAt(config, path, undefined);
      log.push(`drop ${where}`);
    } else if (op < 0.93) {
      const v = structuredClone(pick(TYPES));
      setAt(config, path, v);
      log.push(`${where} = ${JSON.stringify(v)}`);
    } else {
      const key = pick([
        "Berth:services",
        "brth:previewTtlHours",
        "berth:hostz",
        "berth:previewTtlHours",
        "bert:dns",
      ]);
      const v = key.endsWith("previewTtlHours") ? pick(NUMBERS) : { count: 1 };
      setAt(config, [key], v);
      log.push(`${key} = ${JSON.stringify(v)}`);
    }
  }
  return { stack, file, config, log };
}

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe("seeded mutations of the shipped stacks", () => {
  it(`${CASES} cases (seed ${SEED}): refused naming a field, or validated, rendered and planned`, async () => {
    const r = rng(SEED);
    const base: Record<string, Json> = {};
    const docs: Record<string, Record<string, Json>> = {};
    for (const s of ["testing", "staging", "production"]) {
      docs[s] = parse(readFileSync(join(PROJECT_ROOT, "stacks", `Pulumi.${s}.yaml`), "utf8")) as Record<
        string,
        Json
      >;
      base[s] = docs[s]!.config as Json;
    }
    const root = mkdtempSync(join(tmpdir(), "berth-mutations-"));
    roots.push(root);
    cpSync(join(PROJECT_ROOT, "snippets"), join(root, "snippets"), { recursive: true });
    mkdirSync(join(root, "stacks"));
    // The masking files the stacks' restore settings name (berth:services.productionLike[].restore).
    cpSync(join(PROJECT_ROOT, "stacks", "masking"), join(root, "stacks", "masking"), { recursive: true });

    const failures: string[] = [];
    let refused = 0;
    let accepted = 0;
    let planned = 0;
    for (let i = 0; i < CASES; i++) {
      const m = mutate(r, base);
      for (const s of ["testing", "staging", "production"])
        writeFileSync(
          join(root, "stacks", `Pulumi.${s}.yaml`),
          stringify(s === m.file ? { ...docs[s], config: m.config } : docs[s]),
        );
      const what = `case ${i} (seed ${SEED}): ${m.log.join("; ")}`;
      try {
        const v = await cli(root, "validate", m.stack);
        if (v.code !== 0) {
          refused++;
          const named = /^ {2}- (berth(:[A-Za-z0-9]+)?|stack name|[A-Za-z]+:[A-Za-z]+)[^:]*: ./m.test(v.err);
          if (v.code !== 1 || !named || /^\s+at .+[(:]\d+/m.test(v.err))
            failures.push(`${what}\n    refused without naming a field (exit ${v.code}):\n${v.err}`);
          continue;
        }
        accepted++;
        // Every accepted case runs the program under mocks: `berth plan` for a sample (plan.md,
        // plan.json and the Ignition), `berth render` (each host's Ignition) for the others.
        const out = join(root, "out", String(i));
        const command = accepted % PLAN_EVERY === 1 ? "plan" : "render";
        if (command === "plan") planned++;
        const run = await cli(root, command, m.stack, "--out", out);
        if (run.code !== 0) failures.push(`${what}\n    validated, then ${command} failed:\n${run.err}`);
        rmSync(out, { recursive: true, force: true });
      } catch (e) {
        failures.push(`${what}\n    crashed: ${(e as Error).stack ?? String(e)}`);
      }
    }
    console.log(
      `mutations: ${CASES} (seed ${SEED}), ${refused} refused, ${accepted} accepted, ${planned} planned`,
    );
    expect(failures, failures.join("\n\n")).toEqual([]);
    // The mix must exercise both outcomes, or the property says little.
    expect(refused).toBeGreaterThan(CASES / 4);
    expect(accepted).toBeGreaterThan(CASES / 12);
  }, 600_000);
});
