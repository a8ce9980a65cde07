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
    const child = { parent: this };
    const tags = Object.entries(c.labels).map(([k, v]) => `${k}=${v}`);

    const external = openstack.networking.getNetworkOutput(
      { name: c.openstack.externalNetwork, external: true },
      child,
    );
    const image = openstack.images.getImageOutput({ name: c.openstack.image, mostRecent: true }, child);

    const j = c.jenkins;
    const network = new CiNetwork(
      `${c.stack}-ci`,
      {
        cidr: c.openstack.networkCidr,
        dnsServers: c.openstack.dnsServers,
        externalNetworkId: external.id,
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

    // The registry's CA: generated unless the stack provides its certificate. Hosts trust it.
    const registryCa =
      c.registry.tls.mode === "self-signed"
        ? new StackCa(
            `${c.stack}-registry-ca`,
            { commonName: `Berth ${c.stack} registry CA`, organization: "Berth" },
            child,
          )
        : undefined;
    this.registryCaPem = registryCa
      ? registryCa.certPem
      : pulumi.output(c.registry.tls.mode === "provided" ? (c.registry.tls.caCertificate ?? "") : "");

    const dockerCa = c.hosts.dockerTls
      ? new StackCa(
          `${c.stack}-docker-ca`,
          { commonName: `Berth ${c.stack} dockerd CA`, organization: "Berth" },
          child,
        )
      : undefined;

    // Journal forwarding: each host authenticates to the receiver with its own client certificate
    // (CN = host name, which systemd-journal-remote names the host's journal after), signed by a CA
    // of the stack's own; the receiver trusts that CA (stack output logsClientCaPem).
    const forward = c.logs?.forward;
    const logsCa = forward
      ? new StackCa(
          `${c.stack}-logs-ca`,
          { commonName: `Berth ${c.stack} journal-upload CA`, organization: "Berth" },
          child,
        )
      : undefined;
    this.logsClientCaPem = logsCa?.certPem;

    // Build credentials (Docker access "tls"): one build CA per host, trusted by that host's dockerd
    // only, and one client certificate from it for the host's build containers.
    const buildTls = dockerCa && usesBuildTls(c.jenkins.dockerAccess);
    const buildCredentials = c.hosts.names.map((hostName) => {
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

    this.ciHosts = c.hosts.names.map((hostName, i) => {
      const fixedIp = c.hosts.addresses[i] as string;
      const logsClient =
        forward && logsCa
          ? logsCa.issue(
              `${hostName}-journal-upload`,
              { commonName: hostName, usage: "client", validityHours: LOGS_CLIENT_CERT_HOURS },
              logsCa,
            )
          : undefined;
      const build = buildCredentials[i];
      return new CiHost(
        hostName,
        {
          hostName,
          flavor: c.hosts.flavor,
          imageId: image.id,
          availabilityZone: c.openstack.availabilityZone,
          networkId: network.networkId,
          subnetId: network.subnetId,
          fixedIp,
          securityGroupIds: network.securityGroupIds,
          floatingIpPool: c.openstack.floatingIpPool,
          keyPairName: keyPair.name,
          dockerVolumeSize: c.hosts.dockerVolumeSize,
          dockerVolumeType: c.hosts.dockerVolumeType,
          protectData: c.hosts.protectData,
          serverGroupId: serverGroup?.id,
          ignition: hostIgnitionBase(c, hostName),
          // A restore source's temporary URL or Swift password is in the user data too.
          userDataSecret:
            c.extraIgnition.some((f) => f.secret) ||
            c.services.productionLike.some((s) => s.restore !== undefined && restoreHasSecret(s.restore)),
          registryCaPem: registryCa?.certPem,
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

    // The service layer: containers on each host, through a Docker provider over ssh to the host's
    // floating IP. It reads host outputs but feeds nothing back into a server's inputs, so changing
    // it never replaces a VM.
    this.hostServices = this.ciHosts.map(
      (h, i) =>
        new HostServices(
          c.hosts.names[i] as string,
          {
            config: c,
            hostName: c.hosts.names[i] as string,
            floatingIp: h.floatingIp,
            privateIp: h.privateIp,
            serverId: h.serverId,
            registryCa,
            ...(dockerCa && buildCredentials[i]
              ? {
                  buildDockerTls: {
                    caCertPem: dockerCa.certPem,
                    certPem: buildCredentials[i].client.certPem,
                    keyPem: buildCredentials[i].client.keyPem,
                  },
                }
              : {}),
          },
          child,
        ),
    );

    if (dockerCa) {
      const client = dockerCa.issue(
        `${c.stack}-jenkins-client`,
        { commonName: "jenkins-controller", usage: "client", validityHours: DOCKER_CLIENT_CERT_HOURS },
        dockerCa,
      );
      this.dockerTls = {
        caCertPem: dockerCa.certPem,
        clientCertPem: client.certPem,
        clientKeyPem: client.keyPem,
        endpoints: this.ciHosts.map(
          (h) => pulumi.interpolate`tcp://${h.floatingIp}:${c.hosts.dockerTlsPort}`,
        ),
      };
    }

    this.hosts = this.ciHosts.map((h, i) => ({
      name: c.hosts.names[i] as string,
      privateIp: h.privateIp,
      floatingIp: h.floatingIp,
      ssh: pulumi.interpolate`ssh core@${h.floatingIp}`,
    }));
    this.registryUrl = `https://${c.registry.hostname}`;
    this.agentEndpoints = this.ciHosts.flatMap((h) =>
      Array.from(
        { length: j.agentsPerHost },
        (_, n) => pulumi.interpolate`jenkins@${h.floatingIp}:${agentPort(j.basePort, n + 1)}`,
      ),
    );

    this.registerOutputs({
      hosts: this.hosts,
      registryUrl: this.registryUrl,
      agentEndpoints: this.agentEndpoints,
    });
  }
}
