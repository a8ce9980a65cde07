/**
 * Every difference between Fedora CoreOS and Flatcar that the host config depends on lives here.
 * host.ts reads these profiles and never branches on the OS name itself.
 *
 * The storage driver (`hosts.storageDriver`, renderers/storage.ts) has no per-OS part: the volume
 * (btrfs or ext4), its mount unit and daemon.json's `storage-driver` are the same on both, and the
 * btrfs upkeep scripts go to the profile's `scriptDir` like the others. Both images' Docker defaults
 * to overlay2 on their own root; that both boot with either driver on the Berth volume is checked
 * with the real Ignition (files stage), ignition-validate and systemd-analyze here, not on the
 * images themselves.
 */

import type { HostOs } from "../renderers/host-os.ts";
import { RenderError } from "../renderers/common.ts";
/** Host operating systems Berth can provision (one list: renderers/host-os.ts). */
export type { HostOs } from "../renderers/host-os.ts";

/** What the host config needs to know about an OS image. */
export interface OsProfile {
  /** The OS this profile describes. */
  readonly os: HostOs;
  /** Absolute path of the Docker daemon binary used in the `ExecStart=` override. */
  readonly dockerdPath: string;
  /** Absolute path of `iptables` (both images ship it in /usr/sbin). */
  readonly iptablesPath: string;
  /**
   * What the stock `docker.service` passes on `ExecStart`, for documentation and tests only. Our
   * drop-in resets `ExecStart=` and starts `dockerd` with no flags at all, so none of these can clash
   * with `daemon.json` (dockerd refuses to start when an option is given both ways).
   */
  readonly stockExecStart: string;
  /**
   * Environment variables the stock unit expands into dockerd's command line. The drop-in sets them
   * empty (`Environment=NAME=`) as a second line of defence; note that an `EnvironmentFile=` of the
   * stock unit still wins over `Environment=`, which is why the real guarantee is the `ExecStart`
   * override that does not reference them.
   */
  readonly stockEnvironmentToClear: readonly string[];
  /**
   * `daemon.json` settings that restore what the stock command line gave the daemon and that we lose
   * by overriding `ExecStart` (e.g. SELinux labelling of containers).
   */
  readonly daemonDefaults: Readonly<Record<string, boolean | string>>;
  /**
   * Whether `docker.service` must be enabled explicitly. Both images ship only `docker.socket`
   * enabled, and we need dockerd running at boot (the TCP/TLS listener and live-restore need the
   * daemon, not socket activation).
   */
  readonly enableDockerService: boolean;
  /**
   * Where a PEM CA certificate becomes trusted by the OS. Fedora CoreOS runs `update-ca-trust` at boot
   * when anchors exist; Flatcar's `update-ca-certificates.service` picks up `*.pem` in /etc/ssl/certs.
   */
  readonly caAnchorPath: string;
  /**
   * Path of the sshd drop-in. OpenSSH reads /etc/ssh/sshd_config.d/*.conf in lexical order and keeps
   * the first value of each keyword, so a low number (05) wins over the image's own defaults (Fedora
   * CoreOS ships e.g. 40-disable-passwords.conf and 50-redhat.conf).
   */
  readonly sshdDropinPath: string;
  /**
   * Where Berth's host scripts go. Fedora CoreOS: /usr/local/bin (a link into /var, writable).
   * Flatcar's /usr is read-only and its local binaries live in /opt/bin.
   */
  readonly scriptDir: string;
  /**
   * How the OS takes its update policy: Zincati's TOML drop-in (Fedora CoreOS) or Flatcar's
   * update.conf (update_engine downloads, locksmithd reboots in its window).
   */
  readonly updatePolicy: { kind: "zincati"; path: string } | { kind: "flatcar"; path: string };
  /**
   * What the image links /etc/resolv.conf to (both run systemd-resolved, which writes both files
   * with the search domains of `Domains=` in its `search` line). Fedora CoreOS: the stub file, whose
   * only nameserver is resolved's 127.0.0.53, which routes the search domains to their DNS server.
   * Flatcar: the uplink file, which lists resolved's servers (the global `DNS=` first) for glibc to
   * ask directly. For documentation and tests; Berth writes the same resolved drop-in for both.
   */
  readonly resolvConf: "/run/systemd/resolve/stub-resolv.conf" | "/run/systemd/resolve/resolv.conf";
}

const FCOS: OsProfile = {
  os: "fcos",
  dockerdPath: "/usr/bin/dockerd",
  iptablesPath: "/usr/sbin/iptables",
  stockExecStart: "/usr/bin/dockerd --host=fd:// --log-driver=journald --live-restore $OPTIONS",
  stockEnvironmentToClear: ["OPTIONS"],
  // Fedora's OPTIONS carry --selinux-enabled; without it containers would run unlabelled.
  daemonDefaults: { "selinux-enabled": true },
  enableDockerService: true,
  caAnchorPath: "/etc/pki/ca-trust/source/anchors/berth-registry-ca.pem",
  sshdDropinPath: "/etc/ssh/sshd_config.d/05-berth.conf",
  scriptDir: "/usr/local/bin",
  updatePolicy: { kind: "zincati", path: "/etc/zincati/config.d/55-berth-updates.toml" },
  resolvConf: "/run/systemd/resolve/stub-resolv.conf",
};

const FLATCAR: OsProfile = {
  os: "flatcar",
  dockerdPath: "/usr/bin/dockerd",
  iptablesPath: "/usr/sbin/iptables",
  stockExecStart:
    "/usr/bin/dockerd --host=fd:// --containerd=/run/containerd/containerd.sock $DOCKER_SELINUX $DOCKER_OPTS $DOCKER_CGROUPS $DOCKER_OPT_BIP $DOCKER_OPT_MTU $DOCKER_OPT_IPMASQ",
  // The variables are only expanded by the stock ExecStart, which we replace entirely.
  stockEnvironmentToClear: [],
  // Flatcar's unit sets DOCKER_SELINUX=--selinux-enabled=true.
  daemonDefaults: { "selinux-enabled": true },
  enableDockerService: true,
  caAnchorPath: "/etc/ssl/certs/berth-registry-ca.pem",
  // Older Flatcar releases have no Include of sshd_config.d in their sshd_config; there the drop-in is
  // inert (harmless) and password login stays disabled by Flatcar's own default.
  sshdDropinPath: "/etc/ssh/sshd_config.d/05-berth.conf",
  scriptDir: "/opt/bin",
  updatePolicy: { kind: "flatcar", path: "/etc/flatcar/update.conf" },
  // Flatcar's documentation (Configuring DNS): /etc/resolv.conf is a link to resolved's uplink file.
  resolvConf: "/run/systemd/resolve/resolv.conf",
};

const PROFILES: Readonly<Record<HostOs, OsProfile>> = { fcos: FCOS, flatcar: FLATCAR };

/** The profile for `os`; throws for an unknown OS (input may come from untyped config). */
export function osProfile(os: HostOs): OsProfile {
  const profile = (PROFILES as Partial<Record<string, OsProfile>>)[os];
  if (!profile) {
    throw new RenderError(
      "osProfile",
      "os",
      `unknown host OS "${String(os)}", expected one of: ${Object.keys(PROFILES).join(", ")}`,
    );
  }
  return profile;
}
