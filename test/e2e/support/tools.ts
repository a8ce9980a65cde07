/**
 * The end-to-end suite's check of the tools it needs, which skips locally and fails under CI. The
 * engine support itself is testkit/e2e/support/engine.ts (shared with bench/).
 */
import { DOCKERD_BTRFS_TOOLS, requireTools, type ToolCheck } from "../../support/tools.ts";
import { E2E_STORAGE } from "../../../testkit/e2e/support/engine.ts";

/** Everything the end-to-end suite runs; skips locally, fails under CI when something is missing. */
export function requireE2eTools(
  suite: string,
  extra: { tool: string; debianPackage: string }[] = [],
): ToolCheck {
  return requireTools(
    suite,
    [
      ...DOCKERD_BTRFS_TOOLS,
      ...(E2E_STORAGE === "overlay2" ? [{ tool: "mkfs.ext4", debianPackage: "e2fsprogs" }] : []),
      { tool: "iptables", debianPackage: "iptables" },
      { tool: "debootstrap", debianPackage: "debootstrap" },
      ...extra,
    ],
    { needsRoot: true },
  );
}
