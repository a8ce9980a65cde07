/**
 * Default images, each pinned by digest (a tag alone can move under a running CI fleet).
 *
 * These digests were taken from public, digest-pinned references to the same tags; the machine
 * Berth is developed on cannot reach Docker Hub, so they were not re-resolved here. Refresh them
 * with `docker buildx imagetools inspect <image:tag>` (or Renovate) and override any of them per
 * stack (`registry.image`, `jenkins.image`, …).
 */
export const DEFAULT_IMAGES = {
  registry: "registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373",
  nginx: "nginx:1.27-alpine@sha256:65645c7bb6a0661892a8b03b89d0743208a18dd2f3f17a54ef4b76fb8e2f2a10",
  jenkinsAgent:
    "jenkins/ssh-agent:6.10.0@sha256:a601066474866d662a7a337cbf877a5a1920a5c637d50e358f6d8f975555b99a",
  dnsmasq: "4km3/dnsmasq:2.90-r3@sha256:038fa882bdae13d4a93155df2d865ed744a02f34f09631e140a3b91c5b16c54c",
  // Network holders run socat (forwarding) under the image's busybox /bin/sh; the digest is the one
  // public Dockerfiles and scripts pin alpine/socat:1.8.0.0 to (not re-resolved here).
  holder: "alpine/socat:1.8.0.0@sha256:a6be4c0262b339c53ddad723cdd178a1a13271e1137c65e27f90a08c16de02b8",
  // node_exporter on every host (components/monitoring.ts); the digest is the one public compose
  // files and image lists pin prom/node-exporter:v1.8.2 to (not re-resolved here).
  nodeExporter:
    "prom/node-exporter:v1.8.2@sha256:4032c6d5bfd752342c3e631c2f1de93ba6b86c41db6b167b9a35372c139e7706",
} as const;

/** Backend services Berth knows how to run: image, the port it listens on, and its health check. */
export const SERVICE_CATALOG = {
  redis: {
    image: "redis:7.4-alpine@sha256:ff02b58f971e7d7d156a1267e283fcbbeee91773b6aa36c49dac28ecfe28eadf",
    port: 6379,
    dataDir: "/data",
    healthcheck: ["CMD", "redis-cli", "ping"],
  },
  mongodb: {
    image: "mongo:7.0@sha256:340c1c56fb10e95cf79ff547f8664b96bc6ead9909bc355238cbf865a9695a6f",
    port: 27017,
    dataDir: "/data/db",
    healthcheck: ["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"],
  },
  postgres: {
    image: "postgres:17-alpine@sha256:b0f9560a2de083e2cc7382e75f808c7381a32852a7ec49117deedb300e552b24",
    port: 5432,
    dataDir: "/var/lib/postgresql/data",
    healthcheck: ["CMD", "pg_isready", "-U", "postgres"],
  },
  memcached: {
    image: "memcached:1.6-alpine@sha256:9e4de012dc607573052061c0bcb38abc775e1dd59b24e7ac38d1892842094aaf",
    port: 11211,
    dataDir: undefined,
    healthcheck: ["CMD-SHELL", "echo stats | nc -w 1 127.0.0.1 11211 | grep -q uptime"],
  },
  rabbitmq: {
    image:
      "rabbitmq:3.13-management-alpine@sha256:606d8c0d6b3c18d1da9afc53bc7cdb2a8d5486df91b5a9830e9e07626c9ae281",
    port: 5672,
    dataDir: "/var/lib/rabbitmq",
    healthcheck: ["CMD", "rabbitmq-diagnostics", "-q", "ping"],
  },
} as const;

/** A backend service kind: one of the catalog's keys. */
export type ServiceKind = keyof typeof SERVICE_CATALOG;
/** The service kinds, in the catalog's order: the one list the schema, validation and limits use. */
export const SERVICE_KINDS = Object.keys(SERVICE_CATALOG) as ServiceKind[];
/** Whether a raw value is one of the catalog's service kinds. */
export function isServiceKind(v: unknown): v is ServiceKind {
  return typeof v === "string" && Object.hasOwn(SERVICE_CATALOG, v);
}

export const IMAGE_DIGEST_PATTERN =
  /^[a-z0-9]+([._\-/:][a-z0-9]+)*(:[A-Za-z0-9_.-]{1,128})?@sha256:[a-f0-9]{64}$/;
