/**
 * The typed model of a Berth stack's configuration, as the program uses it: plain values, defaults
 * applied, everything derived (host names, addresses, labels). Produced by `config/load.ts` after
 * JSON Schema validation; nothing outside `config/` reads Pulumi configuration.
 */

import type { IgnitionConfig } from "../ignition/model.ts";
import type { HostUpkeepSettings } from "../renderers/upkeep.ts";
import type { RegistryUpkeepSettings } from "../renderers/registry-gc.ts";
import type { UpdateStrategy, UpdateWindow } from "../renderers/updates.ts";
import type { FlavorSize, ResolvedLimits } from "./limits.ts";
import type { DockerAccessMode } from "../renderers/docker-access.ts";
export type { DockerAccessMode } from "../renderers/docker-access.ts";
import type { StorageDriver } from "../renderers/storage.ts";

/** Operating system of the CI hosts. */
export type HostOs = "fcos" | "flatcar";

/** Which long-lived environment a stack is, or a short-lived preview of a pull request. */
export type Environment = "testing" | "staging" | "production" | "preview";

/**
 * A secret value from stack configuration. `plain` when the value is known (decrypted by Pulumi at
 * run time, or given in clear in a test); `encrypted` when only the ciphertext of a `secure:` entry
 * is known (offline validation or planning without the stack's passphrase).
 */
export type SecretValue = { kind: "plain"; value: string } | { kind: "encrypted"; ciphertext: string };

export interface OpenStackConfig {
  /** Glance image name of the host OS (a Fedora CoreOS or Flatcar OpenStack image). */
  image: string;
  /** Name of the external (provider) network the router uses as gateway. */
  externalNetwork: string;
  /** Pool floating IPs are allocated from; defaults to `externalNetwork`. */
  floatingIpPool: string;
  /** Nova/Cinder availability zone, when the cloud has several. */
  availabilityZone?: string;
  /** DNS servers handed out on the CI subnet. */
  dnsServers: string[];
  /** CIDR of the private CI network. */
  networkCidr: string;
  /** CIDRs allowed to SSH to the hosts (operators, bastions). */
  adminCidrs: string[];
  /** Extra CIDRs allowed to reach the registry over HTTPS, besides the CI network itself. */
  registryClientCidrs: string[];
  /** Explicit opt-in to rule sets open to the world (more public space than a /16: config/net.ts); off in every shipped stack. */
  allowWorld: boolean;
}

export interface HostsConfig {
  /** Number of CI hosts. */
  count: number;
  /** Nova flavor of each host. */
  flavor: string;
  os: HostOs;
  /** Size in GiB of the Cinder volume mounted at /var/lib/docker (btrfs, or ext4 for overlay2). */
  dockerVolumeSize: number;
  /** Cinder volume type, when the cloud offers several. */
  dockerVolumeType?: string;
  /** SSH public keys installed for user `core`. */
  sshKeys: string[];
  /** IANA time zone of the hosts. */
  timezone: string;
  /** Protect data volumes from deletion and retain them when the stack is destroyed. */
  protectData: boolean;
  /** dockerd also listens on TCP with mutual TLS, for per-build agents (Jenkins Docker cloud). */
  dockerTls: boolean;
  /** Port of dockerd's mutual-TLS endpoint. */
  dockerTlsPort: number;
  /** When hosts may reboot into OS updates. */
  updates: HostUpdatesConfig;
  /** Ages and thresholds of the disk upkeep timers. */
  upkeep: HostUpkeepSettings;
  /** RAM and vCPUs of `flavor`: declared (`berth:hosts.flavorSize`) or from the known flavors (config/limits.ts). */
  flavorSize: FlavorSize;
  /** Docker's storage driver: `btrfs` (default, btrfs volume) or `overlay2` (ext4 volume). */
  storageDriver: StorageDriver;
  /** Derived: the hosts' names, `<stack>-ci-<n>`, n from 1. */
  names: string[];
  /** Derived: each host's fixed address on the CI network, same order as `names`. */
  addresses: string[];
}

// ---- Day 2: berth:hosts.updates / berth:hosts.upkeep ----
export type { HostUpkeepSettings } from "../renderers/upkeep.ts";
export type { RegistryUpkeepSettings } from "../renderers/registry-gc.ts";
export type { UpdateStrategy, UpdateWindow, Weekday } from "../renderers/updates.ts";
export type { StorageDriver } from "../renderers/storage.ts";

