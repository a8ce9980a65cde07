/**
 * What `pulumi up` runs first (index.ts): `loadConfigFromPulumi` reads the engine's configuration,
 * derives pr-<N> from testing, and stops with one RunError (no stack trace) on bad input, including
 * the rendered-host checks of stack/validate.ts that index.ts passes in.
 */
import * as pulumi from "@pulumi/pulumi";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfigFromPulumi } from "../../config/pulumi.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { renderedIssues } from "../../stack/validate.ts";

async function engine(stack: string, config: Record<string, unknown>): Promise<void> {
  await pulumi.runtime.setMocks(
    { newResource: (a) => ({ id: a.name, state: a.inputs }), call: (a) => a.inputs },
    "berth",
    stack,
  );
  // The engine hands every value over as a string; structured ones JSON-encoded.
  pulumi.runtime.setAllConfig(
    Object.fromEntries(
      Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    ),
  );
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(pulumi.RunError);
    return (e as Error).message;
  }
  throw new Error("expected a RunError");
}

const testing = (
  parse(readFileSync(join(PROJECT_ROOT, "stacks", "Pulumi.testing.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  }
).config;

afterEach(() => pulumi.runtime.setAllConfig({}));

describe("loadConfigFromPulumi", () => {
  it("derives a pr-<N> stack with only overrides from testing", async () => {
    await engine("pr-17", { "berth:previewTtlHours": "24", "berth:jenkins": { agentsPerHost: 0 } });
    const cfg = loadConfigFromPulumi(PROJECT_ROOT);
    expect(cfg.preview).toEqual({ pr: 17, ttlHours: 24 });
    expect(cfg.jenkins.agentsPerHost).toBe(0);
    expect(cfg.jenkins.controllerCidr).toBe("198.51.100.40/32");
  });

  it("refuses a namespace typo, naming the key", async () => {
    await engine("pr-17", { "brth:previewTtlHours": "24" });
    expect(message(() => loadConfigFromPulumi(PROJECT_ROOT))).toContain(
      'brth:previewTtlHours: namespace "brth" is not "berth"',
    );
  });

  it("runs the rendered-host checks it is given: 600 SSH keys do not fit Nova's user data", async () => {
    const hosts = testing["berth:hosts"] as Record<string, unknown>;
    const keys = Array.from({ length: 600 }, () => {
      const blob = Buffer.concat([
        Buffer.from([0, 0, 0, 11]),
        Buffer.from("ssh-ed25519"),
        Buffer.from([0, 0, 0, 32]),
        randomBytes(32),
      ]);
      return `ssh-ed25519 ${blob.toString("base64")} k@example.com`;
    });
    await engine("testing", { ...testing, "berth:hosts": { ...hosts, sshKeys: keys } });
    // Without the check, the configuration itself is valid.
    expect(loadConfigFromPulumi(PROJECT_ROOT).hosts.sshKeys).toHaveLength(600);
    const text = message(() => loadConfigFromPulumi(PROJECT_ROOT, renderedIssues));
    expect(text).toContain("berth:hosts.sshKeys: makes each host's Ignition about");
    expect(text).toContain("65535");
    expect(text).not.toMatch(/^\s+at /m);
  });
});
