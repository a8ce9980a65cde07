/**
 * Boot-like check, for each storage driver (hosts.storageDriver): what the Ignition config sets up
 * (a file system of the rendered format and label, btrfs or ext4, mounted as Docker's data root;
 * dockerd started with no flags that clash with daemon.json) gives a working Docker engine on the
 * rendered storage driver, and the rendered free-space check reads that file system. Runs the real
 * dockerd on a loop device.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { afterAll, beforeAll, expect, it } from "vitest";

import { buildHostIgnition, type HostIgnitionInput, type JsonInput } from "../../ignition/index.ts";
import { DOCKERD_BTRFS_TOOLS, checkTools, toolsDescribe } from "../support/tools.ts";
import { fcosFull, fcosOverlay2, fileText } from "./fixtures.ts";

const SCRIPT = resolve(import.meta.dirname, "../support/dockerd-btrfs.sh");

const tools = checkTools(
  "dockerd on btrfs",
  [
    ...DOCKERD_BTRFS_TOOLS,
    { tool: "btrfs", debianPackage: "btrfs-progs" },
    { tool: "mkfs.ext4", debianPackage: "e2fsprogs" },
    { tool: "findmnt", debianPackage: "util-linux" },
    { tool: "busybox", debianPackage: "busybox-static" },
  ],
  { needsRoot: true },
);

/** Per driver: the host input, and what `findmnt` calls the file system the volume gets. */
const DRIVERS = [
  ["btrfs", fcosFull],
  ["overlay2", fcosOverlay2],
] as const satisfies readonly (readonly [string, HostIgnitionInput])[];

/** Keys of the production daemon.json that must differ on a test machine, and why. */
const REMOVED_KEYS: Record<string, string> = {
  hosts: "the test's dockerd listens on its own socket (-H); a hosts key plus -H is a startup error",
  bip: "the test uses a private bridge (--bridge) so it never touches docker0; bip and bridge are exclusive",
  tls: "no TCP listener on a test machine",
  tlsverify: "no TCP listener on a test machine",
  tlscacert: "the TLS files live under /etc/docker/tls on the host only",
  tlscert: "the TLS files live under /etc/docker/tls on the host only",
  tlskey: "the TLS files live under /etc/docker/tls on the host only",
  "metrics-addr":
    "the host's private address does not exist here (test/e2e/monitoring.test.ts runs it on a mapped address)",
};
const ADDED_KEYS: Record<string, JsonInput> = {
  // Leave the test machine's firewall alone; dockerd-btrfs.sh turns forwarding on for the run and
  // puts the old value back on stop (dockerd would turn it on and leave it on).
  iptables: false,
  "ip-forward": false,
};

function testCopy(production: Record<string, JsonInput>): Record<string, JsonInput> {
  const kept = Object.entries(production).filter(([key]) => !(key in REMOVED_KEYS));
  return { ...Object.fromEntries(kept), ...ADDED_KEYS };
}

/** What dockerd says (in `docker info` and `docker run`) when net.ipv4.ip_forward is 0. */
const FORWARDING_WARNING = "IPv4 forwarding is disabled";

const run = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) =>
  spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 170_000 });

