import * as pulumi from "@pulumi/pulumi";
import { internalError } from "../config/errors.ts";
import * as docker from "@pulumi/docker";
import * as command from "@pulumi/command";
import { IMAGE_DIGEST_PATTERN } from "../config/images.ts";
import { DEFAULT_DOCKER_TLS_PORT } from "../config/ports.ts";
import { CONTAINER_LOG_MAX_FILE, CONTAINER_LOG_MAX_SIZE, DEFAULT_SSH_OPTS } from "../config/docker.ts";
import { DOCKER_BRIDGE_BIP } from "../config/addresses.ts";
import { PIDS_LIMIT_LABEL, type ContainerLimit } from "../config/limits.ts";
import { BERTH_HOST_LABEL, BERTH_STACK_LABEL } from "../config/containers.ts";

/**
 * Log settings of every Berth container: the same as the host's daemon.json (`config/docker.ts`);
 * left unset, the provider reads the daemon-applied values back and shows a diff on every run.
 */
export const CONTAINER_LOG_DRIVER = "json-file";
export { CONTAINER_LOG_MAX_FILE, CONTAINER_LOG_MAX_SIZE, DOCKER_BRIDGE_BIP };
export const CONTAINER_LOG_OPTS: Readonly<Record<string, string>> = {
  "max-size": CONTAINER_LOG_MAX_SIZE,
  "max-file": String(CONTAINER_LOG_MAX_FILE),
};

/** docker0's address: host-side services for jobs (the minimal set) bind here (config/addresses.ts). */
export { DOCKER_BRIDGE_GATEWAY } from "../config/addresses.ts";

/** Restart policy of every long-running Berth container. */
export const RESTART_POLICY = "unless-stopped";

/** Script that waits for dockerd; relative to the project root (Pulumi runs commands from there). */
export const WAIT_FOR_DOCKER_SCRIPT = "scripts/wait-for-docker.sh";

/** dockerd's mutual-TLS endpoint, instead of ssh. PEM contents, not paths. */
export interface DockerTlsClient {
  /** CA certificate that signed dockerd's server certificate. */
  caPem: pulumi.Input<string>;
  /** Client certificate (signed by the same CA). */
  certPem: pulumi.Input<string>;
  /** Client private key. Secret. */
  keyPem: pulumi.Input<string>;
  /** dockerd's TLS port. Default 2376. */
  port?: number;
}

export interface DockerHostArgs {
  /** Host name, e.g. `staging-ci-1` (used in resource names). */
  hostName: string;
  /** Address Pulumi reaches the host on (its floating IP). */
  address: pulumi.Input<string>;
  /** ID of the host's server: the readiness wait re-runs only when the server is replaced. */
  serverId: pulumi.Input<string>;
  /** ssh user in ssh mode. Default `core`; it must be allowed to use dockerd (group `docker`). */
  sshUser?: string;
  /** ssh options of the provider. Default {@link DEFAULT_SSH_OPTS}. */
  sshOpts?: string[];
  /** Reach dockerd over mutual TLS instead of ssh. */
  tls?: DockerTlsClient;
  /** How long to wait for dockerd after the server was (re)created. Default 600 s. */
  readyTimeoutSeconds?: number;
}

/**
 * One CI host's Docker engine as seen by Pulumi: a `docker.Provider` (ssh to `core@<floating ip>`
 * by default, mutual TLS optionally) and a readiness wait it depends on, so the first container is
 * not created while the host is still booting. The wait runs when the server is created or
 * replaced (its ID is the trigger), not on every `pulumi up`.
 */
export class DockerHost extends pulumi.ComponentResource {
  /** The provider every Docker resource of this host must use. */
  public readonly provider: docker.Provider;
  /** `ssh://core@<ip>` or `tcp://<ip>:<port>`. */
  public readonly endpoint: pulumi.Output<string>;
  /** The readiness wait (a local command). */
  public readonly ready: command.local.Command;

