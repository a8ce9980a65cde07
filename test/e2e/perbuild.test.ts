/**
 * Per-build agents end to end, on a real dockerd on btrfs:
 *
 * 1. dockerd's mutual-TLS endpoint, with the TLS settings of the daemon.json Berth renders for a
 *    staging host (`dockerDaemonJson`), and certificates shaped like the stack's (an ECDSA P-256 CA,
 *    a server certificate with the host's names and 127.0.0.1, a client certificate), made here
 *    with openssl. `tcp://0.0.0.0:2376` becomes `tcp://127.0.0.1:<free port>`. The endpoint answers
 *    `/_ping` to the client certificate only: no certificate, or one from another CA, is refused.
 * 2. The per-build agent image (images/jenkins-agent/Dockerfile), built through that endpoint FROM
 *    the stand-in Debian base, runs as the Docker plugin would run it: through the TLS endpoint,
 *    SSH published on 127.0.0.1. The Jenkins key logs in as `jenkins`; password login is refused;
 *    and the plugin's own `injectSSHKey` start (its sshd command line plus /root/authorized_key)
 *    works too.
 * 3. The REAL staging program for staging-ci-1 (run under Pulumi's mocks) applied to the same engine
 *    with testkit/e2e/harness.ts, as services.test.ts does for testing-ci-1: registry behind nginx (TLS,
 *    basic auth), agents, dnsmasq and the production-like services on `ci-services`. Then
 *    images/jenkins-agent/build-and-push.sh, the real script, builds the agent image and pushes it
 *    to that registry with the program's credentials; dockerd must trust the registry's CA (a
 *    certs.d entry for the registry's address); an anonymous pull is refused.
 * 4. A per-build container pulled and started through the TLS endpoint the way the Docker plugin
 *    does it from Berth's CASC template (registry login, `network` and `dnsString` of the template,
 *    injectSSHKey) accepts the Jenkins key, and a job in it resolves the production-like names
 *    through dnsmasq and reaches the services; without those two template fields it cannot.
 *
 * The engine comes from test/support/dockerd-btrfs.sh directly (scripts/e2e-env.sh writes its own
 * daemon.json, and this test needs the rendered one), its disk a copy of the suite's btrfs seed image
 * (scripts/e2e-env.sh seed) when there is one; teardown is e2e-env.sh `down`, which removes
 * the containers, stops dockerd by its recorded pid, unmounts and deletes the work directory.
 *
 * What cannot be as on a host is substituted visibly and printed (`e2e:` lines):
 *   - the registry is reached at `<engine bridge address>:<free port>`, not
 *     `registry.staging.ci.example.com:443`: the name would need the machine's /etc/hosts, and an
 *     address on 127.0.0.0/8 would not do, because dockerd treats every registry on loopback as
 *     insecure and skips TLS verification (the first registry test proves the CA is really
 *     checked). The test's registry certificate carries that address as an IP SAN;
 *   - dockerd reads registry CAs only from /etc/docker/certs.d/<host:port>/ca.crt, so the test
 *     writes one entry, for that address and port, and removes it in afterAll;
 *   - the production-like and minimal postgres are left out (no stand-in image yet,
 *     images/standins/images.json), and so is the registry's pull-through cache (distribution in
 *     proxy mode contacts Docker Hub when it starts and exits when it cannot); the mock's TLS
 *     material and SSH host keys are replaced by real ones.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { AGENT_IMAGE_TAG_ENV, gitRevision, loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { SERVICE_CATALOG } from "../../config/images.ts";
import type { BerthConfig } from "../../config/types.ts";
import { DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { DOCKER_TLS_DIR, dockerDaemonJson, type JsonInput } from "../../ignition/index.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";
import { cascInput } from "../../program.ts";
import { jenkinsDockerClouds } from "../../renderers/casc.ts";
import { BUILD_TLS_DIR, BUILD_TLS_VOLUME, clientCaBundle } from "../../renderers/docker-access.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  buildStandins,
  run,
  runOk,
  standinSeed,
  stopEngine,
  type Engine,
} from "../../testkit/e2e/support/engine.ts";
import { agentHostKeyUploads, issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { retargetHolders, viaPublishedPort } from "./support/holders.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";
import {
  applyHostToEngine,
  freePort,
  generatedRegistryPasswords,
  type AppliedHost,
} from "../../testkit/e2e/harness.ts";

const DOCKERD_BTRFS = resolve(PROJECT_ROOT, "test/support/dockerd-btrfs.sh");
const AGENT_DIR = resolve(PROJECT_ROOT, "images/jenkins-agent");
const BUILD_AND_PUSH = join(AGENT_DIR, "build-and-push.sh");
const STANDIN_BASE = "berth-standin/base:bookworm";
const AGENT_TAG = "berth-e2e/jenkins-agent:perbuild";
const HOST = "staging-ci-1";
/** The engine's own bridge (dockerd-btrfs.sh creates it): a local address that is not loopback. */
const BRIDGE_CIDR = "10.213.9.1/24";
const BRIDGE_IP = BRIDGE_CIDR.split("/")[0] as string;
/** Where dockerd looks for a registry's CA: `<dir>/<host[:port]>/ca.crt`. */
const DOCKER_CERTS_D = "/etc/docker/certs.d";
const NGINX_CERT = "/etc/nginx/berth/registry.crt";
const NGINX_KEY = "/etc/nginx/berth/registry.key";
/**
 * The command the Docker plugin's `injectSSHKey` strategy gives a build container: sshd on port 22,
 * asking /root/authorized_key (a script the plugin copies in before the start) for the keys.
 */
const INJECT_SSH_KEY_COMMAND = [
  "/usr/sbin/sshd",
  "-D",
  "-p",
  "22",
  "-o",
  "AuthorizedKeysCommand=/root/authorized_key",
  "-o",
  "AuthorizedKeysCommandUser=root",
];

const tools = requireE2eTools("per-build agents over dockerd TLS", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh", debianPackage: "openssh-client" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
  { tool: "skopeo", debianPackage: "skopeo" },
  { tool: "git", debianPackage: "git" },
]);

/** openssl, failing loudly. */
const openssl = (...args: string[]) => runOk("openssl", args);

