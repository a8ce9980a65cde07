/**
 * The Ignition config of one CI host: users, hostname, time zone, the Docker volume (btrfs, or ext4
 * for the overlay2 storage driver) and its mount, Docker daemon settings, registry trust, sshd hardening and DNS for service names.
 *
 * Everything here runs once, at first boot, and any change replaces the server, so the output is
 * deterministic and limited to host-level settings (see the design doc, "Two layers, two lifecycles").
 */
import { dropin, file, filesystemWithMount, merge, mountUnitName, symlink, unit } from "./builders.ts";
import {
  IGNITION_SPEC_VERSION,
  type IgnitionConfig,
  type IgnitionFragment,
  type SystemdUnit,
} from "./model.ts";
import { NOVA_USER_DATA_LIMIT_BYTES } from "./user-data.ts";
import { osProfile, type HostOs } from "./os.ts";
import { serializeIgnition, stableStringify, type JsonInput } from "./serialize.ts";
import {
  BUILD_INHIBIT_SCRIPT,
  BUILD_INHIBIT_UNIT,
  UPDATE_DEFAULTS,
  defaultWindows,
  renderBuildInhibitScript,
  renderBuildInhibitUnit,
  renderFlatcarUpdateConf,
  renderZincatiToml,
  type HostUpdatePolicy,
} from "../renderers/updates.ts";
import {
  BTRFS_MAINTENANCE_SCRIPT,
  DISK_CHECK_SCRIPT,
  DOCKER_UPKEEP_SCRIPT,
  JOURNALD_DROPIN_PATH,
  UPKEEP_DEFAULTS,
  renderBtrfsMaintenanceScript,
  renderDiskCheckScript,
  renderDockerUpkeepScript,
  renderJournaldDropin,
  renderUpkeepUnits,
  type HostUpkeepSettings,
} from "../renderers/upkeep.ts";
import {
  REGISTRY_GC_CONF_PATH,
  REGISTRY_GC_SCRIPT,
  renderRegistryGcConf,
  renderRegistryGcScript,
  renderRegistryGcUnits,
  type RegistryUpkeepSettings,
} from "../renderers/registry-gc.ts";

import {
  JOURNAL_UPLOAD_CERT_PATH,
  JOURNAL_UPLOAD_CONF_PATH,
  JOURNAL_UPLOAD_DROPIN_NAME,
  JOURNAL_UPLOAD_KEY_PATH,
  JOURNAL_UPLOAD_SERVER_CA_PATH,
  JOURNAL_UPLOAD_UNIT,
  isJournalRemoteUrl,
  renderJournalUploadConf,
  renderJournalUploadDropin,
  type HostLogForward,
} from "../renderers/journal-upload.ts";

import {
  TEXTFILE_METRICS_SCRIPT,
  renderTextfileMetricsScript,
  renderTextfileMetricsUnits,
  type CertSource,
} from "../renderers/host-metrics.ts";
import { METRICS_PORTS } from "../renderers/prometheus.ts";
import { RenderError, internalError } from "../renderers/common.ts";
import {
  PIDS_LIMIT_SCRIPT,
  PIDS_LIMIT_UNIT,
  renderPidsLimitScript,
  renderPidsLimitUnit,
} from "../renderers/pids-limit.ts";
import {
  RESTORE_SCRIPT,
  renderRestoreFiles,
  renderRestoreScript,
  renderRestoreUnits,
  type RestoreJob,
} from "../renderers/restore.ts";

export type { HostOs } from "./os.ts";
export type { HostLogForward } from "../renderers/journal-upload.ts";
import {
  DEFAULT_STORAGE_DRIVER,
  DOCKER_VOLUME_FILESYSTEM,
  isStorageDriver,
  STORAGE_DRIVERS,
  type StorageDriver,
} from "../renderers/storage.ts";

export type { StorageDriver } from "../renderers/storage.ts";

/** Docker daemon settings that go into /etc/docker/daemon.json. */
export interface HostDockerSettings {
  /** `json-file` log rotation size, e.g. `"10m"` (digits plus optional k/m/g). */
  logMaxSize: string;
  /** Number of rotated `json-file` logs to keep (positive integer). */
  logMaxFile: number;
  /** Registry mirror URLs (`https://...`), in order of preference. May be empty. */
  registryMirrors: string[];
  /** Address and prefix of the default bridge, e.g. `"172.17.0.1/16"`; pick one that clashes with no subnet. */
  bip: string;
}