/** `berth:hosts.updates`, as configured (windows are the first host's; see staggerMinutes). */
export interface HostUpdatesConfig {
  /** `periodic` (default), `fleet_lock` (needs fleetLockUrl) or `immediate`. */
  strategy: UpdateStrategy;
  /** Weekly windows of the first host; when absent, `defaultWindows(os)` (weekend nights). */
  windows?: UpdateWindow[];
  /** IANA time zone of the windows; when absent, the hosts' `timezone`. */
  timeZone?: string;
  /** Host n (from 0) gets the windows n × staggerMinutes later. */
  staggerMinutes: number;
  /** Lock server base URL for `fleet_lock`. */
  fleetLockUrl?: string;
  /** Continuous build hours after which the shutdown inhibitor lets go. */
  maxBuildWaitHours: number;
}
// ---- end of Day 2 ----

export type RegistryTls =
  | { mode: "self-signed"; validityDays: number }
  | { mode: "provided"; certificate: string; privateKey: SecretValue; caCertificate?: string };

export interface RegistryUser {
  name: string;
  /** Given password; when absent the stack generates one (a Pulumi secret). */
  password?: SecretValue;
}

export interface RegistryConfig {
  /** DNS name clients use for the registry; the certificate is issued for it. */
  hostname: string;
  tls: RegistryTls;
  users: RegistryUser[];
  /** Optional pull-through cache of a public registry, served read-only on its own port. */
  pullThroughCache?: { remoteUrl: string; port: number };
  /** Registry image, pinned by digest. */
  image: string;
  /** nginx image, pinned by digest. */
  nginxImage: string;
  /** Tag retention and the garbage collection window (renderers/registry-gc.ts). */
  upkeep: RegistryUpkeepSettings;
  /** Derived: the host that runs the registry (the first host). */
  host: string;
  /** Derived: that host's private address, pinned in every host's /etc/hosts. */
  address: string;
}

export interface JenkinsConfig {
  /** CIDR of the Jenkins controller: the only source allowed to reach agent ports and dockerd TLS. */
  controllerCidr: string;
  /** Public key the controller uses to log in to agents as user `jenkins`. */
  agentPublicKey: string;
  /** SSH agent containers per host. */
  agentsPerHost: number;
  /** Agent image, pinned by digest. */
  image: string;
  /** Agent n (from 1) listens on host port basePort + n. */
  basePort: number;
  /**
   * How jobs reach Docker, per agent kind: `none`, the host's socket, or the host's dockerd over
   * mutual TLS with that host's build credentials (renderers/docker-access.ts). Root on the host: opt-in.
   */
  dockerAccess: { static: DockerAccessMode; perBuild: DockerAccessMode };
  /** Labels the agents carry in Jenkins. */
  labels: string[];
  /** Per-build agents through the Jenkins Docker plugin (one Docker cloud per listed host). */
  perBuild: PerBuildConfig;
}

/** How the Docker plugin pulls a template's image before starting a container. */
export type PullStrategy = "PULL_ALWAYS" | "PULL_NEVER" | "PULL_LATEST";

export interface PerBuildConfig {
  /** Emit Docker clouds for the Jenkins controller; needs `hosts.dockerTls`. */
  enabled: boolean;
  /** Hosts that offer per-build agents (default: every host), in the stack's host order. */
  hosts: string[];
  /** Containers per host at most (the cloud's `containerCap` and the template's `instanceCapStr`). */
  instanceCap: number;
  /** Labels jobs use to ask for a per-build agent. */
  labels: string[];
  /**
   * Resolved agent image: `<registry hostname>/berth/jenkins-agent:<git revision>` when configured
   * as `"registry"` (built from images/jenkins-agent and pushed by its build-and-push.sh), else the
   * configured digest-pinned reference.
   */
  image: string;
  /** Whether `image` is the stack's own registry image (`"registry"`) or a pinned reference. */
  imageSource: "registry" | "pinned";
  pullStrategy: PullStrategy;
  /** Jenkins credential ID of the controller's dockerd client certificate: `<prefix>-dockerd-tls`. */
  dockerCredentialsId: string;
  /** Jenkins credential ID of the registry login used to pull the image: `<prefix>-registry`. */
  registryCredentialsId: string;
}

export type ServiceKind = "redis" | "mongodb" | "postgres" | "memcached" | "rabbitmq";

