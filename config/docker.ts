/**
 * Docker settings every host's daemon and every Berth container share (pure constants): the host
 * layer writes them into daemon.json (stack/host-ignition.ts), the Docker components set them on
 * each container (components/docker-host.ts).
 */

/**
 * Log settings of dockerd and of every Berth container. Containers set them explicitly: left
 * unset, the provider reads the daemon-applied values back and shows a diff on every `pulumi up`.
 */
export const CONTAINER_LOG_MAX_SIZE = "20m";
export const CONTAINER_LOG_MAX_FILE = 5;
