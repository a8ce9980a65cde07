/**
 * The typed model of a Berth stack's configuration, as the program uses it: plain values, defaults
 * applied, everything derived (host names, addresses, labels). Produced by `config/load.ts` after
 * JSON Schema validation; nothing outside `config/` reads Pulumi configuration.
 *
 * One source of truth: each section is the schema-derived type of its `berth:*` key
 * ({@link BerthValidated}, config/schema-types.ts: the schema's keys, types and defaults) with
 * only what resolution changes or adds spelled out here. What a key means is in its schema
 * `description` and in docs/configuration.md.
 */

import type { IgnitionConfig } from "../ignition/model.ts";
import type { BerthValidated } from "./schema-types.ts";
import type { FlavorSize, ResolvedLimits } from "./limits.ts";
export type { DockerAccessMode } from "../renderers/docker-access.ts";
export type { HostOs } from "../renderers/host-os.ts";
export type { ServiceKind } from "./images.ts";
export type { BerthInput, BerthValidated } from "./schema-types.ts";

type V = BerthValidated;

/** Which long-lived environment a stack is, or a short-lived preview of a pull request. */
export type Environment = "testing" | "staging" | "production" | "preview";

/**
 * A secret value from stack configuration. `plain` when the value is known (decrypted by Pulumi at
 * run time, or given in clear in a test); `encrypted` when only the ciphertext of a `secure:` entry
 * is known (offline validation or planning without the stack's passphrase).
 */
export type SecretValue = { kind: "plain"; value: string } | { kind: "encrypted"; ciphertext: string };

/** `berth:openstack`. */
export type OpenStackConfig = Omit<V["openstack"], "floatingIpPool"> & {
  /** Pool floating IPs are allocated from; defaults to `externalNetwork`. */
  floatingIpPool: string;
};

/** `berth:hosts`. */
export type HostsConfig = Omit<V["hosts"], "flavorSize"> & {
  /** RAM and vCPUs of `flavor`: declared (`berth:hosts.flavorSize`) or from the known flavors (config/limits.ts). */
  flavorSize: FlavorSize;
  /** Derived: the hosts' names, `<stack>-ci-<n>`, n from 1. */
  names: string[];
  /** Derived: each host's fixed address on the CI network, same order as `names`. */
  addresses: string[];
};

// ---- Day 2: berth:hosts.updates / berth:hosts.upkeep ----
export type { HostUpkeepSettings } from "../renderers/upkeep.ts";
export type { RegistryUpkeepSettings } from "../renderers/registry-gc.ts";
export type { UpdateStrategy, UpdateWindow, Weekday } from "../renderers/updates.ts";
export type { StorageDriver } from "../renderers/storage.ts";

/**
 * `berth:hosts.updates`, as configured (windows are the first host's; see staggerMinutes). When
 * `windows` is absent, `defaultWindows(os)` (weekend nights); when `timeZone` is, the hosts' `timezone`.
 */
export type HostUpdatesConfig = V["hosts"]["updates"];
// ---- end of Day 2 ----

type ValidatedTls = V["registry"]["tls"];

export type RegistryTls =
  | Extract<ValidatedTls, { mode: "self-signed" }>
  | (Omit<Extract<ValidatedTls, { mode: "provided" }>, "privateKey"> & { privateKey: SecretValue });

export type RegistryUser = Omit<V["registry"]["users"][number], "password"> & {
  /** Given password; when absent the stack generates one (a Pulumi secret). */
  password?: SecretValue;
};

/** `berth:registry`. */
export type RegistryConfig = Omit<V["registry"], "tls" | "users"> & {
  tls: RegistryTls;
  users: RegistryUser[];
  /** Derived: the host that runs the registry (the first host). */
  host: string;
  /** Derived: that host's private address, pinned in every host's /etc/hosts. */
  address: string;
};

/** `berth:jenkins` (its replaced key `dockerSocket` is refused by validation). */
export type JenkinsConfig = Omit<V["jenkins"], "perBuild" | "dockerSocket"> & {
  /** Per-build agents through the Jenkins Docker plugin (one Docker cloud per listed host). */
  perBuild: PerBuildConfig;
};

