import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { loadCheckedStack } from "../../stack/validate.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { buildHostIgnition } from "../../ignition/host.ts";
import { issuesOf } from "../support/cli.ts";

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

type Doc = { config: Record<string, unknown> };

/** A project root with testing's stack file listing `paths` as extra Ignition, and `files` written. */
function rootWith(paths: string[], files: Record<string, unknown>): string {
  const root = mkdtempSync(join(tmpdir(), "berth-extra-ign-"));
  roots.push(root);
  mkdirSync(join(root, "stacks"));
  mkdirSync(join(root, "snippets"));
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", "Pulumi.testing.yaml"), "utf8")) as Doc;
  doc.config["berth:extraIgnition"] = paths.map((path) => ({ path }));
  writeFileSync(join(root, "stacks", "Pulumi.testing.yaml"), stringify(doc));
  for (const [path, body] of Object.entries(files))
    writeFileSync(join(root, path), typeof body === "string" ? body : JSON.stringify(body));
  return root;
}

const file = (path: string, text: string) => ({
  path,
  mode: 420,
  contents: { source: `data:,${encodeURIComponent(text)}` },
});
const fragment = (...files: ReturnType<typeof file>[]) => ({
  ignition: { version: "3.3.0" },
  storage: { files },
});

describe("berth:extraIgnition", () => {
  it("merges each fragment into every host's Ignition", () => {
    const root = rootWith(["snippets/motd.json"], {
      "snippets/motd.json": fragment(file("/etc/motd", "CI host\n")),
    });
    const c = loadStack(root, "testing");
    expect(c.extraIgnition.map((f) => f.path)).toEqual(["snippets/motd.json"]);
    const ign = buildHostIgnition({
      ...hostIgnitionBase(c, "testing-ci-1"),
      dockerVolumeId: "11111111-2222-4333-8444-555555555555",
    });
    expect(ign.storage?.files?.map((f) => f.path)).toContain("/etc/motd");
  });

  it("a fragment that redefines a path of the host's own config is an error naming both sources", () => {
    const root = rootWith(["snippets/hostname.json"], {
      "snippets/hostname.json": fragment(file("/etc/hostname", "other\n")),
    });
    const issues = issuesOf(() => loadCheckedStack(root, "testing"));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe("berth:extraIgnition");
    expect(issues[0]?.message).toContain("/etc/hostname");
    expect(issues[0]?.message).toContain("snippets/hostname.json");
    expect(issues[0]?.message).toContain("berth host testing-ci-1");
  });

  it("two fragments defining the same path are an error naming both", () => {
    const root = rootWith(["snippets/a.json", "snippets/b.json"], {
      "snippets/a.json": fragment(file("/etc/motd", "a\n")),
      "snippets/b.json": fragment(file("/etc/motd", "b\n")),
    });
    const [issue] = issuesOf(() => loadCheckedStack(root, "testing"));
    expect(issue?.message).toContain("snippets/a.json");
    expect(issue?.message).toContain("snippets/b.json");
  });

  it("a missing file, non-JSON and a wrong spec version are reported per entry", () => {
    const root = rootWith(["snippets/none.json", "snippets/bad.json", "snippets/old.json"], {
      "snippets/bad.json": "{ not json",
      "snippets/old.json": { ignition: { version: "3.4.0" } },
    });
    const issues = issuesOf(() => loadCheckedStack(root, "testing"));
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    expect(byPath["berth:extraIgnition[0].path"]).toContain("no such file");
    expect(byPath["berth:extraIgnition[1].path"]).toContain("is not JSON");
    expect(byPath["berth:extraIgnition[2].path"]).toContain('"3.4.0"');
  });

  it("the shipped staging stack carries its inotify snippet", () => {
    const c = loadStack(PROJECT_ROOT, "staging");
    const ign = buildHostIgnition({
      ...hostIgnitionBase(c, "staging-ci-2"),
      dockerVolumeId: "11111111-2222-4333-8444-555555555555",
    });
    expect(ign.storage?.files?.map((f) => f.path)).toContain("/etc/sysctl.d/60-ci-inotify.conf");
  });
});
