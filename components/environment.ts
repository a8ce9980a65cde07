import * as pulumi from "@pulumi/pulumi";
import * as openstack from "@pulumi/openstack";
import type { BerthConfig } from "../config/types.ts";
import { hostIgnitionBase } from "../stack/host-ignition.ts";
import { CiNetwork } from "./network.ts";
import { CiHost } from "./host.ts";
import { StackCa } from "./pki.ts";
import { HostServices } from "./host-services.ts";
import { agentPort } from "../config/ports.ts";

export { hostIgnitionBase };

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

    this.ciHosts = c.hosts.names.map((hostName, i) => {
      const fixedIp = c.hosts.addresses[i] as string;
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
          userDataSecret: c.extraIgnition.some((f) => f.secret),
          registryCaPem: registryCa?.certPem,
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
                  caCertPem: dockerCa.certPem,
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