for (const [driver, input] of DRIVERS)
  toolsDescribe(tools)(`${driver}: dockerd with the rendered daemon.json on the rendered volume`, () => {
    const config = buildHostIgnition(input);
    const production = JSON.parse(fileText(config, "/etc/docker/daemon.json")) as Record<string, JsonInput>;
    const volume = config.storage?.filesystems?.[0];
    const label = volume?.label ?? "";
    const format = volume?.format ?? "";
    let workdir = "";
    let sock = "";
    let started: ReturnType<typeof run> | undefined;

    const docker = (...args: string[]) => run("docker", ["-H", `unix://${sock}`, ...args]);

    beforeAll(() => {
      // Short path: dockerd puts Unix sockets under the exec root (108-byte limit).
      workdir = mkdtempSync(join(tmpdir(), "bd-"));
      sock = join(workdir, "docker.sock");
      writeFileSync(join(workdir, "daemon.json"), `${JSON.stringify(testCopy(production), null, 2)}\n`);
      // The loop file gets the rendered format and label, as Ignition's disks stage would make them.
      started = run("bash", [SCRIPT, "start", workdir], { BERTH_LABEL: label, BERTH_FS: format });
    });

    afterAll(() => {
      if (!workdir) return;
      const stopped = run("bash", [SCRIPT, "stop", workdir]);
      if (stopped.status === 0) {
        rmSync(workdir, { recursive: true, force: true });
      } else {
        // Never rm -rf through a mount that is still there; leave it for inspection.
        console.error(`dockerd-btrfs.sh stop failed, leaving ${workdir}:\n${stopped.stderr}`);
      }
    });

    it("renders the driver's file system, never wiping one that is there", () => {
      expect({ driver: production["storage-driver"], format }).toEqual(
        driver === "btrfs" ? { driver, format: "btrfs" } : { driver, format: "ext4" },
      );
      expect(volume?.wipeFilesystem).toBe(false);
    });

    it("changes only the keys a test machine needs changed", () => {
      const copy = testCopy(production);
      const changed = [...new Set([...Object.keys(production), ...Object.keys(copy)])]
        .filter((k) => JSON.stringify(production[k]) !== JSON.stringify(copy[k]))
        .sort();
      expect(changed).toEqual([...Object.keys(REMOVED_KEYS), ...Object.keys(ADDED_KEYS)].sort());
      for (const key of [
        "storage-driver",
        "log-driver",
        "log-opts",
        "live-restore",
        "registry-mirrors",
        "selinux-enabled",
      ]) {
        expect(copy[key], key).toEqual(production[key]);
      }
    });

    it("starts dockerd", () => {
      expect(started?.stderr ?? "", started?.stderr).toContain("dockerd is up");
      expect(started?.status).toBe(0);
    });

    it(`mounts a file system of the rendered format carrying the rendered label as the data root`, () => {
      const mnt = join(workdir, "mnt");
      const fs = run("findmnt", ["-n", "-o", "FSTYPE,SOURCE", "--mountpoint", mnt]);
      expect(fs.stdout.trim()).toMatch(new RegExp(`^${format}\\s+/dev/loop\\d+$`));
      const device = fs.stdout.trim().split(/\s+/)[1] ?? "";
      expect(run("blkid", ["-p", "-s", "LABEL", "-o", "value", device]).stdout.trim()).toBe("docker");
    });

    it(`uses the ${driver} storage driver and the daemon.json settings`, () => {
      const info = docker(
        "info",
        "--format",
        "{{.Driver}} {{.LoggingDriver}} {{.LiveRestoreEnabled}} {{json .RegistryConfig.Mirrors}}",
      );
      expect(info.status, info.stderr).toBe(0);
      // Not an empty stderr: dockerd's warnings depend on the machine. The one the helper prevents
      // (forwarding off, as on a freshly booted machine) must not be there.
      expect(info.stderr).not.toContain(FORWARDING_WARNING);
      expect(info.stdout.trim()).toBe(`${driver} json-file true ["https://registry.ci.internal:5001/"]`);
      expect(docker("info", "--format", "{{.Driver}}").stdout.trim()).toBe(driver);
    });

    it(`runs a container from an imported image, its layers stored the ${driver} way`, () => {
      const rootfs = join(workdir, "image-rootfs");
      mkdirSync(join(rootfs, "bin"), { recursive: true });
      copyFileSync(tools.paths.busybox ?? "/bin/busybox", join(rootfs, "bin", "busybox"));
      chmodSync(join(rootfs, "bin", "busybox"), 0o755);
      const tarball = join(workdir, "image.tar");
      expect(run("tar", ["-C", rootfs, "-cf", tarball, "bin"]).status).toBe(0);
      const imported = docker("import", tarball, "berth-test/busybox:1");
      expect(imported.status, imported.stderr).toBe(0);

      const ran = docker("run", "--rm", "berth-test/busybox:1", "/bin/busybox", "echo", "ok");
      expect(ran.stderr).not.toContain(FORWARDING_WARNING);
      expect(ran.stdout).toBe("ok\n");
      expect(ran.status).toBe(0);

      const graph = docker("image", "inspect", "--format", "{{.GraphDriver.Name}}", "berth-test/busybox:1");
      expect(graph.stdout.trim()).toBe(driver);
      if (driver === "btrfs") {
        const subvolumes = run("btrfs", ["subvolume", "list", join(workdir, "mnt")]);
        expect(subvolumes.stdout).toMatch(/path btrfs\/subvolumes\/[0-9a-f]{64}/);
      } else {
        // overlay2 keeps each layer as a directory with a diff/ of its files, on the ext4 volume.
        const dir = docker(
          "image",
          "inspect",
          "--format",
          "{{.GraphDriver.Data.UpperDir}}",
          "berth-test/busybox:1",
        );
        expect(dir.stdout.trim()).toMatch(new RegExp(`^${join(workdir, "mnt")}/overlay2/[0-9a-f]{64}/diff$`));
        expect(run("test", ["-x", join(dir.stdout.trim(), "bin", "busybox")]).status).toBe(0);
      }
    });

    it("gives every container the search domains of daemon.json: default bridge, user network, --network container:", () => {
      // What a build starts with plain `docker run`, given no --dns-search of its own (issue #15 item 3).
      const search = `search ${(production["dns-search"] as string[]).join(" ")}`;
      expect(search).toBe("search svc.ci.internal us-east-1.example.internal");
      const cat = (...args: string[]) => {
        const r = docker(
          "run",
          "--rm",
          ...args,
          "berth-test/busybox:1",
          "/bin/busybox",
          "cat",
          "/etc/resolv.conf",
        );
        expect(r.status, r.stderr).toBe(0);
        return r.stdout;
      };
      expect(cat().split("\n")).toContain(search);
      // A user-defined network (like ci-services): Docker's embedded DNS, the same search list.
      expect(docker("network", "create", "berth-dnscheck").status).toBe(0);
      try {
        const onNetwork = cat("--network", "berth-dnscheck");
        expect(onNetwork.split("\n")).toContain(search);
        expect(onNetwork).toMatch(/^nameserver 127\.0\.0\.11$/m);
        // A network holder's namespace: a joined container sees the holder's own file.
        const holder = docker(
          "run",
          "-d",
          "--name",
          "berth-dnscheck-holder",
          "--network",
          "berth-dnscheck",
          "berth-test/busybox:1",
          "/bin/busybox",
          "sleep",
          "120",
        );
        expect(holder.status, holder.stderr).toBe(0);
        const holderConf = docker("exec", "berth-dnscheck-holder", "/bin/busybox", "cat", "/etc/resolv.conf");
        expect(cat("--network", "container:berth-dnscheck-holder")).toBe(holderConf.stdout);
        expect(holderConf.stdout.split("\n")).toContain(search);
      } finally {
        docker("rm", "-f", "berth-dnscheck-holder");
        docker("network", "rm", "berth-dnscheck");
      }
    });

    it("applies the json-file log rotation from daemon.json to new containers", () => {
      const created = docker(
        "create",
        "--name",
        "berth-logcheck",
        "berth-test/busybox:1",
        "/bin/busybox",
        "true",
      );
      expect(created.status, created.stderr).toBe(0);
      const logConfig = docker("inspect", "--format", "{{json .HostConfig.LogConfig}}", "berth-logcheck");
      expect(JSON.parse(logConfig.stdout)).toEqual({
        Type: "json-file",
        Config: { "max-file": "3", "max-size": "10m" },
      });
      expect(docker("rm", "berth-logcheck").status).toBe(0);
    });

    it("the rendered free-space check reads the volume (and, on ext4, its inodes)", () => {
      const script = join(workdir, "berth-disk-check");
      writeFileSync(script, fileText(config, "/usr/local/bin/berth-disk-check"), { mode: 0o755 });
      const mnt = join(workdir, "mnt");
      const ok = run(script, ["1", mnt]);
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(new RegExp(`^berth-disk-check: ${mnt} has \\d+% free \\(\\d+ MiB\\)$`, "m"));
      const inodeLine = new RegExp(
        `^berth-disk-check: ${mnt} has \\d+% of its inodes free \\(\\d+ of \\d+\\)$`,
        "m",
      );
      if (format === "ext4") expect(ok.stdout).toMatch(inodeLine);
      else expect(ok.stdout).not.toContain("inodes");
      const full = run(script, ["100", mnt]);
      expect(full.status).toBe(1);
      expect(full.stdout).toContain(`<4>LOW DISK SPACE on ${mnt}`);
    });
  });