/** The private registry that hosts on this environment pull from. */
export interface HostRegistry {
  /** Host name clients use for the registry, e.g. `"registry.ci.internal"`; pinned in /etc/hosts. */
  hostname: string;
  /** Private IP address the host name resolves to (written to /etc/hosts). */
  address: string;
  /**
   * PEM CA certificate when the registry's certificate is signed by a private CA. Installed for
   * Docker (`/etc/docker/certs.d/<hostname>[:<mirrorPort>]/ca.crt`) and as an OS trust anchor.
   */
  caCertPem?: string;
  /** Port of a pull-through mirror on the same host name, which needs its own certs.d entry. */
  mirrorPort?: number;
}

/** Name resolution for the backend services' names through the dnsmasq container. */
export interface HostServiceDns {
  /** Address of the dnsmasq container as reachable from the host, e.g. `"172.30.0.2"`. */
  address: string;
  /**
   * Search domains, first preferred, e.g. `["us-east-1.ci.internal"]`. systemd-resolved routes
   * them to that server and puts them in the host's search path (`Domains=`), and dockerd gives
   * them to every container (`dns-search`).
   */
  searchDomains: string[];
}

/** Mutual-TLS TCP listener for the Docker API. */
export interface HostDockerTls {
  /** PEM CA that signed the client certificates (and usually the server's). */
  caCertPem: string;
  /** PEM server certificate; must cover the address clients use (e.g. the floating IP). */
  serverCertPem: string;
  /** PEM server private key; written with mode 0600. Makes the rendered config secret. */
  serverKeyPem: string;
  /** TCP port, conventionally 2376. */
  port: number;
}

/** The host's metric endpoints (see docs/architecture.md, Monitoring). */
export interface HostMetrics {
  /**
   * The host's private address: dockerd's `metrics-addr` listens there only (port
   * `METRICS_PORTS.dockerd`), and docker.service waits for it before dockerd starts.
   */
  address: string;
  /**
   * The registry's TLS endpoint, on the registry host: the textfile writer reads the certificate it
   * serves (the certificate itself lives only in the nginx container).
   */
  registryTls?: { address: string; port: number; serverName: string };
}

/** Everything the host config is rendered from. Plain values only, no Pulumi outputs. */
export interface HostIgnitionInput {
  /** Host name, e.g. `"staging-ci-1"` (RFC 1123 labels, dots allowed); written to /etc/hostname. */
  name: string;
  /** Image the host boots; selects the OS profile in os.ts. */
  os: HostOs;
  /** SSH public keys for user `core` (at least one, one key per entry). */
  sshAuthorizedKeys: string[];
  /** IANA time zone, e.g. `"UTC"` or `"Europe/Rome"`; /etc/localtime links into /usr/share/zoneinfo. */
  timezone: string;
  /**
   * Cinder volume UUID of the Docker volume. It must be attached at boot (server `blockDevices`); on
   * KVM virtio-blk it shows up as `/dev/disk/by-id/virtio-<first 20 characters of the id>`.
   */
  dockerVolumeId: string;
  /** Label of the file system on the Docker volume; default `"docker"`. */
  dockerVolumeLabel?: string;
  /**
   * Docker's storage driver, which also decides the Docker volume's file system: `btrfs` on btrfs
   * (default), or `overlay2` on ext4 (see renderers/storage.ts). Either way the volume is formatted
   * only when it carries no file system of that type and label (`wipeFilesystem: false`).
   */
  storageDriver?: StorageDriver;
  /** Docker daemon settings. */
  docker: HostDockerSettings;
  /** The private registry, when the environment has one. */
  registry?: HostRegistry;
  /** Route a domain's DNS queries to the dnsmasq container, when the environment has one. */
  serviceDns?: HostServiceDns;
  /** Expose the Docker API on TCP with mutual TLS, in addition to the local Unix socket. */
  dockerTls?: HostDockerTls;
  /**
   * Supplementary groups for `core`. Default: none, keeping the image's defaults. Only set this when
   * needed: Ignition applies it with `usermod --groups` on images where `core` already exists.
   */
  coreGroups?: string[];
  /** User snippets, merged after the host's own config; any overlap is an error naming both sources. */
  extraFragments?: IgnitionFragment[];
  /** Set when `extraFragments` contain secrets, so {@link hostIgnitionHasSecrets} reports them. */
  extraFragmentsHaveSecrets?: boolean;
  /**
   * This host's OS update policy (windows already staggered for it). Default: `periodic` on
   * weekend nights in the host's time zone ({@link UPDATE_DEFAULTS}, no stagger).
   */
  updates?: HostUpdatePolicy;
  /** Ages and thresholds of the disk upkeep timers. Default: {@link UPKEEP_DEFAULTS}. */
  upkeep?: HostUpkeepSettings;
  /**
   * Registry retention and garbage collection (renderers/registry-gc.ts): only on the host that runs
   * the registry. Default: none.
   */
  registryUpkeep?: RegistryUpkeepSettings;
  /**
   * Forward the journal to a systemd-journal-remote receiver (stack setting `logs.forward`). Absent
   * (the default): nothing about journal forwarding is rendered. The client key makes the config secret.
   */
  logForward?: HostLogForward;
  /**
   * Metrics: dockerd's metrics endpoint on the private address, and the textfile writer for
   * node_exporter (which runs as a container of the service layer). Absent: neither.
   */
  metrics?: HostMetrics;
  /**
   * Fresh production data (renderers/restore.ts): one timer and service per production-like service
   * with a restore source. Its settings are written 0600 root; a Swift temporary URL or password
   * makes the config secret.
   */
  restore?: RestoreJob[];
  /**
   * Process-count limits (renderers/pids-limit.ts): the `berth-pids-limit` service applies each
   * container's label `org.berth.pids-limit`, and `defaultPids` to containers without one. Absent:
   * no service.
   */
  pidsLimit?: { defaultPids: number };
}

