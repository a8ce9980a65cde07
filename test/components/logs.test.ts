/**
 * `berth:logs.forward`: validation (one ConfigError naming every bad field), the program's per-host
 * client certificates (the key a secret end to end, root-only in the Ignition), and "off renders
 * nothing of it".
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../config/errors.ts";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import type { IgnitionConfig } from "../../ignition/index.ts";
import { buildPlan, renderPlanJson } from "../../plan/plan.ts";
import { isSecret, plain, runConfig, runStack } from "../../plan/run.ts";
import {
  JOURNAL_UPLOAD_CONF_PATH,
  JOURNAL_UPLOAD_KEY_PATH,
  JOURNAL_UPLOAD_UNIT,
} from "../../renderers/journal-upload.ts";
import { decodeContents } from "../ignition/fixtures.ts";
import { editedStackRoot } from "../support/stacks.ts";

/** A real self-signed CA certificate (validation parses it as X.509). */
const CA =
  "-----BEGIN CERTIFICATE-----\nMIIBtTCCAVugAwIBAgIUHGNcfmCUSKfmNN9mCS3r4oplJGYwCgYIKoZIzj0EAwIw\nMDETMBEGA1UECgwKQmVydGggdGVzdDEZMBcGA1UEAwwQbG9ncyByZWNlaXZlciBD\nQTAeFw0yNjExMzAxMjQ5MTFaFw0zNjExMjcxMjQ5MTFaMDAxEzARBgNVBAoMCkJl\ncnRoIHRlc3QxGTAXBgNVBAMMEGxvZ3MgcmVjZWl2ZXIgQ0EwWTATBgcqhkjOPQIB\nBggqhkjOPQMBBwNCAATFjEPUgjoehtEEYO/y5FfoHdFSby+PXwAoxqtZHIaS//Ua\ns8LABDu7v3NI6iYHReOhmCZ7MoMrgWcU8Ovn6rxQo1MwUTAdBgNVHQ4EFgQUYz9n\nQ6TK+hFIxmyYfQ9aU90+GfcwHwYDVR0jBBgwFoAUYz9nQ6TK+hFIxmyYfQ9aU90+\nGfcwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiA7w706PiXKGpVT\nTkMAgHTZT+XrreFmrhwDxFWie6JzSwIhAOLNr+XdOznufdA4rH4vRPjO2pjm1hjb\n00WtpPvC9Xhw\n-----END CERTIFICATE-----\n";
const URL = "https://logs.ci.example.com:19532";

