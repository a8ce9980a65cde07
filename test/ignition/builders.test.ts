import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import {
  GZIP_THRESHOLD_BYTES,
  IgnitionMergeConflictError,
  dataUrlContents,
  deterministicGzip,
  dropin,
  emptyConfig,
  file,
  filesystemWithMount,
  merge,
  mountUnitName,
  serializeIgnition,
  stableStringify,
  symlink,
  systemdEscapePath,
  unit,
  type IgnitionConfig,
} from "../../ignition/index.ts";
import { InternalError, RenderError } from "../../renderers/common.ts";
import { checkTool, toolsIt } from "../support/tools.ts";
import { decodeContents } from "./fixtures.ts";

const decode = decodeContents;

const cfg = (parts: Partial<IgnitionConfig>): IgnitionConfig => ({ ...emptyConfig(), ...parts });

describe("file()", () => {
  it("defaults to mode 0644 and overwrite, with a plain data URL for small text", () => {
    const f = file("/etc/hostname", "ci-1\n");
    expect(f).toMatchObject({ path: "/etc/hostname", mode: 0o644, overwrite: true });
    expect(f.contents).toEqual({ source: "data:,ci-1%0A" });
    expect(f.contents?.compression).toBeUndefined();
  });

  it("honours mode and ownership options", () => {
    const f = file("/etc/docker/tls/server-key.pem", "k", {
      mode: 0o600,
      overwrite: false,
      user: { name: "root" },
    });
    expect(f).toMatchObject({ mode: 0o600, overwrite: false, user: { name: "root" } });
  });

  it("round-trips awkward text through the plain data URL", () => {
    const text = "a b%c#d?e&f=g+h/i:j,k;l'm\"n(o)p*q!r\nünïcødé ✓\t[x]\n";
    const f = file("/etc/t", text);
    expect(f.contents?.source?.startsWith("data:,")).toBe(true);
    expect(f.contents?.source).not.toMatch(/[ #?\n"%](?![0-9A-F]{2})/);
    expect(decode(f.contents).toString("utf8")).toBe(text);
  });

  it("gzips and base64-encodes contents above the threshold, and the bytes round-trip", () => {
    const big = Array.from({ length: 400 }, (_, i) => `line ${i} of a large config file`).join("\n");
    expect(Buffer.byteLength(big)).toBeGreaterThan(GZIP_THRESHOLD_BYTES);
    const f = file("/etc/big.conf", big);
    expect(f.contents?.compression).toBe("gzip");
    expect(f.contents?.source?.startsWith("data:;base64,")).toBe(true);
    expect(decode(f.contents).toString("utf8")).toBe(big);
    expect((f.contents?.source ?? "").length).toBeLessThan(big.length / 2);
  });

  it("keeps contents of exactly the threshold uncompressed", () => {
    const f = file("/etc/edge", "x".repeat(GZIP_THRESHOLD_BYTES));
    expect(f.contents?.compression).toBeUndefined();
    expect(dataUrlContents("x".repeat(GZIP_THRESHOLD_BYTES + 1)).compression).toBe("gzip");
  });

  it("round-trips binary contents", () => {
    const bytes = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256);
    expect(decode(file("/opt/blob", bytes).contents).equals(Buffer.from(bytes))).toBe(true);
    const small = Uint8Array.from([0, 1, 2, 255, 128, 10]);
    expect(decode(file("/opt/small", small).contents).equals(Buffer.from(small))).toBe(true);
  });

  it("gzip output is deterministic: no mtime, no file name, same bytes every time", () => {
    const input = Buffer.from("same input ".repeat(500));
    const a = deterministicGzip(input);
    const b = deterministicGzip(Buffer.from(input));
    expect(a.equals(b)).toBe(true);
    // Header: magic, deflate, FLG=0 (no FNAME), MTIME=0.
    expect([...a.subarray(0, 8)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
  });

  it("rejects relative paths, '..' and bad modes", () => {
    expect(() => file("etc/x", "")).toThrow(RenderError);
    expect(() => file("etc/x", "")).toThrow('file: path: must be an absolute path, got "etc/x"');
    expect(() => file("/etc/../x", "")).toThrow('file: path: must not contain "..", got "/etc/../x"');
    expect(() => file("/etc/x", "", { mode: 0o10000 })).toThrow(
      'file: mode: file "/etc/x": must be an integer between 0 and 0o7777, got 4096',
    );
  });
});

describe("units and links", () => {
  it("unit() and dropin()", () => {
    expect(unit("a.service", "[Service]\n", { enabled: true })).toEqual({
      name: "a.service",
      enabled: true,
      contents: "[Service]\n",
      dropins: undefined,
    });
    expect(dropin("docker.service", "10-x.conf", "[Unit]\n")).toEqual({
      name: "docker.service",
      dropins: [{ name: "10-x.conf", contents: "[Unit]\n" }],
    });
    expect(() => unit("nodot", "")).toThrow(RenderError);
    expect(() => unit("nodot", "")).toThrow('unit: name: not a systemd unit name: "nodot"');
    expect(() => dropin("docker.service", "x.txt", "")).toThrow(
      'dropin: dropinName: must be a file name ending in .conf, got "x.txt"',
    );
  });

  it("symlink() is a soft link that replaces what is there", () => {
    expect(symlink("/etc/localtime", "../usr/share/zoneinfo/UTC")).toEqual({
      path: "/etc/localtime",
      target: "../usr/share/zoneinfo/UTC",
      hard: false,
      overwrite: true,
    });
  });
});

describe("mount unit names", () => {
  it("escapes like systemd for common paths", () => {
    expect(mountUnitName("/var/lib/docker")).toBe("var-lib-docker.mount");
    expect(mountUnitName("/")).toBe("-.mount");
    expect(mountUnitName("/var//lib/")).toBe("var-lib.mount");
    expect(systemdEscapePath("/srv/ci-data")).toBe("srv-ci\\x2ddata");
  });

  toolsIt(checkTool("systemd-escape", "systemd"))("matches the real systemd-escape --path", () => {
    const paths = [
      "/var/lib/docker",
      "/",
      "/foo-bar/baz.qux",
      "/a b/c",
      "/.hidden/x",
      "/var//lib/",
      "/ü/ä",
      "/x:y_z",
    ];
    for (const p of paths) {
      const r = spawnSync("systemd-escape", ["--path", "--suffix=mount", p], { encoding: "utf8" });
      expect(r.status).toBe(0);
      expect(mountUnitName(p), p).toBe(r.stdout.trim());
    }
  });
});

describe("filesystemWithMount()", () => {
  it("returns a kept (not wiped) labelled file system and its enabled mount unit", () => {
    const { filesystem, mountUnit } = filesystemWithMount(
      "/dev/disk/by-id/virtio-0f1e2d3c-4b5a-6978-8",
      "docker",
      "btrfs",
      "/var/lib/docker",
    );
    expect(filesystem).toEqual({
      device: "/dev/disk/by-id/virtio-0f1e2d3c-4b5a-6978-8",
      format: "btrfs",
      label: "docker",
      wipeFilesystem: false,
    });
    expect(filesystem.path).toBeUndefined();
    expect(mountUnit.name).toBe("var-lib-docker.mount");
    expect(mountUnit.enabled).toBe(true);
    expect(mountUnit.contents).toContain("What=/dev/disk/by-label/docker\n");
    expect(mountUnit.contents).toContain("Where=/var/lib/docker\n");
    expect(mountUnit.contents).toContain("Type=btrfs\n");
    expect(mountUnit.contents).toContain("[Install]\nWantedBy=local-fs.target\n");
  });

  it("rejects labels that are too long or odd", () => {
    expect(() => filesystemWithMount("/dev/vdb", "a".repeat(17), "btrfs", "/x")).toThrow(RenderError);
    expect(() => filesystemWithMount("/dev/vdb", "a".repeat(17), "btrfs", "/x")).toThrow(
      /^filesystemWithMount: label: a file system label must be 1-16 characters/,
    );
    expect(() => filesystemWithMount("/dev/vdb", "a/b", "btrfs", "/x")).toThrow(
      /^filesystemWithMount: label: .*got "a\/b"/,
    );
  });
});

describe("merge()", () => {
  const a = "fragment A";
  const b = "fragment B";
  const expectConflict = (fn: () => unknown, what: RegExp): void => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IgnitionMergeConflictError);
    expect(error).toBeInstanceOf(RenderError);
    const message = (error as Error).message;
    expect(message).toMatch(/^merge: fragments: /);
    expect(message).toMatch(what);
    expect(message).toContain(`"${a}"`);
    expect(message).toContain(`"${b}"`);
  };

  it("combines disjoint fragments, keeping order", () => {
    const merged = merge([
      {
        source: a,
        config: cfg({
          storage: { files: [file("/etc/a", "a")] },
          systemd: { units: [unit("a.service", "")] },
        }),
      },
      {
        source: b,
        config: cfg({
          storage: { files: [file("/etc/b", "b")], directories: [{ path: "/srv/b" }] },
          systemd: { units: [unit("b.service", "")] },
        }),
      },
    ]);
    expect(merged.storage?.files?.map((f) => f.path)).toEqual(["/etc/a", "/etc/b"]);
    expect(merged.storage?.directories?.map((d) => d.path)).toEqual(["/srv/b"]);
    expect(merged.systemd?.units?.map((u) => u.name)).toEqual(["a.service", "b.service"]);
    expect(merged.passwd).toBeUndefined();
  });

  it("rejects the same path as file, directory or link, naming both sources", () => {
    expectConflict(
      () =>
        merge([
          { source: a, config: cfg({ storage: { files: [file("/etc/hosts", "x")] } }) },
          { source: b, config: cfg({ storage: { files: [file("/etc/hosts", "y")] } }) },
        ]),
      /path "\/etc\/hosts"/,
    );
    expectConflict(
      () =>
        merge([
          { source: a, config: cfg({ storage: { directories: [{ path: "/etc/x/" }] } }) },
          { source: b, config: cfg({ storage: { links: [symlink("/etc//x", "/y")] } }) },
        ]),
      /path "\/etc\/x".*directory vs link/,
    );
  });

  it("rejects two definitions of a unit and duplicate drop-ins, but combines different drop-ins", () => {
    expectConflict(
      () =>
        merge([
          { source: a, config: cfg({ systemd: { units: [unit("x.service", "1")] } }) },
          { source: b, config: cfg({ systemd: { units: [{ name: "x.service", enabled: false }] } }) },
        ]),
      /unit "x\.service"/,
    );
    expectConflict(
      () =>
        merge([
          {
            source: a,
            config: cfg({ systemd: { units: [dropin("docker.service", "10-berth.conf", "1")] } }),
          },
          {
            source: b,
            config: cfg({ systemd: { units: [dropin("docker.service", "10-berth.conf", "2")] } }),
          },
        ]),
      /drop-in "10-berth\.conf" of unit "docker\.service"/,
    );
    const merged = merge([
      {
        source: a,
        config: cfg({
          systemd: { units: [{ ...dropin("docker.service", "10-a.conf", "1"), enabled: true }] },
        }),
      },
      { source: b, config: cfg({ systemd: { units: [dropin("docker.service", "20-b.conf", "2")] } }) },
    ]);
    expect(merged.systemd?.units).toEqual([
      {
        name: "docker.service",
        enabled: true,
        contents: undefined,
        mask: undefined,
        dropins: [
          { name: "10-a.conf", contents: "1" },
          { name: "20-b.conf", contents: "2" },
        ],
      },
    ]);
  });

  it("rejects two file systems on one device", () => {
    const fs = filesystemWithMount("/dev/vdb", "docker", "btrfs", "/var/lib/docker").filesystem;
    expectConflict(
      () =>
        merge([
          { source: a, config: cfg({ storage: { filesystems: [fs] } }) },
          { source: b, config: cfg({ storage: { filesystems: [{ ...fs, label: "other" }] } }) },
        ]),
      /device "\/dev\/vdb"/,
    );
  });

  it("unions keys and groups of the same user, and rejects conflicting scalars", () => {
    const merged = merge([
      {
        source: a,
        config: cfg({
          passwd: { users: [{ name: "core", sshAuthorizedKeys: ["k1", "k2"], shell: "/bin/bash" }] },
        }),
      },
      {
        source: b,
        config: cfg({
          passwd: { users: [{ name: "core", sshAuthorizedKeys: ["k2", "k3"], groups: ["docker"] }] },
        }),
      },
    ]);
    expect(merged.passwd?.users).toEqual([
      expect.objectContaining({
        name: "core",
        sshAuthorizedKeys: ["k1", "k2", "k3"],
        groups: ["docker"],
        shell: "/bin/bash",
      }),
    ]);
    expectConflict(
      () =>
        merge([
          { source: a, config: cfg({ passwd: { users: [{ name: "ci", uid: 1001 }] } }) },
          { source: b, config: cfg({ passwd: { users: [{ name: "ci", uid: 1002 }] } }) },
        ]),
      /user "ci".*uid: 1001 vs 1002/,
    );
  });

  it("rejects a fragment of another spec version", () => {
    const bad = { ignition: { version: "3.4.0" } } as unknown as IgnitionConfig;
    expect(() => merge([{ source: "old tool", config: bad }])).toThrow(RenderError);
    expect(() => merge([{ source: "old tool", config: bad }])).toThrow(
      /^merge: fragments: fragment "old tool" has Ignition version 3\.4\.0/,
    );
  });
});

describe("serialisation", () => {
  it("sorts keys, drops undefined, keeps array order", () => {
    expect(stableStringify({ b: 1, a: { d: undefined, c: [3, 1, 2] }, e: null })).toBe(
      '{"a":{"c":[3,1,2]},"b":1,"e":null}',
    );
  });

  it("gives identical bytes for equal configs built in different key orders", () => {
    const one: IgnitionConfig = {
      ignition: { version: "3.3.0" },
      storage: { files: [{ path: "/a", mode: 420, contents: { source: "data:,a" } }] },
    };
    const two = {
      storage: { files: [{ contents: { source: "data:,a" }, mode: 420, path: "/a" }] },
      ignition: { version: "3.3.0" },
    } as IgnitionConfig;
    expect(serializeIgnition(one)).toBe(serializeIgnition(two));
    expect(serializeIgnition(one)).toBe(
      '{"ignition":{"version":"3.3.0"},"storage":{"files":[{"contents":{"source":"data:,a"},"mode":420,"path":"/a"}]}}',
    );
  });

  it("refuses values JSON cannot represent faithfully", () => {
    // The types refuse them: only a caller's bug gets them here.
    expect(() => stableStringify({ n: Number.NaN })).toThrow(InternalError);
    expect(() => stableStringify({ n: Number.NaN })).toThrow(/non-finite number at \$\.n/);
    expect(() => stableStringify([undefined as unknown as null])).toThrow(/undefined at \$\[0\]/);
    expect(() => stableStringify({ d: new Date(0) as unknown as string })).toThrow(
      /non-plain object at \$\.d/,
    );
  });
});
