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
 *
 * The engine comes from test/support/dockerd-btrfs.sh directly (scripts/e2e-env.sh writes its own
 * daemon.json, and this test needs the rendered one); teardown is e2e-env.sh `down`, which removes
 * the containers, stops dockerd by its recorded pid, unmounts and deletes the work directory.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { hostIgnitionBase } from "../../components/environment.ts";
import { DOCKER_TLS_DIR, dockerDaemonJson, type JsonInput } from "../../ignition/index.ts";
import { buildStandins, requireE2eTools, run, runOk, stopEngine, type Engine } from "./support/engine.ts";
import { freePort } from "./harness.ts";

const DOCKERD_BTRFS = resolve(PROJECT_ROOT, "test/support/dockerd-btrfs.sh");
const AGENT_DIR = resolve(PROJECT_ROOT, "images/jenkins-agent");
const STANDIN_BASE = "berth-standin/base:bookworm";
const AGENT_TAG = "berth-e2e/jenkins-agent:perbuild";
const HOST = "staging-ci-1";

const tools = requireE2eTools("per-build agents over dockerd TLS", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh", debianPackage: "openssh-client" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
]);

/** openssl, failing loudly. */
const openssl = (...args: string[]) => runOk("openssl", args);

interface Pki {
  dir: string;
  ca: string;
  /** DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem. */
  clientDir: string;
  otherClientDir: string;
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
    server: { cert: join(dir, "server.pem"), key: join(dir, "server-key.pem") },
  };
}

/**
 * The daemon.json of the test's dockerd: the one Berth renders for a staging host, with
 *   - `hosts` taken out: dockerd-btrfs.sh passes `-H unix://…` itself (a `hosts` key plus -H is a
 *     startup error), and the rendered `tcp://0.0.0.0:<port>` is passed as `-H tcp://127.0.0.1:<free>`;
 *   - the TLS file paths moved from /etc/docker/tls to the test's certificates;
 *   - `bip` out (the script gives dockerd a private bridge; bip and bridge are exclusive);
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
  daemon["live-restore"] = false;
  daemon.tlscacert = moved("tlscacert", pki.ca);
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
        caCertPem: readFileSync(pki.ca, "utf8"),
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
    writeFileSync(join(workdir, "daemon.json"), `${JSON.stringify(made.daemon, null, 2)}\n`);
    started = run("bash", [DOCKERD_BTRFS, "start", workdir], {
      timeoutMs: 180_000,
      env: {
        BERTH_LABEL: "berth-perbuild",
        BERTH_DISK_SIZE: "12G",
        BERTH_BRIDGE_CIDR: "10.213.9.1/24",
        BERTH_NETFILTER: "1",
        BERTH_DOCKERD_ARGS: `--host=${tcpHost}`,
      },
    });
    if (started.status !== 0) throw new Error(`dockerd did not start:\n${started.stderr}`);

    // The stand-in Debian base (and the other stand-ins) from the e2e cache.
    const engine: Engine = { workdir, socket: join(workdir, "docker.sock"), host: unixHost() };
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
        "/usr/sbin/sshd",
        "-D",
        "-p",
        "22",
        "-o",
        "AuthorizedKeysCommand=/root/authorized_key",
        "-o",
        "AuthorizedKeysCommandUser=root",
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
});