/**
 * The overlay2 host's free-space check on an ext4 file system that runs out of inodes with space to
 * spare (many small files: what overlay2 layers are made of). A tiny ext4 with 64 inodes, on a loop
 * file of the test's own.
 */
toolsDescribe(tools)("overlay2 hosts' disk check: an ext4 out of inodes, space left", () => {
  let workdir = "";
  let mounted = false;

  afterAll(() => {
    if (!workdir) return;
    if (mounted && run("umount", [join(workdir, "mnt")]).status !== 0) {
      console.error(`umount failed, leaving ${workdir}`);
      return;
    }
    rmSync(workdir, { recursive: true, force: true });
  });

  it("warns LOW FREE INODES and fails once fewer than PERCENT of the inodes are free", () => {
    workdir = mkdtempSync(join(tmpdir(), "bi-"));
    const img = join(workdir, "ext4.img");
    const mnt = join(workdir, "mnt");
    mkdirSync(mnt);
    expect(run("truncate", ["-s", "32M", img]).status).toBe(0);
    const mkfs = run("mkfs.ext4", ["-q", "-F", "-N", "64", img]);
    expect(mkfs.status, mkfs.stderr).toBe(0);
    const mount = run("mount", ["-o", "loop", "-t", "ext4", img, mnt]);
    expect(mount.status, mount.stderr).toBe(0);
    mounted = true;
    const script = join(workdir, "berth-disk-check");
    writeFileSync(script, fileText(buildHostIgnition(fcosOverlay2), "/usr/local/bin/berth-disk-check"), {
      mode: 0o755,
    });

    const before = run(script, ["15", mnt]);
    expect(before.status, before.stdout).toBe(0);
    expect(before.stdout).toMatch(/of its inodes free/);
    // Fill the inode table with empty files until creating one fails (ENOSPC with space left).
    for (let i = 0; i < 200; i++) if (run("touch", [join(mnt, `f${i}`)]).status !== 0) break;
    const after = run(script, ["15", mnt]);
    expect(after.status).toBe(1);
    expect(after.stdout).toMatch(new RegExp(`^<4>LOW FREE INODES on ${mnt}: 0% free \\(0 of \\d+\\)`, "m"));
    // Space is not the problem: the space line is not a warning.
    expect(after.stdout).toMatch(new RegExp(`^berth-disk-check: ${mnt} has \\d+% free`, "m"));
    expect(after.stdout).not.toContain("LOW DISK SPACE");
  });
});

