/**
 * How a Jenkins job reaches Docker on a Berth host (pure): per agent kind (`berth:jenkins.dockerAccess`),
 * `none`, the host's Unix socket, or the host's dockerd over mutual TLS with that host's build
 * credentials. Any of the last two is root on the host: whoever runs a job there controls dockerd.
 *
 * TLS: every host has its own build CA, and its dockerd trusts exactly two CAs for clients (the
 * stack's dockerd CA, which signed the Jenkins controller's certificate, and its own build CA). A
 * build container holds a client certificate from its host's build CA only, so another host's
 * dockerd refuses it, and the controller's client key never enters a build container. The files
 * reach containers through one named volume per host, mounted read-only.
 */
import { internalError } from "./common.ts";

export const DOCKER_ACCESS_MODES = ["none", "socket", "tls"] as const;
export type DockerAccessMode = (typeof DOCKER_ACCESS_MODES)[number];

/** The named volume holding a host's build client certificate, key and the dockerd CA. */
export const BUILD_TLS_VOLUME = "berth-docker-build-tls";
/** Where build containers see that volume (read-only); `DOCKER_CERT_PATH`. */
export const BUILD_TLS_DIR = "/run/berth/docker-tls";
/** The host's Docker socket, as mounted into containers in `socket` mode. */
export const DOCKER_SOCKET = "/var/run/docker.sock";
/**
 * Owner of the credential files: user `jenkins` of jenkins/ssh-agent and images/jenkins-agent
 * (uid and gid 1000), the user jobs run as. The key is 0400: no other user in the container reads it.
 */
export const BUILD_TLS_OWNER = 1000;

/** The files of the volume: name, and mode (the Docker CLI's names under DOCKER_CERT_PATH). */
export const BUILD_TLS_FILES = {
  ca: { name: "ca.pem", mode: "0444" },
  cert: { name: "cert.pem", mode: "0444" },
  key: { name: "key.pem", mode: "0400" },
} as const;

/** Where a build container's Docker CLI finds dockerd. */
export interface DockerEndpoint {
  /** The host's fixed address on the CI network (dockerd's TLS endpoint listens on it). */
  privateIp: string;
  /** Port of dockerd's mutual-TLS endpoint. */
  tlsPort: number;
}

/**
 * The environment a job's Docker CLI needs in `mode` (empty for `none`). The images publish the
 * container environment to SSH sessions through /etc/environment (jenkins/ssh-agent's setup-sshd,
 * images/jenkins-agent's entrypoint), so the job sees it too.
 */
export function dockerAccessEnv(mode: DockerAccessMode, endpoint: DockerEndpoint): string[] {
  switch (mode) {
    case "none":
      return [];
    case "socket":
      return [`DOCKER_HOST=unix://${DOCKER_SOCKET}`];
    case "tls":
      return [
        `DOCKER_HOST=tcp://${endpoint.privateIp}:${endpoint.tlsPort}`,
        "DOCKER_TLS_VERIFY=1",
        `DOCKER_CERT_PATH=${BUILD_TLS_DIR}`,
      ];
  }
}

/**
 * The Docker plugin's `mountsString` lines (the `--mount` syntax, one per line) for `mode`:
 * the socket, or the build credentials volume, read-only.
 */
export function dockerAccessMounts(mode: DockerAccessMode): string[] {
  switch (mode) {
    case "none":
      return [];
    case "socket":
      return [`type=bind,source=${DOCKER_SOCKET},destination=${DOCKER_SOCKET}`];
    case "tls":
      return [`type=volume,source=${BUILD_TLS_VOLUME},destination=${BUILD_TLS_DIR},readonly`];
  }
}

/**
 * dockerd's `tlscacert` file: the CAs whose client certificates it accepts, each PEM ending in
 * exactly one newline. Order does not matter to dockerd; it is kept for stable Ignition.
 */
export function clientCaBundle(pems: readonly string[]): string {
  const parts = pems.map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0)
    throw internalError(
      "clientCaBundle: no CA certificate (the caller always passes the stack's dockerd CA)",
    );
  return parts.map((p) => `${p}\n`).join("");
}

/** True when any agent kind of the stack reaches dockerd over TLS with build credentials. */
export function usesBuildTls(access: { static: DockerAccessMode; perBuild: DockerAccessMode }): boolean {
  return access.static === "tls" || access.perBuild === "tls";
}
