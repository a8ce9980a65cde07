/**
 * `berth dev`: the Compose file a developer runs holds what the program deploys on a CI host —
 * compared field by field with the program's own registrations for every shipped stack — keeps
 * credentials out of itself (in a 0600 .env that survives re-runs), and passes docker-compose.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../config/root.ts";
import { containersByHost, imageReferences } from "../../plan/containers.ts";
import { plain, runStack } from "../../plan/run.ts";
import { renderCompose } from "../../renderers/compose.ts";
import { RenderError } from "../../renderers/common.ts";
import { cli } from "../support/cli.ts";
import { describeWithTools, findTool } from "../renderers/helpers.ts";

interface ComposeDoc {
  version: string;
  services: Record<
    string,
    {
      image: string;
      ports?: string[];
      environment?: Record<string, string>;
      volumes?: string[];
      networks?: Record<string, { ipv4_address?: string }>;
      dns?: string[];
      dns_search?: string[];
      entrypoint?: string[];
      command?: string[];
      healthcheck?: {
        test: string[];
        interval: string;
        timeout: string;
        retries: number;
        start_period: string;
      };
      stop_grace_period?: string;
    }
  >;
  networks?: Record<string, { ipam: { config: { subnet: string; gateway: string; ip_range?: string }[] } }>;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function outDir(): string {
  const d = mkdtempSync(join(tmpdir(), "berth-dev-"));
  dirs.push(d);
  return d;
}

const compose = findTool("docker-compose", "docker-compose");

describe.each(["testing", "staging", "production"])("berth dev %s --production-like", (stack) => {
  it("writes what the program deploys on the stack's first host, field by field", async () => {
    const out = outDir();
    const r = await cli(PROJECT_ROOT, "dev", stack, "--production-like", "--out", out);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const doc = parse(readFileSync(join(out, "docker-compose.yml"), "utf8")) as ComposeDoc;
    const env = readFileSync(join(out, ".env"), "utf8");

    const run = await runStack(PROJECT_ROOT, stack);
    const host = run.config.hosts.names[0] ?? "";
    const imageOf = imageReferences(run);
    const containers = new Map(
      (containersByHost(run).get(host) ?? []).map((c) => [String(plain(c.inputs.name)), c]),
    );
    const expected = [
      ...run.config.services.minimal,
      "dnsmasq",
      ...run.config.services.productionLike.map((s) => s.name),
    ];
    expect(Object.keys(doc.services)).toEqual(expected);
    for (const name of expected) {
      const c = containers.get(name);
      const s = doc.services[name];
      if (!c || !s) throw new Error(`${name} missing`);
      expect(s.image, name).toBe(imageOf(c));
      expect(s.image).toMatch(/@sha256:[0-9a-f]{64}$/);

      const ports = ((plain(c.inputs.ports) as { ip: string; internal: number; external: number }[]) ?? [])
        .filter((p) => p.ip === "127.0.0.1")
        .map((p) => `127.0.0.1:${p.external}:${p.internal}`);
      expect(s.ports ?? [], name).toEqual(ports);
      if (run.config.services.minimal.includes(name as never)) expect(ports.length, name).toBe(1);

      // Environment: same keys; literal values equal; generated credentials come from .env.
      const programEnv = ((plain(c.inputs.envs) as unknown[] | undefined) ?? []).map((e) => String(plain(e)));
      expect(Object.keys(s.environment ?? {}), name).toEqual(programEnv.map((e) => e.split("=")[0]));
      for (const e of programEnv) {
        const [k, ...v] = e.split("=");
        const value = s.environment?.[k ?? ""] ?? "";
        if (/PASS/.test(k ?? "")) {
          const variable = /^\$\{([A-Z0-9_]+):\?/.exec(value)?.[1];
          expect(variable, `${name} ${k}`).toBeDefined();
          expect(env).toMatch(new RegExp(`^${variable}=[A-Za-z0-9_-]{32}$`, "m"));
          expect(value).not.toContain(v.join("="));
        } else expect(value, `${name} ${k}`).toBe(v.join("="));
      }

      const hc = plain(c.inputs.healthcheck) as {
        tests: string[];
        interval: string;
        timeout: string;
        retries: number;
        startPeriod: string;
      };
      expect(s.healthcheck, name).toEqual({
        test: hc.tests,
        interval: hc.interval,
        timeout: hc.timeout,
        retries: hc.retries,
        start_period: hc.startPeriod,
      });
      expect(s.entrypoint).toEqual(plain(c.inputs.entrypoints));
      expect(s.command).toEqual(plain(c.inputs.command));
      const adv = (
        (plain(c.inputs.networksAdvanced) as { name: string; ipv4Address?: string }[]) ?? []
      ).filter((n) => n.name !== "bridge");
      expect(
        Object.entries(s.networks ?? {}).map(([n, v]) => ({ name: n, ipv4Address: v.ipv4_address })),
        name,
      ).toEqual(adv.map((n) => ({ name: n.name, ipv4Address: n.ipv4Address })));
      expect(s.dns).toEqual(plain(c.inputs.dns));
      expect(s.dns_search).toEqual(plain(c.inputs.dnsSearches));
    }
    // The services network has the program's address plan.
    const net = run.resources.find(
      (r) => r.type === "docker:index/network:Network" && plain(r.inputs.name) === "ci-services",
    );
    const ipam = (
      plain(net?.inputs.ipamConfigs) as { subnet: string; gateway: string; ipRange: string }[]
    )[0];
    expect(doc.networks?.["ci-services"]?.ipam.config).toEqual([
      { subnet: ipam?.subnet, gateway: ipam?.gateway, ip_range: ipam?.ipRange },
    ]);
    // dnsmasq's configuration is the program's upload, byte for byte.
    const dnsmasq = containers.get("dnsmasq");
    const upload = (plain(dnsmasq?.inputs.uploads) as { file: string; content: string }[])[0];
    expect(readFileSync(join(out, "files", "dnsmasq", "dnsmasq.conf"), "utf8")).toBe(upload?.content);
  });
});

describe("berth dev: credentials", () => {
  it("keeps generated credentials in a 0600 .env, out of the Compose file, and keeps them on a re-run", async () => {
    const out = outDir();
    expect((await cli(PROJECT_ROOT, "dev", "staging", "--out", out)).code).toBe(0);
    const composeText = readFileSync(join(out, "docker-compose.yml"), "utf8");
    const env1 = readFileSync(join(out, ".env"), "utf8");
    expect(statSync(join(out, ".env")).mode & 0o777).toBe(0o600);
    expect(env1).toMatch(/^COMPOSE_PROJECT_NAME=berth-staging$/m);
    const secrets = [...env1.matchAll(/^BERTH_[A-Z0-9_]+=(.+)$/gm)].map((m) => m[1] ?? "");
    expect(secrets.length).toBeGreaterThan(0);
    for (const s of secrets) expect(composeText).not.toContain(s);
    // The program's (mock) generated passwords never reach the laptop files.
    expect(composeText + env1).not.toMatch(/mock-[0-9a-f]{8}/);
    // Again: the same credentials (the developer's databases were initialised with them).
    expect((await cli(PROJECT_ROOT, "dev", "staging", "--out", out)).code).toBe(0);
    expect(readFileSync(join(out, ".env"), "utf8")).toBe(env1);
    // Without --production-like: the minimal set only, and no services network.
    const doc = parse(composeText) as ComposeDoc;
    expect(Object.keys(doc.services)).toEqual(["redis", "mongodb", "postgres"]);
    expect(doc.networks).toBeUndefined();
  });
});

describe("renderCompose", () => {
  const base = { ports: [], volumes: [], files: [], environment: {} };
  it("refuses two services on one published port, naming both", () => {
    const twice = () =>
      renderCompose({
        services: [
          { ...base, name: "a", image: "x", ports: [{ host: "127.0.0.1", published: 1, target: 1 }] },
          { ...base, name: "b", image: "x", ports: [{ host: "127.0.0.1", published: 1, target: 2 }] },
        ],
        networks: [],
      });
    expect(twice).toThrow(RenderError);
    expect(twice).toThrow(/services a and b both publish 127.0.0.1:1/);
  });
  it("writes a literal $ as $$ (Compose would interpolate it)", () => {
    const text = renderCompose({
      services: [{ ...base, name: "a", image: "x", environment: { P: "a$b" }, command: ["echo", "$HOME"] }],
      networks: [],
    });
    expect(text).toContain("P: a$$b");
    expect(text).toContain("$$HOME");
  });
});

describeWithTools("docker-compose reads what berth dev writes", { tools: [compose] }, () => {
  it.each(["testing", "production"])(
    "%s: docker-compose config accepts it, with .env's credentials",
    async (stack) => {
      const out = outDir();
      expect((await cli(PROJECT_ROOT, "dev", stack, "--production-like", "--out", out)).code).toBe(0);
      const r = spawnSync(compose.path ?? "docker-compose", ["config"], {
        cwd: out,
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.stderr).not.toMatch(/ERROR/);
      expect(r.status).toBe(0);
      const resolved = parse(r.stdout) as ComposeDoc;
      const env = readFileSync(join(out, ".env"), "utf8");
      for (const s of Object.values(resolved.services))
        for (const [k, v] of Object.entries(s.environment ?? {}))
          if (/PASS/.test(k)) expect(env).toContain(`=${v}`);
    },
  );
});
