import * as pulumi from "@pulumi/pulumi";
import { internalError } from "../config/errors.ts";
import type { BerthConfig } from "../config/types.ts";
import { DockerHost, berthLabels } from "./docker-host.ts";
import { BuildDockerTls, JenkinsAgents } from "./jenkins.ts";
import type { StackCa } from "./pki.ts";
import { Registry } from "./registry.ts";
import { NodeExporter } from "./monitoring.ts";
import { BackendServices } from "./services.ts";
import { AppSlots } from "./slots.ts";

export interface HostServicesArgs {
  /** The validated stack configuration. */
  config: BerthConfig;
  /** The host's name, e.g. `staging-ci-1` (one of `config.hosts.names`). */
  hostName: string;
  /** The host's floating IP: Pulumi reaches dockerd through it. */
  floatingIp: pulumi.Output<string>;
  /** The host's fixed address on the CI network (registry and agent ports are published on it). */
  privateIp: string;
  /** The host's server ID: dockerd readiness is awaited again only when the server is replaced. */
  serverId: pulumi.Output<string>;
  /** The stack's registry CA (self-signed registry TLS); only used on the registry host. */
  registryCa?: StackCa;
  /** Reach dockerd over mutual TLS (the controller's client certificate) instead of ssh. */
  dockerTls?: {
    /** CA certificate of dockerd's server certificate. */
    caPem: pulumi.Input<string>;
    /** Client certificate. */
    certPem: pulumi.Input<string>;
    /** Client key (secret). */
    keyPem: pulumi.Input<string>;
  };
  /**
   * The host's build credentials for dockerd's TLS endpoint (a client certificate of the host's own
   * build CA), when an agent kind uses Docker access `tls`.
   */
  buildDockerTls?: {
    /** The stack's dockerd CA certificate (verifies dockerd's server certificate). */
    caCertPem: pulumi.Input<string>;
    certPem: pulumi.Input<string>;
    /** Secret. */
    keyPem: pulumi.Input<string>;
  };
}

/**
 * The service layer of one CI host, everything it runs as containers, updated in place and never
 * a reason to replace the VM (nothing here feeds any server input): the Docker provider
 * (`DockerHost`), the registry on the stack's registry host, the Jenkins agents, and the backend
 * services.
 */
export class HostServices extends pulumi.ComponentResource {
  public readonly dockerHost: DockerHost;
  public readonly registry?: Registry;
  public readonly agents: JenkinsAgents;
  public readonly services: BackendServices;
  public readonly nodeExporter: NodeExporter;

  constructor(name: string, args: HostServicesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("berth:services:HostServices", name, {}, opts);
    const c = args.config;
    const h = args.hostName;
    if (!c.hosts.names.includes(h)) throw internalError(`${name}: ${h} is not one of the stack's hosts`);

    this.dockerHost = new DockerHost(
      `${h}-dockerd`,
      {
        hostName: h,
        address: args.floatingIp,
        serverId: args.serverId,
        ...(args.dockerTls ? { tls: { ...args.dockerTls, port: c.hosts.dockerTlsPort } } : {}),
      },
      { parent: this },
    );
    const provider = this.dockerHost.provider;
    // Every container, network and volume of the host carries the stack's and host's labels.
    const child = { parent: this, providers: [provider], transformations: [berthLabels(c.stack, h)] };
    // Berth's own containers log into the journal when it is forwarded, json-file otherwise.
    const containerLogs = c.logs?.forward ? "journald" : "json-file";

    this.services = new BackendServices(
      `${h}-services`,
      {
        hostName: h,
        subnet: c.services.subnet,
        gateway: c.services.gateway,
        dnsAddress: c.services.dnsAddress,
        upstreamDns: c.services.upstreamDns,
        searchDomains: c.dns.searchDomains,
        minimal: c.services.minimal,
        productionLike: c.services.productionLike,
        networkHolders: c.services.networkHolders,
        protectData: c.hosts.protectData,
        limits: c.limits.containers,
        containerLogs,
        provider,
      },
      child,
    );

    // Application slots: each slot's front (the application containers are the builds', berth-slot).
    const slots = c.services.slots ?? [];
    if (slots.length > 0)
      new AppSlots(
        `${h}-slots`,
        {
          hostName: h,
          slots,
          privateIp: args.privateIp,
          servicesNetwork: this.services.networkName,
          dnsAddress: c.services.dnsAddress,
          searchDomains: c.dns.searchDomains,
          limits: c.limits.containers.holder,
          containerLogs,
          provider,
        },
        child,
      );

    if (h === c.registry.host) {
      this.registry = new Registry(
        `${h}-registry`,
        {
          hostName: h,
          privateIp: args.privateIp,
          hostname: c.registry.hostname,
          tls: c.registry.tls,
          ...(args.registryCa ? { ca: args.registryCa } : {}),
          users: c.registry.users,
          image: c.registry.image,
          nginxImage: c.registry.nginxImage,
          ...(c.registry.pullThroughCache ? { pullThroughCache: c.registry.pullThroughCache } : {}),
          mirrorAllowCidrs: [c.openstack.networkCidr, ...c.openstack.registryClientCidrs],
          protectData: c.hosts.protectData,
          limits: c.limits.containers,
          containerLogs,
          provider,
        },
        child,
      );
    }

    const buildTls = args.buildDockerTls
      ? new BuildDockerTls(
          `${h}-build-docker-tls`,
          { hostName: h, ...args.buildDockerTls, image: c.jenkins.image, provider },
          child,
        )
      : undefined;

    this.agents = new JenkinsAgents(
      `${h}-agents`,
      {
        hostName: h,
        count: c.jenkins.agentsPerHost,
        image: c.jenkins.image,
        basePort: c.jenkins.basePort,
        agentPublicKey: c.jenkins.agentPublicKey,
        dockerAccess: c.jenkins.dockerAccess.static,
        dockerEndpoint: { privateIp: args.privateIp, tlsPort: c.hosts.dockerTlsPort },
        ...(buildTls ? { buildTlsVolume: buildTls.volumeName } : {}),
        bindAddress: args.privateIp,
        publicAddress: args.floatingIp,
        servicesNetwork: this.services.networkName,
        dnsAddress: c.services.dnsAddress,
        searchDomains: c.dns.searchDomains,
        limits: c.limits.containers.agent,
        containerLogs,
        provider,
      },
      child,
    );

    // Metrics on the private address: node_exporter here, dockerd's own endpoint (daemon.json) and
    // the textfile writer in the host's Ignition.
    this.nodeExporter = new NodeExporter(
      `${h}-node-exporter`,
      {
        hostName: h,
        privateIp: args.privateIp,
        image: c.monitoring.nodeExporterImage,
        limits: c.limits.containers.nodeExporter,
        containerLogs,
        provider,
      },
      child,
    );

    this.registerOutputs({
      endpoint: this.dockerHost.endpoint,
      registryUrl: this.registry?.url,
      agentKnownHosts: this.agents.knownHosts,
    });
  }
}
