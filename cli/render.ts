/** `berth render <stack> --out DIR`: each host's Ignition, as the servers will boot with it. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runStack, plain, isSecret, type StackRun } from "../plan/run.ts";

/**
 * Writes `DIR/hosts/<host>.ign` for every host. A file whose user data is a Pulumi secret (it
 * carries a TLS key) is written with mode 0600 and listed in `DIR/hosts/SECRET-FILES`, so nothing
 * secret lies in the output unmarked.
 */
export async function renderStack(root: string, stack: string, out: string): Promise<string[]> {
  return writeIgnitionFiles(await runStack(root, stack), out);
}

/** Writes the Ignition of every server of a finished run under `out/hosts/`. */
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
    writeFileSync(file, String(plain(userData)), { mode: secret ? 0o600 : 0o644 });
    if (secret) secretFiles.push(`${name}.ign`);
    written.push(file);
  }
  if (secretFiles.length > 0) {
    const marker = join(dir, "SECRET-FILES");
    writeFileSync(
      marker,
      `# These files contain secrets (TLS private keys) and are mode 0600. Do not commit or share them.\n${secretFiles.join("\n")}\n`,
    );
    written.push(marker);
  }
  return written;
}
