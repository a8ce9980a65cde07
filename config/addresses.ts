/**
 * The address plan of a stack, in one place (pure): every address and range the program uses or
 * must keep clear of, and the ingress rules the CI network's security group declares. Validation
 * (config/validate-network.ts), the typed configuration (config/load.ts), the components
 * (components/network.ts, components/services.ts, components/environment.ts) and the host layer
 * (stack/host-ignition.ts) all take their addresses from here.
 *
 * On the OpenStack CI network (`berth:openstack.networkCidr`, a /n of size S):
 *
 *     .0 network · .1 router (gateway) · .2-.10 free · .11 … hosts (fixed, from HOST_OFFSET up)
 *     S/2 … S-2: DHCP allocation pool (Neutron's DHCP and other ports) · S-1 broadcast
 *
 * so the hosts must end below S/2. On each host, docker0 is {@link DOCKER_BRIDGE_BIP}; the
 * `ci-services` bridge (`berth:services.subnet`, size T) has its gateway at .1, dnsmasq at .2 by
 * default and production-like services at fixed addresses below T/2, and hands out the upper half
 * (T/2 … T-2) to containers without a fixed address (agents, network holders, per-build agents).
 * Per-build agents' SSH ports are the host's ephemeral ports (config/ports.ts).
 */
import { type Cidr, formatIpv4, parseCidr } from "./net.ts";
import { internalError } from "./errors.ts";
import {
  EPHEMERAL_PORTS,
  METRICS_PORTS,
  REGISTRY_HTTPS_PORT,
  RULE_PURPOSES,
  metricsPurpose,
  SSH_PORT,
  registryPurpose,
  ruleDescription,
  slotPurpose,
} from "./ports.ts";

// --- the OpenStack CI network --------------------------------------------------------------------

/** Host n (from 0) of a stack has the address HOST_OFFSET + n of the CI network. */
export const HOST_OFFSET = 11;

/** An inclusive range of IPv4 addresses, as numbers. */
export interface Ipv4Range {
  first: number;
  last: number;
}

export const formatRange = (r: Ipv4Range): string => `${formatIpv4(r.first)}-${formatIpv4(r.last)}`;

/** The DHCP allocation pool of the CI subnet: its upper half, less the broadcast address. */
export function dhcpPoolRange(net: Cidr): Ipv4Range {
  return { first: net.network + Math.floor(net.size / 2), last: net.network + net.size - 2 };
}

/** How many hosts fit between HOST_OFFSET and the DHCP pool. */
export function hostCapacity(net: Cidr): number {
  return Math.max(0, Math.floor(net.size / 2) - HOST_OFFSET);
}

/** The longest prefix (smallest network) whose hosts' range holds `count` hosts. */
export function networkPrefixFor(count: number): number {
  return 32 - Math.ceil(Math.log2(2 * (count + HOST_OFFSET)));
}

/** The hosts' fixed addresses: HOST_OFFSET, HOST_OFFSET + 1, … of the CI network. */
export function hostRange(net: Cidr, count: number): Ipv4Range {
  return { first: net.network + HOST_OFFSET, last: net.network + HOST_OFFSET + count - 1 };
}

export interface CiNetworkPlan {
  /** Each host's fixed address, host 1 first. */
  hosts: string[];
  /** The DHCP allocation pool, as the subnet declares it. */
  dhcpPool: { start: string; end: string };
}

/** The CI network's plan. Throws (a bug check: validation refuses this first) when hosts do not fit. */
export function ciNetworkPlan(networkCidr: string, hostCount: number): CiNetworkPlan {
  const net = parseCidr(networkCidr);
  if (!net || net.hostBits) throw internalError(`${networkCidr} is not a network`);
  if (hostCount > hostCapacity(net))
    throw internalError(`${hostCount} hosts do not fit below the DHCP pool of ${networkCidr}`);
  const pool = dhcpPoolRange(net);
  return {
    hosts: Array.from({ length: hostCount }, (_, i) => formatIpv4(net.network + HOST_OFFSET + i)),
    dhcpPool: { start: formatIpv4(pool.first), end: formatIpv4(pool.last) },
  };
}

// --- docker0 -------------------------------------------------------------------------------------

