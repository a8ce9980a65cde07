/**
 * Secrets in `berth plan` output: nothing secret reaches plan.json in clear.
 * - a provided registry TLS key, also when it was pasted into the certificate text (a combined PEM);
 * - any private key text in an input the program did not mark secret (plan.json's safety net).
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
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