export { NOVA_USER_DATA_LIMIT_BYTES } from "./user-data.ts";

/** Mount point of the Docker volume. */
export const DOCKER_DATA_ROOT = "/var/lib/docker";
/** Directory of the Docker API TLS material. */
export const DOCKER_TLS_DIR = "/etc/docker/tls";
/** Name of the docker.service drop-in Berth writes. */
export const DOCKER_DROPIN_NAME = "10-berth.conf";
/** Local Docker API socket (also what `ssh://core@host` reaches through `docker system dial-stdio`). */
export const DOCKER_UNIX_SOCKET = "unix:///var/run/docker.sock";

/**
 * The stable by-id path of a Cinder volume attached through virtio-blk. The id is Cinder's (never the
 * user's), so one that is not a UUID is a bug check.
 */
export function cinderVirtioDevicePath(volumeId: string): string {
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(volumeId)) {
    throw internalError(`cinderVirtioDevicePath: the Cinder volume id must be a UUID, got "${volumeId}"`);
  }
  // virtio-blk exposes at most 20 bytes of serial, and Nova passes the volume id as the serial.
  return `/dev/disk/by-id/virtio-${volumeId.slice(0, 20)}`;
}

/** Size of `json` once base64-encoded, which is what Nova counts. */
export function userDataBase64Size(json: string): number {
  return 4 * Math.ceil(Buffer.byteLength(json, "utf8") / 3);
}

/** Throws, naming the host and the size, when `json` exceeds Nova's user-data limit once base64-encoded. */
export function assertUserDataSize(hostName: string, json: string): void {
  const size = userDataBase64Size(json);
  if (size > NOVA_USER_DATA_LIMIT_BYTES) {
    throw new RenderError(
      "renderHostIgnition",
      "extraFragments",
      `Ignition config for host "${hostName}" is ${size} bytes after base64 encoding ` +
        `(${Buffer.byteLength(json, "utf8")} bytes raw), over Nova's user-data limit of ` +
        `${NOVA_USER_DATA_LIMIT_BYTES} bytes; move large files out of extraFragments or shrink them`,
    );
  }
}

