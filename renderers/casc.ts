/**
 * The Jenkins Configuration-as-Code snippet for per-build agents: one Docker cloud (Docker plugin,
 * `docker:` symbol) per per-build host, reached over dockerd's mutual-TLS endpoint, with one
 * template that starts the agent image and connects to it with SSH (the controller's instance
 * identity key injected by the plugin, user `jenkins`). Pure: the caller passes the hosts'
 * addresses (floating IPs, outputs of the stack).
 *
 * Field names are those of the Docker plugin's data-bound constructors and setters, as its own CasC
 * tests use them: `DockerCloud` (name, dockerApi, containerCap, templates), `DockerAPI.dockerHost`
 * (`DockerServerEndpoint`: uri, credentialsId), `DockerTemplate` (labelString, dockerTemplateBase,
 * remoteFs, connector, instanceCapStr, pullStrategy, removeVolumes), `DockerTemplateBase` (image,
 * pullCredentialsId, network, dnsString, dnsSearchString), `DockerComputerSSHConnector` (`@Symbol("ssh")`,
 * sshKeyStrategy) and its `InjectSSHKey` strategy (no symbol, hence `injectSSHKey`, field user).
 *
 * `network`, `dnsString` and `dnsSearchString` are `@DataBoundSetter`s of `DockerTemplateBase`
 * (jenkinsci/docker-plugin, src/main/java/com/nirima/jenkins/plugins/docker/DockerTemplateBase.java):
 * `setNetwork(String)` becomes the container's `NetworkMode` (`withNetworkMode`),
 * `setDnsString(String)` is split on spaces into its `Dns` servers (`withDns`), and
 * `setDnsSearchString(String)` is split on spaces into its `DnsSearch` domains (`withDnsSearch`).
 * `dnsSearchString` exists since the plugin's release 1274.vc0203fdf2e74 (October 2024); an older
 * plugin refuses the unknown attribute when the snippet is applied, rather than ignoring it.
 *
 * Limits (berth:limits.containers.perBuild, config/limits.ts) use the same class's setters:
 * `setMemoryLimit(Integer)` and `setMemorySwap(Integer)` in MiB (the plugin multiplies by 1024²;
 * swap equal to memory: no swap beyond the limit) and `setCpus(String)` (Docker's `--cpus`). The
 * class has no process-count (pids) setter: its `setExtraDockerLabelsString(String)` (`key=value`,
 * one per line; `fillContainerConfig` puts them on the container beside the plugin's own
 * `com.nirima.jenkins.plugins.docker.*` labels) gives each build container the label
 * {@link PIDS_LIMIT_LABEL}, which the host's `berth-pids-limit` applies (renderers/pids-limit.ts).
 *
 * `environmentsString`, `mountsString` (the `--mount` syntax, `type=…,source=…,destination=…,readonly`)
 * and `securityOptsString` are `@DataBoundSetter`s of the same class, each one entry per line.
 */
import { stringify } from "yaml";
import { PIDS_LIMIT_LABEL } from "./pids-limit.ts";
import {
  BUILD_TLS_VOLUME,
  dockerAccessEnv,
  dockerAccessMounts,
  type DockerAccessMode,
} from "./docker-access.ts";
import { RenderError, internalError } from "./common.ts";

/** The agent's working directory in the image (images/jenkins-agent, like jenkins/ssh-agent). */
export const PER_BUILD_REMOTE_FS = "/home/jenkins/agent";
/** The user the plugin logs in as. */
export const PER_BUILD_USER = "jenkins";
/**
 * The Docker network per-build containers join: the host's `ci-services` bridge, where the
 * production-like services and dnsmasq live (components/services.ts `SERVICES_NETWORK`; a test
 * checks the two agree). Renderers stay free of Pulumi, hence the copy.
 */
export const PER_BUILD_NETWORK = "ci-services";

