/**
 * Secrets in `berth plan` output: nothing secret reaches plan.json in clear.
 * - a provided registry TLS key, also when it was pasted into the certificate text (a combined PEM);
 * - any private key text in an input the program did not mark secret (plan.json's safety net);
 * - an `extraIgnition` fragment marked `secret: true`.
 */
import { generateKeyPairSync } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "../support/cli.ts";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import { buildPlan, MASK, renderPlanJson } from "../../plan/plan.ts";
import { plain, runConfig } from "../../plan/run.ts";
import { certificateBlocks } from "../../renderers/pem.ts";

/** A real private key (its base64 body lines are what must never appear in plan.json). */
const KEY = generateKeyPairSync("ec", { namedCurve: "P-256" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const KEY_LINES = KEY.split("\n").filter((l) => l !== "" && !l.startsWith("-----"));
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBberthtestcertificate\n-----END CERTIFICATE-----\n";

/** The testing stack with a provided registry certificate (`certificate` as given). */
function withProvidedTls(certificate: string): BerthConfig {
  const cfg = loadStack(PROJECT_ROOT, "testing");
  return {
    ...cfg,
    registry: {
      ...cfg.registry,
      tls: { mode: "provided", certificate, privateKey: { kind: "plain", value: KEY } },
    },
  };
}

interface Upload {
  file: string;
  content: unknown;
}

describe("registry.tls.mode: provided", () => {
  it.each([
    ["the certificate alone", CERT],
    ["a combined PEM: the key pasted in with the certificate", `${CERT}${KEY}`],
    ["the key before the certificate", `${KEY}${CERT}`],
  ])("%s: the key is a secret upload and nowhere in plan.json", async (_case, certificate) => {
    const run = await runConfig(withProvidedTls(certificate));
    const nginx = run.resources.find((r) => r.name.endsWith("-registry-nginx"))!;
    const uploads = plain(nginx.inputs.uploads) as Upload[];
    const crt = uploads.find((u) => u.file.endsWith("registry.crt"))!;
    const key = uploads.find((u) => u.file.endsWith("registry.key"))!;
    // The certificate upload is public and holds exactly the certificate.
    expect(crt.content).toBe(CERT);
    expect(plain(key.content)).toBe(KEY);
    expect(key.content).toMatchObject({ secret: true });

    const json = renderPlanJson(buildPlan(run));
    expect(KEY_LINES.length).toBeGreaterThan(0);
    for (const line of KEY_LINES) expect(json).not.toContain(line);
    expect(json).not.toMatch(/PRIVATE KEY/);
  });
});

describe("plan.json safety net", () => {
  it("masks a plain input carrying private key text and lists it as secret", async () => {
    const run = await runConfig(loadStack(PROJECT_ROOT, "testing"));
    const nginx = run.resources.find((r) => r.name.endsWith("-registry-nginx"))!;
    // A program bug: key text in an input nobody marked secret.
    nginx.inputs.labels = [{ label: "oops", value: KEY }];
    const plan = buildPlan(run);
    const r = plan.resources.find((x) => x.urn === nginx.urn)!;
    expect((r.inputs as { labels: { value: unknown }[] }).labels[0]!.value).toBe(MASK);
    expect(r.secretInputs).toContain("labels");
    const json = renderPlanJson(plan);
    for (const line of KEY_LINES) expect(json).not.toContain(line);
  });
});

describe("certificateBlocks", () => {
  it("keeps every certificate of a chain, in order, and nothing else", () => {
    const second = CERT.replace("berthtest", "intermediate");
    expect(certificateBlocks(`${CERT}${KEY}${second}`)).toBe(`${CERT}${second}`);
    expect(certificateBlocks(KEY)).toBe("");
  });
});

describe("berth:extraIgnition with secret: true", () => {
  const TOKEN = "berth-test-token-5b0e7c1d9a";
  const tmp = mkdtempSync(join(tmpdir(), "berth-secret-frag-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of the project's stack files whose testing stack has no dockerd TLS and one fragment. */
  function project(name: string, entry: string): string {
    const root = join(tmp, name);
    for (const f of ["Pulumi.yaml", "stacks", "snippets"])
      cpSync(join(PROJECT_ROOT, f), join(root, f), { recursive: true });
    const fragment = {
      ignition: { version: "3.3.0" },
      storage: {
        files: [
          {
            path: "/etc/berth-test/token",
            mode: 384,
            contents: { source: `data:,${TOKEN}` },
          },
        ],
      },
    };
    writeFileSync(join(root, "snippets", "token.json"), JSON.stringify(fragment));
    const file = join(root, "stacks", "Pulumi.testing.yaml");
    const text = readFileSync(file, "utf8");
    // dockerTls off: otherwise dockerd's key already makes every host's user data secret.
    const edited = text
      .replace(/^ {4}timezone: .*$/m, (m) => `${m}\n    dockerTls: false`)
      .replace(/^config:$/m, `config:\n  berth:extraIgnition:\n    - ${entry}`);
    expect(edited).toContain("dockerTls: false");
    writeFileSync(file, edited);
    return root;
  }

  it("without the flag the fragment is public (the case the flag is for)", async () => {
    const root = project("public", "{path: snippets/token.json}");
    const r = await cli(root, "plan", "testing", "--out", join(root, "out"));
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(root, "out", "plan.json"), "utf8")).toContain(TOKEN);
    expect(statSync(join(root, "out", "hosts", "testing-ci-1.ign")).mode & 0o777).toBe(0o644);
  });

  it("with secret: true the user data is a secret: masked in plan.json, .ign 0600, listed in SECRET-FILES", async () => {
    const root = project("secret", "{path: snippets/token.json, secret: true}");
    const r = await cli(root, "plan", "testing", "--out", join(root, "out"));
    expect(r.code, r.err).toBe(0);
    const json = readFileSync(join(root, "out", "plan.json"), "utf8");
    expect(json).not.toContain(TOKEN);
    const plan = JSON.parse(json) as {
      resources: { name: string; inputs: { userData?: unknown }; secretInputs: string[] }[];
    };
    const server = plan.resources.find((x) => x.name === "testing-ci-1-server")!;
    expect(server.inputs.userData).toBe(MASK);
    expect(server.secretInputs).toContain("userData");
    const ign = join(root, "out", "hosts", "testing-ci-1.ign");
    expect(readFileSync(ign, "utf8")).toContain(TOKEN);
    expect(statSync(ign).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(root, "out", "hosts", "SECRET-FILES"), "utf8").split("\n")).toContain(
      "testing-ci-1.ign",
    );
  });

  it("refuses a secret flag that is not a boolean, naming the field", async () => {
    const root = project("bad", "{path: snippets/token.json, secret: yes-please}");
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    expect(r.err).toContain("berth:extraIgnition[0].secret");
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
