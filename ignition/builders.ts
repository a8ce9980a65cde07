/**
 * Small, pure helpers that build pieces of an Ignition config, and `merge`, which combines fragments
 * and refuses ambiguous input instead of letting the last writer win.
 */
import { posix } from "node:path";
import { gzipSync } from "node:zlib";

import { RenderError } from "../renderers/common.ts";

import {
  IGNITION_SPEC_VERSION,
  type FileContents,
  type Filesystem,
  type FilesystemFormat,
  type IgnitionConfig,
  type IgnitionFragment,
  type NodeOwner,
  type PasswdUser,
  type StorageDirectory,
  type StorageFile,
  type StorageLink,
  type SystemdDropin,
  type SystemdUnit,
} from "./model.ts";

/** Files larger than this many bytes are stored gzip-compressed and base64-encoded. */
export const GZIP_THRESHOLD_BYTES = 2048;

/** Options for {@link file}. */
export interface FileOptions {
  /** Permission bits; default `0o644`. */
  mode?: number;
  /**
   * Replace an existing node at the path; default `true`. Berth's files are first-boot files it owns
   * outright, and some paths (e.g. `/etc/hosts`) already exist on the image, where Ignition's own
   * default (`false`) would fail the boot.
   */
  overwrite?: boolean;
  /** Owning user; default root. */
  user?: NodeOwner;
  /** Owning group; default root. */
  group?: NodeOwner;
  /** Size in bytes above which contents are gzip-compressed; default {@link GZIP_THRESHOLD_BYTES}. */
  gzipAbove?: number;
}

/** Bytes kept literally in a plain `data:,` URL; everything else is percent-encoded. */
const DATA_URL_LITERAL = /^[A-Za-z0-9\-._~/:=@]$/;

function toBytes(contents: string | Uint8Array): Buffer {
  return typeof contents === "string" ? Buffer.from(contents, "utf8") : Buffer.from(contents);
}

/** Percent-encodes bytes for a `data:,` URL (RFC 2397), keeping a conservative set of ASCII characters. */
export function percentEncode(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    const ch = String.fromCharCode(byte);
    out +=
      byte < 0x80 && DATA_URL_LITERAL.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * Gzip with a fixed header: Node writes mtime 0, no file name and OS byte 3, so the same input always
 * gives the same bytes (for a given zlib build; the project pins Node).
 */
export function deterministicGzip(bytes: Uint8Array): Buffer {
  return gzipSync(bytes, { level: 9, memLevel: 9, strategy: 0 });
}

/**
 * Encodes contents as an Ignition `contents` object: a plain percent-encoded `data:,` URL for small
 * contents, or `data:;base64,` of the gzip-compressed bytes with `compression: "gzip"` above the
 * threshold.
 */
export function dataUrlContents(
  contents: string | Uint8Array,
  gzipAbove: number = GZIP_THRESHOLD_BYTES,
): FileContents {
  const bytes = toBytes(contents);
  if (bytes.length > gzipAbove) {
    return { source: `data:;base64,${deterministicGzip(bytes).toString("base64")}`, compression: "gzip" };
  }
  return { source: `data:,${percentEncode(bytes)}` };
}

/** Refuses a relative path or one with `..`, as `builder`'s argument `field`. */
function assertAbsolutePath(builder: string, field: string, path: string): void {
  if (!path.startsWith("/")) {
    throw new RenderError(builder, field, `must be an absolute path, got "${path}"`);
  }
  if (path.split("/").includes("..")) {
    throw new RenderError(builder, field, `must not contain "..", got "${path}"`);
  }
}

/** A regular file with inline contents; see {@link FileOptions} for defaults. */
export function file(path: string, contents: string | Uint8Array, options: FileOptions = {}): StorageFile {
  assertAbsolutePath("file", "path", path);
  const mode = options.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new RenderError(
      "file",
      "mode",
      `file "${path}": must be an integer between 0 and 0o7777, got ${mode}`,
    );
  }
  return {
    path,
    mode,
    overwrite: options.overwrite ?? true,
    user: options.user,
    group: options.group,
    contents: dataUrlContents(contents, options.gzipAbove),
  };
}

