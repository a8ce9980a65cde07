/**
 * Registry upkeep in the registry host's Ignition: the script, its settings and the units are
 * there only when asked for; the real Ignition writes them and `systemd-analyze verify` accepts them.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderHostIgnition } from "../../ignition/host.ts";
import type { IgnitionConfig } from "../../ignition/model.ts";
import { REGISTRY_UPKEEP_DEFAULTS } from "../../renderers/registry-gc.ts";
import { checkTools, toolsDescribe } from "../support/tools.ts";
import {
  IGNITION_BINARY,
  applyWithIgnition,
  fcosFull,
  fileText,
  makeScratchRoot,
  prepareVerifyRoot,
  verifyUnits,
} from "./fixtures.ts";

const registryHost = { ...fcosFull, registryUpkeep: { ...REGISTRY_UPKEEP_DEFAULTS, keepTags: 5 } };
const UNITS = ["berth-registry-gc.service", "berth-registry-gc.timer"];

describe("renderHostIgnition with registryUpkeep", () => {
  it("adds the script, its settings and the units; the timer is enabled", () => {
    const config = JSON.parse(renderHostIgnition(registryHost)) as IgnitionConfig;
    expect(fileText(config, "/etc/berth/registry-gc.conf")).toContain("keep_tags=5\n");
    expect(fileText(config, "/usr/local/bin/berth-registry-gc")).toMatch(/^#!\/bin\/bash\n/);
    expect(config.storage?.files?.find((f) => f.path === "/usr/local/bin/berth-registry-gc")?.mode).toBe(
      0o755,
    );
    const units = new Map((config.systemd?.units ?? []).map((u) => [u.name, u]));
    expect(units.get("berth-registry-gc.timer")?.enabled).toBe(true);
    expect(units.get("berth-registry-gc.service")?.contents).toContain(
      "ExecStart=/usr/local/bin/berth-registry-gc\n",
    );
  });

  it("adds nothing to a host that does not run the registry", () => {
    const text = renderHostIgnition(fcosFull);
    expect(text).not.toContain("berth-registry-gc");
  });
});

const tools = checkTools("registry upkeep in Ignition", [
  { tool: "ignition-validate", debianPackage: "ignition" },
  { tool: IGNITION_BINARY, debianPackage: "ignition" },
  { tool: "setfiles", debianPackage: "policycoreutils" },
  { tool: "usermod", debianPackage: "passwd" },
  { tool: "systemd-analyze", debianPackage: "systemd" },
  { tool: "dockerd", debianPackage: "docker.io" },
]);

const cleanup: string[] = [];
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

toolsDescribe(tools)("the real Ignition writes it, systemd-analyze verify accepts the units", () => {
  it("writes the files and units; verify is clean", () => {
    const work = mkdtempSync(join(tmpdir(), "berth-ign-gc-"));
    cleanup.push(work);
    const configPath = join(work, "config.ign");
    writeFileSync(configPath, renderHostIgnition(registryHost));
    const root = makeScratchRoot("berth-root-gc-");
    cleanup.push(root);
    const runs = applyWithIgnition(root, configPath, work);
    expect(runs.at(-1)?.status, runs.map((r) => r.output).join("\n")).toBe(0);
    expect(statSync(join(root, "usr/local/bin/berth-registry-gc")).mode & 0o7777).toBe(0o755);
    expect(readFileSync(join(root, "etc/berth/registry-gc.conf"), "utf8")).toContain("keep_tags=5\n");
    const preset = readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8");
    expect(preset).toContain("enable berth-registry-gc.timer\n");
    prepareVerifyRoot(root, tools.paths.dockerd ?? "/usr/sbin/dockerd");
    const r = verifyUnits(root, UNITS, tools.paths["systemd-analyze"] ?? "systemd-analyze");
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it("is a meaningful check: a unit naming a missing script is refused", () => {
    const work = mkdtempSync(join(tmpdir(), "berth-ign-gc-"));
    cleanup.push(work);
    const configPath = join(work, "config.ign");
    writeFileSync(configPath, renderHostIgnition(registryHost));
    const root = makeScratchRoot("berth-root-gc-");
    cleanup.push(root);
    applyWithIgnition(root, configPath, work);
    prepareVerifyRoot(root, tools.paths.dockerd ?? "/usr/sbin/dockerd");
    rmSync(join(root, "usr/local/bin/berth-registry-gc"));
    const r = verifyUnits(
      root,
      ["berth-registry-gc.service"],
      tools.paths["systemd-analyze"] ?? "systemd-analyze",
    );
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/berth-registry-gc/);
  });
});