/** True when the rendered config contains secret material (the Docker TLS server key). */
export function hostIgnitionHasSecrets(host: HostIgnitionInput): boolean {
  return (
    host.dockerTls !== undefined ||
    host.logForward !== undefined ||
    host.extraFragmentsHaveSecrets === true ||
    (host.restore ?? []).some((j) => j.settings.source.kind !== "url")
  );
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIp(address: string): boolean {
  return IPV4_RE.test(address) || (/^[0-9a-f:.]+$/i.test(address) && address.includes(":"));
}

/** A refusal of `host`'s input `field`: `buildHostIgnition: field: host "name": message`. */
function refuse(host: HostIgnitionInput, field: string, message: string): RenderError {
  return new RenderError("buildHostIgnition", field, `host "${host.name}": ${message}`);
}

function assertPort(host: HostIgnitionInput, field: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw refuse(host, field, `must be a TCP port (1-65535), got ${port}`);
  }
}

function assertPem(host: HostIgnitionInput, field: string, pem: string): void {
  if (!/^-----BEGIN [A-Z0-9 ]+-----\r?\n[\s\S]+-----END [A-Z0-9 ]+-----\s*$/.test(pem.trim() + "\n")) {
    throw refuse(host, field, "must be PEM text");
  }
}

function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}

/** The host's storage driver (the default when its input names none). */
export function storageDriverOf(host: Pick<HostIgnitionInput, "storageDriver">): StorageDriver {
  return host.storageDriver ?? DEFAULT_STORAGE_DRIVER;
}

function validate(host: HostIgnitionInput): void {
  if (!HOSTNAME_RE.test(host.name)) {
    throw refuse(host, "name", "must be a valid host name");
  }
  if (host.storageDriver !== undefined && !isStorageDriver(host.storageDriver)) {
    throw refuse(
      host,
      "storageDriver",
      `must be one of ${STORAGE_DRIVERS.join(", ")}, got "${String(host.storageDriver)}"`,
    );
  }
  if (host.sshAuthorizedKeys.length === 0) {
    throw refuse(host, "sshAuthorizedKeys", "at least one SSH authorized key is required for user core");
  }
  for (const key of host.sshAuthorizedKeys) {
    if (/[\r\n]/.test(key) || !/^\S+ \S+/.test(key.trim())) {
      throw refuse(host, "sshAuthorizedKeys", 'each SSH key must be one "type base64 [comment]" line');
    }
  }
  if (!/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(host.timezone)) {
    throw refuse(host, "timezone", `must be an IANA name like "Europe/Rome", got "${host.timezone}"`);
  }
  if (!/^[1-9]\d*[kmg]?$/.test(host.docker.logMaxSize)) {
    throw refuse(host, "docker.logMaxSize", `must look like "10m", got "${host.docker.logMaxSize}"`);
  }
  if (!Number.isInteger(host.docker.logMaxFile) || host.docker.logMaxFile < 1) {
    throw refuse(host, "docker.logMaxFile", "must be a positive integer");
  }
  const [bipAddr, bipLen, ...rest] = host.docker.bip.split("/");
  if (rest.length > 0 || !bipAddr || !IPV4_RE.test(bipAddr) || !/^([89]|[12]\d|30)$/.test(bipLen ?? "")) {
    throw refuse(
      host,
      "docker.bip",
      `must be an IPv4 address with prefix length 8-30, got "${host.docker.bip}"`,
    );
  }
  for (const mirror of host.docker.registryMirrors) {
    if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(mirror)) {
      throw refuse(host, "docker.registryMirrors", `must hold http(s) URLs, got "${mirror}"`);
    }
  }
  if (host.registry) {
    if (!HOSTNAME_RE.test(host.registry.hostname)) {
      throw refuse(host, "registry.hostname", `must be a host name, got "${host.registry.hostname}"`);
    }
    if (!isIp(host.registry.address)) {
      throw refuse(host, "registry.address", `must be an IP address, got "${host.registry.address}"`);
    }
    if (host.registry.mirrorPort !== undefined)
      assertPort(host, "registry.mirrorPort", host.registry.mirrorPort);
    if (host.registry.caCertPem !== undefined) assertPem(host, "registry.caCertPem", host.registry.caCertPem);
  }
  if (host.metrics && !IPV4_RE.test(host.metrics.address)) {
    throw refuse(host, "metrics.address", `must be an IPv4 address, got "${host.metrics.address}"`);
  }
  if (host.serviceDns) {
    if (!isIp(host.serviceDns.address)) {
      throw refuse(host, "serviceDns.address", `must be an IP address, got "${host.serviceDns.address}"`);
    }
    if (host.serviceDns.searchDomains.length === 0) {
      throw refuse(host, "serviceDns.searchDomains", "must list at least one domain");
    }
    for (const domain of host.serviceDns.searchDomains) {
      if (!HOSTNAME_RE.test(domain)) {
        throw refuse(host, "serviceDns.searchDomains", `must hold domains, got "${domain}"`);
      }
    }
  }
  if (host.dockerTls) {
    assertPort(host, "dockerTls.port", host.dockerTls.port);
    assertPem(host, "dockerTls.caCertPem", host.dockerTls.caCertPem);
    assertPem(host, "dockerTls.serverCertPem", host.dockerTls.serverCertPem);
    assertPem(host, "dockerTls.serverKeyPem", host.dockerTls.serverKeyPem);
  }
  if (host.logForward) {
    if (!isJournalRemoteUrl(host.logForward.url)) {
      throw refuse(host, "logForward.url", `must be https://host[:port], got "${host.logForward.url}"`);
    }
    assertPem(host, "logForward.serverCaPem", host.logForward.serverCaPem);
    assertPem(host, "logForward.clientCertPem", host.logForward.clientCertPem);
    assertPem(host, "logForward.clientKeyPem", host.logForward.clientKeyPem);
  }
}