/** A directory; default mode `0o755`. */
export function directory(
  path: string,
  options: { mode?: number; overwrite?: boolean; user?: NodeOwner; group?: NodeOwner } = {},
): StorageDirectory {
  assertAbsolutePath("directory", "path", path);
  return {
    path,
    mode: options.mode ?? 0o755,
    overwrite: options.overwrite,
    user: options.user,
    group: options.group,
  };
}

/** A symbolic link at `path` pointing to `target`; replaces what is there unless `overwrite` is false. */
export function symlink(path: string, target: string, options: { overwrite?: boolean } = {}): StorageLink {
  assertAbsolutePath("symlink", "path", path);
  return { path, target, hard: false, overwrite: options.overwrite ?? true };
}

/** A systemd unit with full contents. */
export function unit(
  name: string,
  contents: string,
  options: { enabled?: boolean; dropins?: SystemdDropin[] } = {},
): SystemdUnit {
  assertUnitName("unit", "name", name);
  return { name, enabled: options.enabled, contents, dropins: options.dropins };
}

/** A drop-in `dropinName` for the (usually stock) unit `unitName`, without touching the unit itself. */
export function dropin(unitName: string, dropinName: string, contents: string): SystemdUnit {
  assertUnitName("dropin", "unitName", unitName);
  if (!/^[^/]+\.conf$/.test(dropinName)) {
    throw new RenderError("dropin", "dropinName", `must be a file name ending in .conf, got "${dropinName}"`);
  }
  return { name: unitName, dropins: [{ name: dropinName, contents }] };
}

const UNIT_SUFFIXES = [
  "service",
  "socket",
  "device",
  "mount",
  "automount",
  "swap",
  "target",
  "path",
  "timer",
  "slice",
  "scope",
];

function assertUnitName(builder: string, field: string, name: string): void {
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || !UNIT_SUFFIXES.includes(name.slice(dot + 1)) || name.includes("/")) {
    throw new RenderError(builder, field, `not a systemd unit name: "${name}"`);
  }
}

/**
 * Escapes an absolute path the way `systemd-escape --path` does: the result names the `.mount` unit
 * for a mount point (`/var/lib/docker` → `var-lib-docker`, `/` → `-`). Slashes become `-`; bytes
 * outside `[A-Za-z0-9:_.]`, and a leading `.`, become `\xNN`.
 */
export function systemdEscapePath(path: string): string {
  assertAbsolutePath("systemdEscapePath", "path", path);
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0) {
    return "-";
  }
  const bytes = Buffer.from(parts.join("/"), "utf8");
  let out = "";
  bytes.forEach((byte, i) => {
    const ch = String.fromCharCode(byte);
    if (ch === "/") {
      out += "-";
    } else if (byte < 0x80 && /[A-Za-z0-9:_.]/.test(ch) && !(i === 0 && ch === ".")) {
      out += ch;
    } else {
      out += `\\x${byte.toString(16).padStart(2, "0")}`;
    }
  });
  return out;
}

/** The `.mount` unit name for a mount point, e.g. `/var/lib/docker` → `var-lib-docker.mount`. */
export function mountUnitName(mountPoint: string): string {
  return `${systemdEscapePath(mountPoint)}.mount`;
}

/** A file system plus the mount unit that mounts it at boot. */
export interface FilesystemWithMount {
  /** The file system Ignition creates (or keeps, with `wipeFilesystem: false`). */
  filesystem: Filesystem;
  /** The enabled `.mount` unit mounting it by label. */
  mountUnit: SystemdUnit;
}

/**
 * A labelled file system on `device` that survives re-provisioning (`wipeFilesystem: false`), mounted
 * at `mountPoint` by an enabled mount unit that finds it by label.
 *
 * The unit is `WantedBy=local-fs.target` rather than `RequiredBy`: if the volume is missing, boot
 * still reaches SSH so the host can be inspected, and services that need the mount declare it
 * themselves (`RequiresMountsFor=`).
 */
