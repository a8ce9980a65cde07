/**
 * A minimal root file system for `docker import` in tests that run a real dockerd: busybox (from
 * Debian's busybox-static) as /bin/busybox, its applets as symlinks to it.
 */
import { chmodSync, copyFileSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";

/**
 * Makes `rootfs` with /bin/busybox (a copy of `busybox`, mode 0755), each of `applets` as a
 * /bin symlink to it, and the directories `dirs` (relative to `rootfs`).
 */
export function writeBusyboxRootfs(
  rootfs: string,
  busybox: string,
  applets: readonly string[],
  dirs: readonly string[] = [],
): void {
  for (const dir of ["bin", ...dirs]) mkdirSync(join(rootfs, dir), { recursive: true });
  copyFileSync(busybox, join(rootfs, "bin/busybox"));
  chmodSync(join(rootfs, "bin/busybox"), 0o755);
  for (const applet of applets) symlinkSync("busybox", join(rootfs, "bin", applet));
}
