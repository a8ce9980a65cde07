/**
 * Guards for tests that drive real tools (ignition, systemd-analyze, dockerd, ...).
 *
 * Locally a missing tool skips the suite (`describe.skipIf(...)`); under CI (`CI` set) it is an
 * error with a message saying what to install, so a green CI run never hides skipped checks.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Resolves `tool` (an absolute path or a name looked up in PATH) to an executable path, or undefined. */
export function findTool(tool: string): string | undefined {
  const candidates = tool.includes("/")
    ? [tool]
    : (process.env.PATH ?? "")
        .split(delimiter)
        .filter((dir) => dir !== "")
        .concat(["/usr/sbin", "/sbin"])
        .map((dir) => join(dir, tool));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next one
    }
  }
  return undefined;
}

/** One requirement: a tool and the Debian package that provides it (for the error message). */
export interface ToolRequirement {
  /** Absolute path or command name. */
  tool: string;
  /** Debian package to install when it is missing. */
  debianPackage: string;
}

/** What test/support/dockerd-btrfs.sh runs (a dockerd on a btrfs loop file) and the docker CLI to talk to it. */
export const DOCKERD_BTRFS_TOOLS: readonly ToolRequirement[] = [
  { tool: "dockerd", debianPackage: "docker.io" },
  { tool: "docker", debianPackage: "docker.io" },
  { tool: "mkfs.btrfs", debianPackage: "btrfs-progs" },
  { tool: "losetup", debianPackage: "mount" },
  { tool: "blkid", debianPackage: "util-linux" },
  { tool: "ip", debianPackage: "iproute2" },
];

/** Outcome of {@link requireTools}: `skip` is for `describe.skipIf`, `paths` maps each tool to its resolved path. */
export interface ToolCheck {
  /** True when something is missing (only ever true outside CI). */
  skip: boolean;
  /** Why the suite is skipped, for logs. */
  reason: string;
  /** Resolved executable per requested tool (the request itself when missing). */
  paths: Record<string, string>;
}

function missingMessage(suite: string, missing: string[]): string {
  return `${suite}: required tools are missing: ${missing.join(", ")}`;
}

/**
 * Checks `requirements` (and root, when `needsRoot`). Missing things skip the suite locally and throw
 * under CI so the test file fails with a clear message.
 */
export function requireTools(
  suite: string,
  requirements: readonly ToolRequirement[],
  options: { needsRoot?: boolean } = {},
): ToolCheck {
  const missing: string[] = [];
  const paths: Record<string, string> = {};
  for (const { tool, debianPackage } of requirements) {
    const found = findTool(tool);
    paths[tool] = found ?? tool;
    if (!found) missing.push(`${tool} (apt-get install -y ${debianPackage})`);
  }
  if (options.needsRoot && process.getuid?.() !== 0) {
    missing.push("root privileges (loop devices and mounts)");
  }
  if (missing.length === 0) {
    return { skip: false, reason: "", paths };
  }
  const message = missingMessage(suite, missing);
  if (process.env.CI) {
    throw new Error(`${message}. CI must provide them; install them in .ci/run.`);
  }
  console.warn(`skipping ${message}`);
  return { skip: true, reason: message, paths };
}

/** Single-tool form of {@link requireTools}: returns true when the suite should be skipped. */
export function requireTool(tool: string, debianPackage: string, suite = tool): boolean {
  return requireTools(suite, [{ tool, debianPackage }]).skip;
}