export interface DockerCloudCasc {
  docker: {
    name: string;
    dockerApi: { dockerHost: { uri: string; credentialsId: string } };
    containerCap: number;
    templates: {
      labelString: string;
      dockerTemplateBase: {
        image: string;
        pullCredentialsId?: string;
        network: string;
        dnsString: string;
        memoryLimit?: number;
        memorySwap?: number;
        cpus?: string;
        extraDockerLabelsString?: string;
        environmentsString?: string;
        mountsString?: string;
        securityOptsString?: string;
        dnsSearchString: string;
      };
      remoteFs: string;
      connector: { ssh: { sshKeyStrategy: { injectSSHKey: { user: string } } } };
      instanceCapStr: string;
      pullStrategy: string;
      removeVolumes: boolean;
    }[];
  };
}

/** What the snippet is made from (plain values; `cascInput` in program.ts takes them from the configuration). */
export interface CascInput {
  /** Stack name, for the header. */
  stack: string;
  /** The per-build settings (`berth:jenkins.perBuild`, resolved). */
  perBuild: {
    enabled: boolean;
    /** Hosts that are Docker clouds, in the stack's host order. */
    hosts: readonly string[];
    instanceCap: number;
    labels: readonly string[];
    /** The agent image, as the plugin pulls it. */
    image: string;
    pullStrategy: "PULL_ALWAYS" | "PULL_NEVER" | "PULL_LATEST";
    dockerCredentialsId: string;
    registryCredentialsId: string;
  };
  /**
   * How build containers reach Docker (`berth:jenkins.dockerAccess.perBuild`): `tls` gives them the
   * host's build credentials volume and `DOCKER_HOST` at the host's CI address; `socket` the socket.
   */
  dockerAccess: DockerAccessMode;
  /** Each host's fixed CI address (where its dockerd's TLS endpoint listens for build containers). */
  hostAddresses: Record<string, string>;
  /** The stack registry's host name: pull credentials are given only for images from it. */
  registryHostname: string;
  /** Port of dockerd's mutual-TLS endpoint on every host. */
  dockerTlsPort: number;
  /** dnsmasq's address on each host's services network. */
  dnsAddress: string;
  /** Memory (MiB), CPU and process-count limits of each build container; none when absent. */
  limits?: { memoryMiB: number; cpus: number; pids: number };
  /** The search domains (`berth:dns.searchDomains`), first preferred. */
  searchDomains: readonly string[];
}

/** The registry host of an image reference (`host[:port]/path...`), or undefined for Docker Hub. */
function registryOf(image: string): string | undefined {
  const first = image.split("/")[0] ?? "";
  return image.includes("/") && /[.:]|^localhost$/.test(first) ? first.replace(/:\d+$/, "") : undefined;
}

/**
 * The clouds, in the stack's host order. `addresses` maps a host name to the address the controller
 * uses for it (its floating IP); every per-build host must have one.
 */
export function jenkinsDockerClouds(input: CascInput, addresses: Record<string, string>): DockerCloudCasc[] {
  const p = input.perBuild;
  if (!p.enabled) return [];
  // The registry credentials only make sense for the stack's own registry.
  const pullCredentials = registryOf(p.image) === input.registryHostname;
  return p.hosts.map((host) => {
    const address = addresses[host];
    if (address === undefined || address === "")
      throw new RenderError("jenkinsDockerClouds", `addresses.${host}`, "no address for this per-build host");
    const privateIp = input.hostAddresses[host];
    if (privateIp === undefined)
      throw internalError(`jenkinsDockerClouds: no CI address for per-build host ${host}`);
    const env = dockerAccessEnv(input.dockerAccess, { privateIp, tlsPort: input.dockerTlsPort });
    const mounts = dockerAccessMounts(input.dockerAccess);
    return {
      docker: {
        name: host,
        dockerApi: {
          dockerHost: {
            uri: `tcp://${address}:${input.dockerTlsPort}`,
            credentialsId: p.dockerCredentialsId,
          },
        },
        containerCap: p.instanceCap,
        templates: [
          {
            labelString: p.labels.join(" "),
            dockerTemplateBase: {
              image: p.image,
              ...(pullCredentials ? { pullCredentialsId: p.registryCredentialsId } : {}),
              // Jobs see the production-like services as the long-lived agents do: on ci-services,
              // resolving through dnsmasq. Every host runs BackendServices
              // (components/host-services.ts), so every per-build host has both.
              network: PER_BUILD_NETWORK,
              dnsString: input.dnsAddress,
              ...(input.limits
                ? {
                    memoryLimit: input.limits.memoryMiB,
                    memorySwap: input.limits.memoryMiB,
                    cpus: String(input.limits.cpus),
                    extraDockerLabelsString: `${PIDS_LIMIT_LABEL}=${String(input.limits.pids)}`,
                  }
                : {}),
              // Docker access (renderers/docker-access.ts): this host's build credentials or socket.
              ...(env.length > 0 ? { environmentsString: env.join("\n") } : {}),
              ...(mounts.length > 0 ? { mountsString: mounts.join("\n") } : {}),
              ...(input.dockerAccess === "socket" ? { securityOptsString: "label=disable" } : {}),
              // Space-separated, first preferred: short production-like names resolve as on a host.
              dnsSearchString: input.searchDomains.join(" "),
            },
            remoteFs: PER_BUILD_REMOTE_FS,
            connector: { ssh: { sshKeyStrategy: { injectSSHKey: { user: PER_BUILD_USER } } } },
            instanceCapStr: String(p.instanceCap),
            pullStrategy: p.pullStrategy,
            // The image declares the workspace a volume: one anonymous volume per build, removed with it.
            removeVolumes: true,
          },
        ],
      },
    };
  });
}

