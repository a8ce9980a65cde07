import * as pulumi from "@pulumi/pulumi";
import * as openstack from "@pulumi/openstack";
import type { BerthConfig } from "../config/types.ts";
import { hostIgnitionBase } from "../stack/host-ignition.ts";
import { restoreHasSecret } from "../config/validate-restore.ts";
import { CiNetwork } from "./network.ts";
import { CiHost } from "./host.ts";
import { StackCa } from "./pki.ts";
import { HostServices } from "./host-services.ts";
import { agentPort } from "../config/ports.ts";
import { clientCaBundle, usesBuildTls } from "../renderers/docker-access.ts";

export interface CiEnvironmentArgs {
  /** The validated stack configuration (from `config/`). */
  config: BerthConfig;
}

export interface HostSummary {
  name: string;
  privateIp: string;
  floatingIp: pulumi.Output<string>;
  ssh: pulumi.Output<string>;
}

/** Where dockerd publishes per-build agents' SSH (config/ports.ts, shared with the policy pack). */
export { EPHEMERAL_PORTS } from "../config/ports.ts";

/** Five years: a docker server certificate change rewrites the host's Ignition and replaces it. */
const DOCKER_SERVER_CERT_HOURS = 5 * 365 * 24;
/** Five years: a journal-upload client certificate change rewrites the host's Ignition and replaces it. */
const LOGS_CLIENT_CERT_HOURS = 5 * 365 * 24;
/** One year: the controller's client certificate can rotate freely (no host change). */
const DOCKER_CLIENT_CERT_HOURS = 365 * 24;

/**
 * Everything one stack creates: the network and security groups, the CAs, and the CI hosts.
 * `index.ts` builds one from the validated configuration.
 */
export class CiEnvironment extends pulumi.ComponentResource {
  public readonly hosts: HostSummary[];
  public readonly registryUrl: string;
  public readonly registryCaPem: pulumi.Output<string>;
  public readonly dockerTls?: {
    caCertPem: pulumi.Output<string>;
    clientCertPem: pulumi.Output<string>;
    clientKeyPem: pulumi.Output<string>;
    endpoints: pulumi.Output<string>[];
  };
  public readonly agentEndpoints: pulumi.Output<string>[];
  /** The CA of the hosts' journal-upload client certificates, for the receiver's trust file (logs.forward only). */
  public readonly logsClientCaPem?: pulumi.Output<string>;
  public readonly ciHosts: CiHost[];
  /** The service layer of each host (same order as `ciHosts`): containers, updated in place. */
  public readonly hostServices: HostServices[];

  constructor(name: string, args: CiEnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("berth:stack:CiEnvironment", name, {}, opts);
    const c = args.config;
    const step: Step = {
      c,
      child: { parent: this },
      tags: Object.entries(c.labels).map(([k, v]) => `${k}=${v}`),
    };

    // The steps, in the order they register resources.
    const cloud = cloudLookups(step);
    const network = ciNetwork(step, cloud);
    const placement = hostPlacement(step);
    const cas = stackCas(step);
    this.registryCaPem = cas.registry
      ? cas.registry.certPem
      : pulumi.output(c.registry.tls.mode === "provided" ? (c.registry.tls.caCertificate ?? "") : "");
    this.logsClientCaPem = cas.logs?.certPem;
    const build = buildCredentials(step, cas);
    this.ciHosts = ciHosts(step, { cloud, network, placement, cas, build });
    this.hostServices = hostServices(step, this.ciHosts, cas, build);
    if (cas.docker) this.dockerTls = controllerTls(step, cas.docker, this.ciHosts);

    this.hosts = this.ciHosts.map((h, i) => ({
      name: c.hosts.names[i] as string,
      privateIp: h.privateIp,
      floatingIp: h.floatingIp,
      ssh: pulumi.interpolate`ssh core@${h.floatingIp}`,
    }));
    this.registryUrl = `https://${c.registry.hostname}`;
    this.agentEndpoints = agentEndpoints(c, this.ciHosts);

    this.registerOutputs({
      hosts: this.hosts,
      registryUrl: this.registryUrl,
      agentEndpoints: this.agentEndpoints,
    });
  }
}

/** What each step of {@link CiEnvironment}'s constructor works with. */
interface Step {
  /** The validated stack configuration. */
  c: BerthConfig;
  /** Options of a child (and of a lookup): the CiEnvironment as parent. */
  child: { parent: CiEnvironment };
  /** The stack's labels as OpenStack tags (`key=value`). */
  tags: string[];
}

/** What the stack finds in the cloud rather than creates. */
interface CloudLookups {
  externalNetworkId: pulumi.Output<string>;
  imageId: pulumi.Output<string>;
}

/** The operators' Nova keypair, and the anti-affinity server group of a stack of several hosts. */
interface Placement {
  keyPair: openstack.compute.Keypair;
  serverGroup?: openstack.compute.ServerGroup;
}

/** The stack's CAs: the registry's (self-signed TLS), dockerd's (dockerTls), the journal upload's (logs.forward). */
interface StackCas {
  registry?: StackCa;
  docker?: StackCa;
  logs?: StackCa;
}