interface Pki {
  dir: string;
  ca: string;
  /** DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem. */
  clientDir: string;
  otherClientDir: string;
  /** Build credentials of this host (its own build CA) and of another host of the stack. */
  buildClientDir: string;
  otherHostBuildClientDir: string;
  /** dockerd's tlscacert: the program's bundle of the dockerd CA and this host's build CA. */
  clientCas: string;
  server: { cert: string; key: string };
}

/** A CA, a server certificate and a client certificate shaped like the stack's (components/pki.ts). */
function makePki(dir: string): Pki {
  const ext = (name: string, lines: string[]) => {
    const file = join(dir, `${name}.ext`);
    writeFileSync(file, `${lines.join("\n")}\n`);
    return file;
  };
  const ca = (name: string, cn: string) => {
    openssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      join(dir, `${name}-key.pem`),
      "-out",
      join(dir, `${name}.pem`),
      "-days",
      "2",
      "-subj",
      `/O=Berth/CN=${cn}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    );
  };
  const issue = (name: string, caName: string, cn: string, extLines: string[]) => {
    openssl(
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      join(dir, `${name}-key.pem`),
      "-out",
      join(dir, `${name}.csr`),
      "-subj",
      `/O=Berth/CN=${cn}`,
    );
    openssl(
      "x509",
      "-req",
      "-in",
      join(dir, `${name}.csr`),
      "-CA",
      join(dir, `${caName}.pem`),
      "-CAkey",
      join(dir, `${caName}-key.pem`),
      "-set_serial",
      `0x${randomBytes(8).toString("hex")}`,
      "-days",
      "2",
      "-out",
      join(dir, `${name}.pem`),
      "-extfile",
      ext(name, extLines),
    );
  };
  ca("ca", "Berth e2e dockerd CA");
  ca("other-ca", "Some other CA");
  // As StackCa.issue for a host: CN = host, SANs = host, localhost, the addresses (here 127.0.0.1).
  issue("server", "ca", HOST, [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    `subjectAltName=DNS:${HOST},DNS:localhost,IP:127.0.0.1`,
  ]);
  const clientExt = [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=clientAuth",
  ];
  issue("client", "ca", "jenkins-controller", clientExt);
  issue("other-client", "other-ca", "jenkins-controller", clientExt);
  // As CiEnvironment's build credentials: one build CA per host, a client certificate from each.
  ca("build-ca-1", `Berth ${HOST} build CA`);
  ca("build-ca-2", "Berth staging-ci-2 build CA");
  issue("build-client-1", "build-ca-1", `builds@${HOST}`, clientExt);
  issue("build-client-2", "build-ca-2", "builds@staging-ci-2", clientExt);
  const clientCas = join(dir, "client-cas.pem");
  writeFileSync(
    clientCas,
    clientCaBundle([
      readFileSync(join(dir, "ca.pem"), "utf8"),
      readFileSync(join(dir, "build-ca-1.pem"), "utf8"),
    ]),
  );
  const certDir = (name: string, client: string, caName: string) => {
    const d = join(dir, name);
    mkdirSync(d, { mode: 0o700 });
    writeFileSync(join(d, "ca.pem"), readFileSync(join(dir, `${caName}.pem`)));
    writeFileSync(join(d, "cert.pem"), readFileSync(join(dir, `${client}.pem`)));
    writeFileSync(join(d, "key.pem"), readFileSync(join(dir, `${client}-key.pem`)), { mode: 0o600 });
    return d;
  };
  return {
    dir,
    ca: join(dir, "ca.pem"),
    clientDir: certDir("client", "client", "ca"),
    // Trusts the right server CA, but presents a certificate from another CA.
    otherClientDir: certDir("other-client", "other-client", "ca"),
    buildClientDir: certDir("build-client-1", "build-client-1", "ca"),
    otherHostBuildClientDir: certDir("build-client-2", "build-client-2", "ca"),
    clientCas,
    server: { cert: join(dir, "server.pem"), key: join(dir, "server-key.pem") },
  };
}

/**
 * The daemon.json of the test's dockerd: the one Berth renders for a staging host, with
 *   - `hosts` taken out: dockerd-btrfs.sh passes `-H unix://…` itself (a `hosts` key plus -H is a
 *     startup error), and the rendered `tcp://0.0.0.0:<port>` is passed as `-H tcp://127.0.0.1:<free>`;
 *   - the TLS file paths moved from /etc/docker/tls to the test's certificates;
 *   - `bip` out (the script gives dockerd a private bridge; bip and bridge are exclusive);
 *   - `metrics-addr` out: it names the host's private address, which this machine does not have
 *     (dockerd does not start when it cannot bind it; test/e2e/monitoring.test.ts covers it);
 *   - `live-restore` off, so containers stop with the daemon and teardown leaves no shim behind.
 */
function testDaemonJson(
  rendered: Record<string, JsonInput>,
  pki: Pki,
  port: number,
): { daemon: Record<string, JsonInput>; tcpHost: string } {
  const hosts = rendered.hosts as string[];
  const tcp = hosts.find((h) => h.startsWith("tcp://"));
  if (tcp !== "tcp://0.0.0.0:2376") throw new Error(`unexpected rendered hosts ${JSON.stringify(hosts)}`);
  const moved = (key: string, file: string) => {
    const path = String(rendered[key]);
    if (!path.startsWith(`${DOCKER_TLS_DIR}/`))
      throw new Error(`${key}: ${path} is not under ${DOCKER_TLS_DIR}`);
    return file;
  };
  const daemon: Record<string, JsonInput> = { ...rendered };
  delete daemon.hosts;
  delete daemon.bip;
  delete daemon["metrics-addr"];
  daemon["live-restore"] = false;
  daemon.tlscacert = moved("tlscacert", pki.clientCas);
  daemon.tlscert = moved("tlscert", pki.server.cert);
  daemon.tlskey = moved("tlskey", pki.server.key);
  return { daemon, tcpHost: tcp.replace("0.0.0.0:2376", `127.0.0.1:${port}`) };
}

type Ping = { ok: true; status: number; body: string } | { ok: false; error: string };

/** GET /_ping over TLS to 127.0.0.1:`port`, optionally with a client certificate. */
function ping(port: number, ca: string, client?: string): Promise<Ping> {
  return new Promise((resolvePromise) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port,
        path: "/_ping",
        ca: readFileSync(ca),
        ...(client
          ? { cert: readFileSync(join(client, "cert.pem")), key: readFileSync(join(client, "key.pem")) }
          : {}),
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolvePromise({
            ok: true,
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", (e) => resolvePromise({ ok: false, error: e.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e) =>
      resolvePromise({ ok: false, error: `${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}` }),
    );
    req.end();
  });
}

/** Resolves once 127.0.0.1:`port` greets with an SSH banner. */
async function waitForSsh(port: number, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    last = await new Promise<string>((resolvePromise) => {
      const socket = connect({ host: "127.0.0.1", port });
      let data = "";
      socket.setTimeout(3_000, () => socket.destroy());
      socket.on("data", (c: Buffer) => {
        data += c.toString("utf8");
        if (data.includes("\n")) socket.destroy();
      });
      socket.on("close", () => resolvePromise(data));
      socket.on("error", () => resolvePromise(""));
    });
    if (last.startsWith("SSH-2.0-")) return last.trim();
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no SSH banner on 127.0.0.1:${port} (last: ${JSON.stringify(last)})`);
}

describe.skipIf(tools.skip)("per-build agents: dockerd mutual TLS and the agent image", () => {
  let scratch = "";
  let workdir = "";
  let pki: Pki;
  let port = 0;
  let tcpHost = "";
  let started: ReturnType<typeof run> | undefined;
  let engine: Engine | undefined;
  const unixHost = () => `unix://${join(workdir, "docker.sock")}`;
  /** The docker CLI through the mutual-TLS endpoint, as the Jenkins Docker plugin talks to a host. */
  const tlsEnv = () => ({
    DOCKER_HOST: tcpHost,
    DOCKER_TLS_VERIFY: "1",
    DOCKER_CERT_PATH: pki.clientDir,
    DOCKER_BUILDKIT: "0",
  });
  const dockerTls = (args: string[], timeoutMs = 120_000) =>
    run("docker", args, { env: tlsEnv(), timeoutMs });
  const sshArgs = (p: number, extra: string[]) => [
    "-p",
    String(p),
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "BatchMode=yes",
    ...extra,
  ];

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "berth-perbuild-"));
    chmodSync(scratch, 0o700);
    pki = makePki(scratch);
    port = await freePort();

    // The staging host's rendered daemon.json, with this test's server certificate.
    const config = loadStack(PROJECT_ROOT, "staging", { agentImageTag: "e2e" });
    const rendered = dockerDaemonJson({
      ...hostIgnitionBase(config, HOST),
      dockerVolumeId: "00000000-0000-4000-a000-000000000000",
      dockerTls: {
        caCertPem: readFileSync(pki.clientCas, "utf8"),
        serverCertPem: readFileSync(pki.server.cert, "utf8"),
        serverKeyPem: readFileSync(pki.server.key, "utf8"),
        port: config.hosts.dockerTlsPort,
      },
    });
    expect(rendered).toMatchObject({ tls: true, tlsverify: true });
    const made = testDaemonJson(rendered, pki, port);
    tcpHost = made.tcpHost;

    // Short path: dockerd puts Unix sockets under the work directory (108-byte limit).
    workdir = mkdtempSync("/tmp/bp-");
    // The disk starts as a copy of the suite's btrfs seed image (the stand-ins already in it), or,
    // when that cannot be had or dockerd does not start from it, empty (build.sh then loads them).
    const seed = standinSeed("btrfs");
    const start = (seedImage: string | undefined) => {
      mkdirSync(workdir, { recursive: true });
      writeFileSync(join(workdir, "daemon.json"), `${JSON.stringify(made.daemon, null, 2)}\n`);
      return run("bash", [DOCKERD_BTRFS, "start", workdir], {
        timeoutMs: 180_000,
        env: {
          BERTH_LABEL: "berth-perbuild",
          BERTH_DISK_SIZE: "12G",
          BERTH_BRIDGE_CIDR: BRIDGE_CIDR,
          BERTH_NETFILTER: "1",
          BERTH_DOCKERD_ARGS: `--host=${tcpHost}`,
          BERTH_SEED: seedImage ?? "",
        },
      });
    };
    started = start(seed);
    if (started.status !== 0 && seed !== undefined) {
      console.error(
        `e2e: dockerd did not start from the seed ${seed}; an empty disk instead:\n${started.stderr}`,
      );
      const stopped = stopEngine(workdir);
      if (stopped.status !== 0) throw new Error(`teardown of ${workdir} failed:\n${stopped.stderr}`);
      started = start(undefined);
    }
    if (started.status !== 0) throw new Error(`dockerd did not start:\n${started.stderr}`);

    // The stand-in Debian base (and the other stand-ins) from the e2e cache.
    engine = { workdir, socket: join(workdir, "docker.sock"), host: unixHost() };
    buildStandins(engine);
  }, 45 * 60_000);

  afterAll(() => {
    if (workdir) {
      // Removes the containers while dockerd answers, stops it by its recorded pid, unmounts, deletes.
      const stopped = stopEngine(workdir);
      if (stopped.status !== 0) console.error(`teardown of ${workdir} failed:\n${stopped.stderr}`);
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 5 * 60_000);

  it("dockerd starts with the rendered TLS settings, listening on 127.0.0.1 only", () => {
    expect(started?.status, started?.stderr).toBe(0);
    const daemon = JSON.parse(readFileSync(join(workdir, "daemon.json"), "utf8")) as Record<string, unknown>;
    expect(daemon).toMatchObject({ tls: true, tlsverify: true, "storage-driver": "btrfs" });
    expect(tcpHost).toBe(`tcp://127.0.0.1:${port}`);
  });

  it("answers /_ping over 127.0.0.1 to the client certificate of its CA", async () => {
    const r = await ping(port, pki.ca, pki.clientDir);
    expect(r).toEqual({ ok: true, status: 200, body: "OK" });
    const version = dockerTls(["version", "--format", "{{.Server.Os}}"]);
    expect(version.stdout.trim(), version.stderr).toBe("linux");
  });

  it("refuses a client without a certificate", async () => {
    const r = await ping(port, pki.ca);
    expect(r.ok, JSON.stringify(r)).toBe(false);
    const cli = run("docker", ["version"], {
      env: { DOCKER_HOST: tcpHost, DOCKER_TLS_VERIFY: "", DOCKER_CERT_PATH: "" },
      timeoutMs: 30_000,
    });
    expect(cli.status).not.toBe(0);
  });

  it("refuses a client certificate from another CA", async () => {
    const r = await ping(port, pki.ca, pki.otherClientDir);
    expect(r.ok, JSON.stringify(r)).toBe(false);
    const cli = run("docker", ["version", "--format", "{{.Server.Os}}"], {
      env: { ...tlsEnv(), DOCKER_CERT_PATH: pki.otherClientDir },
      timeoutMs: 30_000,
    });
    expect(cli.status).not.toBe(0);
    expect(cli.stdout).not.toContain("linux");
  });

  it("accepts this host's build credentials and refuses another host's (Docker access tls)", async () => {
    const own = await ping(port, pki.ca, pki.buildClientDir);
    expect(own).toEqual({ ok: true, status: 200, body: "OK" });
    const version = run("docker", ["version", "--format", "{{.Server.Os}}"], {
      env: { ...tlsEnv(), DOCKER_CERT_PATH: pki.buildClientDir },
      timeoutMs: 30_000,
    });
    expect(version.stdout.trim(), version.stderr).toBe("linux");

    const other = await ping(port, pki.ca, pki.otherHostBuildClientDir);
    expect(other.ok, JSON.stringify(other)).toBe(false);
    const cli = run("docker", ["version", "--format", "{{.Server.Os}}"], {
      env: { ...tlsEnv(), DOCKER_CERT_PATH: pki.otherHostBuildClientDir },
      timeoutMs: 30_000,
    });
    expect(cli.status).not.toBe(0);
    expect(cli.stdout).not.toContain("linux");
  });

  describe("the agent image", () => {
    const key = () => join(scratch, "jenkins_ed25519");
    const otherKey = () => join(scratch, "other_ed25519");
    let agentPort = 0;

    beforeAll(() => {
      for (const k of [key(), otherKey()])
        runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "jenkins@e2e", "-f", k]);
      // Built through the TLS endpoint. `--network host` like images/standins/build.sh: the build's
      // apt-get reaches the Debian mirror the way this machine's apt does.
      const built = dockerTls(
        [
          "build",
          "-q",
          "--network",
          "host",
          "--build-arg",
          `BASE=${STANDIN_BASE}`,
          "-t",
          AGENT_TAG,
          AGENT_DIR,
        ],
        20 * 60_000,
      );
      if (built.status !== 0) throw new Error(`docker build failed:\n${built.stderr}\n${built.stdout}`);
    }, 25 * 60_000);

    it("has user jenkins (uid 1000), the agent directory, git, Mercurial and Java 17", () => {
      const id = dockerTls(["run", "--rm", "--entrypoint", "id", AGENT_TAG, "jenkins"]);
      expect(id.stdout.trim(), id.stderr).toBe("uid=1000(jenkins) gid=1000(jenkins) groups=1000(jenkins)");
      const tools = dockerTls([
        "run",
        "--rm",
        "--entrypoint",
        "bash",
        AGENT_TAG,
        "-c",
        "stat -c '%U %a' /home/jenkins/agent; git --version; hg --version -q; java -version 2>&1 | head -n 1",
      ]);
      expect(tools.status, tools.stderr).toBe(0);
      const [dir, git, hg, java] = tools.stdout.trim().split("\n");
      expect(dir).toBe("jenkins 755");
      expect(git).toMatch(/^git version /);
      expect(hg).toMatch(/Mercurial/);
      expect(java).toMatch(/version "17\./);
      const inspect = dockerTls([
        "image",
        "inspect",
        "--format",
        "{{json .Config.Volumes}} {{json .Config.Entrypoint}}",
        AGENT_TAG,
      ]);
      expect(inspect.stdout.trim()).toBe(
        '{"/home/jenkins/agent":{}} ["/usr/local/bin/berth-agent-entrypoint"]',
      );
    });

    it("starts through the TLS endpoint with sshd published on 127.0.0.1", async () => {
      const pub = readFileSync(`${key()}.pub`, "utf8").trim();
      const created = dockerTls([
        "run",
        "-d",
        "--name",
        "pb-agent",
        "-e",
        `JENKINS_AGENT_SSH_PUBKEY=${pub}`,
        "-p",
        "127.0.0.1::22",
        AGENT_TAG,
      ]);
      expect(created.status, created.stderr).toBe(0);
      const mapped = dockerTls(["port", "pb-agent", "22/tcp"]).stdout.trim();
      expect(mapped).toMatch(/^127\.0\.0\.1:\d+$/);
      agentPort = Number(mapped.split(":")[1]);
      expect(await waitForSsh(agentPort)).toMatch(/^SSH-2\.0-OpenSSH/);
      const effective = dockerTls(["exec", "pb-agent", "/usr/sbin/sshd", "-T"]).stdout;
      expect(effective).toMatch(/^passwordauthentication no$/m);
      expect(effective).toMatch(/^permitrootlogin no$/m);
      expect(effective).toMatch(/^kbdinteractiveauthentication no$/m);
    });

    it("lets the Jenkins key log in as jenkins, in the agent's home", () => {
      const r = run("ssh", [
        ...sshArgs(agentPort, ["-i", key(), "-o", "IdentitiesOnly=yes"]),
        "jenkins@127.0.0.1",
        "id -un; pwd; cat ~/.ssh/authorized_keys | wc -l",
      ]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim().split("\n")).toEqual(["jenkins", "/home/jenkins", "1"]);
    });

    it("refuses password login, another key, and root", () => {
      const password = run("ssh", [
        ...sshArgs(agentPort, ["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"]),
        "jenkins@127.0.0.1",
        "true",
      ]);
      expect(password.status).toBe(255);
      expect(password.stderr).toMatch(/Permission denied \(publickey\)/);
      const other = run("ssh", [
        ...sshArgs(agentPort, ["-i", otherKey(), "-o", "IdentitiesOnly=yes"]),
        "jenkins@127.0.0.1",
        "true",
      ]);
      expect(other.status).toBe(255);
      const root = run("ssh", [
        ...sshArgs(agentPort, ["-i", key(), "-o", "IdentitiesOnly=yes"]),
        "root@127.0.0.1",
        "true",
      ]);
      expect(root.status).toBe(255);
    });

    it("ignores a JENKINS_AGENT_SSH_PUBKEY that is not an ssh- key", () => {
      const r = dockerTls([
        "run",
        "--rm",
        "-e",
        "JENKINS_AGENT_SSH_PUBKEY=ecdsa-sha2-nistp256 AAAA x",
        AGENT_TAG,
        "bash",
        "-c",
        "test ! -e /home/jenkins/.ssh/authorized_keys && echo none",
      ]);
      expect(r.stdout.trim(), r.stderr).toBe("none");
      expect(r.stderr).toContain("only one key line whose type starts with ssh- is accepted");
    });

    it("works the way the Docker plugin's injectSSHKey starts it", async () => {
      // The plugin creates the container with its own sshd command line, puts /root/authorized_key
      // (a script printing the controller's ssh-rsa key for the template's user) into it, then starts it.
      const rsa = join(scratch, "controller_rsa");
      runOk("ssh-keygen", ["-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", rsa]);
      const pub = readFileSync(`${rsa}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
      const script = join(scratch, "authorized_key");
      writeFileSync(script, `#!/bin/sh\n[ "$1" = "jenkins" ] && echo '${pub}'|| :`, { mode: 0o700 });
      const created = dockerTls([
        "create",
        "--name",
        "pb-inject",
        "-p",
        "127.0.0.1::22",
        AGENT_TAG,
        ...INJECT_SSH_KEY_COMMAND,
      ]);
      expect(created.status, created.stderr).toBe(0);
      const copied = dockerTls(["cp", script, "pb-inject:/root/authorized_key"]);
      expect(copied.status, copied.stderr).toBe(0);
      expect(dockerTls(["start", "pb-inject"]).status).toBe(0);
      const injectPort = Number(dockerTls(["port", "pb-inject", "22/tcp"]).stdout.trim().split(":")[1]);
      await waitForSsh(injectPort);
      const r = run("ssh", [
        ...sshArgs(injectPort, ["-i", rsa, "-o", "IdentitiesOnly=yes"]),
        "jenkins@127.0.0.1",
        "id -un",
      ]);
      expect(r.stdout.trim(), `${r.stderr}\n${dockerTls(["logs", "pb-inject"]).stderr}`).toBe("jenkins");
      const password = run("ssh", [
        ...sshArgs(injectPort, ["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"]),
        "jenkins@127.0.0.1",
        "true",
      ]);
      expect(password.status).toBe(255);
    });
  });

  describe(`the ${HOST} registry and services, and a per-build agent pulled from that registry`, () => {
    let config: BerthConfig;
    let stack: StackRun;
    let applied: AppliedHost;
    /** `<bridge address>:<port>`: where the engine reaches the registry's nginx. */
    let registry = "";
    let registryCa = "";
    /** A directory holding only the registry's CA (skopeo's --cert-dir). */
    let registryCaDir = "";
    const passwords: Record<string, string> = {};
    /** The Docker cloud template Berth's CASC gives this host (renderers/casc.ts). */
    let template: {
      image: string;
      network: string;
      dnsString: string;
      dnsSearchString: string;
      environmentsString?: string;
      mountsString?: string;
    };
    let privateIp = "";
    let tag = "";
    let pushed = "";
    let pushedId = "";
    /** The certs.d entry the test wrote, and the first directory it had to create for it. */
    let certsEntry = "";
    let certsCreated: string | undefined;
    let ciConfig = "";
    let controllerConfig = "";
    const controllerKey = () => join(scratch, "pb-controller_rsa");
    const password = (user: string) => {
      const pw = passwords[user];
      if (pw === undefined) throw new Error(`no password for registry user ${user}`);
      return pw;
    };
    /** A fresh DOCKER_CONFIG (the CLI keeps its registry logins there). */
    const dockerConfig = (name: string) => {
      const d = join(scratch, `docker-config-${name}`);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      return d;
    };
    /** The docker CLI on the engine's Unix socket, logged in as the deploy workflow would be. */
    const dockerCi = (args: string[], timeoutMs = 120_000) =>
      run("docker", args, {
        env: { DOCKER_HOST: unixHost(), DOCKER_CONFIG: ciConfig, DOCKER_BUILDKIT: "0" },
        timeoutMs,
      });
    /** The docker CLI through the TLS endpoint with the controller's registry login: the Docker plugin. */
    const plugin = (args: string[], timeoutMs = 120_000) =>
      run("docker", args, { env: { ...tlsEnv(), DOCKER_CONFIG: controllerConfig }, timeoutMs });
    const login = (env: NodeJS.ProcessEnv, user: string, pw: string) =>
      run("docker", ["login", "--username", user, "--password-stdin", registry], {
        env,
        input: pw,
        timeoutMs: 60_000,
      });
    const skopeo = (...args: string[]) =>
      run("skopeo", ["--insecure-policy", ...args], {
        timeoutMs: 120_000,
        env: { REGISTRY_AUTH_FILE: join(scratch, "no-auth.json") },
      });
    /** A command in the per-build container, over SSH as user jenkins with the controller's key. */
    let agentPort = 0;
    const job = (cmd: string) =>
      run(
        "ssh",
        [
          ...sshArgs(agentPort, ["-i", controllerKey(), "-o", "IdentitiesOnly=yes"]),
          "jenkins@127.0.0.1",
          cmd,
        ],
        { timeoutMs: 60_000 },
      );

    beforeAll(async () => {
      const t0 = Date.now();
      if (!engine) throw new Error("no engine");
      const mappings: string[] = [];

      // The staging stack as shipped (per-build agents on, the image tag this checkout's revision),
      // without the services that have no stand-in image yet.
      const shipped = loadStack(PROJECT_ROOT, "staging");
      const hasStandin = (kind: keyof typeof SERVICE_CATALOG) => {
        try {
          standinFor(SERVICE_CATALOG[kind].image);
          return true;
        } catch {
          return false;
        }
      };
      config = structuredClone(shipped);
      config.services.minimal = shipped.services.minimal.filter(hasStandin);
      config.services.productionLike = shipped.services.productionLike.filter((s) => hasStandin(s.kind));
      const leftOut = [
        ...shipped.services.minimal.filter((k) => !hasStandin(k)).map((k) => `${k} (minimal set)`),
        ...shipped.services.productionLike
          .filter((s) => !hasStandin(s.kind))
          .map((s) => `${s.name} (production-like)`),
      ];
      if (leftOut.length > 0) mappings.push(`services left out, no stand-in image: ${leftOut.join(", ")}`);
      // distribution in proxy mode contacts its upstream when it starts, and exits when it cannot.
      if (config.registry.pullThroughCache) {
        mappings.push(
          `registry.pullThroughCache of ${config.registry.pullThroughCache.remoteUrl} left out: no Internet here`,
        );
        delete config.registry.pullThroughCache;
      }
      expect(config.services.productionLike.length).toBeGreaterThan(0);
      // Docker access for both agent kinds over mutual TLS with the host's build credentials.
      config.jenkins.dockerAccess = { static: "tls", perBuild: "tls" };
      mappings.push("jenkins.dockerAccess: static and perBuild tls (staging ships none)");
      stack = await runConfig(config);
      privateIp = config.hosts.addresses[config.hosts.names.indexOf(HOST)] as string;

      // The registry users' passwords: exactly the RandomPassword results the program used.
      Object.assign(passwords, generatedRegistryPasswords(stack.resources, HOST, config.registry.users));

      // Real TLS for nginx, valid for the registry's name, its private IP and the bridge address.
      const tlsDir = join(scratch, "registry-tls");
      mkdirSync(tlsDir, { mode: 0o700 });
      registryCaDir = join(scratch, "registry-ca");
      mkdirSync(registryCaDir);
      const tls = issueRegistryTls({
        workDir: tlsDir,
        caCertPath: join(registryCaDir, "ca.crt"),
        caName: `berth e2e ${config.stack} registry CA`,
        hostname: config.registry.hostname,
        privateIp,
        extraIps: [BRIDGE_IP],
      });
      registryCa = readFileSync(tls.caCertPath, "utf8");
      const substituteUploads: Record<string, Record<string, string>> = {
        "registry-nginx": {
          [NGINX_CERT]: readFileSync(tls.serverCertPath, "utf8"),
          [NGINX_KEY]: readFileSync(tls.serverKeyPath, "utf8"),
        },
      };
      // This host's real build credentials (the mock's are not certificates): CA, build client.
      substituteUploads[BUILD_TLS_VOLUME] = {
        [`${BUILD_TLS_DIR}/ca.pem`]: readFileSync(pki.ca, "utf8"),
        [`${BUILD_TLS_DIR}/cert.pem`]: readFileSync(join(pki.buildClientDir, "cert.pem"), "utf8"),
        [`${BUILD_TLS_DIR}/key.pem`]: readFileSync(join(pki.buildClientDir, "key.pem"), "utf8"),
      };
      // Real SSH host keys for the long-lived agents (the mock's are not keys).
      for (let n = 1; n <= config.jenkins.agentsPerHost; n++) {
        const agent = `jenkins-agent-${String(n)}`;
        substituteUploads[agent] = agentHostKeyUploads(scratch, agent);
      }

      const t = Date.now();
      applied = await applyHostToEngine(stack, HOST, engine, {
        publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, privateIp],
        hostIp: BRIDGE_IP,
        substituteUploads,
        healthInterval: "1s",
      });
      await retargetHolders(applied, viaPublishedPort);
      const status = await applied.waitAllHealthy(180_000);
      registry = `${BRIDGE_IP}:${String(applied.port("registry-nginx", 443, privateIp))}`;
      mappings.push(
        `registry ${config.registry.hostname}:443 → ${registry} (loopback would be an insecure registry to dockerd)`,
        `registry CA for dockerd: ${DOCKER_CERTS_D}/${registry}/ca.crt (written by the test, removed afterwards)`,
      );

      // The template Berth's CASC gives this host; the addresses do not matter here.
      const addresses = Object.fromEntries(config.jenkins.perBuild.hosts.map((h) => [h, "192.0.2.1"]));
      const cloud = jenkinsDockerClouds(cascInput(config), addresses).find((c) => c.docker.name === HOST);
      const base = cloud?.docker.templates[0]?.dockerTemplateBase;
      if (!base) throw new Error(`the CASC has no Docker cloud template for ${HOST}`);
      template = base;
      runOk("ssh-keygen", ["-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", controllerKey()]);
      ciConfig = dockerConfig("ci");
      controllerConfig = dockerConfig("controller");
      console.log(
        `e2e: ${HOST} applied in ${String(Date.now() - t)} ms (${String(applied.plan.containers.length)} containers, ` +
          `setup ${String(Date.now() - t0)} ms): ${JSON.stringify(status)}\n` +
          `e2e: mappings:\n  ${[...applied.plan.mappings, ...mappings].join("\n  ")}`,
      );
    }, 10 * 60_000);

    afterAll(() => {
      if (certsEntry) rmSync(certsEntry, { recursive: true, force: true });
      // The directories created on the way (none when /etc/docker/certs.d already existed), if empty.
      if (certsCreated)
        for (let d = DOCKER_CERTS_D; d.startsWith(certsCreated); d = dirname(d)) {
          try {
            rmdirSync(d);
          } catch {
            break;
          }
        }
    });

    it("dockerd verifies the registry's certificate: a login works only once the registry's CA is in certs.d", () => {
      const env = { DOCKER_HOST: unixHost(), DOCKER_CONFIG: ciConfig };
      const untrusted = login(env, "jenkins", password("jenkins"));
      expect(untrusted.status).not.toBe(0);
      expect(untrusted.stderr).toMatch(/x509: certificate signed by unknown authority/);

      certsCreated = mkdirSync(DOCKER_CERTS_D, { recursive: true });
      const entry = join(DOCKER_CERTS_D, registry);
      mkdirSync(entry); // fails if it exists: never take over an entry the test did not make
      certsEntry = entry;
      writeFileSync(join(entry, "ca.crt"), registryCa);

      const wrong = login(env, "jenkins", `${password("jenkins")}x`);
      expect(wrong.status).not.toBe(0);
      expect(wrong.stderr).toMatch(/unauthorized|401/i);
      const ok = login(env, "jenkins", password("jenkins"));
      expect(ok.status, ok.stderr).toBe(0);
      expect(ok.stdout).toContain("Login Succeeded");
    });

    it(
      "build-and-push.sh pushes <registry>/berth/jenkins-agent:<git revision>, the image the CASC names",
      () => {
        const rev = gitRevision(PROJECT_ROOT);
        expect(rev, "the project is a git checkout").toMatch(/^[0-9a-f]{40,64}$/);
        tag = process.env[AGENT_IMAGE_TAG_ENV] ?? rev ?? "";
        const t = Date.now();
        const r = run("bash", [BUILD_AND_PUSH, registry], {
          env: {
            DOCKER_HOST: unixHost(),
            DOCKER_CONFIG: ciConfig,
            DOCKER_BUILDKIT: "0",
            BASE: STANDIN_BASE,
            // As images/standins/build.sh: apt-get in the build reaches the mirror as this machine does.
            DOCKER_BUILD_ARGS: "--network host",
          },
          timeoutMs: 25 * 60_000,
        });
        expect(r.status, r.stderr.slice(-4000)).toBe(0);
        pushed = `${registry}/berth/jenkins-agent:${tag}`;
        // Exactly one line on stdout: the pushed reference (build and push logs go to stderr).
        expect(r.stdout).toBe(`${pushed}\n`);
        expect(r.stderr).toMatch(new RegExp(`${tag}: digest: sha256:[0-9a-f]{64} size: \\d+`));
        // What config/load.ts resolves `perBuild.image: registry` to, and the CASC hands the plugin.
        expect(template.image).toBe(`${config.registry.hostname}/berth/jenkins-agent:${tag}`);
        expect(config.jenkins.perBuild.image).toBe(template.image);
        pushedId = dockerCi(["image", "inspect", "--format", "{{.Id}}", pushed]).stdout.trim();
        expect(pushedId).toMatch(/^sha256:[0-9a-f]{64}$/);
        console.log(
          `e2e: build-and-push.sh built and pushed ${pushed} (${pushedId}) in ${String(Date.now() - t)} ms`,
        );
      },
      30 * 60_000,
    );

    it("the registry holds it, labelled with the revision, for any registry user; anonymous pulls are refused", () => {
      const ref = `docker://${pushed}`;
      const inspect = skopeo(
        "inspect",
        "--creds",
        `developer:${password("developer")}`,
        "--cert-dir",
        registryCaDir,
        ref,
      );
      expect(inspect.status, inspect.stderr).toBe(0);
      const info = JSON.parse(inspect.stdout) as { Digest: string; Labels: Record<string, string> | null };
      expect(info.Labels?.["org.opencontainers.image.revision"]).toBe(tag);
      const repoDigests = dockerCi(["image", "inspect", "--format", "{{json .RepoDigests}}", pushed]).stdout;
      expect(JSON.parse(repoDigests)).toContain(`${registry}/berth/jenkins-agent@${info.Digest}`);

      const anonymous = skopeo("inspect", "--no-creds", "--cert-dir", registryCaDir, ref);
      expect(anonymous.status).not.toBe(0);
      expect(anonymous.stderr).toMatch(/unauthorized|authentication required|401/i);
      // And the engine without a login, through the TLS endpoint: a cloud without pull credentials.
      const anonPull = run("docker", ["pull", pushed], {
        env: { ...tlsEnv(), DOCKER_CONFIG: dockerConfig("anonymous") },
        timeoutMs: 60_000,
      });
      expect(anonPull.status).not.toBe(0);
      expect(anonPull.stderr).toMatch(/no basic auth credentials|unauthorized|authentication required/i);
    });

    it("a per-build container, pulled and started through the TLS endpoint as the Docker plugin does, accepts the Jenkins key", async () => {
      // The controller's `<stack>-registry` credential: the daemon checks it against the registry.
      const ok = login({ ...tlsEnv(), DOCKER_CONFIG: controllerConfig }, "jenkins", password("jenkins"));
      expect(ok.status, ok.stderr).toBe(0);
      // A real pull: the image the script built goes first (the layers it shares with older images stay).
      expect(dockerCi(["rmi", pushed]).status).toBe(0);
      expect(plugin(["image", "inspect", pushed]).status).not.toBe(0);
      const pulled = plugin(["pull", pushed], 10 * 60_000);
      expect(pulled.status, pulled.stderr).toBe(0);
      expect(plugin(["image", "inspect", "--format", "{{.Id}}", pushed]).stdout.trim()).toBe(pushedId);

      // Created as DockerTemplateBase.fillContainerConfig (network → NetworkMode, dnsString → Dns,
      // dnsSearchString → DnsSearch) and
      // the SSH connector's injectSSHKey (its sshd command line, port 22 published, the key script) do.
      const lines = (text: string | undefined) => (text ?? "").split("\n").filter((l) => l !== "");
      const created = plugin([
        "create",
        "--name",
        "pb-from-registry",
        "--network",
        template.network,
        "--dns",
        template.dnsString,
        // environmentsString → Env, mountsString → HostConfig.Mounts (the same --mount syntax).
        ...lines(template.environmentsString).flatMap((e) => ["-e", e]),
        ...lines(template.mountsString).flatMap((m) => ["--mount", m]),
        ...template.dnsSearchString.split(" ").flatMap((d) => ["--dns-search", d]),
        "-p",
        "127.0.0.1::22",
        pushed,
        ...INJECT_SSH_KEY_COMMAND,
      ]);
      expect(created.status, created.stderr).toBe(0);
      const pub = readFileSync(`${controllerKey()}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
      const script = join(scratch, "pb-authorized_key");
      writeFileSync(script, `#!/bin/sh\n[ "$1" = "jenkins" ] && echo '${pub}'|| :`, { mode: 0o700 });
      expect(plugin(["cp", script, "pb-from-registry:/root/authorized_key"]).status).toBe(0);
      expect(plugin(["start", "pb-from-registry"]).status).toBe(0);
      agentPort = Number(plugin(["port", "pb-from-registry", "22/tcp"]).stdout.trim().split(":")[1]);
      await waitForSsh(agentPort);
      const who = job("id -un; pwd");
      expect(
        who.stdout.trim().split("\n"),
        `${who.stderr}\n${plugin(["logs", "pb-from-registry"]).stderr}`,
      ).toEqual(["jenkins", "/home/jenkins"]);
      const pw = run("ssh", [
        ...sshArgs(agentPort, ["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"]),
        "jenkins@127.0.0.1",
        "true",
      ]);
      expect(pw.status).toBe(255);
      const nets = plugin([
        "inspect",
        "--format",
        "{{json .HostConfig.NetworkMode}} {{json .HostConfig.Dns}} {{json .Config.Image}}",
        "pb-from-registry",
      ]);
      expect(nets.stdout.trim()).toBe(
        `${JSON.stringify(template.network)} ${JSON.stringify([template.dnsString])} ${JSON.stringify(pushed)}`,
      );
    });

    it("a job in that container has this host's build credentials, read-only, which this host's dockerd accepts", async () => {
      const r = job(
        'echo "$DOCKER_HOST"; echo "$DOCKER_TLS_VERIFY"; echo "$DOCKER_CERT_PATH"; ' +
          'stat -c "%u %a" "$DOCKER_CERT_PATH/key.pem"; touch "$DOCKER_CERT_PATH/x" 2>/dev/null || echo read-only',
      );
      expect(r.stdout.trim().split("\n"), r.stderr).toEqual([
        `tcp://${privateIp}:${String(config.hosts.dockerTlsPort)}`,
        "1",
        BUILD_TLS_DIR,
        "1000 400",
        "read-only",
      ]);
      // The job's files, copied out, are a client this dockerd accepts; the controller's key is not there.
      const out = join(scratch, "job-build-tls");
      mkdirSync(out, { mode: 0o700 });
      for (const f of ["ca.pem", "cert.pem", "key.pem"]) {
        const got = job(`cat "$DOCKER_CERT_PATH/${f}"`);
        expect(got.status, got.stderr).toBe(0);
        writeFileSync(join(out, f), got.stdout, { mode: 0o600 });
        // Not the controller's certificate or key (the CA they both verify dockerd with is the same).
        if (f !== "ca.pem") expect(got.stdout).not.toBe(readFileSync(join(pki.clientDir, f), "utf8"));
      }
      expect(await ping(port, pki.ca, out)).toEqual({ ok: true, status: 200, body: "OK" });
      const names = job(`ls "$DOCKER_CERT_PATH"`);
      expect(names.stdout.trim().split("\n").sort()).toEqual(["ca.pem", "cert.pem", "key.pem"]);
    });

    it("the static agents have the same credentials: readable by jenkins (uid 1000) only", () => {
      const agent = "jenkins-agent-1";
      const env = dockerCi(["inspect", "--format", "{{json .Config.Env}}", agent]);
      expect(JSON.parse(env.stdout) as string[]).toEqual(
        expect.arrayContaining([
          `DOCKER_HOST=tcp://${privateIp}:${String(config.hosts.dockerTlsPort)}`,
          "DOCKER_TLS_VERIFY=1",
          `DOCKER_CERT_PATH=${BUILD_TLS_DIR}`,
        ]),
      );
      const asJenkins = dockerCi(["exec", "-u", "1000", agent, "cat", `${BUILD_TLS_DIR}/key.pem`]);
      expect(asJenkins.stdout, asJenkins.stderr).toBe(
        readFileSync(join(pki.buildClientDir, "key.pem"), "utf8"),
      );
      const asOther = dockerCi(["exec", "-u", "1001", agent, "cat", `${BUILD_TLS_DIR}/key.pem`]);
      expect(asOther.status).not.toBe(0);
      expect(asOther.stderr).toMatch(/permission denied/i);
      // The carrier is only created: it never runs.
      const carrier = dockerCi(["inspect", "--format", "{{.State.Status}}", BUILD_TLS_VOLUME]);
      expect(carrier.stdout.trim(), carrier.stderr).toBe("created");
    });

    it("a job in that container resolves the production-like names through dnsmasq and reaches the services", () => {
      // staging ships two search domains (one per region): the name under each resolves.
      const domains = config.dns.searchDomains;
      expect(domains.length).toBeGreaterThan(1);
      for (const svc of config.services.productionLike) {
        const port = SERVICE_CATALOG[svc.kind].port;
        const r = job(
          [svc.name, ...domains.map((d) => `${svc.name}.${d}`)]
            .map((n) => `getent hosts ${n} | cut -d' ' -f1; `)
            .join("") +
            `timeout 5 bash -c 'exec 3<>/dev/tcp/${svc.name}.${domains[1] ?? ""}/${String(port)}' && echo open; ` +
            `grep '^search ' /etc/resolv.conf`,
        );
        expect(r.stdout.trim().split("\n"), `${svc.name}: ${r.stderr}`).toEqual([
          svc.address,
          ...domains.map(() => svc.address),
          "open",
          `search ${domains.join(" ")}`,
        ]);
      }
      const redis = config.services.productionLike.find((s) => s.kind === "redis");
      if (!redis) throw new Error("staging has a production-like redis");
      const pong = job(
        `exec 3<>/dev/tcp/${redis.name}/${String(SERVICE_CATALOG.redis.port)}; printf 'PING\\r\\n' >&3; timeout 5 head -c 7 <&3`,
      );
      expect(pong.stdout, pong.stderr).toBe("+PONG\r\n");
    });

    it("a job in that container still reaches the minimal set on the default bridge's gateway", () => {
      // On a host the minimal set is published on docker0's 172.17.0.1; here on the engine's own
      // bridge address (the harness's hostIp), which is the same situation: a port published on
      // the default bridge's gateway, asked for from a container on ci-services only.
      const port = applied.port("redis", SERVICE_CATALOG.redis.port, DOCKER_BRIDGE_GATEWAY);
      const pong = job(
        `exec 3<>/dev/tcp/${BRIDGE_IP}/${String(port)}; printf 'PING\\r\\n' >&3; timeout 5 head -c 7 <&3`,
      );
      expect(pong.stdout, pong.stderr).toBe("+PONG\r\n");
    });

    it("without the template's network and dnsString a build container cannot resolve them", () => {
      const [svc] = config.services.productionLike;
      if (!svc) throw new Error("no production-like service");
      const fqdn = `${svc.name}.${config.dns.searchDomains[0] ?? ""}`;
      const getent = (extra: string[], name: string) =>
        plugin(["run", "--rm", ...extra, "--entrypoint", "getent", pushed, "hosts", name], 90_000);
      // The template as it was (no network: the default bridge, the host's resolvers).
      const before = getent([], svc.name);
      expect(before.status, before.stdout).not.toBe(0);
      expect(before.stdout).not.toContain(svc.address);
      // ci-services alone: Docker's DNS knows the containers' names, but not the search domain.
      const noDns = getent(["--network", template.network], fqdn);
      expect(noDns.stdout).not.toContain(svc.address);
      const both = getent(["--network", template.network, "--dns", template.dnsString], fqdn);
      expect(both.stdout.split(/\s+/)[0], both.stderr).toBe(svc.address);
    });
  });
});