/**
 * The YAML text: a header saying which credentials the snippet refers to, then
 * `jenkins: clouds: [...]`. With per-build agents disabled, only a comment (no clouds: applying it
 * must not replace clouds configured elsewhere).
 */
export function renderJenkinsCasc(
  input: CascInput,
  addresses: Record<string, string>,
  note?: string,
): string {
  const p = input.perBuild;
  const header = [
    `# Berth stack ${input.stack}: Jenkins Docker clouds for per-build agents (Docker plugin, JCasC).`,
    ...(note ? [`# ${note}`] : []),
  ];
  if (!p.enabled)
    return `${[...header, "# Per-build agents are disabled (berth:jenkins.perBuild.enabled): no Docker clouds."].join("\n")}\n`;
  const credentials = [
    `# Credentials the controller must hold:`,
    `#   ${p.dockerCredentialsId}: X.509 client certificate (Docker Server Credentials) from the stack outputs`,
    `#     dockerTlsClientKeyPem (secret), dockerTlsClientCertPem and dockerTlsCaPem.`,
    ...(registryOf(p.image) === input.registryHostname
      ? [
          `#   ${p.registryCredentialsId}: username/password of a registry user (stack output registryPasswords).`,
        ]
      : []),
  ];
  const access =
    input.dockerAccess === "none"
      ? [`# Build containers get no Docker access (berth:jenkins.dockerAccess.perBuild: none).`]
      : [
          `# Build containers reach their host's dockerd (berth:jenkins.dockerAccess.perBuild: ${input.dockerAccess}).`,
          `# That is root on the host: any job with this label can take the machine.`,
          ...(input.dockerAccess === "tls"
            ? [
                `# Their credentials (volume ${BUILD_TLS_VOLUME}) are the host's build certificate, refused by every`,
                `# other host's dockerd; the controller's key is not among them.`,
              ]
            : []),
        ];
  const network = [
    `# Build containers join each host's ${PER_BUILD_NETWORK} network and resolve through its dnsmasq`,
    `# (${input.dnsAddress}) with the search domains ${input.searchDomains.join(" ")}: the production-like`,
    `# service names work in them as on the SSH agents (dnsSearchString needs docker-plugin 1274.vc0203fdf2e74 or later).`,
  ];
  const limits = input.limits
    ? [
        `# Each build container is limited to ${input.limits.memoryMiB} MiB of memory (no swap beyond it), ${input.limits.cpus} CPUs`,
        `# and ${input.limits.pids} processes (berth:limits.containers.perBuild); the plugin cannot set a pids limit, so the label`,
        `# ${PIDS_LIMIT_LABEL} carries it to the host's berth-pids-limit service, which applies it as the container starts.`,
      ]
    : [];
  const doc = { jenkins: { clouds: jenkinsDockerClouds(input, addresses) } };
  return `${[...header, ...credentials, ...access, ...network, ...limits].join("\n")}\n${stringify(doc, { lineWidth: 0 })}`;
}
