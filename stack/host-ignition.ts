/**
 * The host-layer settings of a stack's hosts, from its configuration: the one place that decides
 * what goes into a host's Ignition (service-layer settings stay out, so changing them never
 * replaces a server). Pure; above both config/ and ignition/: used by the Pulumi components and by
 * the rendered checks of stack/validate.ts.
 */
import type { BerthConfig } from "../config/types.ts";
import { internalError } from "../config/errors.ts";
import type { HostIgnitionInput } from "../ignition/host.ts";
import { CONTAINER_LOG_MAX_FILE, CONTAINER_LOG_MAX_SIZE } from "../config/docker.ts";
import { DOCKER_BRIDGE_BIP } from "../config/addresses.ts";
import { REGISTRY_HTTPS_PORT } from "../config/ports.ts";
import { RESTORE_FORMATS, type RestoreJob } from "../renderers/restore.ts";
import { SERVICE_CATALOG } from "../config/images.ts";
import { defaultWindows, staggeredWindows, type HostUpdatePolicy } from "../renderers/updates.ts";

/**
 * The update policy of host `hostName`: the stack's windows shifted by its index × staggerMinutes
 * (validation has checked that they fit the week and do not overlap).
 */
export function hostUpdatePolicy(c: BerthConfig, hostName: string): HostUpdatePolicy {
  const u = c.hosts.updates;
  const index = Math.max(0, c.hosts.names.indexOf(hostName));
  return {
    strategy: u.strategy,
    windows:
      u.strategy === "periodic"
        ? staggeredWindows(u.windows ?? defaultWindows(c.hosts.os), index, u.staggerMinutes)
        : [],
    timeZone: u.timeZone ?? c.hosts.timezone,
    ...(u.fleetLockUrl !== undefined ? { fleetLockUrl: u.fleetLockUrl } : {}),
    maxBuildWaitHours: u.maxBuildWaitHours,
  };
}

/** The restore jobs of a stack's hosts (every host runs the whole production-like set). */
function restoreJobs(c: BerthConfig): { restore?: RestoreJob[] } {
  const jobs = c.services.productionLike.flatMap<RestoreJob>((s) => {
    const kind = RESTORE_FORMATS[s.restore?.format ?? "sql"];
    const dataDir = SERVICE_CATALOG[s.kind].dataDir;
    // Validation has checked that the format suits the kind, and only kinds with data take one.
    return s.restore && kind === s.kind && dataDir !== undefined
      ? [{ service: s.name, kind, dataDir, settings: s.restore }]
      : [];
  });
  return jobs.length > 0 ? { restore: jobs } : {};
}

/** The fixed private address of host `hostName`. */
function hostAddress(c: BerthConfig, hostName: string): string {
  const address = c.hosts.addresses[c.hosts.names.indexOf(hostName)];
  if (address === undefined) throw internalError(`${hostName} is not one of the stack's hosts`);
  return address;
}

/** The host-layer Ignition settings every host of a stack shares (service-layer settings stay out). */
export function hostIgnitionBase(
  c: BerthConfig,
  hostName: string,
): Omit<HostIgnitionInput, "dockerVolumeId" | "dockerTls" | "logForward"> {
  const provided = c.registry.tls.mode === "provided" ? c.registry.tls : undefined;
  return {
    name: hostName,
    os: c.hosts.os,
    sshAuthorizedKeys: c.hosts.sshKeys,
    // The Docker provider reaches dockerd as `ssh://core@host`. Fedora CoreOS ships a `docker` group
    // but core is not in it. Ignition applies groups with `usermod --groups` (a replacement), so the
    // list repeats core's stock groups (sudo rights come from wheel/sudo). Flatcar's core is in the
    // docker group already.
    ...(c.hosts.os === "fcos" ? { coreGroups: ["adm", "wheel", "sudo", "systemd-journal", "docker"] } : {}),
    timezone: c.hosts.timezone,
    storageDriver: c.hosts.storageDriver,
    docker: {
      // Containers set the same log options explicitly (daemon-applied defaults would show as diffs).
      logMaxSize: CONTAINER_LOG_MAX_SIZE,
      logMaxFile: CONTAINER_LOG_MAX_FILE,
      registryMirrors: c.registry.pullThroughCache
        ? [`https://${c.registry.hostname}:${c.registry.pullThroughCache.port}`]
        : [],
      bip: DOCKER_BRIDGE_BIP,
    },
    registry: {
      hostname: c.registry.hostname,
      address: c.registry.address,
      ...(provided?.caCertificate ? { caCertPem: provided.caCertificate } : {}),
      ...(c.registry.pullThroughCache ? { mirrorPort: c.registry.pullThroughCache.port } : {}),
    },
    serviceDns: { address: c.services.dnsAddress, searchDomains: [...c.dns.searchDomains] },
    // Day 2: OS updates that wait for builds, disk upkeep.
    updates: hostUpdatePolicy(c, hostName),
    upkeep: { ...c.hosts.upkeep },
    // Registry retention and garbage collection: only where the registry runs.
    ...(hostName === c.registry.host
      ? { registryUpkeep: { ...c.registry.upkeep, protectedTags: [...c.registry.upkeep.protectedTags] } }
      : {}),
    // Metrics: dockerd's endpoint on the private address, the textfile writer for node_exporter
    // (always on: turning them on later would change Ignition and replace the hosts; the security
    // group decides who reaches them, berth:monitoring.cidrs).
    metrics: {
      address: hostAddress(c, hostName),
      ...(hostName === c.registry.host
        ? {
            registryTls: {
              address: c.registry.address,
              port: REGISTRY_HTTPS_PORT,
              serverName: c.registry.hostname,
            },
          }
        : {}),
    },
    // Process-count limits: berth-pids-limit applies each container's label, else this default.
    pidsLimit: { defaultPids: c.limits.defaultPids },
    // Fresh production data: a restore timer per production-like service with a source.
    ...restoreJobs(c),
    // The stack's own Ignition fragments (berth:extraIgnition), merged with conflict detection.
    extraFragments: c.extraIgnition.map((f) => ({ source: f.path, config: f.config })),
  };
}
