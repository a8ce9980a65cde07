/**
 * JSON Schema of the `berth:*` keys of a stack's configuration. Each top-level property is one
 * Pulumi config key (`berth:hosts`, `berth:registry`, …). Defaults live here, so validation and
 * defaulting are one step (ajv `useDefaults`). Custom formats are registered in `validate.ts`.
 */
import { DEFAULT_IMAGES, SERVICE_KINDS } from "./images.ts";
import { HOST_OSES } from "../renderers/host-os.ts";
import {
  DEFAULT_AGENT_BASE_PORT,
  DEFAULT_DOCKER_TLS_PORT,
  DEFAULT_MIRROR_PORT,
  MAX_AGENTS_PER_HOST,
} from "./ports.ts";
import { DOCKER_ACCESS_MODES } from "../renderers/docker-access.ts";
import { UPDATE_DEFAULTS, WEEKDAYS } from "../renderers/updates.ts";
import { UPKEEP_DEFAULTS } from "../renderers/upkeep.ts";
import { REGISTRY_UPKEEP_DEFAULTS } from "../renderers/registry-gc.ts";
import {
  DOCKER_MIN_CPUS,
  DOCKER_MIN_MEMORY_MIB,
  LIMIT_DEFAULTS,
  LIMIT_KINDS,
  MAX_PIDS,
  MIN_PIDS,
  type LimitKind,
} from "./limits.ts";
import { DEFAULT_STORAGE_DRIVER, STORAGE_DRIVERS } from "../renderers/storage.ts";

const secret = {
  description: "A secret: `pulumi config set --secret --path ...` stores it as `secure: v1:...`",
  anyOf: [
    { type: "string", minLength: 1 },
    {
      type: "object",
      properties: { secure: { type: "string", minLength: 1 } },
      required: ["secure"],
      additionalProperties: false,
    },
  ],
} as const;

const cidr = { type: "string", format: "cidr4" } as const;
const ipv4 = { type: "string", format: "ipv4" } as const;
const sshKey = { type: "string", format: "ssh-public-key" } as const;
const dnsName = { type: "string", format: "hostname", minLength: 1 } as const;
const digestPinned = { type: "string", format: "image-digest" } as const;
/**
 * At most this many search domains: glibc before 2.26 reads only 6 from resolv.conf (MAXDNSRCH),
 * and Berth's containers run images with such resolvers.
 */
export const MAX_SEARCH_DOMAINS = 6;
/**
 * The search list, joined by spaces, is at most this long, so that resolv.conf's whole
 * `search <list>` line stays under 255 characters: musl (the holder image is Alpine) reads lines
 * into a 256-byte buffer and ignores a longer one, and glibc before 2.26 keeps 256 bytes of the list.
 */
export const MAX_SEARCH_LIST_CHARS = 247;
/** The service catalog's kinds (config/images.ts). */
const serviceKind = { enum: SERVICE_KINDS } as const;

// ---- Fresh production data: berth:services.productionLike[i].restore (config/validate-restore.ts) ----
const httpsUrl = { type: "string", minLength: 1, description: "an https:// URL" } as const;
const restoreSchema = {
  type: "object",
  description:
    "Fresh production data for this service: a dump fetched, verified, restored and masked on a schedule.",
  additionalProperties: false,
  required: ["source", "format", "schedule"],
  properties: {
    source: {
      type: "object",
      description: "one of url, swiftTempUrl or swift",
      additionalProperties: false,
      properties: {
        url: httpsUrl,
        swiftTempUrl: secret,
        swift: {
          type: "object",
          additionalProperties: false,
          required: ["authUrl", "storageUrl", "container", "object", "username", "projectName", "password"],
          properties: {
            authUrl: httpsUrl,
            storageUrl: httpsUrl,
            container: { type: "string", minLength: 1, pattern: "^[^/]+$" },
            object: { type: "string", minLength: 1 },
            username: { type: "string", minLength: 1 },
            userDomain: { type: "string", minLength: 1, default: "Default" },
            projectName: { type: "string", minLength: 1 },
            projectDomain: { type: "string", minLength: 1, default: "Default" },
            password: secret,
          },
        },
      },
    },
    format: { enum: ["redis-rdb", "mongodump-archive", "pg-custom", "sql"] },
    checksum: {
      type: "object",
      description: "one of url (an https URL of a sha256 file) or sha256",
      additionalProperties: false,
      properties: { url: httpsUrl, sha256: { type: "string", pattern: "^[0-9a-fA-F]{64}$" } },
    },
    schedule: { type: "string", minLength: 1, description: "a systemd OnCalendar expression" },
    timeoutMinutes: { type: "integer", minimum: 5, maximum: 1440, default: 60 },
    database: { type: "string", pattern: "^[a-z_][a-z0-9_]{0,47}$" },
    masking: { type: "string", minLength: 1, description: "a file in the project (.redis, .sql or .js)" },
  },
} as const;

