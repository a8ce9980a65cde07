/**
 * One way to report an error: what a user can cause is a ConfigError naming the field (validation,
 * before anything is registered); what is left in the components and the stack layer are bug
 * checks (`internalError`), whose message says it is a bug in Berth; renderers and the Ignition
 * builders refuse bad input with a RenderError naming the field.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";
import { ConfigError, InternalError, internalError } from "../../config/errors.ts";
import { checkServiceAddresses } from "../../components/services.ts";
import { RenderError } from "../../renderers/common.ts";
import { clientCaBundle } from "../../renderers/docker-access.ts";
import { REGISTRY_UPKEEP_DEFAULTS, renderRegistryGcConf } from "../../renderers/registry-gc.ts";
import { buildHostIgnition, file, stableStringify } from "../../ignition/index.ts";
import { fcosFull } from "../ignition/fixtures.ts";

function sources(layer: string): string[] {
  return execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", `${layer}/*.ts`], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
  })
    .split("\n")
    .filter((f) => f.endsWith(".ts"));
}

/** `file:line` of every `new Error(`/`throw Error(` (or Type/RangeError) in `files`. */
function freeTextErrors(files: readonly string[]): string[] {
  return files.flatMap((f) =>
    readFileSync(join(PROJECT_ROOT, f), "utf8")
      .split("\n")
      .flatMap((line, i) => (/\b(new|throw) (Type|Range)?Error\(/.test(line) ? [`${f}:${i + 1}`] : [])),
  );
}

describe("errors", () => {
  it("components and the stack layer throw only bug checks or ConfigError, never a free-text Error", () => {
    const files = [...sources("components"), ...sources("stack")];
    expect(files.length).toBeGreaterThan(10);
    expect(freeTextErrors(files)).toEqual([]);
  });

  it("renderers throw a RenderError naming the field, or a bug check, never a free-text Error", () => {
    const files = sources("renderers");
    expect(files.length).toBeGreaterThan(10);
    expect(freeTextErrors(files)).toEqual([]);
  });

  it("the Ignition builders do the same", () => {
    const files = sources("ignition");
    expect(files).toContain("ignition/host.ts");
    expect(freeTextErrors(files)).toEqual([]);
  });

  it("the Ignition builders' refusals name the builder, the field and the host", () => {
    const host = { ...fcosFull, timezone: "Mars/Olympus Mons" };
    expect(() => buildHostIgnition(host)).toThrow(RenderError);
    expect(() => buildHostIgnition(host)).toThrow(
      'buildHostIgnition: timezone: host "staging-ci-1": must be an IANA name like "Europe/Rome", got "Mars/Olympus Mons"',
    );
    expect(() => file("etc/x", "")).toThrow(RenderError);
    expect(() => stableStringify({ n: Number.POSITIVE_INFINITY })).toThrow(InternalError);
  });

  it("a renderer's refusal names the renderer and the field", () => {
    expect(() => renderRegistryGcConf({ ...REGISTRY_UPKEEP_DEFAULTS, keepTags: 0 })).toThrow(RenderError);
    expect(() => renderRegistryGcConf({ ...REGISTRY_UPKEEP_DEFAULTS, keepTags: 0 })).toThrow(
      "renderRegistryGcConf: keepTags: must be an integer ≥ 1, got 0",
    );
    expect(() => clientCaBundle([])).toThrow(InternalError);
  });

  it("a bug check says it is a bug in Berth and that validation should have refused the input", () => {
    const e = internalError("two ingress rules named x");
    expect(e).toBeInstanceOf(InternalError);
    expect(e).not.toBeInstanceOf(ConfigError);
    expect(e.message).toBe(
      "bug in Berth: two ingress rules named x (validation should have refused this; please report it)",
    );
  });

  it("a component's check of validated input is such a bug check", () => {
    const call = () =>
      checkServiceAddresses({
        subnet: "172.30.0.0/24",
        gateway: "172.30.0.1",
        dnsAddress: "172.30.0.2",
        productionLike: [{ name: "db", kind: "postgres", address: "10.0.0.5" }],
      });
    expect(call).toThrow(InternalError);
    expect(call).toThrow(/^bug in Berth: service db: 10\.0\.0\.5 is not in the services subnet/);
  });
});
