import { Resolver } from "node:dns/promises";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RenderError } from "../../renderers/common.ts";
import { renderDnsmasqConfig, type DnsmasqConfigInput, type DnsRecord } from "../../renderers/dnsmasq.ts";
import { renderResolvConf } from "../../renderers/resolv.ts";
import {
  describeWithTools,
  freePort,
  run,
  startDaemon,
  tempDir,
  toolPath,
  tools,
  waitFor,
  type Daemon,
} from "./helpers.ts";

const records: DnsRecord[] = [
  { name: "mongodb-cluster-a-node-2", address: "172.30.0.12" },
  { name: "mongodb-cluster-a-node-1", address: "172.30.0.11" },
  { name: "kafka", address: "172.30.0.20" },
];

const base: DnsmasqConfigInput = {
  // Two regions' domains, the first preferred.
  searchDomains: ["ci.internal", "us-east-1.example.internal"],
  listenAddresses: ["172.30.0.2"],
  upstreamServers: ["127.0.0.11"],
  records,
};

describe("renderDnsmasqConfig", () => {
  it("is deterministic, independent of record order, and matches the reviewed snapshot", async () => {
    const conf = renderDnsmasqConfig(base);
    expect(renderDnsmasqConfig({ ...base, records: [...records].reverse() })).toBe(conf);
    await expect(conf).toMatchFileSnapshot("./__snapshots__/dnsmasq.conf.txt");
  });

  it("writes one host-record per service, sorted by name, short and under each domain in order", () => {
    const hostRecords = renderDnsmasqConfig(base)
      .split("\n")
      .filter((l) => l.startsWith("host-record="));
    expect(hostRecords).toEqual([
      "host-record=kafka,kafka.ci.internal,kafka.us-east-1.example.internal,172.30.0.20",
      "host-record=mongodb-cluster-a-node-1,mongodb-cluster-a-node-1.ci.internal,mongodb-cluster-a-node-1.us-east-1.example.internal,172.30.0.11",
      "host-record=mongodb-cluster-a-node-2,mongodb-cluster-a-node-2.ci.internal,mongodb-cluster-a-node-2.us-east-1.example.internal,172.30.0.12",
    ]);
  });

  it("with one domain writes what the single-domain renderer wrote (deployed dnsmasq is not restarted)", () => {
    const conf = renderDnsmasqConfig({ ...base, searchDomains: ["ci.internal"] });
    expect(conf).toContain(
      "# Names under ci.internal are answered here only.\ndomain=ci.internal\nlocal=/ci.internal/\n",
    );
    expect(conf).toContain("host-record=kafka,kafka.ci.internal,172.30.0.20\n");
  });

  it("has the resolver hygiene options", () => {
    const lines = renderDnsmasqConfig({ ...base, logQueries: true, cacheSize: 500, port: 5353 }).split("\n");
    for (const l of [
      "no-resolv",
      "no-hosts",
      "domain-needed",
      "bogus-priv",
      "server=127.0.0.11",
      "domain=ci.internal",
      "local=/ci.internal/",
      "local=/us-east-1.example.internal/",
      "listen-address=172.30.0.2",
      "bind-interfaces",
      "cache-size=500",
      "log-queries",
      "port=5353",
    ]) {
      expect(lines).toContain(l);
    }
    expect(renderDnsmasqConfig({ ...base, bindInterfaces: false })).not.toContain("bind-interfaces");
  });

  it.each<[string, Partial<DnsmasqConfigInput>, RegExp]>([
    [
      "a duplicate name",
      { records: [...records, { name: "KAFKA", address: "172.30.0.21" }] },
      /record "KAFKA": duplicate name \(also "kafka"\)/,
    ],
    [
      "an IPv6 address",
      { records: [{ name: "db", address: "fd00::1" }] },
      /record "db": "fd00::1" is not an IPv4/,
    ],
    ["a bad IPv4 address", { records: [{ name: "db", address: "172.30.0.256" }] }, /record "db"/],
    ["a dotted name", { records: [{ name: "db.other", address: "10.0.0.1" }] }, /record "db.other"/],
    ["a name with a comma", { records: [{ name: "a,b", address: "10.0.0.1" }] }, /record "a,b"/],
    ["a bad search domain", { searchDomains: ["ci.internal", "ci internal"] }, /searchDomains/],
    ["no search domain", { searchDomains: [] }, /searchDomains: must not be empty/],
    [
      "a search domain twice",
      { searchDomains: ["ci.internal", "CI.internal"] },
      /"CI.internal" is listed twice/,
    ],
    ["no listen address", { listenAddresses: [] }, /listenAddresses/],
    ["a hostname as upstream", { upstreamServers: ["dns.google"] }, /upstreamServers/],
    ["an upstream with a bad port", { upstreamServers: ["1.1.1.1#99999"] }, /upstreamServers/],
  ])("refuses %s", (_what, patch, message) => {
    expect(() => renderDnsmasqConfig({ ...base, ...patch })).toThrow(RenderError);
    expect(() => renderDnsmasqConfig({ ...base, ...patch })).toThrow(message);
  });
});

