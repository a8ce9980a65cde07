/**
 * The host's textfile writer (`berth-textfile-metrics`, exactly as rendered into a host's Ignition)
 * against REAL programs: a dockerd on a btrfs loop volume (test/support/dockerd-btrfs.sh) whose
 * containers restart, a certificate file and a TLS endpoint (`openssl s_server` on 127.0.0.1) for
 * the certificate metrics; then Debian's node_exporter (prometheus-node-exporter) reads the file
 * with its textfile collector and serves the `berth_*` metrics the alert rules use.
 *
 * Needs root and the machine-wide e2e lock: `flock /tmp/berth-e2e.lock npx vitest run <this file>`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { buildHostIgnition } from "../../ignition/index.ts";
import { TEXTFILE_METRICS_SCRIPT, TEXTFILE_NAME } from "../../renderers/host-metrics.ts";
import { BERTH_TEXTFILE_METRICS } from "../../renderers/prometheus.ts";
import { freePort } from "../../testkit/e2e/harness.ts";
import { writeBusyboxRootfs } from "../support/busybox.ts";
import { DOCKERD_BTRFS_TOOLS, requireTools } from "../support/tools.ts";
import { fcosFull, fileText } from "./fixtures.ts";

const SCRIPT = resolve(import.meta.dirname, "../support/dockerd-btrfs.sh");
const tools = requireTools(
  "textfile metrics against a real dockerd and node_exporter",
  [
    ...DOCKERD_BTRFS_TOOLS,
    { tool: "busybox", debianPackage: "busybox-static" },
    { tool: "openssl", debianPackage: "openssl" },
    { tool: "prometheus-node-exporter", debianPackage: "prometheus-node-exporter" },
  ],
  { needsRoot: true },
);

const CERT = "berth_tls_cert_not_after_timestamp_seconds";
const RESTARTS = "berth_container_restart_count";

describe.skipIf(tools.skip)("berth-textfile-metrics with a real dockerd and node_exporter", () => {
  let workdir = "";
  let sock = "";
  let writer = "";
  let out = "";
  let started: ReturnType<typeof spawnSync> | undefined;
  const children: ChildProcess[] = [];
  const certEnd: Record<string, number> = {};
  let tlsPort = 0;

  const run = (cmd: string, args: string[]) =>
    spawnSync(cmd, args, {
      encoding: "utf8",
      env: { ...process.env, DOCKER_HOST: `unix://${sock}` },
      timeout: 120_000,
    });
  const docker = (...args: string[]) => {
    const r = run("docker", args);
    if (r.status !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const openssl = (...args: string[]) => {
    const r = spawnSync(tools.paths.openssl ?? "openssl", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** A self-signed certificate valid for `days`; returns its notAfter in seconds. */
  const makeCert = (name: string, days: number): number => {
    openssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-days",
      String(days),
      "-keyout",
      join(workdir, `${name}.key`),
      "-out",
      join(workdir, `${name}.pem`),
    );
    const end = openssl("x509", "-noout", "-enddate", "-in", join(workdir, `${name}.pem`));
    return Date.parse(end.replace(/^notAfter=/, "")) / 1000;
  };
  const write = (...certs: string[]) => run(writer, [out, ...certs.flatMap((c) => ["--cert", c])]);
  const lines = (text: string, metric: string) => text.split("\n").filter((l) => l.startsWith(`${metric}{`));

  beforeAll(async () => {
    workdir = mkdtempSync(join(tmpdir(), "bt-"));
    sock = join(workdir, "docker.sock");
    writeFileSync(
      join(workdir, "daemon.json"),
      JSON.stringify({ "storage-driver": "btrfs", iptables: false, "ip-forward": false }),
    );
    started = spawnSync("bash", [SCRIPT, "start", workdir], {
      encoding: "utf8",
      env: { ...process.env, BERTH_BRIDGE_CIDR: "10.213.11.1/24", BERTH_DISK_SIZE: "1536M" },
      timeout: 170_000,
    });
    // The writer exactly as a Fedora CoreOS host gets it.
    writer = join(workdir, TEXTFILE_METRICS_SCRIPT);
    writeFileSync(
      writer,
      fileText(buildHostIgnition(fcosFull), `/usr/local/bin/${TEXTFILE_METRICS_SCRIPT}`),
      {
        mode: 0o755,
      },
    );
    out = join(workdir, "textfile");
    if (started.status !== 0) return;

    // A busybox image; a container that exits at once and is restarted, one that runs, one without
    // a restart policy (a build), which the writer leaves out.
    const rootfs = join(workdir, "rootfs");
    writeBusyboxRootfs(rootfs, tools.paths.busybox ?? "/bin/busybox", ["sh", "sleep", "false"]);
    spawnSync("tar", ["-C", rootfs, "-cf", join(workdir, "rootfs.tar"), "bin"]);
    docker("import", join(workdir, "rootfs.tar"), "berth-test/busybox:1");
    docker("run", "-d", "--name", "crashing", "--restart", "always", "berth-test/busybox:1", "/bin/false");
    docker(
      "run",
      "-d",
      "--name",
      "steady",
      "--restart",
      "unless-stopped",
      "berth-test/busybox:1",
      "/bin/sleep",
      "600",
    );
    docker("run", "-d", "--name", "build-1", "berth-test/busybox:1", "/bin/sleep", "600");
    const deadline = Date.now() + 60_000;
    while (Number(docker("inspect", "--format", "{{.RestartCount}}", "crashing")) < 2) {
      if (Date.now() > deadline) throw new Error("the crashing container was not restarted twice");
      await sleep(500);
    }

    // dockerd's certificate as a file, the registry's as a TLS endpoint on loopback.
    certEnd.dockerd = makeCert("dockerd", 30);
    certEnd.registry = makeCert("registry", 10);
    tlsPort = await freePort();
    const server = spawn(
      tools.paths.openssl ?? "openssl",
      [
        "s_server",
        "-accept",
        `127.0.0.1:${tlsPort}`,
        "-cert",
        join(workdir, "registry.pem"),
        "-key",
        join(workdir, "registry.key"),
        "-www",
      ],
      { stdio: "ignore" },
    );
    children.push(server);
    for (let i = 0; i < 50; i++) {
      if (spawnSync("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${tlsPort}`]).status === 0) break;
      await sleep(100);
    }
  }, 240_000);

  afterAll(() => {
    for (const c of children) c.kill();
    if (!workdir) return;
    const stopped = spawnSync("bash", [SCRIPT, "stop", workdir], { encoding: "utf8", timeout: 170_000 });
    if (stopped.status === 0) rmSync(workdir, { recursive: true, force: true });
    else console.error(`dockerd-btrfs.sh stop failed, leaving ${workdir}:\n${stopped.stderr}`);
  }, 180_000);

  it("starts dockerd on btrfs", () => {
    expect(started?.status, String(started?.stderr)).toBe(0);
  });

  it("writes the certificates' ends of validity and the restart counts of containers with a restart policy", () => {
    const r = write(
      `dockerd=file:${join(workdir, "dockerd.pem")}`,
      `registry=tls:127.0.0.1:${tlsPort}:registry.test`,
    );
    expect(r.status, r.stderr).toBe(0);
    const text = spawnSync("cat", [join(out, TEXTFILE_NAME)], { encoding: "utf8" }).stdout;
    expect(lines(text, CERT).sort()).toEqual([
      `${CERT}{cert="dockerd"} ${certEnd.dockerd}`,
      `${CERT}{cert="registry"} ${certEnd.registry}`,
    ]);
    const restarts = Object.fromEntries(
      lines(text, RESTARTS).map((l) => {
        const m = /container="([^"]+)"\} (\d+)$/.exec(l);
        return [m?.[1], Number(m?.[2])];
      }),
    );
    expect(Object.keys(restarts).sort()).toEqual(["crashing", "steady"]);
    expect(restarts.crashing).toBeGreaterThanOrEqual(2);
    expect(restarts.steady).toBe(0);
    // Written atomically: the file alone (no temporary left), readable by node_exporter's user.
    expect(readdirSync(out)).toEqual([TEXTFILE_NAME]);
    expect(statSync(join(out, TEXTFILE_NAME)).mode & 0o777).toBe(0o644);
  });

  it("leaves out a source it cannot read, writes the rest, and exits 1", () => {
    const r = write(
      `dockerd=file:${join(workdir, "dockerd.pem")}`,
      "registry=file:/nonexistent/registry.pem",
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("cannot read the registry certificate");
    const text = spawnSync("cat", [join(out, TEXTFILE_NAME)], { encoding: "utf8" }).stdout;
    expect(lines(text, CERT)).toEqual([`${CERT}{cert="dockerd"} ${certEnd.dockerd}`]);
    expect(lines(text, RESTARTS).length).toBe(2);
    expect(readdirSync(out)).toEqual([TEXTFILE_NAME]);
  });

  it("node_exporter's textfile collector parses the file and serves the berth_* metrics", async () => {
    const r = write(
      `dockerd=file:${join(workdir, "dockerd.pem")}`,
      `registry=tls:127.0.0.1:${tlsPort}:registry.test`,
    );
    expect(r.status, r.stderr).toBe(0);
    const port = await freePort();
    const exporter = spawn(
      tools.paths["prometheus-node-exporter"] ?? "prometheus-node-exporter",
      [
        `--web.listen-address=127.0.0.1:${port}`,
        "--collector.disable-defaults",
        "--collector.textfile",
        `--collector.textfile.directory=${out}`,
      ],
      { stdio: "ignore" },
    );
    children.push(exporter);
    let body = "";
    for (let i = 0; i < 100 && body === ""; i++) {
      body = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((res) => (res.ok ? res.text() : ""))
        .catch(() => "");
      if (body === "") await sleep(100);
    }
    exporter.kill();
    // No parse error, and every metric of the contract with the values written.
    expect(body).toMatch(/^node_textfile_scrape_error 0$/m);
    for (const name of Object.keys(BERTH_TEXTFILE_METRICS)) expect(body).toContain(`# TYPE ${name} `);
    const served = (name: string, label: string) =>
      Number(new RegExp(`^${name}\\{[^}]*="${label}"[^}]*\\} (\\S+)$`, "m").exec(body)?.[1]);
    expect(served(CERT, "registry")).toBe(certEnd.registry);
    expect(served(CERT, "dockerd")).toBe(certEnd.dockerd);
    expect(served(RESTARTS, "crashing")).toBeGreaterThanOrEqual(2);
    expect(served(RESTARTS, "steady")).toBe(0);
  });
});