// ---- Day 2: berth:hosts.updates and berth:hosts.upkeep (cross-field checks: validate-updates.ts) ----
const timeZone = { type: "string", pattern: "^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$" } as const;

const hostsUpdates = {
  type: "object",
  description: "When hosts may reboot into OS updates (Zincati on Fedora CoreOS, locksmithd on Flatcar).",
  additionalProperties: false,
  default: {},
  properties: {
    strategy: { enum: ["periodic", "fleet_lock", "immediate"], default: UPDATE_DEFAULTS.strategy },
    windows: {
      type: "array",
      minItems: 1,
      description:
        "weekly maintenance windows of the first host; host n starts n × staggerMinutes later (default: weekend nights, see defaultWindows)",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["days", "startTime", "lengthMinutes"],
        properties: {
          days: { type: "array", minItems: 1, uniqueItems: true, items: { enum: [...WEEKDAYS] } },
          startTime: { type: "string", pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$" },
          lengthMinutes: { type: "integer", minimum: 15, maximum: 1440 },
        },
      },
    },
    timeZone: { ...timeZone, description: "IANA time zone of the windows (default: hosts.timezone)" },
    staggerMinutes: { type: "integer", minimum: 0, maximum: 10080, default: UPDATE_DEFAULTS.staggerMinutes },
    fleetLockUrl: { type: "string", format: "uri", description: "lock server of the fleet_lock strategy" },
    maxBuildWaitHours: {
      type: "integer",
      minimum: 1,
      maximum: 168,
      default: UPDATE_DEFAULTS.maxBuildWaitHours,
      description: "continuous build hours after which the reboot goes ahead anyway",
    },
  },
} as const;

const hostsUpkeep = {
  type: "object",
  description: "Disk upkeep timers on every host.",
  additionalProperties: false,
  default: {},
  properties: {
    containerMaxAgeHours: {
      type: "integer",
      minimum: 1,
      maximum: 8760,
      default: UPKEEP_DEFAULTS.containerMaxAgeHours,
    },
    imageMaxAgeHours: {
      type: "integer",
      minimum: 1,
      maximum: 8760,
      default: UPKEEP_DEFAULTS.imageMaxAgeHours,
    },
    buildCacheMaxGiB: {
      type: "integer",
      minimum: 0,
      maximum: 16384,
      default: UPKEEP_DEFAULTS.buildCacheMaxGiB,
    },
    workspaceMaxAgeDays: {
      type: "integer",
      minimum: 1,
      maximum: 365,
      default: UPKEEP_DEFAULTS.workspaceMaxAgeDays,
    },
    freeSpaceWarnPercent: {
      type: "integer",
      minimum: 1,
      maximum: 90,
      default: UPKEEP_DEFAULTS.freeSpaceWarnPercent,
    },
    journalMaxUse: { type: "string", pattern: "^[1-9][0-9]*[KMG]$", default: UPKEEP_DEFAULTS.journalMaxUse },
    balanceDataUsage: {
      type: "integer",
      minimum: 1,
      maximum: 100,
      default: UPKEEP_DEFAULTS.balanceDataUsage,
    },
    balanceMetadataUsage: {
      type: "integer",
      minimum: 1,
      maximum: 100,
      default: UPKEEP_DEFAULTS.balanceMetadataUsage,
    },
  },
} as const;
// ---- end of Day 2 ----

