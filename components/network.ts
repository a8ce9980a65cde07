import * as pulumi from "@pulumi/pulumi";
import * as openstack from "@pulumi/openstack";
import { cidrHost, parseCidr } from "../config/net.ts";
import { HOST_SSH_PORT } from "../config/ports.ts";

/** One ingress rule, as the security groups declare it. */
export interface IngressRule {
  /** What the rule is for, e.g. "ssh" (part of the rule's resource name). */
  purpose: string;
  portMin: number;
  portMax: number;
  /** Source CIDR. */
  cidr: string;
}

export interface CiNetworkArgs {
  /** CIDR of the private CI network. */
  cidr: string;
  /** Resolvers handed out by the subnet's DHCP. */
  dnsServers: string[];
  /** ID of the external network the router uses as gateway. */
  externalNetworkId: pulumi.Input<string>;
  /** CIDRs allowed to SSH to the hosts. */
  adminCidrs: string[];
  /** CIDRs, besides the CI network, allowed to reach the registry's HTTPS ports. */
  registryClientCidrs: string[];
  /** Registry ports: 443, plus the pull-through mirror's port when it is enabled. */
  registryPorts: number[];
  /** CIDR of the Jenkins controller: the only source of agent SSH and dockerd TLS traffic. */
  controllerCidr: string;
  /** Host ports of the Jenkins SSH agents, first and last (none when `undefined`). */
  agentPorts?: { first: number; last: number };
  /** dockerd's mutual-TLS port, when hosts expose it. */
  dockerTlsPort?: number;
  /**
   * Host ports Docker picks for per-build agents' SSH (the Docker plugin publishes container port 22
   * on a random host port, from the kernel's ephemeral range), when per-build agents are enabled.
   */
  perBuildAgentPorts?: { first: number; last: number };
  /** Tags put on every resource that takes them. */
  tags: string[];
}

/**
 * The stack's private network: network, subnet, router to the external network, and the security
 * groups (least privilege: each port only from the sources that need it; no rule is open to the
 * world unless the stack opted in with `allowWorld`, which config validation enforces).
 */
export class CiNetwork extends pulumi.ComponentResource {
  public readonly networkId: pulumi.Output<string>;
  public readonly subnetId: pulumi.Output<string>;
  /** Security groups every CI host's port carries. */
  public readonly securityGroupIds: pulumi.Output<string>[];
  /** The ingress rules, as declared (for outputs and review). */
  public readonly ingressRules: IngressRule[];

  constructor(name: string, args: CiNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("berth:network:CiNetwork", name, {}, opts);
    const child = { parent: this };

    const network = new openstack.networking.Network(
      `${name}-net`,
      { name: `${name}-net`, adminStateUp: true, tags: args.tags },
      child,
    );
    const subnet = new openstack.networking.Subnet(
      `${name}-subnet`,
      {
        name: `${name}-subnet`,
        networkId: network.id,
        cidr: args.cidr,
        ipVersion: 4,
        dnsNameservers: args.dnsServers,
        // Hosts take fixed addresses from .11 up; DHCP hands out the upper part of the range.
        allocationPools: [dhcpPool(args.cidr)],
        tags: args.tags,
      },
      child,
    );
    const router = new openstack.networking.Router(
      `${name}-router`,
      { name: `${name}-router`, externalNetworkId: args.externalNetworkId, tags: args.tags },
      child,
    );
    new openstack.networking.RouterInterface(
      `${name}-router-if`,
      { routerId: router.id, subnetId: subnet.id },
      child,
    );

    const rules: IngressRule[] = [
      ...args.adminCidrs.map((cidr) => ({
        purpose: "ssh",
        portMin: HOST_SSH_PORT,
        portMax: HOST_SSH_PORT,
        cidr,
      })),
      ...args.registryPorts.flatMap((port) =>
        [args.cidr, ...args.registryClientCidrs].map((cidr) => ({
          purpose: `registry-${port}`,
          portMin: port,
          portMax: port,
          cidr,
        })),
      ),
      ...(args.agentPorts
        ? [
            {
              purpose: "jenkins-agents",
              portMin: args.agentPorts.first,
              portMax: args.agentPorts.last,
              cidr: args.controllerCidr,
            },
          ]
        : []),
      ...(args.dockerTlsPort !== undefined
        ? [
            {
              purpose: "docker-tls",
              portMin: args.dockerTlsPort,
              portMax: args.dockerTlsPort,
              cidr: args.controllerCidr,
            },
          ]
        : []),
      ...(args.perBuildAgentPorts
        ? [
            {
              purpose: "per-build-agents",
              portMin: args.perBuildAgentPorts.first,
              portMax: args.perBuildAgentPorts.last,
              cidr: args.controllerCidr,
            },
          ]
        : []),
    ];
    this.ingressRules = rules;

    const group = new openstack.networking.SecGroup(
      `${name}-hosts`,
      {
        name: `${name}-hosts`,
        description:
          "Berth CI hosts: SSH from admins, registry from CI, agents and dockerd TLS from the Jenkins controller",
        tags: args.tags,
      },
      child,
    );
    const counts = new Map<string, number>();
    for (const r of rules) {
      const n = (counts.get(r.purpose) ?? 0) + 1;
      counts.set(r.purpose, n);
      new openstack.networking.SecGroupRule(
        `${name}-${r.purpose}-${n}`,
        {
          securityGroupId: group.id,
          direction: "ingress",
          ethertype: "IPv4",
          protocol: "tcp",
          portRangeMin: r.portMin,
          portRangeMax: r.portMax,
          remoteIpPrefix: r.cidr,
          description: `${r.purpose} from ${r.cidr}`,
        },
        child,
      );
    }
    // ICMP inside the CI network (path MTU discovery, ping between hosts).
    new openstack.networking.SecGroupRule(
      `${name}-icmp-internal`,
      {
        securityGroupId: group.id,
        direction: "ingress",
        ethertype: "IPv4",
        protocol: "icmp",
        remoteIpPrefix: args.cidr,
        description: "ICMP from the CI network",
      },
      child,
    );

    this.networkId = network.id;
    this.subnetId = subnet.id;
    this.securityGroupIds = [group.id];
    this.registerOutputs({ networkId: this.networkId, subnetId: this.subnetId, securityGroupId: group.id });
  }
}

/** The DHCP allocation pool: the upper half of the subnet, clear of the hosts' fixed addresses. */
export function dhcpPool(cidr: string): { start: string; end: string } {
  const size = parseCidr(cidr)?.size ?? 0;
  return { start: cidrHost(cidr, Math.floor(size / 2)), end: cidrHost(cidr, size - 2) };
}
