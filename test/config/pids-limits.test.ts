/**
 * Process-count limits (config/limits.ts): each kind's `pids` default (fixed per service kind,
 * builders 2 per MiB of their memory limit), `berth:limits.containers.<kind>.pids` and
 * `berth:limits.defaultPids` overrides, one ConfigError naming every bad field, and where the limits
 * go: the per-build template's label (berth jenkins-casc) and the host's berth-pids-limit service
 * (Ignition, host layer: `defaultPids` changes it, a kind's `pids` does not).
 */
import { describe, expect, it } from "vitest";
import { loadStack, type BerthConfig } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import {
  BUILDER_MIN_PIDS,
  LIMIT_DEFAULTS,
  LIMIT_KINDS,
  PIDS_DEFAULTS,
  PIDS_LIMIT_LABEL,
  builderPids,
} from "../../config/limits.ts";
import { buildHostIgnition } from "../../ignition/host.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { jenkinsDockerClouds, renderJenkinsCasc } from "../../renderers/casc.ts";
import { PIDS_LIMIT_UNIT } from "../../renderers/pids-limit.ts";
import { cascInput } from "../../program.ts";
import { loadEdited, refusedEdit, type StackConfigMap } from "../support/stacks.ts";

const TAG = { agentImageTag: "rev1" };
const limits = (c: StackConfigMap) => (c["berth:limits"] ??= {});
const setKind = (c: StackConfigMap, kind: string, v: Record<string, unknown>) => {
  ((limits(c).containers ??= {}) as Record<string, unknown>)[kind] = v;
};
const VOLUME = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const ignition = (c: BerthConfig, host: string) =>
  JSON.stringify(buildHostIgnition({ ...hostIgnitionBase(c, host), dockerVolumeId: VOLUME }));
const pidsUnit = (c: BerthConfig, host: string) =>
  buildHostIgnition({ ...hostIgnitionBase(c, host), dockerVolumeId: VOLUME }).systemd?.units?.find(
    (u) => u.name === PIDS_LIMIT_UNIT,
  );

describe("defaults", () => {
  it("every kind of every shipped stack has a pids limit; services fixed, builders 2 per MiB", () => {
    for (const stack of ["testing", "staging", "production", "pr-17"]) {
      const c = loadStack(PROJECT_ROOT, stack, TAG);
      for (const kind of LIMIT_KINDS) {
        const l = c.limits.containers[kind];
        if (kind === "agent" || kind === "perBuild")
          expect(l.pids, `${stack} ${kind}`).toBe(Math.max(BUILDER_MIN_PIDS, 2 * l.memoryMiB));
        else expect(l.pids, `${stack} ${kind}`).toBe(PIDS_DEFAULTS[kind]);
      }
      expect(c.limits.defaultPids, stack).toBe(LIMIT_DEFAULTS.defaultPids);
    }
  });

  it("staging (m1.xlarge): builders 1562 MiB, so 3124 processes; a small builder gets the floor", () => {
    const c = loadStack(PROJECT_ROOT, "staging", TAG);
    expect(c.limits.containers.agent.pids).toBe(3124);
    expect(c.limits.containers.perBuild.pids).toBe(3124);
    expect(builderPids(300)).toBe(BUILDER_MIN_PIDS);
  });

  it("a builder's pids follow its memory override unless pids is set too", () => {
    const c = loadEdited((s) => setKind(s, "agent", { memoryMiB: 2000 }));
    expect(c.limits.containers.agent.pids).toBe(4000);
    // The host-layer default does not follow the builders: no host is replaced for more agents.
    expect(c.limits.defaultPids).toBe(LIMIT_DEFAULTS.defaultPids);
  });
});

describe("overrides", () => {
  it("a kind's pids and defaultPids replace the defaults, and only theirs", () => {
    const c = loadEdited((s) => {
      setKind(s, "redis", { pids: 64 });
      setKind(s, "agent", { pids: 9000 });
      limits(s).defaultPids = 2000;
    });
    expect(c.limits.containers.redis).toMatchObject({ pids: 64, memoryMiB: 112 });
    expect(c.limits.configured.redis).toEqual({ pids: true });
    expect(c.limits.containers.agent.pids).toBe(9000);
    expect(c.limits.containers.mongodb.pids).toBe(PIDS_DEFAULTS.mongodb);
    expect(c.limits.defaultPids).toBe(2000);
  });

  it("refuses bad pids in one error naming every field", () => {
    const e = refusedEdit((s) => {
      setKind(s, "redis", { pids: 0 });
      setKind(s, "mongodb", { pids: 15 });
      setKind(s, "agent", { pids: 1.5 });
      setKind(s, "holder", { pids: 4_194_305 });
      limits(s).defaultPids = "many";
    });
    expect(e.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining([
        "berth:limits.containers.redis.pids",
        "berth:limits.containers.mongodb.pids",
        "berth:limits.containers.agent.pids",
        "berth:limits.containers.holder.pids",
        "berth:limits.defaultPids",
      ]),
    );
    expect(e.message).toContain("berth:limits.containers.mongodb.pids: must be >= 16, got 15");
    expect(e.message).toContain("berth:limits.containers.holder.pids: must be <= 4194304");
  });
});

describe("where the limits go", () => {
  it("the per-build template labels each build container with its pids limit", () => {
    const c = loadStack(PROJECT_ROOT, "staging", TAG);
    const addresses = Object.fromEntries(c.hosts.names.map((h) => [h, "203.0.113.5"]));
    const [cloud] = jenkinsDockerClouds(cascInput(c), addresses);
    expect(cloud?.docker.templates[0]?.dockerTemplateBase.extraDockerLabelsString).toBe(
      `${PIDS_LIMIT_LABEL}=3124`,
    );
    const yaml = renderJenkinsCasc(cascInput(c), addresses);
    expect(yaml).toContain(`extraDockerLabelsString: ${PIDS_LIMIT_LABEL}=3124`);
    expect(yaml).toContain("and 3124 processes (berth:limits.containers.perBuild)");
  });

  it("every host runs berth-pids-limit with the stack's default, enabled", () => {
    for (const stack of ["testing", "staging"]) {
      const c = loadStack(PROJECT_ROOT, stack, TAG);
      for (const host of c.hosts.names) {
        const u = pidsUnit(c, host);
        expect(u?.enabled, `${stack} ${host}`).toBe(true);
        expect(u?.contents).toContain(`Environment=BERTH_PIDS_DEFAULT=${String(c.limits.defaultPids)}\n`);
      }
    }
  });

  it("defaultPids is host layer (Ignition changes); a kind's pids is service layer (Ignition unchanged)", () => {
    const base = loadStack(PROJECT_ROOT, "testing", TAG);
    const kind = loadEdited((s) => {
      setKind(s, "redis", { pids: 64 });
      setKind(s, "agent", { pids: 6000 });
      limits(s).defaultPids = base.limits.defaultPids;
    });
    const dflt = loadEdited((s) => (limits(s).defaultPids = 2000));
    for (const host of base.hosts.names) {
      expect(ignition(kind, host), host).toBe(ignition(base, host));
      expect(ignition(dflt, host), host).not.toBe(ignition(base, host));
    }
  });
});
