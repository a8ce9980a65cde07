/**
 * A typed model of the parts of the Ignition 3.3.0 configuration spec that Berth uses.
 *
 * Field names follow the spec exactly (camelCase JSON keys), so a value of {@link IgnitionConfig}
 * serialises straight to a valid Ignition document. Optional fields that are `undefined` are dropped
 * by the serialiser; nothing here is ever `null`.
 *
 * Spec reference: https://coreos.github.io/ignition/configuration-v3_3/
 */

/** The only spec version Berth emits: accepted by Fedora CoreOS, Flatcar and Debian's ignition-validate 2.14. */
export const IGNITION_SPEC_VERSION = "3.3.0";

/** The `ignition` section. */
export interface IgnitionSection {
  /** Spec version of the document; always {@link IGNITION_SPEC_VERSION}. */
  version: typeof IGNITION_SPEC_VERSION;
}

/** A user to create or modify in the `passwd` stage. */
export interface PasswdUser {
  /** Login name, e.g. `core`. Unique within a config. */
  name: string;
  /** Public keys appended to the user's authorized keys (Ignition writes `~/.ssh/authorized_keys.d/ignition`). */
  sshAuthorizedKeys?: string[];
  /** Supplementary groups; they must already exist on the image. */
  groups?: string[];
  /** Numeric uid, only for users Ignition creates. */
  uid?: number;
  /** Home directory, only for users Ignition creates. */
  homeDir?: string;
  /** Login shell. */
  shell?: string;
  /** Primary group name. */
  primaryGroup?: string;
}

/** The `passwd` section. */
export interface PasswdSection {
  /** Users to create or modify. */
  users?: PasswdUser[];
}

/** Owner (user or group) of a file system node, by numeric id or by name (not both). */
export interface NodeOwner {
  /** Numeric uid/gid. */
  id?: number;
  /** User or group name, resolved inside the target root. */
  name?: string;
}

/** Where a file's contents come from. */
export interface FileContents {
  /** URL of the contents; Berth only emits `data:` URLs so a config never needs the network. */
  source?: string;
  /** `"gzip"` when `source` holds gzip-compressed bytes; absent for uncompressed contents. */
  compression?: "gzip";
}

/** Fields common to files, directories and links. */
interface StorageNode {
  /** Absolute path inside the target root. Unique across files, directories and links. */
  path: string;
  /** Replace whatever exists at `path` (Ignition's default is `false`, which fails if something is there). */
  overwrite?: boolean;
  /** Owning user; defaults to root. */
  user?: NodeOwner;
  /** Owning group; defaults to root. */
  group?: NodeOwner;
}

/** A regular file. */
export interface StorageFile extends StorageNode {
  /** Permission bits as a decimal number in JSON (write octal literals in TS, e.g. `0o644`). */
  mode?: number;
  /** The file's contents. */
  contents?: FileContents;
}

/** A directory. */
export interface StorageDirectory extends StorageNode {
  /** Permission bits, e.g. `0o755`. */
  mode?: number;
}

/** A symbolic (default) or hard link. */
export interface StorageLink extends StorageNode {
  /** Link target; relative targets are resolved from the link's directory, as with `ln -s`. */
  target: string;
  /** `true` for a hard link; Berth always writes symbolic links (`false`). */
  hard?: boolean;
}

/** File system formats Ignition can create. */
export type FilesystemFormat = "btrfs" | "ext4" | "xfs" | "vfat" | "swap" | "none";

/**
 * A file system to create in the `disks` stage.
 *
 * Berth never sets `path` (which would make Ignition mount it during provisioning only); it pairs every
 * file system with a systemd `.mount` unit instead, see `filesystemWithMount` in builders.ts.
 */
export interface Filesystem {
  /** Absolute path of the block device, preferably a stable `/dev/disk/by-id/...` link. */
  device: string;
  /** File system type. */
  format: FilesystemFormat;
  /** File system label, used by the mount unit (`/dev/disk/by-label/<label>`). */
  label?: string;
  /**
   * `false` keeps an existing file system whose format (and label/uuid, when given) match, so
   * re-provisioning a host does not wipe its data; `true` always reformats.
   */
  wipeFilesystem?: boolean;
  /** Mount point during provisioning only; Berth leaves it unset and uses a mount unit. */
  path?: string;
  /** File system UUID to create or match. */
  uuid?: string;
  /** Extra options for mkfs. */
  options?: string[];
  /** Mount options used when Ignition itself mounts the file system (only with `path`). */
  mountOptions?: string[];
}

/** The `storage` section. */
export interface StorageSection {
  /** Regular files. */
  files?: StorageFile[];
  /** Directories. */
  directories?: StorageDirectory[];
  /** Links. */
  links?: StorageLink[];
  /** File systems to create. */
  filesystems?: Filesystem[];
}

/** A drop-in for a systemd unit, written to `/etc/systemd/system/<unit>.d/<name>`. */
export interface SystemdDropin {
  /** Drop-in file name, ending in `.conf`. */
  name: string;
  /** Drop-in contents. */
  contents?: string;
}

/** A systemd unit, written to `/etc/systemd/system/<name>` when `contents` is set. */
export interface SystemdUnit {
  /** Unit name including its suffix, e.g. `docker.service`, `var-lib-docker.mount`. */
  name: string;
  /** `true` adds `enable <name>` to Ignition's preset file; `false` adds `disable <name>`. */
  enabled?: boolean;
  /** `true` masks the unit (links it to /dev/null). */
  mask?: boolean;
  /** Full unit file contents; absent to only add drop-ins or change enablement of a stock unit. */
  contents?: string;
  /** Drop-ins for this unit. */
  dropins?: SystemdDropin[];
}

/** The `systemd` section. */
export interface SystemdSection {
  /** Units to write, enable, mask or extend with drop-ins. */
  units?: SystemdUnit[];
}

/** An Ignition 3.3.0 document (the subset Berth uses). */
export interface IgnitionConfig {
  /** Spec version. */
  ignition: IgnitionSection;
  /** Users. */
  passwd?: PasswdSection;
  /** Files, directories, links and file systems. */
  storage?: StorageSection;
  /** systemd units. */
  systemd?: SystemdSection;
}

/** A piece of configuration plus a human-readable name of where it came from, for error messages. */
export interface IgnitionFragment {
  /** Where this fragment came from, e.g. `"berth:host staging-ci-1"` or `"stack config extraIgnition[0]"`. */
  source: string;
  /** The configuration it contributes. */
  config: IgnitionConfig;
}
