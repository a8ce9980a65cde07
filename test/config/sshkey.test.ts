/** OpenSSH public key lines: real keys from ssh-keygen pass; truncated, padded or weak ones do not. */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isSshPublicKey, sshKeyProblem } from "../../config/sshkey.ts";
import { requireTools } from "../support/tools.ts";

const skip = requireTools("OpenSSH key checks", [
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
]).skip;

/** A public key line made by the real ssh-keygen. */
function keygen(type: string, bits?: number): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-sshkey-"));
  try {
    const args = [
      "-q",
      "-t",
      type,
      ...(bits ? ["-b", String(bits)] : []),
      "-N",
      "",
      "-C",
      "t@example.com",
      "-f",
      join(dir, "k"),
    ];
    const r = spawnSync("ssh-keygen", args, { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    return readFileSync(join(dir, "k.pub"), "utf8").trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same line with its blob changed by `edit`. */
function withBlob(line: string, edit: (b: Buffer) => Buffer): string {
  const [type, blob, ...rest] = line.split(" ");
  return [type, edit(Buffer.from(blob as string, "base64")).toString("base64"), ...rest].join(" ");
}

describe.skipIf(skip)("sshKeyProblem", () => {
  it.each([
    ["ed25519", undefined],
    ["ecdsa", 256],
    ["ecdsa", 384],
    ["ecdsa", 521],
    ["rsa", 2048],
  ])("accepts a %s key of ssh-keygen (%s bits)", (type, bits) => {
    const line = keygen(type, bits);
    expect(isSshPublicKey(line)).toBe(true);
    expect(sshKeyProblem(line)).toBeUndefined();
  });

  it("refuses a 1024-bit RSA key of ssh-keygen, naming its size", () => {
    expect(sshKeyProblem(keygen("rsa", 1024))).toMatch(
      /^is a 1024-bit RSA key; RSA keys need at least 2048 bits/,
    );
  });

  it("refuses a blob cut short, padded, or with only its type", () => {
    const line = keygen("ed25519");
    expect(sshKeyProblem(withBlob(line, (b) => b.subarray(0, 4 + 11)))).toMatch(
      /only part of a ssh-ed25519 key/,
    );
    expect(sshKeyProblem(withBlob(line, (b) => b.subarray(0, b.length - 1)))).toMatch(/only part/);
    expect(sshKeyProblem(withBlob(line, (b) => Buffer.concat([b, Buffer.from([0, 0, 0, 0])])))).toMatch(
      /bytes after/,
    );
    const ecdsa = keygen("ecdsa", 256);
    expect(sshKeyProblem(withBlob(ecdsa, (b) => b.subarray(0, b.length - 10)))).toMatch(/only part/);
  });
});