/**
 * The daemon.json object for a host.
 *
 * `hosts` lists the Unix socket explicitly (plus TCP with TLS) instead of `fd://`: dockerd then
 * listens by itself and does not depend on socket activation. The stock `docker.socket` stays
 * enabled (both images' `docker.service` `Requires=` it, so masking it would stop Docker); dockerd
 * replaces the socket file at /var/run/docker.sock when it starts, and clients see dockerd's own
 * listener. Because `hosts` is set here, the `ExecStart` override passes no `-H` flag.
 */
export function dockerDaemonJson(host: HostIgnitionInput): Record<string, JsonInput> {
  const profile = osProfile(host.os);
  const daemon: Record<string, JsonInput> = {
    ...profile.daemonDefaults,
    "storage-driver": storageDriverOf(host),
    "log-driver": "json-file",
    "log-opts": { "max-size": host.docker.logMaxSize, "max-file": String(host.docker.logMaxFile) },
    "live-restore": true,
    "registry-mirrors": [...host.docker.registryMirrors],
    bip: host.docker.bip,
    hosts: [DOCKER_UNIX_SOCKET],
  };
  if (host.serviceDns) {
    // Every container gets the search list (short production-like names), also those a build
    // starts without --dns-search: on ci-services, in a holder, on the default bridge.
    daemon["dns-search"] = [...host.serviceDns.searchDomains];
  }
  // Prometheus metrics on the private address only (the security group admits the monitoring CIDRs).
  if (host.metrics) daemon["metrics-addr"] = `${host.metrics.address}:${METRICS_PORTS.dockerd}`;
  if (host.dockerTls) {
    daemon.hosts = [DOCKER_UNIX_SOCKET, `tcp://0.0.0.0:${host.dockerTls.port}`];
    daemon.tls = true;
    daemon.tlsverify = true;
    daemon.tlscacert = `${DOCKER_TLS_DIR}/ca.pem`;
    daemon.tlscert = `${DOCKER_TLS_DIR}/server-cert.pem`;
    daemon.tlskey = `${DOCKER_TLS_DIR}/server-key.pem`;
  }
  return daemon;
}

/** The docker.service drop-in: wait for the volume, and start dockerd with no command-line options. */
export function dockerServiceDropin(host: HostIgnitionInput): string {
  const profile = osProfile(host.os);
  const lines = [
    `# Berth: Docker keeps its data on the ${DOCKER_VOLUME_FILESYSTEM[storageDriverOf(host)]} volume; never start it on the root file system.`,
    "[Unit]",
    `RequiresMountsFor=${DOCKER_DATA_ROOT}`,
    `After=${mountUnitName(DOCKER_DATA_ROOT)}`,
    "",
    "[Service]",
    ...profile.stockEnvironmentToClear.map((name) => `Environment=${name}=`),
    "# All settings live in /etc/docker/daemon.json. dockerd refuses to start when an option is given",
    "# both as a flag and in daemon.json, so the stock command line is replaced by a bare one.",
    ...(host.metrics
      ? [
          "# dockerd refuses to start when it cannot bind metrics-addr: wait (at most 2 min) until the",
          "# private address is configured.",
          `ExecStartPre=-/bin/sh -c '${waitForAddressCommand(host.metrics.address)}'`,
        ]
      : []),
    "ExecStart=",
    `ExecStart=${profile.dockerdPath}`,
    "# Containers must not reach the cloud's metadata service: it serves this host's user data, which",
    "# carries dockerd's TLS key. dockerd creates its DOCKER-USER chain before it reports ready; the",
    "# rule is put back on every start (and only once).",
    `ExecStartPost=/bin/sh -c '${metadataBlockCommand(profile.iptablesPath)}'`,
    "",
  ];
  return lines.join("\n");
}

