/**
 * Helpers for tests that run the real programs (nginx, sshd, dnsmasq, htpasswd, docker-registry).
 *
 * A missing program skips its tests with the reason in the test name on a developer machine, and
 * fails them when `CI` is set, so CI never passes by skipping.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "vitest";
import { inCi, REAL_TOOLS_TAG } from "../support/tools.ts";

export interface Tool {
  name: string;
  /** Absolute path when found. */
  path: string | undefined;
  /** How to get it (Debian package). */
  install: string;
}

const SEARCH_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

export function findTool(name: string, install: string): Tool {
  for (const dir of SEARCH_DIRS) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return { name, path: candidate, install };
    } catch {
      // keep looking
    }
  }
  return { name, path: undefined, install };
}

export const tools = {
  nginx: findTool("nginx", "apt-get install nginx-light (or nginx)"),
  openssl: findTool("openssl", "apt-get install openssl"),
  htpasswd: findTool("htpasswd", "apt-get install apache2-utils"),
  sshd: findTool("sshd", "apt-get install openssh-server"),
  sshKeygen: findTool("ssh-keygen", "apt-get install openssh-client"),
  sshKeyscan: findTool("ssh-keyscan", "apt-get install openssh-client"),
  dnsmasq: findTool("dnsmasq", "apt-get install dnsmasq-base"),
  registry: findTool("docker-registry", "apt-get install docker-registry"),
  skopeo: findTool("skopeo", "apt-get install skopeo"),
};

/** The path of a tool the surrounding `describeWithTools` already checked. */
export function toolPath(tool: Tool): string {
  if (tool.path === undefined) throw new Error(`${tool.name} not found (${tool.install})`);
  return tool.path;
}

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/**
 * `describe` that needs real programs (and optionally root), tagged `real-tools`. Missing ones:
 * skipped locally with the reason in the suite name; a failing test under `CI`.
 */
export function describeWithTools(
  title: string,
  needs: { tools: readonly Tool[]; root?: boolean },
  body: () => void,
): void {
  const missing = needs.tools.filter((t) => t.path === undefined).map((t) => `${t.name} (${t.install})`);
  if (needs.root === true && !isRoot) missing.push("root privileges");
  const options = { tags: [REAL_TOOLS_TAG] };
  if (missing.length === 0) {
    describe(title, options, body);
  } else if (inCi()) {
    describe(title, options, () => {
      it("has the programs it checks with", () => {
        throw new Error(`missing in CI: ${missing.join(", ")}`);
      });
    });
  } else {
    describe.skip(`${title} [skipped: missing ${missing.join(", ")}]`, options, body);
  }
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

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        reject(new Error("no port"));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** A daemon started by a test; `stop()` ends exactly this process (by pid). */
export interface Daemon {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

export function startDaemon(cmd: string, args: readonly string[]): Daemon {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once("exit", () => resolve());
  });
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
          process.kill(child.pid, "SIGKILL");
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it resolves true or the deadline passes. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
