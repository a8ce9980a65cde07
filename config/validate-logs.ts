/**
 * Checks of `berth:logs.forward` a JSON Schema cannot word clearly: the receiver URL is
 * `https://host[:port]` (journal-upload speaks TLS to it and appends `/upload` itself) and the CA is
 * PEM certificate text (one or more X.509 CERTIFICATE blocks, nothing else). Defensive: runs on raw values that may also have schema errors (wrong types
 * are left to the schema), so every problem is reported together.
 */
import type { ConfigIssue } from "./errors.ts";
import { isJournalRemoteUrl } from "../renderers/journal-upload.ts";
import { parseCertificates } from "./validate-input.ts";
import { isObj, type Obj } from "./raw.ts";

const P = "berth:logs.forward";

/** Problems of `berth:logs` in a stack's raw values (empty when none). */
export function logsIssues(raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const logs = isObj(raw.logs) ? raw.logs : {};
  const forward = isObj(logs.forward) ? logs.forward : undefined;
  if (!forward) return issues;
  const url = forward.url;
  if (typeof url === "string" && url !== "" && !isJournalRemoteUrl(url))
    issues.push({
      path: `${P}.url`,
      message: `must be the receiver's https://host[:port] URL (TLS only, no user, path or query; port 1-65535, default 19532), such as "https://logs.ci.example.com:19532", got ${JSON.stringify(url)}`,
    });
  const ca = forward.serverCa;
  if (typeof ca === "string" && ca !== "") {
    const parsed = parseCertificates(ca);
    if ("problem" in parsed)
      issues.push({
        path: `${P}.serverCa`,
        message: parsed.problem.startsWith("contains a private key")
          ? "contains a private key: remove it (only the public CA certificate belongs here, and a key must never sit in clear in a stack file)"
          : `${parsed.problem}; give the PEM CA certificate(s) that signed the receiver's certificate`,
      });
  }
  return issues;
}