// ---- Registry upkeep: berth:registry.upkeep (cross-field checks: validate-registry-upkeep.ts) ----
const registryUpkeep = {
  type: "object",
  description: "Tag retention and a weekly garbage collection of the registry, on the registry host.",
  additionalProperties: false,
  default: {},
  properties: {
    keepTags: {
      type: "integer",
      minimum: 1,
      maximum: 100000,
      default: REGISTRY_UPKEEP_DEFAULTS.keepTags,
      description: "tags kept per repository, the most recently pushed first",
    },
    protectedTags: {
      type: "array",
      items: { type: "string" },
      default: REGISTRY_UPKEEP_DEFAULTS.protectedTags,
      description: "POSIX extended regular expressions: matching tags are always kept",
    },
    gcSchedule: {
      type: "string",
      default: REGISTRY_UPKEEP_DEFAULTS.gcSchedule,
      description: "weekly systemd calendar time the garbage collection window starts (host's time zone)",
    },
    gcWindowMinutes: {
      type: "integer",
      minimum: 5,
      maximum: 1440,
      default: REGISTRY_UPKEEP_DEFAULTS.gcWindowMinutes,
      description: "how long writes are refused at most",
    },
  },
} as const;

// ---- Resource limits: berth:hosts.flavorSize and berth:limits (cross-field checks: config/limits.ts) ----
const flavorSize = {
  type: "object",
  description:
    "RAM and vCPUs of berth:hosts.flavor (`openstack flavor show <flavor>`); needed unless the flavor is one of Nova's m1.* flavors",
  additionalProperties: false,
  required: ["memoryMiB", "vcpus"],
  properties: {
    memoryMiB: { type: "integer", minimum: 512, maximum: 16777216 },
    vcpus: { type: "integer", minimum: 1, maximum: 1024 },
  },
} as const;

const containerLimit = {
  type: "object",
  additionalProperties: false,
  properties: {
    memoryMiB: {
      type: "integer",
      minimum: DOCKER_MIN_MEMORY_MIB,
      description: "memory limit in MiB (also the memory+swap limit); Docker's minimum is 6",
    },
    cpus: { type: "number", minimum: DOCKER_MIN_CPUS, description: "CPU limit in CPUs, e.g. 1.5" },
    pids: {
      type: "integer",
      minimum: MIN_PIDS,
      maximum: MAX_PIDS,
      description: "process-count limit (processes and threads), applied by the host's berth-pids-limit",
    },
  },
} as const;

const limits = {
  type: "object",
  description:
    "Memory, CPU and process-count limits of every container (default: sized from the host flavor).",
  additionalProperties: false,
  default: {},
  properties: {
    reservedMemoryMiB: {
      type: "integer",
      minimum: 0,
      default: LIMIT_DEFAULTS.reservedMemoryMiB,
      description: "memory of each host kept out of the containers' limits (OS, dockerd, sshd)",
    },
    overcommit: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        memory: { type: "number", minimum: 0.1, maximum: 4, default: LIMIT_DEFAULTS.overcommit.memory },
        cpu: { type: "number", minimum: 0.1, maximum: 16, default: LIMIT_DEFAULTS.overcommit.cpu },
      },
    },
    defaultPids: {
      type: "integer",
      minimum: MIN_PIDS,
      maximum: MAX_PIDS,
      default: LIMIT_DEFAULTS.defaultPids,
      description:
        "process-count limit of containers Berth did not create (those a job starts itself); in every host's Ignition",
    },
    containers: {
      type: "object",
      additionalProperties: false,
      default: {},
      // One key per limit kind; typed as such so that the derived types (config/schema-types.ts) name them.
      properties: Object.fromEntries(LIMIT_KINDS.map((k) => [k, containerLimit])) as Record<
        LimitKind,
        typeof containerLimit
      >,
    },
  },
} as const;
// ---- end of resource limits ----
// ---- Logs: berth:logs (URL and CA checks: validate-logs.ts) ----
const logs = {
  type: "object",
  description: "Where the hosts' journal goes besides the host itself.",
  additionalProperties: false,
  default: {},
  properties: {
    forward: {
      type: "object",
      description:
        "forward every host's journal with systemd-journal-upload to a systemd-journal-remote receiver over TLS",
      additionalProperties: false,
      required: ["url", "serverCa"],
      properties: {
        url: {
          type: "string",
          minLength: 1,
          description: "the receiver, https://host[:port] (port default 19532)",
        },
        serverCa: {
          type: "string",
          minLength: 1,
          description: "PEM CA certificate that signed the receiver's certificate",
        },
      },
    },
  },
} as const;
// ---- end of Logs ----