export function filesystemWithMount(
  device: string,
  label: string,
  format: Exclude<FilesystemFormat, "swap" | "none">,
  mountPoint: string,
  options: { mountOptions?: string[] } = {},
): FilesystemWithMount {
  assertAbsolutePath("filesystemWithMount", "device", device);
  if (!/^[A-Za-z0-9_.-]{1,16}$/.test(label)) {
    // 16 is the smallest limit among the formats we use (ext4); it also keeps /dev/disk/by-label simple.
    throw new RenderError(
      "filesystemWithMount",
      "label",
      `a file system label must be 1-16 characters of [A-Za-z0-9_.-], got "${label}"`,
    );
  }
  const name = mountUnitName(mountPoint);
  const lines = [
    "[Unit]",
    `Description=Berth ${label} file system at ${mountPoint}`,
    "Before=local-fs.target",
    "",
    "[Mount]",
    `What=/dev/disk/by-label/${label}`,
    `Where=${mountPoint}`,
    `Type=${format}`,
  ];
  if (options.mountOptions && options.mountOptions.length > 0) {
    lines.push(`Options=${options.mountOptions.join(",")}`);
  }
  lines.push("", "[Install]", "WantedBy=local-fs.target", "");
  return {
    filesystem: { device, format, label, wipeFilesystem: false },
    mountUnit: { name, enabled: true, contents: lines.join("\n") },
  };
}

/** An empty config of the current spec version. */
export function emptyConfig(): IgnitionConfig {
  return { ignition: { version: IGNITION_SPEC_VERSION } };
}

/**
 * Thrown by {@link merge} when two fragments claim the same thing: a RenderError of `merge`'s
 * `fragments`, naming both fragments' sources.
 */
export class IgnitionMergeConflictError extends RenderError {
  constructor(
    message: string,
    /** Source of the fragment that defined the thing first. */
    readonly firstSource: string,
    /** Source of the fragment that defined it again. */
    readonly secondSource: string,
  ) {
    super("merge", "fragments", message);
    this.name = "IgnitionMergeConflictError";
  }
}

function conflict(what: string, first: string, second: string, detail = ""): never {
  throw new IgnitionMergeConflictError(
    `${what} is defined by both "${first}" and "${second}"${detail ? ` (${detail})` : ""}`,
    first,
    second,
  );
}

const USER_SCALARS = ["uid", "homeDir", "shell", "primaryGroup"] as const;

function unionInOrder(
  a: readonly string[] | undefined,
  b: readonly string[] | undefined,
): string[] | undefined {
  if (a === undefined && b === undefined) {
    return undefined;
  }
  return [...new Set([...(a ?? []), ...(b ?? [])])];
}

/**
 * Combines fragments into one config. Arrays keep fragment order, then entry order.
 *
 * Conflicts are errors naming both fragments' sources, never silent overrides:
 * - the same path as a file, directory or link (paths compared after normalisation);
 * - the same unit defined twice: unit-level fields (`contents`, `enabled`, `mask`) may come from one
 *   fragment only, while drop-ins for a unit may come from several fragments;
 * - the same drop-in (unit name + drop-in name) twice;
 * - the same file system device twice;
 * - the same user with different values for a scalar field (`uid`, `homeDir`, `shell`,
 *   `primaryGroup`); SSH keys and groups of the same user are unioned.
 */
