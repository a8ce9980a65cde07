/** `berth render <stack> --out DIR`: each host's Ignition, as the servers will boot with it. */
import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runStack, plain, isSecret, type StackRun } from "../plan/run.ts";
import { writingTo } from "./out.ts";

/**
 * Writes `DIR/hosts/<host>.ign` for every host. A file whose user data is a Pulumi secret (it
 * carries a TLS key, or an `extraIgnition` fragment marked secret) is written with mode 0600 and listed in `DIR/hosts/SECRET-FILES`, so nothing
 * secret lies in the output unmarked.
 */
export async function renderStack(root: string, stack: string, out: string): Promise<string[]> {
  const run = await runStack(root, stack);
  return writingTo(out, () => writeIgnitionFiles(run, out));
}

/**
 * Writes `data` to `path` with exactly `mode`, also when `path` already exists with another mode
 * (a re-render into the same `--out`): the bytes go to a new file created with the final mode and
 * then renamed over `path`, so a secret is never readable through an old, wider mode, not even
 * for a moment.
 */
export function writeFileWithMode(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, data, { mode, flag: "wx" });
  try {
    chmodSync(tmp, mode); // the umask may have narrowed it; make it exact
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Name of the marker file listing the secret files of `hosts/`. */
export const SECRET_FILES = "SECRET-FILES";

/**
 * Writes the Ignition of every server of a finished run under `out/hosts/`. Every file gets its
 * mode on every run (0600 when secret, else 0644). Files a previous run left in `hosts/` that
 * this run did not write (`*.ign` of hosts no longer in the stack, a `SECRET-FILES` when nothing
 * is secret any more) are removed, so the directory never shows a stale or misleading state.
 */
export function writeIgnitionFiles(run: StackRun, out: string): string[] {
  const dir = join(out, "hosts");
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const secretFiles: string[] = [];
  for (const server of run.resources.filter((r) => r.type === "openstack:compute/instance:Instance")) {
    const name = String(plain(server.inputs.name));
    const userData = server.inputs.userData;
    const file = join(dir, `${name}.ign`);
    const secret = isSecret(userData);
    writeFileWithMode(file, String(plain(userData)), secret ? 0o600 : 0o644);
    if (secret) secretFiles.push(`${name}.ign`);
    written.push(file);
  }
  const marker = join(dir, SECRET_FILES);
  if (secretFiles.length > 0) {
    writeFileWithMode(
      marker,
      `# These files contain secrets and are mode 0600. Do not commit or share them.\n${secretFiles.join("\n")}\n`,
      0o644,
    );
    written.push(marker);
  }
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if ((entry.endsWith(".ign") || entry === SECRET_FILES) && !written.includes(path))
      rmSync(path, { force: true });
  }
  return written;
}
