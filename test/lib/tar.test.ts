/**
 * lib/tar.ts, read back by GNU tar: names (with a ustar prefix past 100 bytes), contents, modes and
 * owners as written, and the same input giving the same bytes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tarArchive, tarHeader } from "../../lib/tar.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-tar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const deep = `${"d".repeat(60)}/${"e".repeat(60)}/file.txt`;
const files = [
  { path: "/etc/berth/a.conf", content: "alpha\n", mode: "0640", uid: 101, gid: 102 },
  { path: "empty", content: "" },
  { path: deep, content: Buffer.alloc(1500, 7) },
];

function tar(...args: string[]): string {
  const r = spawnSync("tar", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

describe("tarArchive", () => {
  const archive = tarArchive(files);
  const file = join(dir, "a.tar");
  writeFileSync(file, archive);

  it("is whole 512-byte blocks, ended by two zero blocks", () => {
    expect(archive.length % 512).toBe(0);
    expect(archive.subarray(-1024).every((b) => b === 0)).toBe(true);
  });

  it("lists every file with its mode and owner (leading slashes dropped)", () => {
    const listing = tar("--numeric-owner", "-tvf", file).trim().split("\n");
    expect(listing).toHaveLength(3);
    expect(listing[0]).toMatch(/^-rw-r----- 101\/102\s+6 .* etc\/berth\/a\.conf$/);
    expect(listing[1]).toMatch(/^-rw-r--r-- 0\/0\s+0 .* empty$/);
    expect(listing[2]).toMatch(new RegExp(`^-rw-r--r-- 0/0\\s+1500 .* ${deep}$`));
  });

  it("extracts the contents byte for byte, a path past 100 bytes included", () => {
    const out = join(dir, "out");
    tar("-xf", file, "--one-top-level=" + out, "--no-same-owner");
    expect(readFileSync(join(out, "etc/berth/a.conf"), "utf8")).toBe("alpha\n");
    expect(statSync(join(out, "empty")).size).toBe(0);
    expect(readFileSync(join(out, deep)).equals(Buffer.alloc(1500, 7))).toBe(true);
  });

  it("gives the same bytes for the same input (digests of test and benchmark layers stay stable)", () => {
    expect(tarArchive(files).equals(archive)).toBe(true);
  });
});

describe("tarHeader", () => {
  it("refuses a path ustar cannot hold", () => {
    expect(() => tarHeader(`${"p".repeat(200)}/x`, 1)).toThrow(/path too long for ustar/);
    expect(() => tarHeader("q".repeat(101), 1)).toThrow(/path too long for ustar/);
  });
});
