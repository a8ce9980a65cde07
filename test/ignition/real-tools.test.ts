/**
 * The rendered configs, checked by the real tools: Debian's ignition-validate, the real Ignition
 * binary applying them to a scratch root, systemd-analyze verify on the units it wrote, and sshd -T
 * on the sshd drop-in.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, expect, it } from "vitest";

import { renderHostIgnition, type HostIgnitionInput } from "../../ignition/index.ts";
import { checkTools, toolsDescribe } from "../support/tools.ts";
import { parse as parseToml } from "smol-toml";
import {
  DAY2_ENABLED_UNITS,
  DAY2_ENABLED_UNITS_OVERLAY2,
  DAY2_SCRIPTS,
  DAY2_SCRIPTS_OVERLAY2,
  DAY2_UNITS,
  DAY2_UNITS_OVERLAY2,
  IGNITION_BINARY,
  applyWithIgnition,
  fcosFull,
  fcosOverlay2,
  fcosWithExtra,
  flatcarMinimal,
  flatcarOverlay2,
  makeScratchRoot,
  prepareVerifyRoot,
  verifyUnits,
  type StageRun,
} from "./fixtures.ts";

const tools = checkTools("ignition real-tool tests", [
  { tool: "ignition-validate", debianPackage: "ignition" },
  { tool: IGNITION_BINARY, debianPackage: "ignition" },
  // Debian's Ignition relabels written files with setfiles after the files stage.
  { tool: "setfiles", debianPackage: "policycoreutils" },
  { tool: "usermod", debianPackage: "passwd" },
  { tool: "systemd-analyze", debianPackage: "systemd" },
  { tool: "dockerd", debianPackage: "docker.io" },
  { tool: "sshd", debianPackage: "openssh-server" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
]);

const cleanup: string[] = [];
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

const mode = (path: string): number => statSync(path).mode & 0o7777;

interface Applied {
  host: HostIgnitionInput;
  root: string;
  runs: StageRun[];
}

/** Renders, validates and applies one host's config; memoised so each host is applied once. */
const applied = new Map<string, Applied>();
function apply(host: HostIgnitionInput): Applied {
  const known = applied.get(host.name);
  if (known) return known;
  const work = mkdtempSync(join(tmpdir(), "berth-ign-"));
  cleanup.push(work);
  const configPath = join(work, "config.ign");
  writeFileSync(configPath, renderHostIgnition(host));
  const root = makeScratchRoot("berth-root-");
  cleanup.push(root);
  const result = { host, root, runs: applyWithIgnition(root, configPath, work) };
  applied.set(host.name, result);
  return result;
}

const hosts: [string, HostIgnitionInput][] = [
  ["fcos with TLS, registry CA and service DNS", fcosFull],
  ["flatcar minimal", flatcarMinimal],
  ["fcos with an extra fragment", fcosWithExtra],
  ["fcos with TLS, registry CA and service DNS, on overlay2", fcosOverlay2],
  ["flatcar minimal, on overlay2", flatcarOverlay2],
];

/** The Day-2 units of a host: without the btrfs balance and scrub on overlay2. */
const day2Units = (host: HostIgnitionInput) =>
  host.storageDriver === "overlay2" ? DAY2_UNITS_OVERLAY2 : DAY2_UNITS;

toolsDescribe(tools)("ignition-validate (Debian, spec 3.3.0)", () => {
  it.each(hosts)("accepts %s without errors or warnings", (_label, host) => {
    const dir = mkdtempSync(join(tmpdir(), "berth-validate-"));
    cleanup.push(dir);
    const path = join(dir, `${host.name}.ign`);
    writeFileSync(path, renderHostIgnition(host));
    const r = spawnSync(tools.paths["ignition-validate"] ?? "ignition-validate", [path], {
      encoding: "utf8",
    });
    expect(`${r.stdout}${r.stderr}`).toBe("");
    expect(r.status).toBe(0);
  });

  it("is a meaningful check: it rejects a duplicate unit", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-validate-"));
    cleanup.push(dir);
    const doc = JSON.parse(renderHostIgnition(flatcarMinimal)) as { systemd: { units: unknown[] } };
    doc.systemd.units.push(doc.systemd.units[0]);
    writeFileSync(join(dir, "dup.ign"), JSON.stringify(doc));
    const r = spawnSync(tools.paths["ignition-validate"] ?? "ignition-validate", [join(dir, "dup.ign")], {
      encoding: "utf8",
    });
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/duplicate/i);
  });
});

