/**
 * Every TCP port a CI host binds, in one pure module: the components listen on and publish these,
 * and validation (`config/validate-input.ts`) builds one table of them per host and refuses any
 * overlap. The minimal services' ports are in `SERVICE_CATALOG` (`config/images.ts`).
 */

/** sshd of the host OS (Fedora CoreOS/Flatcar default; Berth's sshd drop-in keeps it). */
export const HOST_SSH_PORT = 22;
/** SSH inside a Jenkins agent container (published on `basePort + n`). */
export const AGENT_CONTAINER_SSH_PORT = 22;
/** The registry's HTTPS port: nginx publishes it on the registry host's CI address. */
export const REGISTRY_HTTPS_PORT = 443;
/** Default port of the pull-through mirror (`berth:registry.pullThroughCache.port`). */
export const DEFAULT_MIRROR_PORT = 8443;
/** Default port of dockerd's mutual-TLS endpoint (`berth:hosts.dockerTlsPort`). */
export const DEFAULT_DOCKER_TLS_PORT = 2376;
/** Default `berth:jenkins.basePort`: agent n listens on `basePort + n`. */
export const DEFAULT_AGENT_BASE_PORT = 2200;

/** Host port of agent n (from 1). */
export function agentPort(basePort: number, n: number): number {
  return basePort + n;
}

/**
 * Linux's default ephemeral port range (`net.ipv4.ip_local_port_range`, also on Fedora CoreOS and
 * Flatcar): where dockerd picks the host port when the Docker plugin publishes an agent's port 22.
 */
export const EPHEMERAL_PORTS = { first: 32768, last: 60999 } as const;