/** Shell command that waits until `address` is one of the host's IPv4 addresses (120 s at most). */
export function waitForAddressCommand(address: string): string {
  return `for i in $(seq 120); do ip -4 -o addr show | grep -qF " inet ${address}/" && exit 0; sleep 1; done; echo "${address} is not configured" >&2; exit 1`;
}

/** The cloud's metadata service (OpenStack, like EC2): it serves the instance's user data. */
export const METADATA_SERVICE = "169.254.169.254";

/**
 * The shell command that refuses containers' traffic to the metadata service: a REJECT at the top
 * of Docker's DOCKER-USER chain (every forwarded packet of every Docker network passes it), added
 * unless it is there already.
 */
export function metadataBlockCommand(iptables: string): string {
  const rule = `DOCKER-USER -d ${METADATA_SERVICE}/32 -j REJECT --reject-with icmp-port-unreachable`;
  return `${iptables} -w -C ${rule} 2>/dev/null || ${iptables} -w -I ${rule}`;
}

function etcHosts(registry: HostRegistry | undefined): string {
  const lines = [
    "# Managed by Berth (Ignition, first boot).",
    "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4",
    "::1         localhost localhost.localdomain localhost6 localhost6.localdomain6",
  ];
  if (registry) {
    lines.push(`${registry.address} ${registry.hostname}`);
  }
  return `${lines.join("\n")}\n`;
}

const SSHD_DROPIN = [
  "# Berth: key-only SSH. sshd reads sshd_config.d/*.conf in lexical order and keeps the first value",
  "# of each keyword, so this 05- file takes precedence over the image's own defaults.",
  "PasswordAuthentication no",
  "KbdInteractiveAuthentication no",
  "PermitRootLogin no",
  "",
].join("\n");

/**
 * The systemd-resolved drop-in (both OS images run systemd-resolved). `Domains=` without `~` makes
 * each domain a search domain as well as a routing domain: resolved sends queries under them to the
 * dnsmasq container only (the global `DNS=`), and publishes them, in order, in the `search` line of
 * the host's resolv.conf (the stub file Fedora CoreOS links /etc/resolv.conf to, and the uplink
 * file Flatcar links it to), so short names resolve on the host itself.
 */
export function resolvedDropin(dns: HostServiceDns): string {
  return [
    "# Berth: the services' domains are the host's search domains, and their queries go to the",
    "# dnsmasq container only.",
    "[Resolve]",
    `DNS=${dns.address}`,
    `Domains=${dns.searchDomains.join(" ")}`,
    "",
  ].join("\n");
}

/** Path of {@link resolvedDropin} on the host. */
export const RESOLVED_DROPIN_PATH = "/etc/systemd/resolved.conf.d/50-berth.conf";

/** The update policy a host gets when its input names none. */
export function defaultUpdatePolicy(os: HostOs, timezone: string): HostUpdatePolicy {
  return {
    strategy: UPDATE_DEFAULTS.strategy,
    windows: defaultWindows(os),
    timeZone: timezone,
    maxBuildWaitHours: UPDATE_DEFAULTS.maxBuildWaitHours,
  };
}

/**
 * Day 2 on every host: the OS update policy, the build-aware shutdown inhibitor, and the disk
 * upkeep (scripts, timers, the journald cap). OS differences (script directory, update mechanism)
 * come from the OS profile.
 */
