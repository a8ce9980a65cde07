/**
 * Docker settings every host's daemon and every Berth container share (pure constants): the host
 * layer writes them into daemon.json (stack/host-ignition.ts), the Docker components set them on
 * each container (components/docker-host.ts), and the ssh options both the Docker provider and
 * `berth drift` reach a host with.
 */

/**
 * Log settings of dockerd and of every Berth container. Containers set them explicitly: left
 * unset, the provider reads the daemon-applied values back and shows a diff on every `pulumi up`.
 */
export const CONTAINER_LOG_MAX_SIZE = "20m";
export const CONTAINER_LOG_MAX_FILE = 5;

/**
 * ssh options of the Docker provider (components/docker-host.ts) and of `berth drift`
 * (cli/engine.ts): trust a new host on first contact, fail fast when it is unreachable.
 */
export const DEFAULT_SSH_OPTS: readonly string[] = [
  "-o",
  "StrictHostKeyChecking=accept-new",
  "-o",
  "ConnectTimeout=10",
  "-o",
  "ServerAliveInterval=30",
];