toolsDescribe(tools)("dockerd refuses an option given both as a flag and in daemon.json", () => {
  let workdir = "";

  afterAll(() => {
    if (!workdir) return;
    const stopped = run("bash", [SCRIPT, "stop", workdir]);
    if (stopped.status === 0) rmSync(workdir, { recursive: true, force: true });
    else console.error(`dockerd-btrfs.sh stop failed, leaving ${workdir}:\n${stopped.stderr}`);
  });

  it("fails to start with `hosts` in daemon.json plus -H, and stop cleans up the half-done start", () => {
    workdir = mkdtempSync(join(tmpdir(), "bd-"));
    // The production file keeps `hosts`; the script passes -H: the same clash a stock
    // `ExecStart=dockerd --host=fd://` would cause on Fedora CoreOS without our drop-in.
    const production = JSON.parse(fileText(buildHostIgnition(fcosFull), "/etc/docker/daemon.json")) as Record<
      string,
      JsonInput
    >;
    const clash = { ...testCopy(production), hosts: production.hosts ?? [] };
    writeFileSync(join(workdir, "daemon.json"), JSON.stringify(clash));
    const started = run("bash", [SCRIPT, "start", workdir], {
      BERTH_LABEL: "clash",
      BERTH_START_TIMEOUT: "30",
      BERTH_BRIDGE_CIDR: "10.213.1.1/24",
    });
    expect(started.status).not.toBe(0);
    expect(started.stderr).toMatch(
      /directives are specified both as a flag and in the configuration file: hosts/,
    );

    const stopped = run("bash", [SCRIPT, "stop", workdir]);
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(run("losetup", ["-j", join(workdir, "disk.img")]).stdout).toBe("");
    expect(run("findmnt", ["-n", "--mountpoint", join(workdir, "mnt")]).stdout).toBe("");
    // Idempotent: a second stop is a no-op.
    expect(run("bash", [SCRIPT, "stop", workdir]).status).toBe(0);
  });
});

