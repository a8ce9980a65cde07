/**
 * Layers depend downward only (docs/architecture.md, "Layers"): every relative import of every
 * source file, type-only imports included, read from the files themselves.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";

/** Each layer and the layers it may import (itself always). Files at the root are the `program` layer. */
export const LAYERS: Record<string, readonly string[]> = {
  // Generic helpers that know nothing of Berth (JSON paths, Engine API replies, tar): every layer may use them.
  lib: [],
  renderers: ["lib"],
  ignition: ["renderers", "lib"],
  config: ["renderers", "ignition", "lib"],
  stack: ["config", "ignition", "renderers", "lib"],
  components: ["stack", "config", "ignition", "renderers", "lib"],
  program: ["components", "stack", "config", "ignition", "renderers", "lib"],
  plan: ["program", "components", "stack", "config", "ignition", "renderers", "lib"],
  janitor: ["config", "lib"],
  cli: ["plan", "janitor", "program", "stack", "config", "ignition", "renderers", "lib"],
  bin: ["cli"],
  // Outside the program: the end-to-end harness, shared by test/e2e and bench/, and the benchmarks.
  // Neither may import test/ (not a layer: an import of it is refused like one going up).
  testkit: ["plan", "program", "components", "stack", "config", "ignition", "renderers", "lib"],
  bench: [
    "testkit",
    "plan",
    "janitor",
    "program",
    "components",
    "stack",
    "config",
    "ignition",
    "renderers",
    "lib",
  ],
};

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"|import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g;

function layerOf(file: string): string | undefined {
  const top = file.split("/")[0] ?? "";
  if (!file.includes("/")) return "program";
  return top in LAYERS ? top : undefined;
}

interface Edge {
  from: string;
  to: string;
  fromLayer: string;
  toLayer: string | undefined;
}

function edges(): Edge[] {
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
  })
    .split("\n")
    .filter((f) => /\.(ts|js|mjs)$/.test(f) && layerOf(f) !== undefined && !f.endsWith(".config.ts"));
  const out: Edge[] = [];
  for (const from of files) {
    const text = readFileSync(join(PROJECT_ROOT, from), "utf8");
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? "";
      const to = relative(PROJECT_ROOT, normalize(join(PROJECT_ROOT, dirname(from), spec)));
      out.push({ from, to, fromLayer: layerOf(from) ?? "", toLayer: layerOf(to) });
    }
  }
  return out;
}

describe("layers", () => {
  const all = edges();

  it("reads the imports (the check sees the program's own edges)", () => {
    expect(all.some((e) => e.from === "program.ts" && e.toLayer === "components")).toBe(true);
    expect(all.some((e) => e.from.startsWith("stack/") && e.toLayer === "ignition")).toBe(true);
    expect(all.some((e) => e.from === "bench/engine.ts" && e.toLayer === "testkit")).toBe(true);
  });

  it("bench/ and testkit/ import nothing from test/", () => {
    const fromTest = all.filter(
      (e) => (e.fromLayer === "bench" || e.fromLayer === "testkit") && e.to.startsWith("test/"),
    );
    expect(fromTest.map((e) => `${e.from} imports ${e.to}`)).toEqual([]);
  });

  it("every import goes to the same layer or one below it", () => {
    const bad = all
      .filter((e) => e.toLayer !== e.fromLayer)
      .filter((e) => e.toLayer === undefined || !(LAYERS[e.fromLayer] ?? []).includes(e.toLayer))
      .map((e) => `${e.from} (${e.fromLayer}) imports ${e.to} (${e.toLayer ?? "outside the layers"})`);
    expect(bad).toEqual([]);
  });

  it("lib/ imports nothing but Node's own modules and itself", () => {
    const files = execFileSync(
      "git",
      ["ls-files", "--cached", "--others", "--exclude-standard", "lib/*.ts"],
      {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
      },
    )
      .split("\n")
      .filter((f) => f !== "");
    expect(files.length).toBeGreaterThan(0);
    const outside = files.flatMap((f) =>
      [...readFileSync(join(PROJECT_ROOT, f), "utf8").matchAll(/from\s+"([^"]+)"/g)]
        .map((m) => m[1] ?? "")
        .filter((spec) => !spec.startsWith("node:") && !spec.startsWith("./"))
        .map((spec) => `${f} imports ${spec}`),
    );
    expect(outside).toEqual([]);
  });

  it("the pure layers import no Pulumi package (but config/pulumi.ts, the one reader of Pulumi config)", () => {
    for (const layer of ["lib", "renderers", "ignition", "config", "stack"]) {
      const files = execFileSync("git", ["ls-files", `${layer}/*.ts`], {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
      })
        .split("\n")
        .filter((f) => f !== "" && f !== "config/pulumi.ts");
      for (const f of files)
        expect(readFileSync(join(PROJECT_ROOT, f), "utf8"), f).not.toMatch(/from "@pulumi\//);
    }
  });
});
