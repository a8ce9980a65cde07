/**
 * The mocks' opt-in `outputs` hook with real SSH keys (test/e2e/support/ssh-keys.ts): the program's
 * `agentKnownHosts` is then computed from real keys, the agents' uploads carry the matching private
 * keys (ssh-keygen derives the same public key from them), and a run without the hook is unchanged.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

import { describe, expect, it } from "vitest";

import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { resolveOutput } from "../../plan/mocks.ts";
import { runConfig } from "../../plan/run.ts";
import { agentHostKeyPaths } from "../../renderers/index.ts";
import { realKeyOutputs } from "../e2e/support/ssh-keys.ts";
import { unwrapSecrets } from "../../testkit/e2e/harness.ts";

const hasSshKeygen = spawnSync("ssh-keygen", ["-?"]).error === undefined;

describe("real keys under the mocks (opt-in)", () => {
  it("agentKnownHosts lists the real public keys of every agent on both staging hosts; the uploads hold their private halves", async () => {
    const config = loadStack(PROJECT_ROOT, "staging");
    const made: string[] = [];
    const run = await runConfig(config, { outputs: realKeyOutputs(made) });
    const knownHosts = (await resolveOutput(run.outputs.agentKnownHosts)).value;
    const lines = knownHosts.split("\n").filter((l) => l !== "");
    // Two hosts × agentsPerHost agents × two key types, each a real key.
    expect(lines).toHaveLength(2 * config.jenkins.agentsPerHost * 2);
    expect(made.filter((n) => n.includes("hostkey"))).toHaveLength(lines.length);
    for (const l of lines)
      expect(l).toMatch(/^\[[\d.]+\]:\d+ (ssh-ed25519 AAAAC3NzaC1lZDI1NTE5|ssh-rsa AAAAB3NzaC1yc2E)\S+$/);
    expect(new Set(lines.map((l) => l.split(" ")[2])).size).toBe(lines.length);

    const dir = mkdtempSync(join(tmpdir(), "berth-real-keys-"));
    try {
      const paths = agentHostKeyPaths();
      const agents = run.resources.filter(
        (r) =>
          r.type === "docker:index/container:Container" && /^jenkins-agent-\d+$/.test(String(r.inputs.name)),
      );
      expect(agents).toHaveLength(2 * config.jenkins.agentsPerHost);
      for (const a of agents) {
        const uploads = unwrapSecrets(a.inputs.uploads) as { file: string; content: string }[];
        for (const kind of ["ed25519", "rsa"] as const) {
          const priv = uploads.find((u) => u.file === paths[kind])?.content ?? "";
          const pub = uploads.find((u) => u.file === `${paths[kind]}.pub`)?.content ?? "";
          expect(priv).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
          const [type, data] = pub.trim().split(" ");
          expect(lines.some((l) => l.endsWith(` ${type ?? ""} ${data ?? ""}`))).toBe(true);
          if (!hasSshKeygen) continue;
          const file = join(dir, `${String(a.inputs.name)}-${kind}`);
          writeFileSync(file, priv, { mode: 0o600 });
          const derived = spawnSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" });
          expect(derived.status, derived.stderr).toBe(0);
          expect(derived.stdout.trim().split(" ").slice(0, 2).join(" ")).toBe(`${type ?? ""} ${data ?? ""}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("without the hook the mock's placeholders stay (unit snapshots are unaffected)", async () => {
    const run = await runConfig(loadStack(PROJECT_ROOT, "staging"));
    const knownHosts = (await resolveOutput(run.outputs.agentKnownHosts)).value;
    expect(knownHosts).toMatch(/ ssh-ed25519 \S+\n/);
    expect(knownHosts).not.toMatch(/ssh-rsa/);
  }, 120_000);
});