  constructor(name: string, args: DockerHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("berth:docker:DockerHost", name, {}, opts);
    const user = args.sshUser ?? "core";
    const timeout = args.readyTimeoutSeconds ?? 600;
    const tls = args.tls;
    const port = tls?.port ?? DEFAULT_DOCKER_TLS_PORT;

    this.ready = new command.local.Command(
      `${name}-ready`,
      tls
        ? {
            create: pulumi.interpolate`${WAIT_FOR_DOCKER_SCRIPT} --tls --port ${port} --timeout ${timeout} ${args.address}`,
            environment: {
              DOCKER_TLS_CA_PEM: tls.caPem,
              DOCKER_TLS_CERT_PEM: tls.certPem,
              DOCKER_TLS_KEY_PEM: pulumi.secret(tls.keyPem),
            },
            triggers: [args.serverId],
          }
        : {
            // --forget-host-key: this only runs for a new server, which has a new host key behind
            // an unchanged floating IP.
            create: pulumi.interpolate`${WAIT_FOR_DOCKER_SCRIPT} --forget-host-key --timeout ${timeout} ${user}@${args.address}`,
            triggers: [args.serverId],
          },
      { parent: this },
    );

    this.endpoint = tls
      ? pulumi.interpolate`tcp://${args.address}:${port}`
      : pulumi.interpolate`ssh://${user}@${args.address}`;
    this.provider = new docker.Provider(
      `${name}`,
      tls
        ? {
            host: this.endpoint,
            caMaterial: tls.caPem,
            certMaterial: tls.certPem,
            keyMaterial: pulumi.secret(tls.keyPem),
          }
        : { host: this.endpoint, sshOpts: args.sshOpts ?? [...DEFAULT_SSH_OPTS] },
      { parent: this, dependsOn: [this.ready] },
    );
    this.registerOutputs({ endpoint: this.endpoint });
  }
}

/** Throws unless `ref` is pinned by digest (`name[:tag]@sha256:<64 hex>`). */
export function assertPinned(ref: string, what: string): void {
  if (!IMAGE_DIGEST_PATTERN.test(ref)) {
    throw internalError(
      `${what}: image ${JSON.stringify(ref)} is not pinned by digest (name[:tag]@sha256:<64 hex>)`,
    );
  }
}

/** The repository part of an image reference (`jenkins/ssh-agent:6@sha256:…` → `jenkins/ssh-agent`). */
export function imageRepository(ref: string): string {
  const noDigest = ref.split("@")[0] ?? ref;
  const lastSlash = noDigest.lastIndexOf("/");
  const colon = noDigest.indexOf(":", lastSlash + 1);
  return colon < 0 ? noDigest : noDigest.slice(0, colon);
}

/**
 * Pulls images for one component: one `docker.RemoteImage` per distinct reference, children of
 * `parent` on `provider`. Containers take the pulled image's ID: a container given an image *name*
 * reads back as an ID and would be replaced on every `pulumi up`. References must be pinned by
 * digest. `keepLocally`: several components (or a replaced resource) may use the same image, and
 * removing it would only force another pull.
 */
export class PinnedImages {
  private readonly pulled = new Map<string, docker.RemoteImage>();
  private readonly names = new Set<string>();

  constructor(
    private readonly prefix: string,
    private readonly parent: pulumi.Resource,
    private readonly provider: docker.Provider,
  ) {}

  /** The image ID to give a container's `image`; pulls `ref` once. */
  imageId(ref: string): pulumi.Output<string> {
    return this.remote(ref).imageId;
  }

  /** The `RemoteImage` for `ref` (created on first use). */
  remote(ref: string): docker.RemoteImage {
    const existing = this.pulled.get(ref);
    if (existing) return existing;
    assertPinned(ref, this.prefix);
    let name = `${this.prefix}-image-${imageRepository(ref).replace(/[^A-Za-z0-9.-]+/g, "-")}`;
    for (let i = 2; this.names.has(name); i++) name = `${name.replace(/-\d+$/, "")}-${i}`;
    this.names.add(name);
    const image = new docker.RemoteImage(
      name,
      { name: ref, keepLocally: true },
      { parent: this.parent, provider: this.provider },
    );
    this.pulled.set(ref, image);
    return image;
  }
}

/**
 * Where Berth's own containers log: `json-file` (rotated, the daemon's default) or, when the stack
 * forwards the journal (`berth:logs.forward`), `journald`, so their logs travel with it. Per-build
 * containers always keep the daemon's json-file default (docs/architecture.md, "Logs").
 */
export type ContainerLogs = "json-file" | "journald";

