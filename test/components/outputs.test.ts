/**
 * The stack outputs that are joined from per-host parts, on the multi-host stacks (staging: 2 hosts,
 * production: 3), under Pulumi's mocks: `agentKnownHosts` must be a valid known_hosts file (one
 * newline-terminated line per agent and host key, none run together across hosts), and the other
 * per-host outputs (`hosts`, `agentEndpoints`, `dockerTlsEndpoints`, `jenkinsCasc`) must have one
 * well-formed entry per host or agent, at that host's own floating IP.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { knownHostsLine } from "../../components/jenkins.ts";
import { resolveOutput } from "../../plan/mocks.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";

const TAG = "0123456789abcdef0123456789abcdef01234567";
const STACKS = ["staging", "production"] as const;

interface Resolved {
  run: StackRun;
  knownHosts: string;
  hosts: { name: string; privateIp: string; floatingIp: string; ssh: string }[];
  agentEndpoints: string[];
  dockerTlsEndpoints: string[];
  casc: string;
}
const runs = new Map<string, Resolved>();
const value = async <T>(o: unknown): Promise<T> => (await resolveOutput(o as never)).value as T;

beforeAll(async () => {
  // One mock run at a time: the mocks are process-wide.
  for (const stack of STACKS) {
    const run = await runConfig(loadStack(PROJECT_ROOT, stack, { agentImageTag: TAG }));
    const o = run.outputs;
    runs.set(stack, {
      run,
      knownHosts: await value<string>(o.agentKnownHosts),
      hosts: await Promise.all(
        o.hosts.map(async (h) => ({
          name: h.name,
          privateIp: h.privateIp,
          floatingIp: await value<string>(h.floatingIp),
          ssh: await value<string>(h.ssh),
        })),
      ),
      agentEndpoints: await Promise.all(o.agentEndpoints.map((e) => value<string>(e))),
      dockerTlsEndpoints: await Promise.all((o.dockerTlsEndpoints ?? []).map((e) => value<string>(e))),
      casc: await value<string>(o.jenkinsCasc),
    });
  }
}, 120_000);

const get = (stack: string) => runs.get(stack) as Resolved;
/** Each host's floating IP as the mock's FloatingIp resource holds it, in host order. */
const floatingIps = (r: Resolved) =>
  r.run.config.hosts.names.map((h) => {
    const fip = r.run.resources.find((x) => x.name === `${h}-fip`);
    return String(fip?.state.address ?? "missing");
  });

describe.each(STACKS)("%s: outputs joined from per-host parts", (stack) => {
  it("has several hosts with distinct floating IPs (or the test would prove nothing)", () => {
    const r = get(stack);
    const ips = floatingIps(r);
    expect(ips.length).toBe(stack === "staging" ? 2 : 3);
    expect(new Set(ips).size).toBe(ips.length);
    for (const ip of ips) expect(ip).toMatch(/^203\.0\.113\.\d+$/);
  });

  it("agentKnownHosts: newline-terminated, one `[addr]:port keytype base64` line per agent and host key", () => {
    const r = get(stack);
    const c = r.run.config;
    const text = r.knownHosts;
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    for (const line of lines)
      expect(line).toMatch(/^\[\d+\.\d+\.\d+\.\d+\]:\d+ ssh-[a-z0-9-]+ [A-Za-z0-9+/]+=*$/);
    // Every agent of every host, at its host's floating IP, with exactly its two keys (ED25519, RSA).
    const expected = floatingIps(r).flatMap((ip) =>
      Array.from({ length: c.jenkins.agentsPerHost }, (_, n) => `[${ip}]:${c.jenkins.basePort + n + 1}`),
    );
    expect(expected).toHaveLength(c.hosts.count * c.jenkins.agentsPerHost);
    const endpoints = lines.map((l) => l.split(" ")[0]);
    expect([...new Set(endpoints)]).toEqual(expected);
    for (const e of expected) expect(endpoints.filter((x) => x === e)).toHaveLength(2);
    expect(lines).toHaveLength(2 * c.hosts.count * c.jenkins.agentsPerHost);
    // Each key belongs to one agent only (the keys are per agent, not shared).
    expect(new Set(lines.map((l) => l.split(" ")[2])).size).toBe(lines.length);
  });

  it("hosts: one entry per host, its own floating IP in its ssh command", () => {
    const r = get(stack);
    const ips = floatingIps(r);
    expect(r.hosts.map((h) => h.name)).toEqual(r.run.config.hosts.names);
    expect(r.hosts.map((h) => h.privateIp)).toEqual(r.run.config.hosts.addresses);
    expect(r.hosts.map((h) => h.floatingIp)).toEqual(ips);
    expect(r.hosts.map((h) => h.ssh)).toEqual(ips.map((ip) => `ssh core@${ip}`));
  });

  it("agentEndpoints: one jenkins@ip:port per agent, in host order", () => {
    const r = get(stack);
    const c = r.run.config;
    expect(r.agentEndpoints).toEqual(
      floatingIps(r).flatMap((ip) =>
        Array.from(
          { length: c.jenkins.agentsPerHost },
          (_, n) => `jenkins@${ip}:${c.jenkins.basePort + n + 1}`,
        ),
      ),
    );
  });

  it("dockerTlsEndpoints: one tcp://ip:port per host", () => {
    const r = get(stack);
    expect(r.run.config.hosts.dockerTls).toBe(true);
    expect(r.dockerTlsEndpoints).toEqual(
      floatingIps(r).map((ip) => `tcp://${ip}:${r.run.config.hosts.dockerTlsPort}`),
    );
  });

  it("jenkinsCasc: one cloud per per-build host at that host's own floating IP", () => {
    const r = get(stack);
    const c = r.run.config;
    const doc = parse(r.casc) as {
      jenkins: { clouds: { docker: { name: string; dockerApi: { dockerHost: { uri: string } } } }[] };
    };
    const ipOf = Object.fromEntries(c.hosts.names.map((h, i) => [h, floatingIps(r)[i]]));
    expect(c.jenkins.perBuild.hosts.length).toBeGreaterThan(1);
    expect(doc.jenkins.clouds.map((x) => [x.docker.name, x.docker.dockerApi.dockerHost.uri])).toEqual(
      c.jenkins.perBuild.hosts.map((h) => [h, `tcp://${ipOf[h]}:${c.hosts.dockerTlsPort}`]),
    );
  });
});

describe("knownHostsLine", () => {
  it("keeps the key's type and data only, newline-terminated", () => {
    expect(knownHostsLine("203.0.113.5", 2201, "ssh-ed25519 AAAAC3Nza= comment\n")).toBe(
      "[203.0.113.5]:2201 ssh-ed25519 AAAAC3Nza=\n",
    );
  });
  it("refuses an empty key rather than writing a broken line", () => {
    expect(() => knownHostsLine("203.0.113.5", 2201, "")).toThrow(/\[203\.0\.113\.5\]:2201/);
  });
});
