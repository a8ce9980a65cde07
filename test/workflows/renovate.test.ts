/**
 * renovate.json's custom manager, applied as Renovate applies it (its file patterns over the
 * repository's files, its match string with named groups), must find every image pin the program
 * registers on the shipped stacks, each exactly as written, and nothing that is not a pin of ours.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { pinsOf } from "../../cli/images.ts";
import { DEFAULT_IMAGES, SERVICE_CATALOG } from "../../config/images.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { runStack } from "../../plan/run.ts";

interface CustomManager {
  customType: string;
  managerFilePatterns: string[];
  matchStrings: string[];
  datasourceTemplate: string;
}
interface PackageRule {
  matchManagers?: string[];
  matchDepNames?: string[];
  matchUpdateTypes?: string[];
  groupName?: string | null;
}
interface RenovateConfig {
  customManagers: CustomManager[];
  packageRules: PackageRule[];
  dockerfile?: { enabled: boolean };
}

const config = JSON.parse(readFileSync(join(PROJECT_ROOT, "renovate.json"), "utf8")) as RenovateConfig;

/** Renovate's `/…/` pattern strings are regular expressions. */
function patternRegex(p: string): RegExp {
  const m = /^\/(.*)\/([a-z]*)$/.exec(p);
  if (!m?.[1]) throw new Error(`not a /regex/ pattern: ${p}`);
  return new RegExp(m[1], m[2]);
}

interface Match {
  file: string;
  text: string;
  depName: string;
  currentValue: string;
  currentDigest: string;
}

function extract(manager: CustomManager): Match[] {
  const files = execFileSync("git", ["ls-files"], { cwd: PROJECT_ROOT, encoding: "utf8" })
    .split("\n")
    .filter((f) => f !== "" && manager.managerFilePatterns.some((p) => patternRegex(p).test(f)));
  const out: Match[] = [];
  for (const file of files) {
    const text = readFileSync(join(PROJECT_ROOT, file), "utf8");
    for (const ms of manager.matchStrings) {
      for (const m of text.matchAll(new RegExp(ms, "g"))) {
        const g = m.groups ?? {};
        out.push({
          file,
          text: m[0],
          depName: g.depName ?? "",
          currentValue: g.currentValue ?? "",
          currentDigest: g.currentDigest ?? "",
        });
      }
    }
  }
  return out;
}

describe("renovate.json", () => {
  const [manager] = config.customManagers;
  let matches: Match[] = [];
  const registered = new Set<string>();

  beforeAll(async () => {
    if (!manager) throw new Error("no custom manager");
    matches = extract(manager);
    for (const stack of ["testing", "staging", "production"])
      for (const ref of pinsOf(await runStack(PROJECT_ROOT, stack))) registered.add(ref);
  }, 120_000);

  it("has one docker regex manager, and the native Dockerfile manager off (no duplicate PRs)", () => {
    expect(config.customManagers).toHaveLength(1);
    expect(manager?.customType).toBe("regex");
    expect(manager?.datasourceTemplate).toBe("docker");
    expect(config.dockerfile?.enabled).toBe(false);
  });

  it("captures each pin whole: depName:currentValue@currentDigest is the text matched", () => {
    expect(matches.length).toBeGreaterThan(0);
    for (const m of matches) expect(`${m.depName}:${m.currentValue}@${m.currentDigest}`).toBe(m.text);
  });

  it("finds every image the program registers on the shipped stacks", () => {
    expect(registered.size).toBeGreaterThan(5);
    const found = new Set(matches.map((m) => m.text));
    expect([...registered].filter((r) => !found.has(r))).toEqual([]);
  });

  it("finds nothing but the program's pins and the images' Dockerfile bases", () => {
    const ours = new Set<string>([
      ...Object.values(DEFAULT_IMAGES),
      ...Object.values(SERVICE_CATALOG).map((s) => s.image),
    ]);
    const dockerfileBases = matches.filter((m) => m.file.endsWith("Dockerfile"));
    expect(dockerfileBases.length).toBeGreaterThan(0);
    for (const m of dockerfileBases) {
      const line = readFileSync(join(PROJECT_ROOT, m.file), "utf8")
        .split("\n")
        .find((l) => l.includes(m.text));
      expect(line, m.file).toMatch(/^ARG BASE=/);
    }
    const others = matches.filter((m) => !m.file.endsWith("Dockerfile")).map((m) => m.text);
    expect(new Set(others)).toEqual(ours);
  });

  it("puts every pinned image in exactly one group", () => {
    const grouping = config.packageRules.filter((r) => r.groupName && !r.matchUpdateTypes);
    for (const m of matches) {
      const groups = grouping.filter((r) => r.matchDepNames?.includes(m.depName));
      expect(
        groups.map((g) => g.groupName),
        m.depName,
      ).toHaveLength(1);
    }
  });
});
