/**
 * Guards for tests that drive real tools (ignition, systemd-analyze, dockerd, ...).
 *
 * Locally a missing tool skips the suite; under CI (`CI=true`, see {@link inCi}) it is a failing
 * test with a message saying what to install, so a green CI run never hides skipped checks. Every
 * such suite carries the vitest tag {@link REAL_TOOLS_TAG}, so a runner that cannot have the tools
 * (a hosted GitHub runner) deselects them explicitly instead of skipping them.
 */
import { describe, it } from "vitest";

import { findTool } from "../../bench/support/daemons.ts";

/** Resolves `tool` (an absolute path or a name looked up in PATH, then the sbin directories) to an executable path, or undefined. */
export { findTool };

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

/** Outcome of {@link checkTools} and {@link requireTools}. */
export interface ToolCheck {
  /** True when something is missing and the run is not CI (the suite is skipped). */
  skip: boolean;
  /** Why the suite is skipped or fails, for logs; empty when nothing is missing. */
  reason: string;
  /** What is missing, each with how to get it (empty when everything is there). */
  missing: string[];
  /** Resolved executable per requested tool (the request itself when missing). */
  paths: Record<string, string>;
}

/**
 * The vitest tag of every test that runs a real program from a Debian package (or needs root).
 * `npm run test:portable` leaves them out explicitly (`--tags-filter='!real-tools'`) for runners
 * that cannot have them; `npm run test:real-tools` selects exactly them. Declared in vitest.config.ts.
 */
export const REAL_TOOLS_TAG = "real-tools";

/**
 * True when running in CI: `CI` set to anything but "", "0" or "false" (GitHub Actions and
 * .ci/run export CI=true). Under CI a missing tool fails the suite instead of skipping it.
 */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? "").trim().toLowerCase();
  return v !== "" && v !== "0" && v !== "false";
}

function missingMessage(suite: string, missing: string[]): string {
  return `${suite}: required tools are missing: ${missing.join(", ")}`;
}

/**
 * Checks `requirements` (and root, when `needsRoot`) without throwing. `skip` is true only when
 * something is missing outside CI; under CI a missing tool is reported by {@link toolsDescribe} /
 * {@link toolsIt} as a failing test.
 */
export function checkTools(
  suite: string,
  requirements: readonly ToolRequirement[],
  options: { needsRoot?: boolean; env?: NodeJS.ProcessEnv; uid?: number } = {},
): ToolCheck {
  const missing: string[] = [];
  const paths: Record<string, string> = {};
  for (const { tool, debianPackage } of requirements) {
    const found = findTool(tool);
    paths[tool] = found ?? tool;
    if (!found) missing.push(`${tool} (apt-get install -y ${debianPackage})`);
  }
  const uid = options.uid ?? process.getuid?.();
  if (options.needsRoot && uid !== 0) {
    missing.push("root privileges (loop devices and mounts)");
  }
  if (missing.length === 0) return { skip: false, reason: "", missing, paths };
  const reason = missingMessage(suite, missing);
  return { skip: !inCi(options.env), reason, missing, paths };
}

/** The error a missing tool is under CI. */
function ciError(check: ToolCheck): Error {
  return new Error(`${check.reason}. CI must provide them; install them in .ci/run.`);
}

/**
 * Like {@link checkTools}, but throws under CI when something is missing (for the end-to-end
 * suite, whose every file needs the tools and which has no tag split).
 */
export function requireTools(
  suite: string,
  requirements: readonly ToolRequirement[],
  options: { needsRoot?: boolean } = {},
): ToolCheck {
  const check = checkTools(suite, requirements, options);
  if (check.missing.length === 0) return check;
  if (!check.skip) throw ciError(check);
  console.warn(`skipping ${check.reason}`);
  return check;
}

/**
 * `describe` for a suite that runs real programs: tagged {@link REAL_TOOLS_TAG}; with everything
 * present it runs; with something missing it is skipped locally (the reason in its title) and,
 * under CI, replaced by one failing test that names what to install.
 */
export function toolsDescribe(check: ToolCheck): (title: string, body: () => void) => void {
  return (title, body) => {
    const options = { tags: [REAL_TOOLS_TAG] };
    if (check.missing.length === 0) describe(title, options, body);
    else if (check.skip) describe.skip(`${title} [skipped: ${check.reason}]`, options, body);
    else
      describe(title, options, () => {
        it("has the programs it runs", () => {
          throw ciError(check);
        });
      });
  };
}

/** `it` for one test that runs real programs; same rules as {@link toolsDescribe}. */
export function toolsIt(check: ToolCheck): (title: string, fn: () => unknown, timeout?: number) => void {
  return (title, fn, timeout) => {
    const options = { tags: [REAL_TOOLS_TAG], ...(timeout === undefined ? {} : { timeout }) };
    if (check.missing.length === 0) it(title, options, fn);
    else if (check.skip) it.skip(`${title} [skipped: ${check.reason}]`, options, fn);
    else
      it(title, options, () => {
        throw ciError(check);
      });
  };
}

/** Single-tool form of {@link checkTools}. */
export function checkTool(tool: string, debianPackage: string, suite = tool): ToolCheck {
  return checkTools(suite, [{ tool, debianPackage }]);
}
