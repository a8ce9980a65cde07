/**
 * The Ignition the shipped stacks' servers boot with (as `berth render` writes it), checked by the
 * real tools: ignition-validate for every host, the real Ignition applying each stack's first host
 * into a scratch root, and systemd-analyze verify on what it wrote. Readable snapshots per stack.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { loadStack } from "../../config/load.ts";
import type { IgnitionConfig } from "../../ignition/index.ts";
import { checkTools, toolsIt } from "../support/tools.ts";
import { hostUpdatePolicy } from "../../stack/host-ignition.ts";
import { parse as parseToml } from "smol-toml";
import { DOCKER_VOLUME_FILESYSTEM } from "../../renderers/storage.ts";
import { editedStackRoot } from "../support/stacks.ts";
import {
  DAY2_ENABLED_UNITS,
  DAY2_ENABLED_UNITS_OVERLAY2,
  DAY2_SCRIPTS,
  DAY2_SCRIPTS_OVERLAY2,
  DAY2_UNITS,
  DAY2_UNITS_OVERLAY2,
  IGNITION_BINARY,
  applyWithIgnition,
  makeScratchRoot,
  prepareVerifyRoot,
  readable,
  verifyUnits,
} from "./fixtures.ts";

/** A stack rendered from a project root into `out/<id>`. */
interface Case {
  id: string;
  stack: string;
  root: string;
}
const STACKS: Case[] = ["testing", "staging", "production", "pr-17"].map((stack) => ({
  id: stack,
  stack,
  root: PROJECT_ROOT,
}));
// The shipped testing stack with hosts.storageDriver: overlay2 (no shipped stack uses it).
STACKS.push({
  id: "testing-overlay2",
  stack: "testing",
  root: editedStackRoot((c) => {
    (c["berth:hosts"] as Record<string, unknown>).storageDriver = "overlay2";
  }),
});
const tools = checkTools("stack Ignition (real tools)", [
  { tool: "ignition-validate", debianPackage: "ignition" },
  { tool: IGNITION_BINARY, debianPackage: "ignition" },
  { tool: "setfiles", debianPackage: "policycoreutils" },
  { tool: "systemd-analyze", debianPackage: "systemd" },
  { tool: "dockerd", debianPackage: "docker.io" },
]);

const out = mkdtempSync(join(tmpdir(), "berth-render-"));
const cleanup = [out];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

beforeAll(async () => {
  for (const { id, stack, root } of STACKS) {
    const lines: string[] = [];
    const code = await main(
      ["render", stack, "--out", join(out, id)],
      { out: (s) => lines.push(s), err: (s) => lines.push(s) },
      root,
    );
    expect(code, lines.join("\n")).toBe(0);
  }
}, 120_000);

const hostFiles = (stack: string) =>
  readdirSync(join(out, stack, "hosts"))
    .filter((f) => f.endsWith(".ign"))
    .sort();