export function merge(fragments: readonly IgnitionFragment[]): IgnitionConfig {
  const paths = new Map<string, { source: string; kind: string }>();
  const files: StorageFile[] = [];
  const directories: StorageDirectory[] = [];
  const links: StorageLink[] = [];
  const filesystems = new Map<string, { source: string; fs: Filesystem }>();
  const units = new Map<string, { definedBy?: string; unit: SystemdUnit }>();
  const dropinOwners = new Map<string, string>();
  const users = new Map<string, { sources: Map<string, string>; firstSource: string; user: PasswdUser }>();

  const claimPath = (path: string, kind: string, source: string): void => {
    const key = posix.normalize(path).replace(/(.)\/$/, "$1");
    const existing = paths.get(key);
    if (existing) {
      conflict(`path "${key}"`, existing.source, source, `${existing.kind} vs ${kind}`);
    }
    paths.set(key, { source, kind });
  };

  for (const { source, config } of fragments) {
    if (config.ignition.version !== IGNITION_SPEC_VERSION) {
      throw new RenderError(
        "merge",
        "fragments",
        `fragment "${source}" has Ignition version ${String(config.ignition.version)}, expected ${IGNITION_SPEC_VERSION}`,
      );
    }
    for (const f of config.storage?.files ?? []) {
      claimPath(f.path, "file", source);
      files.push(f);
    }
    for (const d of config.storage?.directories ?? []) {
      claimPath(d.path, "directory", source);
      directories.push(d);
    }
    for (const l of config.storage?.links ?? []) {
      claimPath(l.path, "link", source);
      links.push(l);
    }
    for (const fs of config.storage?.filesystems ?? []) {
      const existing = filesystems.get(fs.device);
      if (existing) {
        conflict(`file system on device "${fs.device}"`, existing.source, source);
      }
      filesystems.set(fs.device, { source, fs });
    }
    for (const u of config.systemd?.units ?? []) {
      let entry = units.get(u.name);
      if (!entry) {
        entry = { unit: { name: u.name } };
        units.set(u.name, entry);
      }
      const definesUnit = u.contents !== undefined || u.enabled !== undefined || u.mask !== undefined;
      if (definesUnit) {
        if (entry.definedBy !== undefined) {
          conflict(`unit "${u.name}"`, entry.definedBy, source);
        }
        entry.definedBy = source;
        entry.unit = { ...entry.unit, contents: u.contents, enabled: u.enabled, mask: u.mask };
      }
      for (const d of u.dropins ?? []) {
        const key = `${u.name}/${d.name}`;
        const owner = dropinOwners.get(key);
        if (owner !== undefined) {
          conflict(`drop-in "${d.name}" of unit "${u.name}"`, owner, source);
        }
        dropinOwners.set(key, source);
        entry.unit = { ...entry.unit, dropins: [...(entry.unit.dropins ?? []), d] };
      }
    }
    for (const u of config.passwd?.users ?? []) {
      const existing = users.get(u.name);
      if (!existing) {
        const sources = new Map<string, string>();
        for (const k of USER_SCALARS) {
          if (u[k] !== undefined) sources.set(k, source);
        }
        users.set(u.name, { sources, firstSource: source, user: { ...u } });
        continue;
      }
      for (const k of USER_SCALARS) {
        const mine = u[k];
        const theirs = existing.user[k];
        if (mine !== undefined && theirs !== undefined && theirs !== mine) {
          conflict(
            `user "${u.name}"`,
            existing.sources.get(k) ?? existing.firstSource,
            source,
            `${k}: ${JSON.stringify(theirs)} vs ${JSON.stringify(mine)}`,
          );
        }
        if (mine !== undefined && !existing.sources.has(k)) existing.sources.set(k, source);
      }
      // No conflicting scalars: each is either equal in both or set by at most one fragment.
      const merged: PasswdUser = {
        name: u.name,
        uid: existing.user.uid ?? u.uid,
        homeDir: existing.user.homeDir ?? u.homeDir,
        shell: existing.user.shell ?? u.shell,
        primaryGroup: existing.user.primaryGroup ?? u.primaryGroup,
      };
      merged.sshAuthorizedKeys = unionInOrder(existing.user.sshAuthorizedKeys, u.sshAuthorizedKeys);
      merged.groups = unionInOrder(existing.user.groups, u.groups);
      existing.user = merged;
    }
  }

  const out = emptyConfig();
  if (users.size > 0) {
    out.passwd = { users: [...users.values()].map((e) => e.user) };
  }
  const storage: NonNullable<IgnitionConfig["storage"]> = {};
  if (files.length > 0) storage.files = files;
  if (directories.length > 0) storage.directories = directories;
  if (links.length > 0) storage.links = links;
  if (filesystems.size > 0) storage.filesystems = [...filesystems.values()].map((e) => e.fs);
  if (Object.keys(storage).length > 0) out.storage = storage;
  if (units.size > 0) {
    out.systemd = { units: [...units.values()].map((e) => e.unit) };
  }
  return out;
}