export interface NamedService {
  /** Same name as in production, e.g. `mongodb-cluster-a-node-1`. */
  name: string;
  kind: ServiceKind;
  /** Fixed address on the `ci-services` network. */
  address: string;
}

export interface ServicesConfig {
  /** Subnet of the `ci-services` bridge network on every host. */
  subnet: string;
  /** Gateway of that subnet (derived: first address). */
  gateway: string;
  /** Address of the dnsmasq container (derived: second address unless given). */
  dnsAddress: string;
  /** Upstream resolvers of dnsmasq (default: the OpenStack DNS servers). */
  upstreamDns: string[];
  /** One of each, published on the host's default ports for unit tests. */
  minimal: ServiceKind[];
  /** The production-like set, with production's names and their own addresses. */
  productionLike: NamedService[];
  /** Names of "network holder" containers: app and test containers share their network namespace. */
  networkHolders: string[];
  /** Application slots (`berth:services.slots`; checks: config/validate-slots.ts). */
  slots?: AppSlot[];
  /** Developers' sources of the slots' ports (`berth:services.slotCidrs`); empty or absent: no rule. */
  slotCidrs?: string[];
}

/** One application slot: the latest build's container of an application, on every host. */
export interface AppSlot {
  /** DNS-safe name: containers `slot-<name>` (front) and `slot-<name>-app` (the application). */
  name: string;
  /** The port the application listens on, published on each host's private address. */
  port: number;
  /** Exactly one of `http` (a path, GET from the front) and `command` (run in the application's container). */
  health: { http?: string; command?: string[]; timeoutSeconds: number };
  memoryMiB: number;
  cpus: number;
}

export interface ExtraIgnition {
  /** Path of an Ignition 3.3.0 JSON fragment, relative to the project root. */
  path: string;
  /**
   * The fragment carries a secret (a key, a token): every host's user data is then a Pulumi secret
   * (masked in plan.json), and `berth render` writes the `.ign` files 0600 and lists them in
   * `SECRET-FILES`.
   */
  secret: boolean;
  /** The fragment, parsed (checked for its version; merged into every host's config). */
  config: IgnitionConfig;
}

// ---- Logs: berth:logs ----
/** `berth:logs.forward`: the systemd-journal-remote receiver every host uploads its journal to. */
export interface LogForwardConfig {
  /** `https://host[:port]` of the receiver. */
  url: string;
  /** PEM CA certificate that signed the receiver's certificate. */
  serverCa: string;
}

/** `berth:logs`. */
export interface LogsConfig {
  /** Absent (the default): logs stay on the hosts, and nothing about forwarding is rendered. */
  forward?: LogForwardConfig;
}
// ---- end of Logs ----

export interface BerthConfig {
  /** Pulumi stack name. */
  stack: string;
  environment: Environment;
  /** Set for `pr-<N>` stacks. */
  preview?: { pr: number; ttlHours: number };
  /** Labels/tags put on every cloud resource that takes them. */
  labels: Record<string, string>;
  openstack: OpenStackConfig;
  hosts: HostsConfig;
  registry: RegistryConfig;
  jenkins: JenkinsConfig;
  services: ServicesConfig;
  dns: {
    /**
     * Search domains, first preferred (e.g. one per production region): dnsmasq answers every
     * production-like name under each, and hosts and containers carry them in their search path.
     */
    searchDomains: string[];
  };
  /** `berth:monitoring`: sources allowed to scrape the metric endpoints (empty: no rule). */
  monitoring: { cidrs: string[]; nodeExporterImage: string };
  extraIgnition: ExtraIgnition[];
  /** `berth:limits`: every container kind's memory and CPU limits, resolved (config/limits.ts). */
  limits: LimitsConfig;
  /** Journal forwarding (absent in configurations built before `berth:logs` existed: no forwarding). */
  logs?: LogsConfig;
}

// ---- Resource limits (config/limits.ts) ----
export type { ContainerLimit, FlavorSize, LimitKind } from "./limits.ts";

/** `berth:limits`, resolved: each kind's limits (defaults sized from the flavor) and each host's totals. */
export interface LimitsConfig extends ResolvedLimits {
  /** Memory of each host kept out of the containers' limits. */
  reservedMemoryMiB: number;
  /** Factors the per-host sums of limits may reach, of allocatable memory and of vCPUs. */
  overcommit: { memory: number; cpu: number };
}
// ---- end of resource limits ----