toolsDescribe(tools)("the real Ignition binary applies the config (fetch + files stages)", () => {
  it.each(hosts)("%s: both stages pass", (_label, host) => {
    const { runs } = apply(host);
    expect(
      runs.map((r) => r.status),
      runs.map((r) => r.output).join("\n"),
    ).toEqual([0, 0]);
    expect(runs[1]?.output).toContain("files passed");
    expect(runs.map((r) => r.output).join("\n")).not.toMatch(/CRITICAL|ERROR/);
  });

  it("writes fcos files with the expected modes and contents", () => {
    const { root } = apply(fcosFull);
    const at = (p: string): string => join(root, p);
    expect(readFileSync(at("etc/hostname"), "utf8")).toBe("staging-ci-1\n");
    expect(mode(at("etc/docker/daemon.json"))).toBe(0o644);
    const daemon = JSON.parse(readFileSync(at("etc/docker/daemon.json"), "utf8")) as Record<string, unknown>;
    expect(daemon["storage-driver"]).toBe("btrfs");
    expect(mode(at("etc/docker/tls/server-key.pem"))).toBe(0o600);
    expect(readFileSync(at("etc/docker/tls/server-key.pem"), "utf8")).toBe(fcosFull.dockerTls?.serverKeyPem);
    expect(mode(at("etc/docker/tls/ca.pem"))).toBe(0o644);
    expect(readFileSync(at("etc/docker/certs.d/registry.ci.internal/ca.crt"), "utf8")).toBe(
      fcosFull.registry?.caCertPem,
    );
    expect(readFileSync(at("etc/docker/certs.d/registry.ci.internal:5001/ca.crt"), "utf8")).toBe(
      fcosFull.registry?.caCertPem,
    );
    expect(mode(at("etc/pki/ca-trust/source/anchors/berth-registry-ca.pem"))).toBe(0o644);
    expect(mode(at("etc/ssh/sshd_config.d/05-berth.conf"))).toBe(0o600);
    expect(readFileSync(at("etc/hosts"), "utf8")).toContain("10.20.0.10 registry.ci.internal\n");
    expect(readFileSync(at("etc/systemd/resolved.conf.d/50-berth.conf"), "utf8")).toContain(
      "DNS=172.30.0.2\nDomains=svc.ci.internal us-east-1.example.internal\n",
    );
    expect(daemon["dns-search"]).toEqual(["svc.ci.internal", "us-east-1.example.internal"]);
    expect(spawnSync("readlink", [at("etc/localtime")], { encoding: "utf8" }).stdout.trim()).toBe(
      "../usr/share/zoneinfo/Europe/Rome",
    );
  });

  it("writes the mount unit, the docker drop-in and the enablement presets", () => {
    const { root } = apply(fcosFull);
    const mount = readFileSync(join(root, "etc/systemd/system/var-lib-docker.mount"), "utf8");
    expect(mount).toContain("What=/dev/disk/by-label/docker\n");
    const dropin = readFileSync(join(root, "etc/systemd/system/docker.service.d/10-berth.conf"), "utf8");
    expect(dropin).toContain("RequiresMountsFor=/var/lib/docker\n");
    const preset = readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8");
    expect(preset.trim().split("\n").sort()).toEqual(
      [
        "enable docker.service",
        "enable var-lib-docker.mount",
        // fcosFull has metrics: the textfile writer's timer (renderers/host-metrics.ts).
        "enable berth-textfile-metrics.timer",
        ...DAY2_ENABLED_UNITS.map((u) => `enable ${u}`),
      ].sort(),
    );
  });

  it("writes the Day-2 files: Zincati's drop-in (fcos) or update.conf (flatcar), scripts 0755, journald cap", () => {
    const fcos = apply(fcosFull).root;
    const toml = parseToml(readFileSync(join(fcos, "etc/zincati/config.d/55-berth-updates.toml"), "utf8"));
    expect(toml).toEqual({
      updates: {
        strategy: "periodic",
        periodic: {
          time_zone: "Europe/Rome",
          window: [{ days: ["Sat", "Sun"], start_time: "02:00", length_minutes: 60 }],
        },
      },
    });
    for (const script of DAY2_SCRIPTS) expect(mode(join(fcos, "usr/local/bin", script)), script).toBe(0o755);
    expect(readFileSync(join(fcos, "etc/systemd/journald.conf.d/50-berth.conf"), "utf8")).toContain(
      "SystemMaxUse=1G\n",
    );

    const flatcar = apply(flatcarMinimal).root;
    expect(() => statSync(join(flatcar, "etc/zincati"))).toThrow();
    expect(readFileSync(join(flatcar, "etc/flatcar/update.conf"), "utf8")).toContain(
      "REBOOT_STRATEGY=reboot\n",
    );
    for (const script of DAY2_SCRIPTS) expect(mode(join(flatcar, "opt/bin", script)), script).toBe(0o755);
    expect(readFileSync(join(flatcar, "etc/systemd/system/berth-build-inhibit.service"), "utf8")).toContain(
      "ExecStart=/opt/bin/berth-build-inhibit\n",
    );
  });

  it.each([
    ["fcos", fcosOverlay2, "usr/local/bin"],
    ["flatcar", flatcarOverlay2, "opt/bin"],
  ] as const)(
    "%s on overlay2: an ext4 mount unit, overlay2 in daemon.json, no btrfs upkeep",
    (_os, host, bin) => {
      const { root } = apply(host);
      const mount = readFileSync(join(root, "etc/systemd/system/var-lib-docker.mount"), "utf8");
      expect(mount).toContain("Type=ext4\n");
      const daemon = JSON.parse(readFileSync(join(root, "etc/docker/daemon.json"), "utf8")) as Record<
        string,
        unknown
      >;
      expect(daemon["storage-driver"]).toBe("overlay2");
      for (const script of DAY2_SCRIPTS_OVERLAY2) expect(mode(join(root, bin, script)), script).toBe(0o755);
      expect(() => statSync(join(root, bin, "berth-btrfs-maintenance"))).toThrow();
      expect(() => statSync(join(root, "etc/systemd/system/berth-btrfs-balance.timer"))).toThrow();
      expect(() => statSync(join(root, "etc/systemd/system/berth-btrfs-scrub.timer"))).toThrow();
      const preset = readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8");
      expect(preset.trim().split("\n").sort()).toEqual(
        [
          "enable docker.service",
          "enable var-lib-docker.mount",
          ...(host.metrics ? ["enable berth-textfile-metrics.timer"] : []),
          ...DAY2_ENABLED_UNITS_OVERLAY2.map((u) => `enable ${u}`),
        ].sort(),
      );
    },
  );

  it("installs core's SSH keys where Ignition 2.14 puts them", () => {
    const { root } = apply(fcosFull);
    const keysFile = join(root, "home/core/.ssh/authorized_keys.d/ignition");
    expect(readFileSync(keysFile, "utf8").trim().split("\n")).toEqual(fcosFull.sshAuthorizedKeys);
    expect(mode(keysFile)).toBe(0o600);
    expect(statSync(keysFile).uid).toBe(1000);
  });

  it("decodes the gzip data URL of a large fragment file back to the original bytes", () => {
    const { root } = apply(fcosWithExtra);
    const original = fcosWithExtra.extraFragments?.[0]?.config.storage?.files?.[1];
    expect(original?.contents?.compression).toBe("gzip");
    const written = readFileSync(join(root, "usr/local/bin/berth-warmup"), "utf8");
    expect(written).toMatch(/^#!\/bin\/sh\n# warm-up script\necho "step 0"\n/);
    expect(written.endsWith('echo "step 199"\n')).toBe(true);
    expect(mode(join(root, "usr/local/bin/berth-warmup"))).toBe(0o755);
    const preset = readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8");
    expect(preset).toContain("enable berth-warmup.service\n");
  });

  it("flatcar: trust anchors and keys, no TLS material", () => {
    const { root } = apply(flatcarMinimal);
    expect(() => statSync(join(root, "etc/docker/tls"))).toThrow();
    expect(readFileSync(join(root, "etc/hostname"), "utf8")).toBe("pr-42-ci-1\n");
    expect(readFileSync(join(root, "etc/systemd/system/var-lib-docker.mount"), "utf8")).toContain(
      "What=/dev/disk/by-label/dockerdata\n",
    );
  });
});

/**
 * A stand-in for the image's own docker.service, shaped like Fedora CoreOS's (socket-activated,
 * flags plus $OPTIONS on ExecStart). The scratch root has no Docker package, and a drop-in needs a
 * unit to apply to; the other units (targets, docker.socket) are the host's real ones, copied in.
 */
function prepareForVerify(root: string): void {
  prepareVerifyRoot(root, tools.paths.dockerd ?? "/usr/sbin/dockerd");
}

function verify(root: string, units: string[]): { status: number | null; output: string } {
  return verifyUnits(root, units, tools.paths["systemd-analyze"] ?? "systemd-analyze");
}

toolsDescribe(tools)("systemd-analyze verify on the units Ignition wrote", () => {
  it.each(hosts)("%s: accepts docker.service (+ drop-in) and the mount unit", (_label, host) => {
    const { root, runs } = apply(host);
    expect(runs.at(-1)?.status).toBe(0);
    prepareForVerify(root);
    const units = ["docker.service", "var-lib-docker.mount", ...day2Units(host)];
    if (host.extraFragments) units.push("berth-warmup.service");
    const r = verify(root, units);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it("is a meaningful check: without the ExecStart reset the drop-in is refused", () => {
    const { root } = apply(flatcarMinimal);
    prepareForVerify(root);
    const dir = join(root, "etc/systemd/system/docker.service.d");
    const good = readFileSync(join(dir, "10-berth.conf"), "utf8");
    try {
      writeFileSync(join(dir, "10-berth.conf"), good.replace("ExecStart=\n", ""));
      const r = verify(root, ["docker.service"]);
      expect(r.status).not.toBe(0);
      expect(r.output).toMatch(/more than one ExecStart/);
    } finally {
      writeFileSync(join(dir, "10-berth.conf"), good);
    }
  });
});

toolsDescribe(tools)("sshd accepts the drop-in and it takes precedence", () => {
  it("sshd -T reports the hardened values even though the main config says yes later", () => {
    const { root } = apply(fcosFull);
    const dir = mkdtempSync(join(tmpdir(), "berth-sshd-"));
    cleanup.push(dir);
    const keygen = spawnSync(tools.paths["ssh-keygen"] ?? "ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-f",
      join(dir, "hostkey"),
    ]);
    expect(keygen.status).toBe(0);
    // Same layout as Fedora CoreOS: the Include comes first, the distribution's defaults after it.
    writeFileSync(
      join(dir, "sshd_config"),
      [
        `Include ${root}/etc/ssh/sshd_config.d/*.conf`,
        `HostKey ${join(dir, "hostkey")}`,
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication yes",
        "PermitRootLogin yes",
        "",
      ].join("\n"),
    );
    // sshd insists on its privilege separation directory; the openssh-server package normally
    // creates this empty root-owned directory at boot.
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const r = spawnSync(tools.paths.sshd ?? "sshd", ["-T", "-f", join(dir, "sshd_config")], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const effective = r.stdout.split("\n");
    expect(effective).toContain("passwordauthentication no");
    expect(effective).toContain("kbdinteractiveauthentication no");
    expect(effective).toContain("permitrootlogin no");
  });
});