function issuesOf(forward: unknown): { path: string; message: string }[] {
  const root = editedStackRoot((c) => {
    c["berth:logs"] = { forward } as Record<string, unknown>;
  });
  try {
    loadStack(root, "testing");
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  return [];
}

describe("berth:logs validation", () => {
  it("accepts an https URL (with or without port) and a PEM CA", () => {
    expect(issuesOf({ url: URL, serverCa: CA })).toEqual([]);
    expect(issuesOf({ url: "https://10.0.0.9", serverCa: CA })).toEqual([]);
    const root = editedStackRoot((c) => {
      c["berth:logs"] = { forward: { url: `${URL}/`, serverCa: CA } };
    });
    expect(loadStack(root, "testing").logs).toEqual({ forward: { url: URL, serverCa: CA } });
  });

  it("defaults to no forwarding", () => {
    expect(loadStack(PROJECT_ROOT, "testing").logs).toEqual({});
  });

  it.each([
    ["plain http", "http://logs.ci.example.com:19532"],
    ["no scheme", "logs.ci.example.com:19532"],
    ["a path", "https://logs.ci.example.com/upload"],
    ["user info", "https://user:pw@logs.ci.example.com"],
    ["a query", "https://logs.ci.example.com?x=1"],
    ["a port out of range", "https://logs.ci.example.com:70000"],
  ])("refuses a URL with %s, naming the field", (_case, url) => {
    const issues = issuesOf({ url, serverCa: CA });
    expect(issues.map((i) => i.path)).toEqual(["berth:logs.forward.url"]);
    expect(issues[0]?.message).toContain("https://host[:port]");
  });

  it("reports every bad field in one error: missing CA and a bad URL; a CA that is no certificate; unknown keys", () => {
    expect(issuesOf({ url: "http://logs" }).map((i) => i.path)).toEqual([
      "berth:logs.forward.serverCa",
      "berth:logs.forward.url",
    ]);
    expect(issuesOf({ url: URL, serverCa: "not a pem" }).map((i) => i.path)).toEqual([
      "berth:logs.forward.serverCa",
    ]);
    const [withKey] = issuesOf({
      url: URL,
      serverCa: `${CA}-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n`,
    });
    expect(withKey?.message).toContain("contains a private key");
    expect(issuesOf({ url: URL, serverCa: CA, clientKey: "x" }).map((i) => i.path)).toEqual([
      "berth:logs.forward.clientKey",
    ]);
    expect(issuesOf({}).map((i) => i.path)).toEqual([
      "berth:logs.forward.serverCa",
      "berth:logs.forward.url",
    ]);
  });
});

function withForward(cfg: BerthConfig): BerthConfig {
  return { ...cfg, logs: { forward: { url: URL, serverCa: CA } } };
}

describe("logs.forward in the program", () => {
  it("issues each host its own client certificate; the key is a secret, written 0600 and only there", async () => {
    const cfg = withForward(loadStack(PROJECT_ROOT, "staging"));
    const run = await runConfig(cfg);
    expect(run.resources.some((r) => r.name === `${cfg.stack}-logs-ca-cert`)).toBe(true);
    expect(run.outputs.logsClientCaPem).toBeDefined();
    const servers = run.resources.filter((r) => r.type === "openstack:compute/instance:Instance");
    expect(servers).toHaveLength(cfg.hosts.count);
    for (const server of servers) {
      const host = String(plain(server.inputs.name));
      expect(isSecret(server.inputs.userData), host).toBe(true);
      const ign = JSON.parse(String(plain(server.inputs.userData))) as IgnitionConfig;
      const files = ign.storage?.files ?? [];
      const key = files.find((f) => f.path === JOURNAL_UPLOAD_KEY_PATH);
      expect(key?.mode, host).toBe(0o600);
      const keyText = decodeContents(key?.contents).toString("utf8");
      expect(keyText).toContain("PRIVATE KEY");
      // The mock key is named after the host's own certificate: one key per host.
      expect(Buffer.from(keyText.split("\n")[1] ?? "", "base64").toString()).toContain(
        `${host}-journal-upload-key`,
      );
      for (const f of files)
        if (f.path !== JOURNAL_UPLOAD_KEY_PATH)
          expect(decodeContents(f.contents).toString("utf8"), f.path).not.toContain(keyText.trim());
      expect(
        decodeContents(files.find((f) => f.path === JOURNAL_UPLOAD_CONF_PATH)?.contents).toString(),
      ).toContain(`URL=${URL}\n`);
      const unit = ign.systemd?.units?.find((u) => u.name === JOURNAL_UPLOAD_UNIT);
      expect(unit?.enabled).toBe(true);
      expect(unit?.dropins?.[0]?.contents).toContain(`LoadCredential=`);
    }
    // Berth's own containers log into the journal, which is forwarded.
    const containers = run.resources.filter((r) => r.type === "docker:index/container:Container");
    expect(containers.length).toBeGreaterThan(0);
    for (const ctr of containers) {
      expect(ctr.inputs.logDriver, ctr.name).toBe("journald");
      expect(ctr.inputs.logOpts, ctr.name).toEqual({ tag: "{{.Name}}" });
    }
    // Nothing of any host key reaches plan.json in clear.
    const json = renderPlanJson(buildPlan(run));
    for (const server of servers) {
      const ign = JSON.parse(String(plain(server.inputs.userData))) as IgnitionConfig;
      const key = ign.storage?.files?.find((f) => f.path === JOURNAL_UPLOAD_KEY_PATH);
      const body = decodeContents(key?.contents).toString("utf8").split("\n")[1] ?? "";
      expect(body.length).toBeGreaterThan(20);
      expect(json).not.toContain(body);
    }
  });
});

describe("logs.forward off (the default)", () => {
  // When the feature came in, the shipped stacks' rendered Ignition was byte-identical before and
  // after it (sha256 of every host's user data at a7f18a6); the Ignition snapshots
  // (test/fixtures/ignition/stacks) guard the rendered files from then on.
  it("renders nothing about journal forwarding, and Berth's containers keep json-file", async () => {
    for (const stack of ["testing", "staging", "production", "pr-17"]) {
      const run = await runStack(PROJECT_ROOT, stack);
      expect(run.config.logs).toEqual({});
      for (const server of run.resources.filter((r) => r.type === "openstack:compute/instance:Instance"))
        expect(String(plain(server.inputs.userData))).not.toContain("journal-upload");
      for (const c of run.resources.filter((r) => r.type === "docker:index/container:Container"))
        expect(plain(c.inputs.logDriver) ?? "json-file", `${stack}: ${c.name}`).toBe("json-file");
    }
  }, 120_000);
});