function dayTwo(host: HostIgnitionInput): { files: ReturnType<typeof file>[]; units: SystemdUnit[] } {
  const profile = osProfile(host.os);
  const policy = host.updates ?? defaultUpdatePolicy(host.os, host.timezone);
  const upkeep = host.upkeep ?? UPKEEP_DEFAULTS;
  // btrfs upkeep (balance, scrub) only where the volume is btrfs; the inode check where it is not.
  const btrfs = DOCKER_VOLUME_FILESYSTEM[storageDriverOf(host)] === "btrfs";
  const bin = profile.scriptDir;
  // Scripts are gzip-compressed whatever their size: user data is limited (Nova, 64 KiB).
  const script = (name: string, text: string) => file(`${bin}/${name}`, text, { mode: 0o755, gzipAbove: 0 });
  const files = [
    profile.updatePolicy.kind === "zincati"
      ? file(profile.updatePolicy.path, renderZincatiToml(policy))
      : file(profile.updatePolicy.path, renderFlatcarUpdateConf(policy)),
    script(BUILD_INHIBIT_SCRIPT, renderBuildInhibitScript()),
    script(DOCKER_UPKEEP_SCRIPT, renderDockerUpkeepScript()),
    ...(btrfs ? [script(BTRFS_MAINTENANCE_SCRIPT, renderBtrfsMaintenanceScript())] : []),
    script(DISK_CHECK_SCRIPT, renderDiskCheckScript({ inodes: !btrfs })),
    // Process-count limits of every container (renderers/pids-limit.ts).
    ...(host.pidsLimit ? [script(PIDS_LIMIT_SCRIPT, renderPidsLimitScript())] : []),
    file(JOURNALD_DROPIN_PATH, renderJournaldDropin(upkeep)),
  ];
  const units: SystemdUnit[] = [
    unit(BUILD_INHIBIT_UNIT, renderBuildInhibitUnit(bin, policy), { enabled: true }),
    ...renderUpkeepUnits(bin, DOCKER_DATA_ROOT, upkeep, { btrfs }).map((u) =>
      unit(u.name, u.contents, u.enabled ? { enabled: true } : {}),
    ),
  ];
  if (host.pidsLimit) {
    units.push(
      unit(PIDS_LIMIT_UNIT, renderPidsLimitUnit(bin, host.pidsLimit.defaultPids), { enabled: true }),
    );
  }
  const registryUpkeep = host.registryUpkeep;
  if (registryUpkeep !== undefined) {
    files.push(
      script(REGISTRY_GC_SCRIPT, renderRegistryGcScript()),
      file(REGISTRY_GC_CONF_PATH, renderRegistryGcConf(registryUpkeep)),
    );
    units.push(
      ...renderRegistryGcUnits(bin, registryUpkeep).map((u) =>
        unit(u.name, u.contents, u.enabled ? { enabled: true } : {}),
      ),
    );
  }
  if (host.metrics) {
    // node_exporter's textfile collector reads what this writer leaves in TEXTFILE_DIR.
    const certs: CertSource[] = [
      ...(host.dockerTls ? [{ name: "dockerd", file: `${DOCKER_TLS_DIR}/server-cert.pem` }] : []),
      ...(host.metrics.registryTls ? [{ name: "registry", tls: host.metrics.registryTls }] : []),
    ];
    files.push(script(TEXTFILE_METRICS_SCRIPT, renderTextfileMetricsScript()));
    units.push(
      ...renderTextfileMetricsUnits({ binDir: bin, certs }).map((u) =>
        unit(u.name, u.contents, u.enabled ? { enabled: true } : {}),
      ),
    );
  }
  const restore = host.restore ?? [];
  if (restore.length > 0) {
    files.push(script(RESTORE_SCRIPT, renderRestoreScript()));
    for (const job of restore) {
      files.push(...renderRestoreFiles(job).map((f) => file(f.path, f.contents, { mode: f.mode })));
      units.push(
        ...renderRestoreUnits(bin, job).map((u) =>
          unit(u.name, u.contents, u.enabled ? { enabled: true } : {}),
        ),
      );
    }
  }
  return { files, units };
}

/**
 * Journal forwarding, only when configured: the journal-upload.conf drop-in, the TLS material (the
 * key root-only, 0600) and the stock unit enabled with Berth's drop-in. Nothing when off.
 */