/** docker0's address and prefix (the `bip` of every host's daemon.json). */
export const DOCKER_BRIDGE_BIP = "172.17.0.1/16";
/** docker0's address: host-side services for jobs (the minimal set) bind here. */
export const DOCKER_BRIDGE_GATEWAY = DOCKER_BRIDGE_BIP.split("/")[0] as string;
/** docker0's network. */
export const DOCKER_BRIDGE_NETWORK = "172.17.0.0/16";

/**
 * Ranges no CI network or services subnet may overlap: the host routes them elsewhere (docker0,
 * loopback) or they are not unicast networks at all.
 */
export const RESERVED_RANGES: readonly { cidr: string; what: string }[] = [
  { cidr: "0.0.0.0/8", what: `"this network" (0.0.0.0/8)` },
  { cidr: "127.0.0.0/8", what: "loopback (127.0.0.0/8)" },
  { cidr: "169.254.0.0/16", what: "link-local (169.254.0.0/16, the metadata service's range)" },
  { cidr: DOCKER_BRIDGE_NETWORK, what: `docker0 (${DOCKER_BRIDGE_NETWORK}, bip ${DOCKER_BRIDGE_BIP})` },
  { cidr: "224.0.0.0/4", what: "multicast (224.0.0.0/4)" },
  { cidr: "240.0.0.0/4", what: "reserved space (240.0.0.0/4)" },
];

// --- the ci-services network on each host ----------------------------------------------------------

/** The smallest services subnet: /29 (gateway, dnsmasq, one service; four dynamic addresses). */
export const MIN_SERVICES_PREFIX = 29;

/**
 * The range a `ci-services` network hands out to containers that ask for no address (agents,
 * network holders, per-build containers): the upper half of the subnet, as `ipRange` of its IPAM
 * configuration. Fixed addresses (gateway, dnsmasq, production-like services) live below it.
 * Docker's IPAM reserves the subnet's broadcast address, the last of this range, so `room` is its
 * size less one.
 */
export function servicesDynamicRange(subnet: Cidr): Cidr & { room: number } {
  const size = subnet.size / 2;
  return { network: subnet.network + size, prefix: subnet.prefix + 1, size, room: size - 1 };
}

export interface ServicesPlan {
  gateway: string;
  /** dnsmasq's address: the configured one, else the subnet's second address. */
  dnsAddress: string;
  /** The dynamic range, as the network's `ipRange`. */
  ipRange: string;
}

/** The ci-services network's plan. Throws (a bug check) on a subnet validation refuses. */
export function servicesPlan(subnet: string, dnsAddress?: string): ServicesPlan {
  const s = parseCidr(subnet);
  if (!s || s.hostBits || s.prefix > MIN_SERVICES_PREFIX)
    throw internalError(`services subnet ${subnet} must be an IPv4 network of /29 or larger`);
  const dynamic = servicesDynamicRange(s);
  return {
    gateway: formatIpv4(s.network + 1),
    dnsAddress: dnsAddress ?? formatIpv4(s.network + 2),
    ipRange: `${formatIpv4(dynamic.network)}/${dynamic.prefix}`,
  };
}

// --- ingress rules --------------------------------------------------------------------------------

/** What the CI network's security group lets in, from the stack's configuration. */
export interface IngressInput {
  /** The CI network: it reaches the registry. */
  networkCidr: string;
  /** Sources of SSH. */
  adminCidrs: readonly string[];
  /** Further sources of the registry ports. */
  registryClientCidrs: readonly string[];
  /** The pull-through mirror's port, when enabled. */
  mirrorPort?: number;
  /** Source of agent SSH, dockerd TLS and per-build agents. */
  controllerCidr: string;
  /** Agent n (from 1) listens on basePort + n. */
  basePort: number;
  agentsPerHost: number;
  /** dockerd's mutual-TLS port, when hosts expose it. */
  dockerTlsPort?: number;
  /** Per-build agents enabled: the controller reaches the ephemeral ports. */
  perBuild: boolean;
  /** Sources of the metric endpoints (`berth:monitoring.cidrs`); none, no rule. */
  monitoringCidrs?: readonly string[];
  /** Application slots' ports (`berth:services.slots[].port`), opened to {@link slotCidrs} only. */
  slotPorts?: readonly number[];
  /** Developers' sources of the slots' ports (`berth:services.slotCidrs`); none, no rule. */
  slotCidrs?: readonly string[];
}

