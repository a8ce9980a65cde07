/**
 * Foundation of the end-to-end suite: a real dockerd (scripts/e2e-env.sh) with the stand-in images
 * built from Debian packages (images/standins), on the storage driver of $BERTH_E2E_STORAGE: btrfs
 * on btrfs (default; the suite's `btrfs` project) or overlay2 on ext4 (the `overlay2` project, see
 * vitest.e2e.config.ts). Proves the engine basics the later suites build on: the storage driver on
 * its own file system, each stand-in reaching `healthy` with the health check Berth
 * gives its container, static addresses on a user-defined network with a fixed subnet, ports
 * published on 127.0.0.1, and a teardown that leaves no mount, loop device, bridge or firewall rule.
 *
 * The first run debootstraps Debian and builds the images (several minutes) and keeps them in the
 * cache (.cache/e2e, or $BERTH_E2E_CACHE), with a seed image per storage driver: a file system that
 * holds them, which each engine's disk starts as a copy of (scripts/e2e-env.sh seed). The engine
 * here starts from the seed; the last suite checks the fallback when a seed cannot be used (an empty
 * disk, and build.sh `docker load`s the saved stand-ins).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { exchange, mongoPing } from "./support/wire.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DEFAULT_IMAGES, SERVICE_CATALOG } from "../../config/images.ts";
import {
  agentHostKeyPaths,
  htpasswdEntry,
  renderAgentSshdConfig,
  renderDnsmasqConfig,
  renderHtpasswd,
  renderNginxConfig,
  renderRegistryConfig,
} from "../../renderers/index.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  DockerApi,
  E2E_CACHE,
  E2E_ENV,
  E2E_STORAGE,
  STANDINS_BUILD,
  buildStandins,
  bridgeGateway,
  e2eFilesystem,
  engineOf,
  run,
  runOk,
  startEngine,
  stopEngine,
  type Engine,
} from "../../testkit/e2e/support/engine.ts";
import { at, type Json } from "../../lib/json.ts";
import { STANDINS_DIR, loadStandinMap, standinFor } from "../../testkit/e2e/support/images.ts";

/** Health checks as Berth's components give them (components/registry.ts, jenkins.ts, services.ts). */
const HEALTH = {
  registry: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5000/v2/"],
  nginx: ["CMD", "wget", "-q", "--no-check-certificate", "-O", "/dev/null", "https://127.0.0.1/healthz"],
  agent: ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3 | grep -q '^SSH-'"],
  dnsmasq: (name: string, domain: string, server: string) => ["CMD", "nslookup", `${name}.${domain}`, server],
  redis: SERVICE_CATALOG.redis.healthcheck,
  mongodb: SERVICE_CATALOG.mongodb.healthcheck,
} as const;

/** Berth's services network and dnsmasq address (config defaults), inside this private dockerd. */
const SERVICES = { subnet: "172.30.0.0/24", gateway: "172.30.0.1", dns: "172.30.0.2", domain: "ci.internal" };
const REGISTRY_NAME = "registry.e2e.test";

const tools = requireE2eTools("end-to-end engine", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh", debianPackage: "openssh-client" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
  { tool: "findmnt", debianPackage: "util-linux" },
  { tool: "iptables-save", debianPackage: "iptables" },
]);

describe("stand-in image map", () => {
  const map = loadStandinMap();

  it("covers every default image and the services the suite runs, by exact pinned reference", () => {
    const upstream = map.images.map((e) => e.upstream);
    for (const ref of Object.values(DEFAULT_IMAGES)) expect(upstream).toContain(ref);
    expect(upstream).toContain(SERVICE_CATALOG.redis.image);
    expect(upstream).toContain(SERVICE_CATALOG.mongodb.image);
    const services = Object.keys(SERVICE_CATALOG) as (keyof typeof SERVICE_CATALOG)[];
    for (const kind of services) {
      const mapped = map.images.some((e) => e.upstream === SERVICE_CATALOG[kind].image);
      expect(mapped || `SERVICE_CATALOG.${kind}.image` in map.notBuilt, kind).toBe(true);
    }
  });

  it("names one Dockerfile per stand-in and substitutes by reference or repository", () => {
    for (const entry of map.images) {
      const name = /^berth-standin\/([a-z0-9-]+):latest$/.exec(entry.standin)?.[1] ?? "";
      expect(existsSync(join(STANDINS_DIR, name, "Dockerfile")), entry.standin).toBe(true);
    }
    const dirs = readdirSync(STANDINS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory());
    expect(dirs.map((d) => `berth-standin/${d.name}:latest`).sort()).toEqual(
      map.images.map((e) => e.standin).sort(),
    );
    expect(standinFor(DEFAULT_IMAGES.registry, map)).toBe("berth-standin/registry:latest");
    expect(standinFor("jenkins/ssh-agent:7.0.0@sha256:" + "0".repeat(64), map)).toBe(
      "berth-standin/jenkins-agent:latest",
    );
    expect(() => standinFor("memcached:1.6-alpine", map)).toThrow(/no stand-in/);
  });
});