/** Options of the journald driver: the journal's SYSLOG_IDENTIFIER is the container's name. */
export const JOURNALD_LOG_OPTS: Readonly<Record<string, string>> = { tag: "{{.Name}}" };

/** Settings every long-running Berth container shares. */
export function commonContainerArgs(
  logs: ContainerLogs = "json-file",
): Pick<docker.ContainerArgs, "restart" | "logDriver" | "logOpts" | "mustRun" | "removeVolumes"> {
  return {
    restart: RESTART_POLICY,
    // Set explicitly either way: dockerd merges its log-opts only into containers of its default driver.
    logDriver: logs === "journald" ? "journald" : CONTAINER_LOG_DRIVER,
    logOpts: logs === "journald" ? { ...JOURNALD_LOG_OPTS } : { ...CONTAINER_LOG_OPTS },
    mustRun: true,
    // Anonymous volumes (the images' VOLUME directories) go with the container; data is on named volumes.
    removeVolumes: true,
  };
}

/**
 * A container's resource limits as provider inputs (config/limits.ts): `memory` in MiB (the
 * provider's "MB" are MiB: it multiplies by 1024²), `memorySwap` equal to it so the container gets
 * no swap beyond its limit, `cpus` (Docker's NanoCpus, a CFS quota), and the label
 * {@link PIDS_LIMIT_LABEL} with its process-count limit: @pulumi/docker's Container has no
 * pidsLimit, so the host's `berth-pids-limit` service applies the label's value with
 * `docker update --pids-limit` (renderers/pids-limit.ts). A container with labels of its own passes
 * them as `ownLabels`: they come after the limit's label in `labels` (a `labels` key beside the
 * spread would drop the limit's). Without limits, only `ownLabels` (when given).
 */
export function limitArgs(
  limit: ContainerLimit | undefined,
  ownLabels?: readonly { label: string; value: string }[],
): Pick<docker.ContainerArgs, "memory" | "memorySwap" | "cpus"> & {
  labels?: { label: string; value: string }[];
} {
  if (!limit) return ownLabels ? { labels: [...ownLabels] } : {};
  if (
    !Number.isInteger(limit.memoryMiB) ||
    limit.memoryMiB < 6 ||
    !(limit.cpus >= 0.01) ||
    !Number.isInteger(limit.pids) ||
    limit.pids < 1
  )
    throw internalError(`container limit ${JSON.stringify(limit)} was not validated`);
  return {
    memory: limit.memoryMiB,
    memorySwap: limit.memoryMiB,
    cpus: String(limit.cpus),
    labels: [{ label: PIDS_LIMIT_LABEL, value: String(limit.pids) }, ...(ownLabels ?? [])],
  };
}

export { PIDS_LIMIT_LABEL };

/** Labels every Docker container, network and volume of a Berth host carries (config/containers.ts). */
export { BERTH_HOST_LABEL, BERTH_STACK_LABEL };

const LABELLED_TYPES = new Set([
  "docker:index/container:Container",
  "docker:index/network:Network",
  "docker:index/volume:Volume",
]);

/**
 * A transformation adding {@link BERTH_STACK_LABEL} and {@link BERTH_HOST_LABEL} to every Docker
 * container, network and volume below the component it is given to (labels already set, such as
 * the holders', are kept). Docker cannot change the labels of an existing network or volume, and
 * the provider would replace them (a volume's data would go): for those two, label changes are
 * ignored, so only networks and volumes created from now on carry the labels. Containers are
 * replaced once to take them, as on an image bump.
 */
export function berthLabels(stack: string, host: string): pulumi.ResourceTransformation {
  return ({ type, props, opts }) => {
    if (!LABELLED_TYPES.has(type)) return undefined;
    const own = [
      { label: BERTH_STACK_LABEL, value: stack },
      { label: BERTH_HOST_LABEL, value: host },
    ];
    const existing = (props.labels ?? []) as pulumi.Input<{ label: string; value: string }>[];
    const labels = [...existing, ...own];
    if (type === "docker:index/container:Container") return { props: { ...props, labels }, opts };
    return {
      props: { ...props, labels },
      opts: pulumi.mergeOptions(opts, { ignoreChanges: ["labels"] }),
    };
  };
}