/** One ingress rule of the CI hosts' security group (TCP, IPv4). */
export interface IngressRule {
  /** What the rule allows, e.g. `ssh`, `registry-443`: the first word of its description. */
  purpose: string;
  portMin: number;
  portMax: number;
  /** Source CIDR. */
  cidr: string;
  /** `<purpose> from <cidr>`. */
  description: string;
  /** The configuration field this rule's source comes from, e.g. `berth:openstack.adminCidrs[1]`. */
  field: string;
  /** The list that field belongs to (the field itself for single values). */
  list: string;
}

/** The CI hosts' ingress rules, in the order the security group declares them. */
export function ingressRules(i: IngressInput): IngressRule[] {
  const rules: IngressRule[] = [];
  const add = (
    purpose: string,
    portMin: number,
    portMax: number,
    cidr: string,
    field: string,
    list: string,
  ) =>
    rules.push({ purpose, portMin, portMax, cidr, description: ruleDescription(purpose, cidr), field, list });
  i.adminCidrs.forEach((c, n) =>
    add(
      RULE_PURPOSES.ssh,
      SSH_PORT,
      SSH_PORT,
      c,
      `berth:openstack.adminCidrs[${n}]`,
      "berth:openstack.adminCidrs",
    ),
  );
  const registryPorts = [REGISTRY_HTTPS_PORT, ...(i.mirrorPort !== undefined ? [i.mirrorPort] : [])];
  for (const port of registryPorts) {
    add(
      registryPurpose(port),
      port,
      port,
      i.networkCidr,
      "berth:openstack.networkCidr",
      "berth:openstack.networkCidr",
    );
    i.registryClientCidrs.forEach((c, n) =>
      add(
        registryPurpose(port),
        port,
        port,
        c,
        `berth:openstack.registryClientCidrs[${n}]`,
        "berth:openstack.registryClientCidrs",
      ),
    );
  }
  const controller = (purpose: string, min: number, max: number) =>
    add(purpose, min, max, i.controllerCidr, "berth:jenkins.controllerCidr", "berth:jenkins.controllerCidr");
  if (i.agentsPerHost > 0)
    controller(RULE_PURPOSES.jenkinsAgents, i.basePort + 1, i.basePort + i.agentsPerHost);
  if (i.dockerTlsPort !== undefined) controller(RULE_PURPOSES.dockerTls, i.dockerTlsPort, i.dockerTlsPort);
  // The controller connects to each per-build agent's randomly published SSH port.
  if (i.perBuild) controller(RULE_PURPOSES.perBuildAgents, EPHEMERAL_PORTS.first, EPHEMERAL_PORTS.last);
  // Each metric port on its own rule: one range would open everything between 5001 and 9323.
  for (const port of [METRICS_PORTS.node, METRICS_PORTS.dockerd, METRICS_PORTS.registry])
    (i.monitoringCidrs ?? []).forEach((c, n) =>
      add(metricsPurpose(port), port, port, c, `berth:monitoring.cidrs[${n}]`, "berth:monitoring.cidrs"),
    );
  // One rule per slot port and developer source (named slot-<port>-from-<cidr>).
  for (const port of i.slotPorts ?? [])
    (i.slotCidrs ?? []).forEach((c, n) =>
      add(slotPurpose(port), port, port, c, `berth:services.slotCidrs[${n}]`, "berth:services.slotCidrs"),
    );
  return rules;
}

/**
 * A rule's resource name: what it allows, so that adding or removing a source leaves every other
 * rule's name alone. `ssh-22-from-198.51.100.0-27`, `jenkins-agents-2201-2203-from-198.51.100.40-32`.
 */
export function ruleName(r: Pick<IngressRule, "purpose" | "portMin" | "portMax" | "cidr">): string {
  const kind = r.purpose.replace(/-\d+$/, "");
  const ports = r.portMin === r.portMax ? `${r.portMin}` : `${r.portMin}-${r.portMax}`;
  return `${kind}-${ports}-from-${r.cidr.replace("/", "-")}`;
}

/**
 * The names rules had before they were named by what they allow: `<purpose>-<n>`, n counting the
 * rules of that purpose from 1 in declaration order. Each rule keeps the name of its position as
 * an alias, so a stack deployed with the old names keeps its rules (one alias per old name).
 */
export function positionalRuleNames(rules: readonly Pick<IngressRule, "purpose">[]): string[] {
  const counts = new Map<string, number>();
  return rules.map((r) => {
    const n = (counts.get(r.purpose) ?? 0) + 1;
    counts.set(r.purpose, n);
    return `${r.purpose}-${n}`;
  });
}