/**
 * A freshly booted machine has net.ipv4.ip_forward=0. Reproduced in a network namespace of the
 * test's own (the sysctl is per namespace), so the machine's value never matters: start turns
 * forwarding on for the run, dockerd reports no forwarding warning, stop puts the old value back.
 */
const nsTools = checkTools(
  "dockerd-btrfs.sh and IPv4 forwarding",
  [...DOCKERD_BTRFS_TOOLS, { tool: "nsenter", debianPackage: "util-linux" }],
  { needsRoot: true },
);

toolsDescribe(nsTools)("dockerd-btrfs.sh turns IPv4 forwarding on for its run only", () => {
  const made: { ns: string; workdir: string }[] = [];
  const state = (workdir: string) => ({ BERTH_FORWARD_STATE: join(workdir, "forward-state") });
  const inNs = (ns: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) =>
    run("nsenter", [`--net=/run/netns/${ns}`, "--", cmd, ...args], env);
  const forwarding = (ns: string) => inNs(ns, "cat", ["/proc/sys/net/ipv4/ip_forward"]).stdout.trim();

  afterAll(() => {
    for (const { ns, workdir } of made) {
      const stopped = inNs(ns, "bash", [SCRIPT, "stop", workdir], state(workdir));
      if (stopped.status === 0) rmSync(workdir, { recursive: true, force: true });
      else console.error(`dockerd-btrfs.sh stop failed, leaving ${workdir}:\n${stopped.stderr}`);
      run("ip", ["netns", "del", ns]);
    }
  });

  it.each([
    ["0", "a freshly booted machine"],
    ["1", "a machine that already forwards"],
  ])("starting with ip_forward=%s (%s): 1 while dockerd runs, the old value after stop", (before) => {
    const ns = `berth-fwd-${process.pid}-${before}`;
    const workdir = mkdtempSync(join(tmpdir(), "bd-"));
    expect(run("ip", ["netns", "add", ns]).status).toBe(0);
    made.push({ ns, workdir });
    expect(inNs(ns, "sh", ["-c", `echo ${before} > /proc/sys/net/ipv4/ip_forward`]).status).toBe(0);
    expect(forwarding(ns)).toBe(before);
    writeFileSync(
      join(workdir, "daemon.json"),
      `${JSON.stringify({ iptables: false, "ip-forward": false })}\n`,
    );

    const started = inNs(ns, "bash", [SCRIPT, "start", workdir], {
      // The namespace's forwarding record goes away with the work directory.
      ...state(workdir),
      BERTH_LABEL: "fwd",
      BERTH_DISK_SIZE: "256M",
      BERTH_BRIDGE_CIDR: "10.213.2.1/24",
    });
    expect(started.status, started.stderr).toBe(0);
    expect(forwarding(ns)).toBe("1");
    const info = run("docker", ["-H", `unix://${join(workdir, "docker.sock")}`, "info"]);
    expect(info.status, info.stderr).toBe(0);
    expect(`${info.stdout}${info.stderr}`).not.toContain(FORWARDING_WARNING);

    const stopped = inNs(ns, "bash", [SCRIPT, "stop", workdir], state(workdir));
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(forwarding(ns)).toBe(before);
  });
});