/** How the Docker plugin pulls a template's image before starting a container. */
export type PullStrategy = V["jenkins"]["perBuild"]["pullStrategy"];

/** `berth:jenkins.perBuild`, resolved. */
export type PerBuildConfig = Omit<V["jenkins"]["perBuild"], "hosts" | "image" | "credentialsIdPrefix"> & {
  /** Hosts that offer per-build agents (default: every host), in the stack's host order. */
  hosts: string[];
  /**
   * Resolved agent image: `<registry hostname>/berth/jenkins-agent:<git revision>` when configured
   * as `"registry"` (built from images/jenkins-agent and pushed by its build-and-push.sh), else the
   * configured digest-pinned reference.
   */
  image: string;
  /** Whether `image` is the stack's own registry image (`"registry"`) or a pinned reference. */
  imageSource: "registry" | "pinned";
  /** Jenkins credential ID of the controller's dockerd client certificate: `<prefix>-dockerd-tls`. */
  dockerCredentialsId: string;
  /** Jenkins credential ID of the registry login used to pull the image: `<prefix>-registry`. */
  registryCredentialsId: string;
};

/**
 * A production-like service: production's name, a kind, a fixed address on `ci-services`, and
 * optionally where its fresh production data comes from (resolved: secrets and the masking file read).
 */
export type NamedService = Omit<V["services"]["productionLike"][number], "restore"> & {
  /** Fresh production data: where the dump comes from and when (renderers/restore.ts). */
  restore?: RestoreSettings;
};

// ---- Fresh production data: berth:services.productionLike[i].restore (config/validate-restore.ts) ----
// Defined with their renderer (renderers/restore.ts), like RegistryUpkeepSettings.
export type { RestoreSettings, RestoreSource } from "../renderers/restore.ts";
import type { RestoreSettings } from "../renderers/restore.ts";

/** `berth:services`. */
export type ServicesConfig = Omit<V["services"], "dnsAddress" | "upstreamDns" | "productionLike"> & {
  /** The production-like set, resolved ({@link NamedService}). */
  productionLike: NamedService[];
  /** Gateway of the subnet (derived: first address). */
  gateway: string;
  /** Address of the dnsmasq container (derived: second address unless given). */
  dnsAddress: string;
  /** Upstream resolvers of dnsmasq (default: the OpenStack DNS servers). */
  upstreamDns: string[];
};

/**
 * One application slot (`berth:services.slots`; checks: config/validate-slots.ts): the latest
 * build's container of an application, on every host. Containers `slot-<name>` (front) and
 * `slot-<name>-app` (the application); the port is published on each host's private address.
 */
export type AppSlot = NonNullable<V["services"]["slots"]>[number];

/** One `berth:extraIgnition` entry, with its fragment read. */
export type ExtraIgnition = V["extraIgnition"][number] & {
  /** The fragment, parsed (checked for its version; merged into every host's config). */
  config: IgnitionConfig;
};

// ---- Logs: berth:logs ----
/** `berth:logs.forward`: the systemd-journal-remote receiver every host uploads its journal to. */
export type LogForwardConfig = NonNullable<V["logs"]["forward"]>;

/** `berth:logs`: absent `forward` (the default) keeps logs on the hosts. */
export type LogsConfig = V["logs"];
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
  /** `berth:dns`: search domains, first preferred. */
  dns: V["dns"];
  /** `berth:monitoring`: sources allowed to scrape the metric endpoints (empty: no rule). */
  monitoring: V["monitoring"];
  extraIgnition: ExtraIgnition[];
  /** `berth:limits`: every container kind's memory and CPU limits, resolved (config/limits.ts). */
  limits: LimitsConfig;
  /** Journal forwarding (absent in configurations built before `berth:logs` existed: no forwarding). */
  logs?: LogsConfig;
}

// ---- Resource limits (config/limits.ts) ----
export type { ContainerLimit, FlavorSize, LimitKind } from "./limits.ts";

/** `berth:limits`, resolved: each kind's limits (defaults sized from the flavor) and each host's totals. */
export interface LimitsConfig extends ResolvedLimits, Pick<V["limits"], "reservedMemoryMiB" | "overcommit"> {}
// ---- end of resource limits ----