export const berthSchema = {
  $id: "https://berth.dev/schemas/stack-config.json",
  type: "object",
  additionalProperties: false,
  required: ["openstack", "hosts", "registry", "jenkins", "dns"],
  properties: {
    openstack: {
      type: "object",
      description: "Where the stack runs on OpenStack.",
      additionalProperties: false,
      required: ["image", "externalNetwork", "adminCidrs"],
      properties: {
        image: { type: "string", minLength: 1, description: "Glance image of Fedora CoreOS or Flatcar" },
        externalNetwork: { type: "string", minLength: 1 },
        floatingIpPool: { type: "string", minLength: 1 },
        availabilityZone: { type: "string", minLength: 1 },
        dnsServers: { type: "array", items: ipv4, minItems: 1, default: ["1.1.1.1", "9.9.9.9"] },
        networkCidr: { ...cidr, default: "10.42.0.0/24" },
        adminCidrs: { type: "array", items: cidr, minItems: 1 },
        registryClientCidrs: { type: "array", items: cidr, default: [] },
        allowWorld: { type: "boolean", default: false },
      },
    },
    hosts: {
      type: "object",
      description: "The CI hosts (Nova servers).",
      additionalProperties: false,
      required: ["count", "flavor", "sshKeys"],
      properties: {
        count: { type: "integer", minimum: 1, maximum: 200 },
        flavor: { type: "string", minLength: 1 },
        os: { enum: [...HOST_OSES], default: "fcos" },
        dockerVolumeSize: { type: "integer", minimum: 10, maximum: 16384, default: 100 },
        dockerVolumeType: { type: "string", minLength: 1 },
        sshKeys: { type: "array", items: sshKey, minItems: 1 },
        timezone: { type: "string", pattern: "^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", default: "UTC" },
        protectData: { type: "boolean", default: false },
        dockerTls: { type: "boolean", default: true },
        dockerTlsPort: { type: "integer", minimum: 1, maximum: 65535, default: DEFAULT_DOCKER_TLS_PORT },
        updates: hostsUpdates,
        upkeep: hostsUpkeep,
        flavorSize,
        // Storage driver (renderers/storage.ts): btrfs on btrfs, or overlay2 on ext4. In Ignition:
        // changing it replaces the servers and their Docker volumes.
        storageDriver: {
          enum: [...STORAGE_DRIVERS],
          default: DEFAULT_STORAGE_DRIVER,
          description:
            "Docker storage driver: btrfs (on a btrfs volume) or overlay2 (on an ext4 volume); changing it replaces every host and its Docker volume",
        },
      },
    },
    registry: {
      type: "object",
      description: "The private registry (distribution behind nginx with TLS and basic auth).",
      additionalProperties: false,
      required: ["hostname"],
      properties: {
        hostname: dnsName,
        tls: {
          type: "object",
          discriminator: { propertyName: "mode" },
          required: ["mode"],
          properties: { mode: { enum: ["self-signed", "provided"] } },
          oneOf: [
            {
              properties: {
                mode: { const: "self-signed" },
                validityDays: { type: "integer", minimum: 1, maximum: 3650, default: 365 },
              },
              additionalProperties: false,
            },
            {
              properties: {
                mode: { const: "provided" },
                certificate: {
                  type: "string",
                  pattern: "-----BEGIN CERTIFICATE-----",
                  description: "PEM certificate for the registry hostname (chain after it)",
                },
                privateKey: secret,
                caCertificate: {
                  type: "string",
                  pattern: "-----BEGIN CERTIFICATE-----",
                  description: "PEM CA hosts must trust, when not a public CA",
                },
              },
              required: ["certificate", "privateKey"],
              additionalProperties: false,
            },
          ],
          default: { mode: "self-signed" },
        },
        users: {
          type: "array",
          minItems: 1,
          default: [{ name: "jenkins" }],
          items: {
            type: "object",
            additionalProperties: false,
            required: ["name"],
            properties: {
              name: { type: "string", pattern: "^[a-z][a-z0-9._-]{0,63}$" },
              password: secret,
            },
          },
        },
        pullThroughCache: {
          type: "object",
          additionalProperties: false,
          properties: {
            remoteUrl: { type: "string", format: "uri", default: "https://registry-1.docker.io" },
            port: { type: "integer", minimum: 1024, maximum: 65535, default: DEFAULT_MIRROR_PORT },
          },
        },
        image: { ...digestPinned, default: DEFAULT_IMAGES.registry },
        nginxImage: { ...digestPinned, default: DEFAULT_IMAGES.nginx },
        upkeep: registryUpkeep,
      },
    },
    jenkins: {
      type: "object",
      description: "Jenkins SSH agents on every host.",
      additionalProperties: false,
      required: ["controllerCidr", "agentPublicKey"],
      properties: {
        controllerCidr: cidr,
        agentPublicKey: sshKey,
        agentsPerHost: { type: "integer", minimum: 0, maximum: MAX_AGENTS_PER_HOST, default: 2 },
        image: { ...digestPinned, default: DEFAULT_IMAGES.jenkinsAgent },
        basePort: { type: "integer", minimum: 1024, maximum: 65000, default: DEFAULT_AGENT_BASE_PORT },
        // Replaced by dockerAccess.static; kept in the schema so that load.ts can say so (one clear issue).
        dockerSocket: { type: "boolean" },
        dockerAccess: {
          type: "object",
          description:
            "How a job reaches Docker, per agent kind: none, the host's socket, or the host's dockerd over mutual TLS with per-host build credentials. Any access is root on that host.",
          additionalProperties: false,
          default: {},
          properties: {
            static: { enum: [...DOCKER_ACCESS_MODES], default: "none" },
            perBuild: { enum: [...DOCKER_ACCESS_MODES], default: "none" },
          },
        },
        labels: {
          type: "array",
          items: { type: "string", pattern: "^[A-Za-z0-9_.-]+$" },
          default: ["docker"],
        },
        perBuild: {
          type: "object",
          description:
            "Per-build agents: every listed host is a Jenkins Docker cloud reached over mutual TLS.",
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: "boolean", default: false },
            hosts: {
              type: "array",
              description: "names of the hosts that offer per-build agents (default: all)",
              items: { type: "string", minLength: 1 },
              minItems: 1,
              uniqueItems: true,
            },
            instanceCap: { type: "integer", minimum: 1, maximum: 256, default: 4 },
            labels: {
              type: "array",
              items: { type: "string", pattern: "^[A-Za-z0-9_.-]+$" },
              minItems: 1,
              default: ["docker-build"],
            },
            // "registry" or a digest-pinned reference; checked in load.ts, which also resolves it.
            image: { type: "string", minLength: 1, default: "registry" },
            pullStrategy: { enum: ["PULL_ALWAYS", "PULL_NEVER", "PULL_LATEST"], default: "PULL_LATEST" },
            credentialsIdPrefix: {
              type: "string",
              description: "prefix of the Jenkins credential IDs (default: the stack name)",
              pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
            },
          },
        },
      },
    },
    services: {
      type: "object",
      description: "Backend services for test suites.",
      additionalProperties: false,
      default: {},
      properties: {
        subnet: { ...cidr, default: "172.30.0.0/24" },
        dnsAddress: ipv4,
        upstreamDns: { type: "array", items: ipv4, minItems: 1 },
        minimal: { type: "array", items: serviceKind, uniqueItems: true, default: ["redis", "mongodb"] },
        productionLike: {
          type: "array",
          default: [],
          items: {
            type: "object",
            additionalProperties: false,
            required: ["name", "kind", "address"],
            properties: {
              name: { type: "string", pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" },
              kind: serviceKind,
              address: ipv4,
              restore: restoreSchema,
            },
          },
        },
        networkHolders: {
          type: "array",
          items: { type: "string", pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" },
          uniqueItems: true,
          default: [],
        },
        // Application slots (seed 004, build step 5); cross-field checks in validate-slots.ts.
        slots: {
          type: "array",
          description:
            "application slots: the latest build's container, on ci-services, its port open to slotCidrs",
          default: [],
          items: {
            type: "object",
            additionalProperties: false,
            required: ["name", "port", "health"],
            properties: {
              name: { type: "string", minLength: 1 },
              port: { type: "integer", minimum: 1024, maximum: 65535 },
              health: {
                type: "object",
                description: "{http: /path} or {command: [argv...]}, and timeoutSeconds",
                additionalProperties: false,
                properties: {
                  http: { type: "string", minLength: 1 },
                  command: { type: "array", minItems: 1, items: { type: "string", minLength: 1 } },
                  timeoutSeconds: { type: "integer", minimum: 5, maximum: 1800, default: 120 },
                },
              },
              memoryMiB: { type: "integer", minimum: DOCKER_MIN_MEMORY_MIB, default: 512 },
              cpus: { type: "number", minimum: DOCKER_MIN_CPUS, default: 1 },
            },
          },
        },
        slotCidrs: {
          type: "array",
          items: cidr,
          default: [],
          description: "developers' sources the security group opens the slots' ports to (none: no rule)",
        },
      },
    },
    dns: {
      type: "object",
      additionalProperties: false,
      required: ["searchDomains"],
      properties: {
        searchDomains: {
          type: "array",
          description: "search domains, first preferred",
          minItems: 1,
          maxItems: MAX_SEARCH_DOMAINS,
          uniqueItems: true,
          items: dnsName,
        },
      },
    },
    limits,
    logs,
    monitoring: {
      type: "object",
      description: "Who may scrape the hosts' metric endpoints (node_exporter, dockerd, registry).",
      additionalProperties: false,
      default: {},
      properties: {
        cidrs: {
          type: "array",
          items: cidr,
          default: [],
          description: "sources the security group opens the metric ports to (none: no rule)",
        },
        nodeExporterImage: { ...digestPinned, default: DEFAULT_IMAGES.nodeExporter },
      },
    },
    previewTtlHours: {
      type: "integer",
      minimum: 1,
      maximum: 720,
      default: 72,
      description: "hours a pr-<N> preview stack may live",
    },
    extraIgnition: {
      type: "array",
      default: [],
      items: {
        type: "object",
        additionalProperties: false,
        required: ["path"],
        properties: {
          path: { type: "string", pattern: "\\.json$" },
          secret: {
            type: "boolean",
            default: false,
            description: "the fragment carries a secret: hosts' user data becomes a Pulumi secret",
          },
        },
      },
    },
  },
} as const;

/** What each format means, for error messages. */
export const FORMAT_HINTS: Record<string, string> = {
  cidr4: "an IPv4 CIDR with no host bits set, such as 203.0.113.0/24",
  ipv4: "an IPv4 address such as 10.42.0.5",
  "ssh-public-key": 'an OpenSSH public key line, such as "ssh-ed25519 AAAAC3Nza... user@host"',
  hostname: "a DNS name such as registry.ci.example.com",
  uri: "an absolute URL such as https://registry-1.docker.io",
  "image-digest": "an image reference pinned by digest, such as registry:2.8.3@sha256:<64 hex digits>",
};