describe("renderResolvConf", () => {
  it("renders nameserver, search and options", () => {
    expect(
      renderResolvConf({
        nameservers: ["172.30.0.2"],
        search: ["ci.internal"],
        ndots: 1,
        timeoutSeconds: 2,
        attempts: 3,
      }),
    ).toBe(
      [
        "# Rendered by Berth (renderers/resolv.ts).",
        "nameserver 172.30.0.2",
        "search ci.internal",
        "options ndots:1 timeout:2 attempts:3",
        "",
      ].join("\n"),
    );
  });

  it("refuses more than three nameservers, hostnames and a bad ndots", () => {
    expect(() => renderResolvConf({ nameservers: ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"] })).toThrow(
      /1 to 3/,
    );
    expect(() => renderResolvConf({ nameservers: ["dns"] })).toThrow(RenderError);
    expect(() => renderResolvConf({ nameservers: ["10.0.0.1"], ndots: 16 })).toThrow(/ndots/);
    expect(() => renderResolvConf({ nameservers: ["10.0.0.1"], search: ["a b"] })).toThrow(/search/);
  });
});

describeWithTools("dnsmasq runs the rendered config", { tools: [tools.dnsmasq] }, () => {
  let tmp = { path: "", remove: () => {} };
  let dnsmasq: Daemon | undefined;
  let conf = "";
  let port = 0;

  beforeAll(async () => {
    tmp = tempDir("dnsmasq");
    port = await freePort();
    // The only upstream is a closed local port, so no query leaves this machine.
    const deadUpstream = await freePort();
    conf = join(tmp.path, "dnsmasq.conf");
    writeFileSync(
      conf,
      renderDnsmasqConfig({
        ...base,
        listenAddresses: ["127.0.0.1"],
        upstreamServers: [`127.0.0.1#${deadUpstream}`],
        port,
        pidFile: join(tmp.path, "dnsmasq.pid"),
        logFacility: "-",
        logQueries: true,
      }),
    );
  });

  afterAll(async () => {
    await dnsmasq?.stop();
    tmp.remove();
  });

  it("dnsmasq --test: syntax check OK", () => {
    const r = run(toolPath(tools.dnsmasq), ["--test", `--conf-file=${conf}`]);
    expect(r.stderr + r.stdout).toContain("syntax check OK");
    expect(r.status).toBe(0);
  });

  it("answers the short and the qualified names, and NXDOMAIN for unknown names in the domain", async () => {
    dnsmasq = startDaemon(toolPath(tools.dnsmasq), ["--keep-in-foreground", `--conf-file=${conf}`]);
    const resolver = new Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    await waitFor("dnsmasq", async () => (await resolver.resolve4("kafka")).length > 0).catch(
      (e: unknown) => {
        throw new Error(`${String(e)}\n${dnsmasq?.output() ?? ""}`);
      },
    );
    expect(await resolver.resolve4("mongodb-cluster-a-node-1")).toEqual(["172.30.0.11"]);
    expect(await resolver.resolve4("mongodb-cluster-a-node-1.ci.internal")).toEqual(["172.30.0.11"]);
    expect(await resolver.resolve4("mongodb-cluster-a-node-2.ci.internal")).toEqual(["172.30.0.12"]);
    expect(await resolver.resolve4("mongodb-cluster-a-node-1.us-east-1.example.internal")).toEqual([
      "172.30.0.11",
    ]);
    expect(await resolver.reverse("172.30.0.11")).toContain("mongodb-cluster-a-node-1");
    await expect(resolver.resolve4("nothing-here.ci.internal")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(resolver.resolve4("nothing-here.us-east-1.example.internal")).rejects.toMatchObject({
      code: "ENOTFOUND",
    });
  });
});