/** One host's build credentials (Docker access `tls`): its own build CA and a client certificate from it. */
interface BuildCredentials {
  ca: StackCa;
  client: ReturnType<StackCa["issue"]>;
}

/** The external network (floating IPs, router) and the OS image, looked up by name. */
function cloudLookups({ c, child }: Step): CloudLookups {
  const external = openstack.networking.getNetworkOutput(
    { name: c.openstack.externalNetwork, external: true },
    child,
  );
  const image = openstack.images.getImageOutput({ name: c.openstack.image, mostRecent: true }, child);
  return { externalNetworkId: external.id, imageId: image.id };
}

/** The CI network, its router, and the security group whose rules come from the configuration. */
function ciNetwork({ c, child, tags }: Step, cloud: CloudLookups): CiNetwork {
  const j = c.jenkins;
  return new CiNetwork(
    `${c.stack}-ci`,
    {
      cidr: c.openstack.networkCidr,
      dnsServers: c.openstack.dnsServers,
      externalNetworkId: cloud.externalNetworkId,
      ingress: {
        adminCidrs: c.openstack.adminCidrs,
        registryClientCidrs: c.openstack.registryClientCidrs,
        ...(c.registry.pullThroughCache ? { mirrorPort: c.registry.pullThroughCache.port } : {}),
        controllerCidr: j.controllerCidr,
        basePort: j.basePort,
        agentsPerHost: j.agentsPerHost,
        ...(c.hosts.dockerTls ? { dockerTlsPort: c.hosts.dockerTlsPort } : {}),
        perBuild: j.perBuild.enabled,
        monitoringCidrs: c.monitoring.cidrs,
        slotPorts: (c.services.slots ?? []).map((s) => s.port),
        slotCidrs: c.services.slotCidrs ?? [],
      },
      tags,
    },
    child,
  );
}

/** The operators' keypair (Nova's record; Ignition installs the keys that count) and the server group. */
function hostPlacement({ c, child }: Step): Placement {
  const keyPair = new openstack.compute.Keypair(
    `${c.stack}-ops`,
    { name: `${c.stack}-ops`, publicKey: c.hosts.sshKeys[0] ?? "" },
    child,
  );
  const serverGroup =
    c.hosts.count > 1
      ? new openstack.compute.ServerGroup(
          `${c.stack}-ci-hosts`,
          { name: `${c.stack}-ci-hosts`, policies: ["anti-affinity"] },
          child,
        )
      : undefined;
  return { keyPair, ...(serverGroup ? { serverGroup } : {}) };
}

/** The stack's CAs, each only when the configuration needs it. */
function stackCas({ c, child }: Step): StackCas {
  // The registry's CA: generated unless the stack provides its certificate. Hosts trust it.
  const registry =
    c.registry.tls.mode === "self-signed"
      ? new StackCa(
          `${c.stack}-registry-ca`,
          { commonName: `Berth ${c.stack} registry CA`, organization: "Berth" },
          child,
        )
      : undefined;

  const docker = c.hosts.dockerTls
    ? new StackCa(
        `${c.stack}-docker-ca`,
        { commonName: `Berth ${c.stack} dockerd CA`, organization: "Berth" },
        child,
      )
    : undefined;

  // Journal forwarding: each host authenticates to the receiver with its own client certificate
  // (CN = host name, which systemd-journal-remote names the host's journal after), signed by a CA
  // of the stack's own; the receiver trusts that CA (stack output logsClientCaPem).
  const logs = c.logs?.forward
    ? new StackCa(
        `${c.stack}-logs-ca`,
        { commonName: `Berth ${c.stack} journal-upload CA`, organization: "Berth" },
        child,
      )
    : undefined;
  return {
    ...(registry ? { registry } : {}),
    ...(docker ? { docker } : {}),
    ...(logs ? { logs } : {}),
  };
}

/**
 * Build credentials (Docker access "tls"): one build CA per host, trusted by that host's dockerd
 * only, and one client certificate from it for the host's build containers. Per host, in host
 * order; `undefined` where builds get no TLS access.
 */
function buildCredentials({ c, child }: Step, cas: StackCas): (BuildCredentials | undefined)[] {
  const buildTls = cas.docker && usesBuildTls(c.jenkins.dockerAccess);
  return c.hosts.names.map((hostName) => {
    if (!buildTls) return undefined;
    const ca = new StackCa(
      `${hostName}-build-ca`,
      { commonName: `Berth ${hostName} build CA`, organization: "Berth" },
      child,
    );
    const client = ca.issue(
      `${hostName}-build-client`,
      { commonName: `builds@${hostName}`, usage: "client", validityHours: DOCKER_CLIENT_CERT_HOURS },
      ca,
    );
    return { ca, client };
  });
}

/**
 * The CI hosts: per host its journal-upload client certificate (logs.forward), then the host
 * itself (volume, port, floating IP, server from its Ignition), whose dockerd server certificate is
 * issued once the floating IP is known.
 */