function logForwarding(forward: HostLogForward | undefined): {
  files: ReturnType<typeof file>[];
  units: SystemdUnit[];
} {
  if (!forward) return { files: [], units: [] };
  return {
    files: [
      file(JOURNAL_UPLOAD_CONF_PATH, renderJournalUploadConf(forward)),
      file(JOURNAL_UPLOAD_SERVER_CA_PATH, withNewline(forward.serverCaPem)),
      file(JOURNAL_UPLOAD_CERT_PATH, withNewline(forward.clientCertPem)),
      file(JOURNAL_UPLOAD_KEY_PATH, withNewline(forward.clientKeyPem), { mode: 0o600 }),
    ],
    units: [
      {
        ...dropin(JOURNAL_UPLOAD_UNIT, JOURNAL_UPLOAD_DROPIN_NAME, renderJournalUploadDropin()),
        enabled: true,
      },
    ],
  };
}

/** The host's own config, before user fragments are merged in. */
function baseHostConfig(host: HostIgnitionInput): IgnitionConfig {
  const profile = osProfile(host.os);
  const label = host.dockerVolumeLabel ?? "docker";
  const volume = filesystemWithMount(
    cinderVirtioDevicePath(host.dockerVolumeId),
    label,
    DOCKER_VOLUME_FILESYSTEM[storageDriverOf(host)],
    DOCKER_DATA_ROOT,
  );

  const files = [
    file("/etc/hostname", `${host.name}\n`),
    file("/etc/hosts", etcHosts(host.registry)),
    file("/etc/docker/daemon.json", `${stableStringify(dockerDaemonJson(host), 2)}\n`),
    file(profile.sshdDropinPath, SSHD_DROPIN, { mode: 0o600 }),
  ];
  if (host.serviceDns) {
    files.push(file(RESOLVED_DROPIN_PATH, resolvedDropin(host.serviceDns)));
  }
  if (host.registry?.caCertPem) {
    const ca = withNewline(host.registry.caCertPem);
    files.push(file(`/etc/docker/certs.d/${host.registry.hostname}/ca.crt`, ca));
    if (host.registry.mirrorPort !== undefined) {
      files.push(
        file(`/etc/docker/certs.d/${host.registry.hostname}:${host.registry.mirrorPort}/ca.crt`, ca),
      );
    }
    files.push(file(profile.caAnchorPath, ca));
  }
  if (host.dockerTls) {
    files.push(
      file(`${DOCKER_TLS_DIR}/ca.pem`, withNewline(host.dockerTls.caCertPem)),
      file(`${DOCKER_TLS_DIR}/server-cert.pem`, withNewline(host.dockerTls.serverCertPem)),
      file(`${DOCKER_TLS_DIR}/server-key.pem`, withNewline(host.dockerTls.serverKeyPem), { mode: 0o600 }),
    );
  }

  const dockerService: SystemdUnit = {
    ...dropin("docker.service", DOCKER_DROPIN_NAME, dockerServiceDropin(host)),
    enabled: profile.enableDockerService ? true : undefined,
  };

  const day2 = dayTwo(host);
  files.push(...day2.files);
  const forwarding = logForwarding(host.logForward);
  files.push(...forwarding.files);

  return {
    ignition: { version: IGNITION_SPEC_VERSION },
    passwd: {
      users: [
        {
          name: "core",
          sshAuthorizedKeys: host.sshAuthorizedKeys.map((k) => k.trim()),
          groups: host.coreGroups && host.coreGroups.length > 0 ? [...host.coreGroups] : undefined,
        },
      ],
    },
    storage: {
      files,
      links: [symlink("/etc/localtime", `../usr/share/zoneinfo/${host.timezone}`)],
      filesystems: [volume.filesystem],
    },
    systemd: { units: [volume.mountUnit, dockerService, ...day2.units, ...forwarding.units] },
  };
}

/** Builds the host's Ignition config, with `extraFragments` merged in (conflicts throw). */
export function buildHostIgnition(host: HostIgnitionInput): IgnitionConfig {
  validate(host);
  return merge([
    { source: `berth host ${host.name}`, config: baseHostConfig(host) },
    ...(host.extraFragments ?? []),
  ]);
}

/**
 * Renders the host's Ignition config as deterministic compact JSON, ready for `userData`.
 * Throws when the result would exceed Nova's user-data limit.
 */
export function renderHostIgnition(host: HostIgnitionInput): string {
  const json = serializeIgnition(buildHostIgnition(host));
  assertUserDataSize(host.name, json);
  return json;
}
