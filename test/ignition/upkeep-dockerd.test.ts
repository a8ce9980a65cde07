/**
 * The Day-2 host scripts, exactly as rendered into a host's Ignition, run against a REAL dockerd on
 * a btrfs loop volume (test/support/dockerd-btrfs.sh):
 * - berth-build-inhibit --check: "build running" with a per-build container (the Docker plugin's
 *   label), a container labelled org.berth.build, or a job process in a static agent; "idle" with
 *   only idle agents and services;
 * - berth-docker-upkeep: what it removes and what it keeps, with "old" set only through its own
 *   --now (the test records a time T between the old and the new objects and passes T + age);
 * - berth-btrfs-maintenance balance and scrub on the loop btrfs; berth-disk-check thresholds.
 *
 * Needs root and the machine-wide e2e lock: `flock /tmp/berth-e2e.lock npx vitest run <this file>`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { buildHostIgnition } from "../../ignition/index.ts";
import { DOCKER_PLUGIN_LABEL } from "../../renderers/updates.ts";
import { writeBusyboxRootfs } from "../support/busybox.ts";
import { DOCKERD_BTRFS_TOOLS, requireTools } from "../support/tools.ts";
import { fcosFull, fileText } from "./fixtures.ts";

const SCRIPT = resolve(import.meta.dirname, "../support/dockerd-btrfs.sh");
const tools = requireTools(
  "Day-2 scripts against a real dockerd",
  [
    ...DOCKERD_BTRFS_TOOLS,
    { tool: "btrfs", debianPackage: "btrfs-progs" },
    { tool: "busybox", debianPackage: "busybox-static" },
    { tool: "ps", debianPackage: "procps" },
  ],
  { needsRoot: true },
);

const SCRIPTS = ["berth-build-inhibit", "berth-docker-upkeep", "berth-btrfs-maintenance", "berth-disk-check"];

describe.skipIf(tools.skip)("Day-2 scripts against a real dockerd on btrfs", () => {
  let workdir = "";
  let sock = "";
  let bin = "";
  let mnt = "";
  let started: ReturnType<typeof spawnSync> | undefined;

  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(cmd, args, {
      encoding: "utf8",
      env: { ...process.env, DOCKER_HOST: `unix://${sock}`, ...env },
      timeout: 170_000,
    });
  const docker = (...args: string[]) => {
    const r = run("docker", args);
    if (r.status !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const check = () => run(join(bin, "berth-build-inhibit"), ["--check"]);
  const sleep = (s: number) => spawnSync("sleep", [String(s)]);

  beforeAll(() => {
    workdir = mkdtempSync(join(tmpdir(), "bu-"));
    sock = join(workdir, "docker.sock");
    mnt = join(workdir, "mnt");
    writeFileSync(
      join(workdir, "daemon.json"),
      JSON.stringify({ "storage-driver": "btrfs", iptables: false, "ip-forward": false }),
    );
    started = spawnSync("bash", [SCRIPT, "start", workdir], {
      encoding: "utf8",
      env: { ...process.env, BERTH_BRIDGE_CIDR: "10.213.7.1/24", BERTH_DISK_SIZE: "2G" },
      timeout: 170_000,
    });
    // The scripts exactly as a Fedora CoreOS host gets them.
    const config = buildHostIgnition(fcosFull);
    bin = join(workdir, "bin");
    mkdirSync(bin);
    for (const name of SCRIPTS) {
      writeFileSync(join(bin, name), fileText(config, `/usr/local/bin/${name}`), { mode: 0o755 });
    }
  }, 180_000);

  afterAll(() => {
    if (!workdir) return;
    const stopped = spawnSync("bash", [SCRIPT, "stop", workdir], { encoding: "utf8", timeout: 170_000 });
    if (stopped.status === 0) rmSync(workdir, { recursive: true, force: true });
    else console.error(`dockerd-btrfs.sh stop failed, leaving ${workdir}:\n${stopped.stderr}`);
  }, 180_000);

  it("starts dockerd on btrfs", () => {
    expect(started?.status, String(started?.stderr)).toBe(0);
  });

  /**
   * Images from one busybox rootfs; each import gets its own label so every image has its own id.
   * The agent stand-in: /usr/sbin/sshd and /usr/bin/java are shell scripts, so their processes are
   * named sshd and java (with agent.jar on java's command line), as in the real agent, and they
   * block in the shell itself (read from a FIFO) so nothing else runs while the agent is idle.
   */
  function importImage(name: string, extra: string[] = []): void {
    const rootfs = join(workdir, "rootfs");
    const tarball = join(workdir, "rootfs.tar");
    if (existsSync(tarball)) {
      docker("import", "--change", `LABEL org.test.name=${name}`, ...extra, tarball, name);
      return;
    }
    writeBusyboxRootfs(
      rootfs,
      tools.paths.busybox ?? "/bin/busybox",
      ["sh", "sleep", "mkdir", "mkfifo", "pkill", "true", "touch", "ls"],
      ["usr/sbin", "usr/bin", "tmp"],
    );
    writeFileSync(
      join(rootfs, "usr/sbin/sshd"),
      "#!/bin/sh\n/usr/bin/java -jar /usr/share/jenkins/agent.jar &\nmkfifo /tmp/sshd.fifo\nread x < /tmp/sshd.fifo\n",
      { mode: 0o755 },
    );
    writeFileSync(
      join(rootfs, "usr/bin/java"),
      "#!/bin/sh\nmkfifo /tmp/java.fifo\nread x < /tmp/java.fifo\n",
      {
        mode: 0o755,
      },
    );
    expect(spawnSync("tar", ["-C", rootfs, "-cf", tarball, "."]).status).toBe(0);
    importImage(name, extra);
  }

  it("berth-build-inhibit --check tells a running build from an idle host", () => {
    importImage("berth-test/agent:1");
    docker(
      "run",
      "-d",
      "--name",
      "jenkins-agent-1",
      "-v",
      "jenkins-agent-1-work:/home/jenkins/agent",
      "berth-test/agent:1",
      "/usr/sbin/sshd",
    );
    docker(
      "run",
      "-d",
      "--name",
      "jenkins-agent-2",
      "-v",
      "jenkins-agent-2-work:/home/jenkins/agent",
      "berth-test/agent:1",
      "/usr/sbin/sshd",
    );
    // A service container running a shell and a sleep: not an agent, never a build.
    docker(
      "run",
      "-d",
      "--name",
      "redis",
      "--restart",
      "unless-stopped",
      "berth-test/agent:1",
      "/bin/sh",
      "-c",
      "while :; do sleep 1; done",
    );
    sleep(1);
    const top = docker("top", "jenkins-agent-1", "-eo", "pid,ppid,comm,args");
    expect(top).toMatch(/\ssshd\s/);
    expect(top).toMatch(/\sjava\s.*agent\.jar/);

    let r = check();
    expect(r.stdout).toBe("idle\n");
    expect(r.status).toBe(1);

    // A per-build agent: the Docker plugin labels its containers with the Jenkins instance id.
    docker(
      "run",
      "-d",
      "--name",
      "perbuild-1",
      "--label",
      `${DOCKER_PLUGIN_LABEL}=abc123`,
      "berth-test/agent:1",
      "/usr/sbin/sshd",
    );
    r = check();
    expect(r.stdout).toBe("build running: per-build agent(s): perbuild-1\n");
    expect(r.status).toBe(0);
    docker("rm", "-f", "perbuild-1");
    expect(check().stdout).toBe("idle\n");

    // A container a job started itself, labelled for Berth.
    docker(
      "run",
      "-d",
      "--name",
      "job-db",
      "--label",
      "org.berth.build=1",
      "berth-test/agent:1",
      "/bin/sh",
      "-c",
      "while :; do sleep 1; done",
    );
    expect(check().stdout).toBe("build running: build container(s): job-db\n");
    docker("rm", "-f", "job-db");

    // A job step in a static agent.
    docker("exec", "-d", "jenkins-agent-2", "/bin/sh", "-c", "sleep 600");
    sleep(1);
    r = check();
    expect(r.stdout).toMatch(/^build running: job on jenkins-agent-2 \((sh|sleep)\)\n$/);
    expect(r.status).toBe(0);
    expect(run(join(bin, "berth-build-inhibit"), ["--check-agent", "jenkins-agent-2"]).status).toBe(0);
    const one = run(join(bin, "berth-build-inhibit"), ["--check-agent", "jenkins-agent-1"]);
    expect([one.stdout, one.status]).toEqual(["idle\n", 1]);
  });

  it("berth-build-inhibit --check says idle when Docker does not answer", () => {
    const r = run(join(bin, "berth-build-inhibit"), ["--check"], {
      DOCKER_HOST: `unix://${workdir}/nothing.sock`,
    });
    expect([r.stdout, r.status]).toEqual(["idle\n", 1]);
  });

  it("berth-docker-upkeep removes exactly the old, unused things", () => {
    // ---- old: before T ----
    importImage("berth-test/old-unused:1");
    importImage("berth-test/keep:1", ["--change", "LABEL org.berth.keep=true"]);
    importImage("berth-test/pinned:1");
    importImage("berth-test/old-build:1");
    importImage("berth-test/service:1");
    // Pinned image of a live container, with a named and an anonymous volume.
    docker(
      "run",
      "-d",
      "--name",
      "live",
      "--restart",
      "unless-stopped",
      "-v",
      "live-data:/data",
      "-v",
      "/scratch",
      "berth-test/pinned:1",
      "/bin/sh",
      "-c",
      "while :; do sleep 1; done",
    );
    // A finished build container with an anonymous volume.
    docker("run", "--name", "old-exit", "-v", "/cache", "berth-test/old-build:1", "/bin/true");
    // A stopped service (restart policy): kept, and so is its image and named volume.
    docker(
      "run",
      "-d",
      "--name",
      "svc-stopped",
      "--restart",
      "unless-stopped",
      "-v",
      "svc-data:/data",
      "berth-test/service:1",
      "/bin/sh",
      "-c",
      "while :; do sleep 1; done",
    );
    docker("stop", "-t", "1", "svc-stopped");
    // A dangling anonymous volume (its container was removed without -v) and an unused named one.
    docker("run", "--name", "gone", "-v", "/left", "berth-test/service:1", "/bin/true");
    const dangling = docker("inspect", "--format", "{{range .Mounts}}{{.Name}}{{end}}", "gone");
    docker("rm", "gone");
    docker("volume", "create", "unused-named");
    // Workspaces on both agents.
    docker("exec", "jenkins-agent-1", "mkdir", "-p", "/home/jenkins/agent/workspace/old-job");
    docker("exec", "jenkins-agent-2", "mkdir", "-p", "/home/jenkins/agent/workspace/old-job-2");
    sleep(2);
    const T = Math.floor(Date.now() / 1000);
    sleep(2);
    // ---- new: after T ----
    importImage("berth-test/new-unused:1");
    docker("run", "--name", "new-exit", "berth-test/service:1", "/bin/true");
    docker("exec", "jenkins-agent-1", "mkdir", "-p", "/home/jenkins/agent/workspace/new-job");
    const liveAnon = docker(
      "inspect",
      "--format",
      '{{range .Mounts}}{{if eq .Destination "/scratch"}}{{.Name}}{{end}}{{end}}',
      "live",
    );

    const r = run(join(bin, "berth-docker-upkeep"), [
      "--now",
      String(T + 86400),
      "--container-max-age-hours",
      "24",
      "--image-max-age-hours",
      "24",
      "--build-cache-max-bytes",
      "0",
      "--workspace-max-age-days",
      "1",
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .filter((l) => !l.includes("removed image sha256:"));
    expect(lines.sort()).toEqual(
      [
        "berth-docker-upkeep: removed container old-exit",
        "berth-docker-upkeep: removed image berth-test/old-build:1",
        "berth-docker-upkeep: removed image berth-test/old-unused:1",
        "berth-docker-upkeep: removed workspace jenkins-agent-1:workspace/old-job",
        `berth-docker-upkeep: removed anonymous volume ${dangling}`,
        "berth-docker-upkeep: skipped the workspaces of jenkins-agent-2: a job runs there",
      ].sort(),
    );

    const containers = docker("ps", "-a", "--format", "{{.Names}}").split("\n").sort();
    expect(containers).toEqual([
      "jenkins-agent-1",
      "jenkins-agent-2",
      "live",
      "new-exit",
      "redis",
      "svc-stopped",
    ]);
    const images = docker("images", "--format", "{{.Repository}}:{{.Tag}}").split("\n").sort();
    expect(images).toEqual([
      "berth-test/agent:1",
      "berth-test/keep:1",
      "berth-test/new-unused:1",
      "berth-test/pinned:1",
      "berth-test/service:1",
    ]);
    const volumes = docker("volume", "ls", "-q").split("\n").sort();
    expect(volumes).toEqual(
      [
        "jenkins-agent-1-work",
        "jenkins-agent-2-work",
        "live-data",
        "svc-data",
        "unused-named",
        liveAnon,
      ].sort(),
    );
    expect(volumes).not.toContain(dangling);
    expect(docker("exec", "jenkins-agent-1", "ls", "/home/jenkins/agent/workspace")).toBe("new-job");
    expect(docker("exec", "jenkins-agent-2", "ls", "/home/jenkins/agent/workspace")).toBe("old-job-2");

    // A second run at the real time finds nothing old.
    const again = run(join(bin, "berth-docker-upkeep"), []);
    expect([
      again.stdout.replace(/^.*skipped the workspaces of jenkins-agent-2.*\n/m, ""),
      again.status,
    ]).toEqual(["", 0]);
  });

  it("berth-btrfs-maintenance balances and scrubs the loop btrfs, and refuses other file systems", () => {
    const balance = run(join(bin, "berth-btrfs-maintenance"), ["balance", mnt, "50", "30"]);
    expect(balance.status, balance.stderr).toBe(0);
    expect(balance.stdout).toMatch(/Done, had to relocate \d+ out of \d+ chunks/);
    const scrub = run(join(bin, "berth-btrfs-maintenance"), ["scrub", mnt]);
    expect(scrub.status, scrub.stderr).toBe(0);
    expect(`${scrub.stdout}${scrub.stderr}`).toMatch(/no errors found/i);
    const notBtrfs = run(join(bin, "berth-btrfs-maintenance"), ["scrub", "/proc"]);
    expect(notBtrfs.status).toBe(1);
    expect(notBtrfs.stderr).toContain("/proc is not a btrfs file system");
  });

  it("berth-disk-check warns below the threshold only", () => {
    const ok = run(join(bin, "berth-disk-check"), ["1", mnt]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^berth-disk-check: ${mnt} has \\d+% free \\(\\d+ MiB\\)\\n$`));
    const low = run(join(bin, "berth-disk-check"), ["100", mnt]);
    expect(low.status).toBe(1);
    expect(low.stdout).toMatch(
      new RegExp(`^<4>LOW DISK SPACE on ${mnt}: \\d+% free .*below the 100% threshold`),
    );
  });
});