function ciHosts(
  { c, child }: Step,
  parts: {
    cloud: CloudLookups;
    network: CiNetwork;
    placement: Placement;
    cas: StackCas;
    build: (BuildCredentials | undefined)[];
  },
): CiHost[] {
  const { cloud, network, placement, cas } = parts;
  const forward = c.logs?.forward;
  const logsCa = cas.logs;
  const dockerCa = cas.docker;
  return c.hosts.names.map((hostName, i) => {
    const fixedIp = c.hosts.addresses[i] as string;
    const logsClient =
      forward && logsCa
        ? logsCa.issue(
            `${hostName}-journal-upload`,
            { commonName: hostName, usage: "client", validityHours: LOGS_CLIENT_CERT_HOURS },
            logsCa,
          )
        : undefined;
    const build = parts.build[i];
    return new CiHost(
      hostName,
      {
        hostName,
        flavor: c.hosts.flavor,
        imageId: cloud.imageId,
        availabilityZone: c.openstack.availabilityZone,
        networkId: network.networkId,
        subnetId: network.subnetId,
        fixedIp,
        securityGroupIds: network.securityGroupIds,
        floatingIpPool: c.openstack.floatingIpPool,
        keyPairName: placement.keyPair.name,
        dockerVolumeSize: c.hosts.dockerVolumeSize,
        dockerVolumeType: c.hosts.dockerVolumeType,
        protectData: c.hosts.protectData,
        serverGroupId: placement.serverGroup?.id,
        ignition: hostIgnitionBase(c, hostName),
        // A restore source's temporary URL or Swift password is in the user data too.
        userDataSecret:
          c.extraIgnition.some((f) => f.secret) ||
          c.services.productionLike.some((s) => s.restore !== undefined && restoreHasSecret(s.restore)),
        registryCaPem: cas.registry?.certPem,
        ...(forward && logsClient
          ? {
              logForward: {
                url: forward.url,
                serverCaPem: forward.serverCa,
                clientCertPem: logsClient.certPem,
                clientKeyPem: logsClient.keyPem,
              },
            }
          : {}),
        dockerTls: dockerCa
          ? (floatingIp) => {
              const cert = dockerCa.issue(
                `${hostName}-dockerd`,
                {
                  commonName: hostName,
                  dnsNames: [hostName, "localhost"],
                  ipAddresses: [fixedIp, floatingIp, "127.0.0.1"],
                  usage: "server",
                  validityHours: DOCKER_SERVER_CERT_HOURS,
                },
                dockerCa,
              );
              return {
                // Clients: the controller (stack CA) and, with build credentials, this host's builds.
                caCertPem: build
                  ? pulumi.all([dockerCa.certPem, build.ca.certPem]).apply((pems) => clientCaBundle(pems))
                  : dockerCa.certPem,
                serverCertPem: cert.certPem,
                serverKeyPem: cert.keyPem,
                port: c.hosts.dockerTlsPort,
              };
            }
          : undefined,
        labels: c.labels,
      },
      child,
    );
  });
}

/**
 * The service layer: containers on each host, through a Docker provider over ssh to the host's
 * floating IP. It reads host outputs but feeds nothing back into a server's inputs, so changing
 * it never replaces a VM.
 */
function hostServices(
  { c, child }: Step,
  hosts: CiHost[],
  cas: StackCas,
  build: (BuildCredentials | undefined)[],
): HostServices[] {
  const dockerCa = cas.docker;
  return hosts.map((h, i) => {
    const credentials = build[i];
    return new HostServices(
      c.hosts.names[i] as string,
      {
        config: c,
        hostName: c.hosts.names[i] as string,
        floatingIp: h.floatingIp,
        privateIp: h.privateIp,
        serverId: h.serverId,
        registryCa: cas.registry,
        ...(dockerCa && credentials
          ? {
              buildDockerTls: {
                caCertPem: dockerCa.certPem,
                certPem: credentials.client.certPem,
                keyPem: credentials.client.keyPem,
              },
            }
          : {}),
      },
      child,
    );
  });
}

/** The Jenkins controller's client certificate for every host's dockerd, and the endpoints. */
function controllerTls(
  { c }: Step,
  dockerCa: StackCa,
  hosts: CiHost[],
): NonNullable<CiEnvironment["dockerTls"]> {
  const client = dockerCa.issue(
    `${c.stack}-jenkins-client`,
    { commonName: "jenkins-controller", usage: "client", validityHours: DOCKER_CLIENT_CERT_HOURS },
    dockerCa,
  );
  return {
    caCertPem: dockerCa.certPem,
    clientCertPem: client.certPem,
    clientKeyPem: client.keyPem,
    endpoints: hosts.map((h) => pulumi.interpolate`tcp://${h.floatingIp}:${c.hosts.dockerTlsPort}`),
  };
}

/** `jenkins@<floating ip>:<port>` of every static agent, host by host. */
function agentEndpoints(c: BerthConfig, hosts: CiHost[]): pulumi.Output<string>[] {
  const j = c.jenkins;
  return hosts.flatMap((h) =>
    Array.from(
      { length: j.agentsPerHost },
      (_, n) => pulumi.interpolate`jenkins@${h.floatingIp}:${agentPort(j.basePort, n + 1)}`,
    ),
  );
}