/** Lines of `iptables-save` without counters, for before/after comparison. */
function firewall(): string[] {
  const out = run("iptables-save", []).stdout;
  return out
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ""))
    .sort();
}

function bridges(): string[] {
  return run("ip", ["-o", "link", "show", "type", "bridge"])
    .stdout.split("\n")
    .map((l) => l.split(": ")[1]?.split("@")[0] ?? "")
    .filter((n) => n !== "")
    .sort();
}

function httpsGet(
  port: number,
  path: string,
  ca: string,
  auth?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port,
        path,
        servername: REGISTRY_NAME,
        ca,
        headers: { Host: REGISTRY_NAME, ...(auth ? { Authorization: `Basic ${auth}` } : {}) },
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("https request timed out")));
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(tools.skip)(`a real Docker engine on ${E2E_STORAGE} with the stand-in images`, () => {
  let engine: Engine | undefined;
  let api: DockerApi;
  let scratch = "";
  let firewallBefore: string[] = [];
  const docker = (...args: string[]) => runOk("docker", ["-H", engine?.host ?? "", ...args]);
  const image = (ref: string) => standinFor(ref);
  /** The stand-ins this engine had before build.sh ran (from its seed), as `docker images` lists them. */
  let atStart: string[] = [];
  /** What buildStandins returned: every stand-in but the base. */
  let tags: string[] = [];

  beforeAll(() => {
    firewallBefore = firewall();
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-"));
    let t = Date.now();
    engine = startEngine();
    api = new DockerApi(engine.socket);
    console.log(
      `e2e: engine up in ${String(Date.now() - t)} ms at ${engine.host} (seed: ${engine.seed ?? "none"})`,
    );
    atStart = docker("images", "--format", "{{.Repository}}:{{.Tag}}", "berth-standin/*").trim().split("\n");
    t = Date.now();
    tags = buildStandins(engine);
    console.log(`e2e: stand-ins ready in ${String(Date.now() - t)} ms: ${tags.join(", ")}`);
  }, 45 * 60_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (!engine) return;
    const stopped = stopEngine(engine.workdir);
    if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
  }, 5 * 60_000);

  it(`runs dockerd with the ${E2E_STORAGE} storage driver on its own ${e2eFilesystem()} file system`, async () => {
    const info = await api.info();
    expect(at(info, "Driver")).toBe(E2E_STORAGE);
    const root = at(info, "DockerRootDir");
    expect(root).toBe(join(engine?.workdir ?? "", "mnt"));
    expect(runOk("findmnt", ["-n", "-o", "FSTYPE", "--mountpoint", String(root)]).trim()).toBe(
      e2eFilesystem(),
    );
    // What each driver reports about itself: btrfs its tools' version; overlay2 its backing file
    // system and d_type support (overlay2 refuses a file system without d_type).
    const status =
      E2E_STORAGE === "btrfs"
        ? [["Build Version", expect.any(String)]]
        : [
            ["Backing Filesystem", "extfs"],
            ["Supports d_type", "true"],
          ];
    expect(at(info, "DriverStatus")).toEqual(expect.arrayContaining(status));
  });

  it("starts from the seed image: the stand-ins are there before build.sh runs, nothing else of the seed's engine is", async () => {
    const seed = engine?.seed ?? "";
    expect(seed, "the engine's disk started as a copy of a seed image").toMatch(
      new RegExp(`/seed-${E2E_STORAGE}-[0-9a-f]{16}\\.img$`),
    );
    expect(seed.startsWith(`${E2E_CACHE}/`)).toBe(true);
    expect(atStart.sort()).toEqual([...tags, loadStandinMap().base].sort());
    // btrfs: a file-system id of its own (two copies mounted at once are two file systems); ext4
    // keeps the seed's UUID (ext4 does not look at it when mounting). Our label either way.
    const device = runOk("findmnt", [
      "-n",
      "-o",
      "SOURCE",
      "--mountpoint",
      join(engine?.workdir ?? "", "mnt"),
    ]).trim();
    const probe = (what: string, file: string) =>
      runOk("blkid", ["-p", "-s", what, "-o", "value", file]).trim();
    expect(probe("UUID", device)).toMatch(/^[0-9a-f-]{36}$/);
    if (E2E_STORAGE === "btrfs") expect(probe("UUID", device)).not.toBe(probe("UUID", seed));
    expect(probe("LABEL", device)).toBe("berth-e2e");
    // The seed itself is never attached: each engine has its own copy.
    expect(run("losetup", ["-l", "-n", "-O", "BACK-FILE"]).stdout).not.toContain(seed);
    // No container, volume or network of the engine that made the seed; the default bridge is this
    // engine's own (e2e-env.sh's BERTH_E2E_BRIDGE_CIDR, default 10.213.8.1/24).
    expect(docker("ps", "-aq").trim()).toBe("");
    expect(docker("volume", "ls", "-q").trim()).toBe("");
    expect(docker("network", "ls", "--format", "{{.Name}}").trim().split("\n").sort()).toEqual([
      "bridge",
      "host",
      "none",
    ]);
    const cidr = process.env.BERTH_E2E_BRIDGE_CIDR ?? "10.213.8.1/24";
    expect(await bridgeGateway(engine as Engine)).toBe(cidr.split("/")[0]);
  });

  it("has every stand-in with the upstream image's entrypoint, command, user and paths", async () => {
    const base = await api.call("GET", `/images/${loadStandinMap().base}/json`);
    expect(at(base, "Config", "Labels", "org.berth.base-sha256"), "the base is loaded too").toMatch(
      /^[0-9a-f]{64}$/,
    );
    const config = async (ref: string) => at(await api.call("GET", `/images/${image(ref)}/json`), "Config");
    const registry = await config(DEFAULT_IMAGES.registry);
    expect(at(registry, "Entrypoint")).toEqual(["/entrypoint.sh"]);
    expect(at(registry, "Cmd")).toEqual(["/etc/docker/registry/config.yml"]);
    expect(at(registry, "Volumes")).toHaveProperty(["/var/lib/registry"]);
    const nginx = await config(DEFAULT_IMAGES.nginx);
    expect(at(nginx, "Cmd")).toEqual(["nginx", "-g", "daemon off;"]);
    expect(at(nginx, "StopSignal")).toBe("SIGQUIT");
    const agent = await config(DEFAULT_IMAGES.jenkinsAgent);
    expect(at(agent, "Entrypoint")).toEqual(["setup-sshd"]);
    expect(at(agent, "WorkingDir")).toBe("/home/jenkins");
    expect(at(agent, "Env")).toEqual(
      expect.arrayContaining(["AGENT_WORKDIR=/home/jenkins/agent", "JAVA_HOME=/opt/java/openjdk"]),
    );
    expect(at(await config(DEFAULT_IMAGES.dnsmasq), "Entrypoint")).toEqual(["dnsmasq", "-k"]);
    expect(at(await config(DEFAULT_IMAGES.holder), "Entrypoint")).toEqual(["socat"]);
    const redis = await config(SERVICE_CATALOG.redis.image);
    expect(at(redis, "Cmd")).toEqual(["redis-server"]);
    expect(at(redis, "WorkingDir")).toBe("/data");
    expect(at(await config(SERVICE_CATALOG.mongodb.image), "Cmd")).toEqual(["mongod"]);

    const ids = (ref: string, user: string) =>
      docker("run", "--rm", "--entrypoint", "id", image(ref), user).trim();
    expect(ids(DEFAULT_IMAGES.jenkinsAgent, "jenkins")).toBe(
      "uid=1000(jenkins) gid=1000(jenkins) groups=1000(jenkins)",
    );
    expect(ids(DEFAULT_IMAGES.nginx, "nginx")).toBe("uid=101(nginx) gid=101(nginx) groups=101(nginx)");
    expect(docker("run", "--rm", "--entrypoint", "sleep", image(DEFAULT_IMAGES.holder), "0")).toBe("");
    expect(docker("run", "--rm", image(DEFAULT_IMAGES.holder), "-V")).toMatch(/^socat .*version/m);
  });

  it("gives containers static addresses on a network with a fixed subnet; dnsmasq answers for them", async () => {
    await api.createNetwork("e2e-services", { subnet: SERVICES.subnet, gateway: SERVICES.gateway });
    const dnsmasqConf = renderDnsmasqConfig({
      searchDomains: [SERVICES.domain],
      listenAddresses: [SERVICES.dns],
      upstreamServers: [],
      records: [{ name: "redis-a", address: "172.30.0.10" }],
      logFacility: "-",
    });
    // As components/services.ts defines the dnsmasq container.
    await api.runContainer(
      {
        name: "e2e-dnsmasq",
        image: image(DEFAULT_IMAGES.dnsmasq),
        entrypoint: ["dnsmasq"],
        cmd: ["--keep-in-foreground", "--conf-file=/etc/dnsmasq.conf"],
        network: { name: "e2e-services", ipv4Address: SERVICES.dns },
        healthcheck: HEALTH.dnsmasq("redis-a", SERVICES.domain, SERVICES.dns),
      },
      [{ path: "/etc/dnsmasq.conf", content: dnsmasqConf }],
    );
    const dnsSettings = { dns: [SERVICES.dns], dnsSearch: [SERVICES.domain] };
    await api.runContainer({
      name: "redis-a",
      image: image(SERVICE_CATALOG.redis.image),
      network: { name: "e2e-services", ipv4Address: "172.30.0.10" },
      healthcheck: HEALTH.redis,
      ...dnsSettings,
    });
    await api.runContainer({
      name: "e2e-holder",
      image: image(DEFAULT_IMAGES.holder),
      entrypoint: ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
      network: { name: "e2e-services", ipv4Address: "172.30.0.20" },
      ...dnsSettings,
    });
    await api.waitHealthy("e2e-dnsmasq");
    await api.waitHealthy("redis-a");

    const address = async (name: string) =>
      at(await api.inspect(name), "NetworkSettings", "Networks", "e2e-services", "IPAddress");
    expect(await address("e2e-dnsmasq")).toBe(SERVICES.dns);
    expect(await address("redis-a")).toBe("172.30.0.10");
    expect(await address("e2e-holder")).toBe("172.30.0.20");

    // From inside the test's own network: the name resolves through dnsmasq, the address answers.
    const lookup = docker("exec", "e2e-holder", "nslookup", `redis-a.${SERVICES.domain}`, SERVICES.dns);
    expect(lookup).toMatch(/Address:?\s+172\.30\.0\.10/);
    const pong = docker("exec", "e2e-holder", "sh", "-c", "printf 'PING\\r\\n' | nc -w 3 redis-a 6379");
    expect(pong).toBe("+PONG\r\n");
    const ghost = run("docker", [
      "-H",
      engine?.host ?? "",
      "exec",
      "e2e-holder",
      "nslookup",
      "ghost.ci.internal",
    ]);
    expect(ghost.stdout + ghost.stderr).toMatch(/NXDOMAIN|can't find/);

    // The holder's PID 1 traps TERM: `docker stop` returns at once, not after the 10 s grace period.
    const t = Date.now();
    docker("stop", "e2e-holder");
    expect(Date.now() - t).toBeLessThan(5_000);
  });

  it("serves the registry behind nginx (TLS, basic auth) on a port published on 127.0.0.1", async () => {
    // TLS material and htpasswd as the Registry component renders them.
    const key = join(scratch, "registry.key");
    const crt = join(scratch, "registry.crt");
    runOk("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-days", "2", "-subj", `/CN=${REGISTRY_NAME}`,
      "-addext", `subjectAltName=DNS:${REGISTRY_NAME}`,
      "-keyout", key, "-out", crt,
    ]); // prettier-ignore
    const password = randomBytes(12).toString("hex");
    const htpasswd = renderHtpasswd([htpasswdEntry("ci", password, { cost: 4 })]);
    const nginxConf = renderNginxConfig({
      serverName: REGISTRY_NAME,
      listenPort: 443,
      tlsCertificatePath: "/etc/nginx/berth/registry.crt",
      tlsKeyPath: "/etc/nginx/berth/registry.key",
      htpasswdPath: "/etc/nginx/berth/htpasswd",
      upstream: "registry:5000",
    });

    await api.createNetwork("e2e-registry");
    await api.runContainer(
      {
        name: "e2e-registry",
        image: image(DEFAULT_IMAGES.registry),
        network: { name: "e2e-registry", aliases: ["registry"] },
        healthcheck: HEALTH.registry,
      },
      [
        {
          path: "/etc/docker/registry/config.yml",
          content: renderRegistryConfig({ httpSecret: randomBytes(24).toString("hex") }),
          mode: "0600",
        },
      ],
    );
    await api.waitHealthy("e2e-registry");
    await api.runContainer(
      {
        name: "e2e-registry-nginx",
        image: image(DEFAULT_IMAGES.nginx),
        network: { name: "e2e-registry" },
        publish: [{ containerPort: 443 }],
        healthcheck: HEALTH.nginx,
      },
      [
        { path: "/etc/nginx/nginx.conf", content: nginxConf },
        { path: "/etc/nginx/berth/registry.crt", content: readFileSync(crt) },
        { path: "/etc/nginx/berth/registry.key", content: readFileSync(key), mode: "0600" },
        // Group 101 (nginx): the workers read it on every request.
        { path: "/etc/nginx/berth/htpasswd", content: htpasswd, mode: "0640", gid: 101 },
      ],
    );
    await api.waitHealthy("e2e-registry-nginx");

    const network = await api.call("GET", "/networks/e2e-registry");
    const subnet = at((at(network, "IPAM", "Config") as Json[])[0], "Subnet");
    expect(subnet, "automatic subnets come from the suite's own pool").toMatch(
      /^10\.213\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./,
    );

    const port = await api.hostPort("e2e-registry-nginx", 443);
    const ca = readFileSync(crt, "utf8");
    const anonymous = await httpsGet(port, "/v2/", ca);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toMatch(/^Basic realm=/);
    const wrong = await httpsGet(port, "/v2/", ca, Buffer.from(`ci:not-${password}`).toString("base64"));
    expect(wrong.status).toBe(401);
    const ok = await httpsGet(port, "/v2/", ca, Buffer.from(`ci:${password}`).toString("base64"));
    expect(ok.status).toBe(200);
    expect(ok.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  it("runs a Jenkins agent that takes its key from the environment and keeps the uploaded host keys", async () => {
    const keys = join(scratch, "agent");
    runOk("mkdir", ["-p", keys]);
    runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", join(keys, "client")]);
    runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(keys, "host_ed25519")]);
    runOk("ssh-keygen", ["-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", join(keys, "host_rsa")]);
    const hostKeys = agentHostKeyPaths();
    const file = (name: string) => readFileSync(join(keys, name));
    await api.runContainer(
      {
        name: "e2e-agent",
        image: image(DEFAULT_IMAGES.jenkinsAgent),
        env: [`JENKINS_AGENT_SSH_PUBKEY=${file("client.pub").toString("utf8").trim()}`],
        publish: [{ containerPort: 22 }],
        healthcheck: HEALTH.agent,
      },
      [
        { path: "/etc/ssh/sshd_config", content: renderAgentSshdConfig() },
        { path: hostKeys.ed25519, content: file("host_ed25519"), mode: "0600" },
        { path: `${hostKeys.ed25519}.pub`, content: file("host_ed25519.pub") },
        { path: hostKeys.rsa, content: file("host_rsa"), mode: "0600" },
        { path: `${hostKeys.rsa}.pub`, content: file("host_rsa.pub") },
      ],
    );
    await api.waitHealthy("e2e-agent");
    const port = await api.hostPort("e2e-agent", 22);
    const knownHosts = join(keys, "known_hosts");
    writeFileSync(knownHosts, `[127.0.0.1]:${String(port)} ${file("host_ed25519.pub").toString("utf8")}`);
    const ssh = run("ssh", [
      "-i", join(keys, "client"), "-p", String(port),
      "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "HostKeyAlgorithms=ssh-ed25519",
      "-o", "ConnectTimeout=10",
      "jenkins@127.0.0.1",
      'echo "$USER $HOME $JAVA_HOME"; pwd; java -version 2>&1 | head -n 1; git --version; hg --version -q',
    ]); // prettier-ignore
    expect(ssh.stderr).not.toMatch(/Permission denied|Host key verification failed/);
    expect(ssh.status, ssh.stderr).toBe(0);
    const lines = ssh.stdout.trim().split("\n");
    expect(lines[0]).toBe("jenkins /home/jenkins /opt/java/openjdk");
    expect(lines[1]).toBe("/home/jenkins");
    expect(lines[2]).toMatch(/openjdk version "17\./);
    expect(lines[3]).toMatch(/^git version /);
    expect(lines[4]).toMatch(/Mercurial/);
  });

  /** Starts the minimal service `kind` as `e2e-<kind>` with its port published; its host port once healthy. */
  const publishedService = async (kind: "redis" | "mongodb"): Promise<number> => {
    const name = `e2e-${kind}`;
    await api.runContainer({
      name,
      image: image(SERVICE_CATALOG[kind].image),
      publish: [{ containerPort: SERVICE_CATALOG[kind].port }],
      healthcheck: HEALTH[kind],
    });
    await api.waitHealthy(name);
    return api.hostPort(name, SERVICE_CATALOG[kind].port);
  };

  it("publishes redis on 127.0.0.1 from the default bridge, as the minimal services are", async () => {
    const port = await publishedService("redis");
    const reply = await exchange(port, Buffer.from("PING\r\nSET berth e2e\r\nGET berth\r\n"), (b) =>
      b.toString().includes("e2e\r\n"),
    );
    expect(reply.toString()).toBe("+PONG\r\n+OK\r\n$3\r\ne2e\r\n");
    // Like upstream: the server runs as `redis`, in /data.
    expect(docker("exec", "e2e-redis", "stat", "-c", "%U", "/proc/1")).toBe("redis\n");
    expect(docker("exec", "e2e-redis", "redis-cli", "config", "get", "dir")).toBe("dir\n/data\n");
  });

  it("answers the MongoDB health check and a wire-protocol ping with the documented substitute", async () => {
    const port = await publishedService("mongodb");
    const reply = await exchange(port, mongoPing(), (b) => b.length >= 4 && b.length >= b.readInt32LE(0));
    expect(reply.readInt32LE(8), "responseTo").toBe(7);
    expect(reply.readInt32LE(12), "opCode OP_MSG").toBe(2013);
    // { ok: 1.0 }: type 0x01 "ok" double 1.
    expect(reply.subarray(21).includes(Buffer.from([0x01, 0x6f, 0x6b, 0x00]))).toBe(true);
    expect(docker("exec", "e2e-mongodb", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok")).toBe(
      "1\n",
    );
  });

  it("tears everything down: no mount, loop device, bridge or firewall rule is left", async () => {
    const workdir = engine?.workdir ?? "";
    const loop = readFileSync(join(workdir, "loopdev"), "utf8").trim();
    expect(loop).toMatch(/^\/dev\/loop\d+$/);
    // What this engine owns: its default bridge, its networks' bridges and subnets.
    const ours = [readFileSync(join(workdir, "bridge"), "utf8").trim()];
    for (const name of ["e2e-services", "e2e-registry"]) {
      const net = await api.call("GET", `/networks/${name}`);
      ours.push(`br-${String(at(net, "Id")).slice(0, 12)}`);
      ours.push(String(at((at(net, "IPAM", "Config") as Json[])[0], "Subnet")));
    }
    expect(
      ours.filter((b) => b.startsWith("br-") || b.startsWith("bt")).every((b) => bridges().includes(b)),
    ).toBe(true);

    const stopped = stopEngine(workdir);
    expect(stopped.status, stopped.stderr).toBe(0);
    engine = undefined;

    expect(readFileSync("/proc/mounts", "utf8")).not.toContain(workdir);
    const loops = run("losetup", ["-l", "-n", "-O", "NAME,BACK-FILE"]).stdout;
    expect(loops).not.toContain(workdir);
    expect(existsSync(workdir)).toBe(false);
    const left = bridges();
    for (const name of ours) expect(left).not.toContain(name);
    const added = firewall().filter((l) => !firewallBefore.includes(l));
    for (const name of ours)
      expect(
        added.filter((l) => l.includes(name)),
        name,
      ).toEqual([]);
    // Other sessions may run their own dockerd on this machine; when none does, the firewall is
    // exactly as before, DOCKER* chains included.
    if (run("pgrep", ["-x", "dockerd"]).stdout.trim() === "") expect(added).toEqual([]);
    // Idempotent: a second down is a no-op.
    expect(stopEngine(workdir).status).toBe(0);
  });
});

// The fallback when a seed image cannot be used: an empty disk, said on stderr, and the stand-ins
// loaded from the cache (`docker load` of the saved archive, the path every engine took before
// seeds). One storage driver is enough: neither step depends on it.
describe.skipIf(tools.skip || E2E_STORAGE !== "btrfs")("an engine whose seed image cannot be used", () => {
  let scratch = "";
  let engine: Engine | undefined;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-seed-"));
  });

  afterAll(() => {
    if (engine) {
      const stopped = stopEngine(engine.workdir);
      if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 5 * 60_000);

  /** A 16 MiB file of zeros as seed-<storage>-bad.img, with a record that matches it or not. */
  const badSeed = (recordMatches: boolean): string => {
    const img = join(scratch, `seed-${E2E_STORAGE}-bad.img`);
    writeFileSync(img, Buffer.alloc(16 * 1024 * 1024));
    const stamp = runOk("stat", ["-c", "%s %Y", img]).trim();
    writeFileSync(join(scratch, `seed-${E2E_STORAGE}-bad.ok`), recordMatches ? `${stamp}\n` : "1 1\n");
    return img;
  };

  const up = (seed: string) => {
    const workdir = mkdtempSync("/tmp/be-");
    const r = run("bash", [E2E_ENV, "up", workdir], {
      timeoutMs: 180_000,
      env: { BERTH_E2E_STORAGE: E2E_STORAGE, BERTH_E2E_SEED: seed },
    });
    expect(r.status, r.stderr).toBe(0);
    engine = engineOf(workdir, r.stdout, r.stderr);
    return r.stderr;
  };

  it("starts on an empty disk when the seed does not match its record", async () => {
    const stderr = up(badSeed(false));
    expect(stderr).toMatch(/seed .*bad\.img does not match its record; starting on an empty disk instead/);
    expect(engine?.seed).toBeUndefined();
    const api = new DockerApi(engine?.socket ?? "");
    expect(at(await api.info(), "Driver")).toBe(E2E_STORAGE);
    expect(at(await api.info(), "Images")).toBe(0);
    const stopped = stopEngine(engine?.workdir ?? "");
    expect(stopped.status, stopped.stderr).toBe(0);
    engine = undefined;
  });

  it("starts on an empty disk when the engine does not start from the copy, and build.sh loads the stand-ins", async () => {
    const stderr = up(badSeed(true));
    expect(stderr).toMatch(/not a btrfs image/);
    expect(stderr).toMatch(
      /did not start from the seed .*bad\.img; cleaning up and starting on an empty disk/,
    );
    expect(engine?.seed).toBeUndefined();
    const api = new DockerApi(engine?.socket ?? "");
    expect(at(await api.info(), "Images")).toBe(0);
    const t = Date.now();
    const loaded = run("bash", [STANDINS_BUILD, engine?.socket ?? "", E2E_CACHE], { timeoutMs: 45 * 60_000 });
    expect(loaded.status, loaded.stderr).toBe(0);
    console.log(`e2e: stand-ins loaded into an empty engine in ${String(Date.now() - t)} ms`);
    expect(loaded.stderr).toMatch(/loading cached stand-ins \(key [0-9a-f]{16}\)/);
    const key = /key ([0-9a-f]{16})/.exec(loaded.stderr)?.[1];
    for (const tag of loaded.stdout.trim().split("\n")) {
      const labels = at(await api.call("GET", `/images/${tag}/json`), "Config", "Labels");
      expect(at(labels, "org.berth.standin-key"), tag).toBe(key);
    }
    // Loaded, they are found: a second build.sh neither loads nor builds.
    const again = run("bash", [STANDINS_BUILD, engine?.socket ?? "", E2E_CACHE]);
    expect(again.stderr).toMatch(/stand-ins already in this daemon/);
  });
});
