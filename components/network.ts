import * as pulumi from "@pulumi/pulumi";
import { internalError } from "../config/errors.ts";
import * as openstack from "@pulumi/openstack";
import {
  type IngressInput,
  type IngressRule,
  ciNetworkPlan,
  ingressRules,
  positionalRuleNames,
  ruleName,
} from "../config/addresses.ts";

export type { IngressRule };

export interface CiNetworkArgs {
  /** CIDR of the private CI network. */
  cidr: string;
  /** Resolvers handed out by the subnet's DHCP. */
  dnsServers: string[];
  /** ID of the external network the router uses as gateway. */
  externalNetworkId: pulumi.Input<string>;
  /**
   * What the hosts' security group lets in (the CI network itself reaches the registry): admin
   * CIDRs, registry clients and ports, the Jenkins controller's CIDR and the ports it reaches.
   * The rules are {@link ingressRules} of the address plan.
   */
  ingress: Omit<IngressInput, "networkCidr">;
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
        // Hosts take fixed addresses from .11 up; DHCP hands out the upper half (config/addresses.ts).
        allocationPools: [ciNetworkPlan(args.cidr, 0).dhcpPool],
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

    const rules = ingressRules({ networkCidr: args.cidr, ...args.ingress });
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
    // Each rule is named by what it allows, so adding or removing a source renames no other rule.
    // Rules used to be named by position (`<purpose>-<n>`): each keeps the name of its position as
    // an alias, so a stack deployed with those names keeps its rules instead of replacing them.
    const positional = positionalRuleNames(rules);
    const names = new Set<string>();
    rules.forEach((r, i) => {
      const ruleResource = `${name}-${ruleName(r)}`;
      // Validation refuses identical rules (config/validate-network.ts); this is a bug check.
      if (names.has(ruleResource)) throw internalError(`two ingress rules named ${ruleResource}`);
      names.add(ruleResource);
      new openstack.networking.SecGroupRule(
        ruleResource,
        {
          securityGroupId: group.id,
          direction: "ingress",
          ethertype: "IPv4",
          protocol: "tcp",
          portRangeMin: r.portMin,
          portRangeMax: r.portMax,
          remoteIpPrefix: r.cidr,
          description: r.description,
        },
        { ...child, aliases: [{ name: `${name}-${positional[i] as string}` }] },
      );
    });
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
