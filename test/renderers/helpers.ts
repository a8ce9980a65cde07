/**
 * Helpers for tests that run the real programs (nginx, sshd, dnsmasq, htpasswd, docker-registry).
 *
 * A missing program skips its tests with the reason in the test name on a developer machine, and
 * fails them when `CI` is set, so CI never passes by skipping.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkTools, findTool as locateTool, toolsDescribe } from "../support/tools.ts";

/** A real program a test runs: its resolved path (undefined when missing) and its Debian package. */
export interface Tool {
  name: string;
  /** Absolute path when found. */
  path: string | undefined;
  /** The Debian package that provides it. */
  debianPackage: string;
}

/** Looks `name` up as test/support/tools.ts does (PATH, then the sbin directories). */
export function findTool(name: string, debianPackage: string): Tool {
  return { name, path: locateTool(name), debianPackage };
}

export const tools = {
  nginx: findTool("nginx", "nginx-light"),
  openssl: findTool("openssl", "openssl"),
  htpasswd: findTool("htpasswd", "apache2-utils"),
  sshd: findTool("sshd", "openssh-server"),
  sshKeygen: findTool("ssh-keygen", "openssh-client"),
  sshKeyscan: findTool("ssh-keyscan", "openssh-client"),
  dnsmasq: findTool("dnsmasq", "dnsmasq-base"),
  registry: findTool("docker-registry", "docker-registry"),
  skopeo: findTool("skopeo", "skopeo"),
};

/** The path of a tool the surrounding `describeWithTools` already checked. */
export function toolPath(tool: Tool): string {
  if (tool.path === undefined)
    throw new Error(`${tool.name} not found (apt-get install -y ${tool.debianPackage})`);
  return tool.path;
}

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/**
 * `describe` that needs real programs (and optionally root): test/support/tools.ts's guard
 * (`checkTools` + `toolsDescribe`), tagged `real-tools`; skipped locally when something is missing,
 * a failing test under CI.
 */
export function describeWithTools(
  title: string,
  needs: { tools: readonly Tool[]; root?: boolean },
  body: () => void,
): void {
  const check = checkTools(
    title,
    needs.tools.map((t) => ({ tool: t.name, debianPackage: t.debianPackage })),
    { needsRoot: needs.root === true },
  );
  toolsDescribe(check)(title, body);
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `berth-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (no shell). */
export function run(cmd: string, args: readonly string[], timeoutMs = 30_000): RunResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: timeoutMs });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export { freePort, startDaemon, waitFor, type Daemon } from "../../bench/support/daemons.ts";