describe.each(STACKS)("berth render $id", ({ id, stack, root: projectRoot }) => {
  it("writes one Ignition file per host, secret-bearing ones 0600 and listed", () => {
    const cfg = loadStack(projectRoot, stack);
    expect(hostFiles(id)).toEqual(cfg.hosts.names.map((n) => `${n}.ign`).sort());
    const marker = readFileSync(join(out, id, "hosts", "SECRET-FILES"), "utf8");
    for (const f of hostFiles(id)) {
      // dockerd's TLS key is in every host's config: each file is marked and private.
      expect(marker).toContain(f);
      expect(statSync(join(out, id, "hosts", f)).mode & 0o777).toBe(0o600);
    }
  });

  toolsIt(tools)("every host's config passes ignition-validate", () => {
    for (const f of hostFiles(id)) {
      const r = spawnSync("ignition-validate", [join(out, id, "hosts", f)], { encoding: "utf8" });
      expect(`${r.stdout}${r.stderr}`).toBe("");
      expect(r.status).toBe(0);
    }
  });

  toolsIt(tools)(
    "the real Ignition applies the first host's config; systemd-analyze accepts the units",
    () => {
      const cfg = loadStack(projectRoot, stack);
      const host = cfg.hosts.names[0]!;
      const work = mkdtempSync(join(tmpdir(), "berth-stack-ign-"));
      const root = makeScratchRoot("berth-stack-root-");
      cleanup.push(work, root);
      const runs = applyWithIgnition(root, join(out, id, "hosts", `${host}.ign`), work);
      expect(
        runs.map((r) => r.status),
        runs.at(-1)?.output,
      ).toEqual([0, 0]);

      expect(readFileSync(join(root, "etc/hostname"), "utf8")).toBe(`${host}\n`);
      const daemon = JSON.parse(readFileSync(join(root, "etc/docker/daemon.json"), "utf8")) as Record<
        string,
        unknown
      >;
      expect(daemon["storage-driver"]).toBe(id === "testing-overlay2" ? "overlay2" : "btrfs");
      expect(daemon["storage-driver"]).toBe(cfg.hosts.storageDriver);
      expect(daemon.hosts).toEqual([
        "unix:///var/run/docker.sock",
        `tcp://0.0.0.0:${cfg.hosts.dockerTlsPort}`,
      ]);
      expect(daemon["registry-mirrors"]).toEqual(
        cfg.registry.pullThroughCache
          ? [`https://${cfg.registry.hostname}:${cfg.registry.pullThroughCache.port}`]
          : [],
      );
      expect(statSync(join(root, "etc/docker/tls/server-key.pem")).mode & 0o777).toBe(0o600);
      expect(existsSync(join(root, `etc/docker/certs.d/${cfg.registry.hostname}/ca.crt`))).toBe(true);
      expect(readFileSync(join(root, "etc/hosts"), "utf8")).toContain(
        `${cfg.registry.address} ${cfg.registry.hostname}`,
      );
      const keys = readFileSync(join(root, "home/core/.ssh/authorized_keys.d/ignition"), "utf8");
      for (const k of cfg.hosts.sshKeys) expect(keys).toContain(k);
      const preset = readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8");
      expect(preset).toContain("enable docker.service");
      expect(preset).toContain("enable var-lib-docker.mount");
      // core can reach dockerd's socket (the Docker provider's ssh://core@host) and keeps sudo.
      const group = readFileSync(join(root, "etc/group"), "utf8");
      for (const g of ["docker", "wheel", "sudo"])
        expect(group).toMatch(new RegExp(`^${g}:x:\\d+:(.*,)?core(,|$)`, "m"));
      // The stack's own fragments (berth:extraIgnition) land too.
      for (const f of cfg.extraIgnition)
        for (const written of f.config.storage?.files ?? [])
          expect(existsSync(join(root, written.path))).toBe(true);
      expect(cfg.extraIgnition.length > 0).toBe(stack === "staging");
      const mount = readFileSync(join(root, "etc/systemd/system/var-lib-docker.mount"), "utf8");
      expect(mount).toContain(`Type=${DOCKER_VOLUME_FILESYSTEM[cfg.hosts.storageDriver]}\n`);
      const btrfs = cfg.hosts.storageDriver === "btrfs";
      const day2 = btrfs
        ? { scripts: DAY2_SCRIPTS, units: DAY2_UNITS, enabled: DAY2_ENABLED_UNITS }
        : {
            scripts: DAY2_SCRIPTS_OVERLAY2,
            units: DAY2_UNITS_OVERLAY2,
            enabled: DAY2_ENABLED_UNITS_OVERLAY2,
          };
      // btrfs upkeep only on btrfs hosts.
      expect(existsSync(join(root, "usr/local/bin/berth-btrfs-maintenance"))).toBe(btrfs);
      expect(existsSync(join(root, "etc/systemd/system/berth-btrfs-balance.timer"))).toBe(btrfs);

      // Day 2: the host's update policy (its own staggered windows), scripts, timers, journald cap.
      const toml = parseToml(readFileSync(join(root, "etc/zincati/config.d/55-berth-updates.toml"), "utf8"));
      const policy = hostUpdatePolicy(cfg, host);
      expect(toml).toEqual({
        updates: {
          strategy: "periodic",
          periodic: {
            time_zone: cfg.hosts.timezone,
            window: policy.windows.map((w) => ({
              days: w.days,
              start_time: w.startTime,
              length_minutes: w.lengthMinutes,
            })),
          },
        },
      });
      for (const script of day2.scripts)
        expect(statSync(join(root, "usr/local/bin", script)).mode & 0o777, script).toBe(0o755);
      expect(readFileSync(join(root, "etc/systemd/journald.conf.d/50-berth.conf"), "utf8")).toContain(
        `SystemMaxUse=${cfg.hosts.upkeep.journalMaxUse}\n`,
      );
      for (const u of day2.enabled) expect(preset).toContain(`enable ${u}\n`);

      prepareVerifyRoot(root, tools.paths.dockerd ?? "/usr/sbin/dockerd");
      const v = verifyUnits(
        root,
        ["docker.service", "var-lib-docker.mount", ...day2.units],
        tools.paths["systemd-analyze"],
      );
      expect(v.output).toBe("");
      expect(v.status).toBe(0);
    },
  );

  it("matches the readable snapshot of its hosts' Ignition", async () => {
    const body = hostFiles(id)
      .map((f) => {
        const config = JSON.parse(readFileSync(join(out, id, "hosts", f), "utf8")) as IgnitionConfig;
        return `##### ${f}\n${readable(config)}`;
      })
      .join("\n");
    await expect(body).toMatchFileSnapshot(`../fixtures/ignition/stacks/${id}.txt`);
  });
});

describe("determinism", () => {
  it("rendering the same stack twice gives the same bytes", async () => {
    const again = join(out, "again");
    expect(await main(["render", "staging", "--out", again], { out: () => {}, err: () => {} })).toBe(0);
    for (const f of hostFiles("staging"))
      expect(readFileSync(join(again, "hosts", f), "utf8")).toBe(
        readFileSync(join(out, "staging", "hosts", f), "utf8"),
      );
    writeFileSync(join(again, "touched"), "");
  });
});
