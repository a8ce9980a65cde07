/**
 * Validation of networks, addresses and exposure (pure): the cross-field checks on
 * `berth:openstack`, `berth:jenkins.controllerCidr` and `berth:services` that the address plan
 * (config/addresses.ts) needs to hold. Runs on the schema-defaulted raw values, defensively: they
 * may also have schema errors, which are reported alongside. docs/configuration.md lists each rule
 * ("Cross-field rules: networks and exposure").
 */
import type { ConfigIssue } from "./errors.ts";
import {
  type IngressRule,
  MIN_SERVICES_PREFIX,
  RESERVED_RANGES,
  dhcpPoolRange,
  formatRange,
  hostCapacity,
  hostRange,
  ingressRules,
  networkPrefixFor,
} from "./addresses.ts";
import { type Cidr, WORLD_THRESHOLD, cidrsOverlap, exposureOf, formatCount, parseCidr } from "./net.ts";
import { purposeWhat } from "./ports.ts";
import { isObj, get, int, type Obj } from "./raw.ts";

const network = (v: unknown): Cidr | undefined => {
  const c = typeof v === "string" ? parseCidr(v) : undefined;
  return c && !c.hostBits ? c : undefined;
};
const cidrList = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((c) => typeof c === "string") ? (v as string[]) : undefined;

/** Every network, address and exposure problem of the raw (defaulted) values. */
export function networkIssues(raw: Obj): ConfigIssue[] {
  return [...hostIssues(raw), ...overlapIssues(raw), ...duplicateIssues(raw), ...ruleIssues(raw)];
}

/** The hosts' fixed addresses must lie between HOST_OFFSET and the DHCP pool. */
function hostIssues(raw: Obj): ConfigIssue[] {
  const netRaw = get(raw, "openstack", "networkCidr");
  const net = network(netRaw);
  const count = int(get(raw, "hosts", "count"));
  if (!net || count === undefined || count < 1 || count <= hostCapacity(net)) return [];
  const hosts = hostRange(net, count);
  const pool = dhcpPoolRange(net);
  const inside = hosts.last >= net.network + net.size;
  return [
    {
      path: "berth:openstack.networkCidr",
      message:
        `${String(netRaw)} cannot hold berth:hosts.count ${count}: the hosts take ${formatRange(hosts)}` +
        (inside
          ? `, past the end of the network`
          : `, but ${formatRange(pool)} (its upper half, less the broadcast address) is the DHCP pool Neutron hands to other ports`) +
        `; ${hostCapacity(net)} host${hostCapacity(net) === 1 ? "" : "s"} fit. ` +
        `Use a /${networkPrefixFor(count)} or larger network, or fewer hosts`,
    },
  ];
}

const inside = (inner: Cidr, outer: Cidr) =>
  inner.network >= outer.network && inner.network + inner.size <= outer.network + outer.size;

/** Networks that the hosts route elsewhere, or that overlap each other. */
function overlapIssues(raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const netRaw = get(raw, "openstack", "networkCidr");
  const subnetRaw = get(raw, "services", "subnet");
  const controllerRaw = get(raw, "jenkins", "controllerCidr");
  const net = network(netRaw);
  const subnet = network(subnetRaw);
  const controller = network(controllerRaw);
  const reservedHits = (c: Cidr, clash: (r: Cidr) => boolean) =>
    RESERVED_RANGES.filter((r) => clash(parseCidr(r.cidr) as Cidr)).map((r) => r.what);
  // A network the hosts have must not share a single address with these ranges.
  for (const [path, c, v, what, fix] of [
    ["berth:openstack.networkCidr", net, netRaw, "the CI network", "10.42.0.0/24"],
    ["berth:services.subnet", subnet, subnetRaw, "the ci-services bridge", "172.30.0.0/24"],
  ] as const) {
    const hits = c ? reservedHits(c, (r) => cidrsOverlap(c, r)) : [];
    if (hits.length > 0)
      issues.push({
        path,
        message: `${String(v)} overlaps ${hits.join(" and ")}, which every host routes elsewhere or cannot use; ${what} must be clear of it: pick a private range such as ${fix}`,
      });
  }
  // The controller reaches dockerd TLS and the agents: replies to an address in docker0 or loopback
  // never leave the host. (A wider source range is judged by its exposure instead.)
  const controllerHits = controller ? reservedHits(controller, (r) => inside(controller, r)) : [];
  if (controllerHits.length > 0)
    issues.push({
      path: "berth:jenkins.controllerCidr",
      message: `${String(controllerRaw)} lies inside ${controllerHits.join(" and ")}: the hosts' replies to it would never leave the host; give the controller's real address`,
    });
  if (subnet && net && cidrsOverlap(subnet, net))
    issues.push({
      path: "berth:services.subnet",
      message: `${String(subnetRaw)} overlaps berth:openstack.networkCidr ${String(netRaw)}; pick a separate range such as 172.30.0.0/24`,
    });
  // Unless the controller's range is wider and only contains the subnet (a broad source range).
  if (
    subnet &&
    controller &&
    cidrsOverlap(subnet, controller) &&
    !(inside(subnet, controller) && controller.prefix < subnet.prefix)
  )
    issues.push({
      path: "berth:services.subnet",
      message: `${String(subnetRaw)} overlaps berth:jenkins.controllerCidr ${String(controllerRaw)}: the hosts would send the controller's traffic into the ci-services bridge; pick a range clear of it`,
    });
  if (subnet && subnet.prefix > MIN_SERVICES_PREFIX)
    issues.push({
      path: "berth:services.subnet",
      message: `is too small; use /${MIN_SERVICES_PREFIX} or larger`,
    });
  return issues;
}

/** A list naming the same network twice would declare the same security-group rule twice. */
function duplicateIssues(raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const lists: [string, unknown][] = [
    ["berth:openstack.adminCidrs", get(raw, "openstack", "adminCidrs")],
    ["berth:openstack.registryClientCidrs", get(raw, "openstack", "registryClientCidrs")],
    ["berth:monitoring.cidrs", get(raw, "monitoring", "cidrs")],
    ["berth:services.slotCidrs", get(raw, "services", "slotCidrs")],
    // Neutron refuses a subnet naming the same DNS server twice.
    ["berth:openstack.dnsServers", get(raw, "openstack", "dnsServers")],
  ];
  for (const [path, v] of lists) {
    const items = cidrList(v);
    if (!items) continue;
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      const c = parseCidr(item.includes("/") ? item : `${item}/32`);
      if (!c) return;
      const key = `${c.network}/${c.prefix}`;
      const first = seen.get(key);
      if (first !== undefined)
        issues.push({
          path: `${path}[${i}]`,
          message: `repeats ${path}[${first}] (${items[first]}); remove it`,
        });
      else seen.set(key, i);
    });
  }
  // The CI network always reaches the registry: listing it, or part of it, again adds nothing but
  // a second rule for the same source (Neutron refuses an identical rule).
  const net = network(get(raw, "openstack", "networkCidr"));
  const clients = cidrList(get(raw, "openstack", "registryClientCidrs"));
  if (net && clients)
    clients.forEach((c, i) => {
      const p = network(c);
      if (p && p.network >= net.network && p.network + p.size <= net.network + net.size)
        issues.push({
          path: `berth:openstack.registryClientCidrs[${i}]`,
          message: `${c} is ${p.prefix === net.prefix ? "" : "inside "}berth:openstack.networkCidr, which reaches the registry already; remove it`,
        });
    });
  return issues;
}

/** The rules the security group would declare, from the raw values; undefined when they are not readable. */
function rulesOf(raw: Obj): IngressRule[] | undefined {
  const networkCidr = get(raw, "openstack", "networkCidr");
  const adminCidrs = cidrList(get(raw, "openstack", "adminCidrs"));
  const registryClientCidrs = cidrList(get(raw, "openstack", "registryClientCidrs"));
  const controllerCidr = get(raw, "jenkins", "controllerCidr");
  const basePort = int(get(raw, "jenkins", "basePort"));
  const agentsPerHost = int(get(raw, "jenkins", "agentsPerHost"));
  const mirror = get(raw, "registry", "pullThroughCache");
  const mirrorPort = int(get(mirror, "port"));
  const tls = get(raw, "hosts", "dockerTls") === true;
  const tlsPort = int(get(raw, "hosts", "dockerTlsPort"));
  const monitoringCidrs = cidrList(get(raw, "monitoring", "cidrs"));
  if (typeof networkCidr !== "string" || typeof controllerCidr !== "string") return undefined;
  if (!adminCidrs || !registryClientCidrs || basePort === undefined || agentsPerHost === undefined)
    return undefined;
  if (!monitoringCidrs) return undefined;
  // Application slots: one rule per port and developer source (ports checked by validate-slots.ts).
  const slots = get(raw, "services", "slots");
  const slotPorts = Array.isArray(slots)
    ? slots.map((s) => int(get(s, "port"))).filter((p): p is number => p !== undefined)
    : [];
  const slotCidrs = cidrList(get(raw, "services", "slotCidrs")) ?? [];
  if ((isObj(mirror) && mirrorPort === undefined) || (tls && tlsPort === undefined)) return undefined;
  return ingressRules({
    networkCidr,
    adminCidrs,
    registryClientCidrs,
    ...(isObj(mirror) && mirrorPort !== undefined ? { mirrorPort } : {}),
    controllerCidr,
    basePort,
    agentsPerHost,
    ...(tls && tlsPort !== undefined ? { dockerTlsPort: tlsPort } : {}),
    perBuild: get(raw, "jenkins", "perBuild", "enabled") === true,
    monitoringCidrs,
    slotPorts: [...new Set(slotPorts)],
    slotCidrs,
  });
}

const portsText = (r: Pick<IngressRule, "portMin" | "portMax">) =>
  r.portMin === r.portMax ? `port ${r.portMin}` : `ports ${r.portMin}-${r.portMax}`;
const overlapsPorts = (a: IngressRule, b: IngressRule) => a.portMin <= b.portMax && b.portMin <= a.portMax;

/**
 * Exposure: every port is judged by the union of the address space of all the rules that open it,
 * so a world-open range split into pieces (halves, quarters, many /2s) counts as what it is.
 * Uniqueness: no two rules may be identical (same ports and source), which Neutron refuses.
 */
function ruleIssues(raw: Obj): ConfigIssue[] {
  const rules = rulesOf(raw);
  if (!rules) return [];
  const issues: ConfigIssue[] = [];
  const allowWorld = get(raw, "openstack", "allowWorld") === true;
  if (!allowWorld) {
    const reported = new Set<string>();
    for (const r of rules) {
      const alone = exposureOf([r.cidr]);
      const sharing = rules.filter((o) => overlapsPorts(o, r));
      const together = exposureOf(sharing.map((o) => o.cidr));
      // Only sources that add public space are to blame (the private CI network is not).
      if (!together.world || alone.publicIpv4 + alone.publicIpv6 === 0n) continue;
      const path = alone.world ? r.field : r.list;
      if (reported.has(path)) continue;
      reported.add(path);
      const fields = [...new Set(sharing.map((o) => o.list))];
      const what = purposeWhat(r.purpose) ?? r.purpose;
      const opened = alone.world ? exposureOf([r.cidr]) : together;
      const sources = alone.world ? r.cidr : [...new Set(sharing.map((o) => o.cidr))].join(", ");
      issues.push({
        path,
        message:
          `opens ${what} (tcp ${portsText(r)}) to ${formatCount(opened.publicIpv4)} public addresses (${sources}` +
          `${alone.world || fields.length === 1 ? "" : `, from ${fields.join(" and ")}`}), more than the ${formatCount(WORLD_THRESHOLD.ipv4)} (a /16's worth) ` +
          `a rule set may open without berth:openstack.allowWorld: that is the Internet, in pieces or whole. ` +
          `List only the networks that need it, or set berth:openstack.allowWorld: true to opt in explicitly`,
      });
    }
  }
  const seen = new Map<string, IngressRule>();
  for (const r of rules) {
    const c = parseCidr(r.cidr);
    if (!c) continue;
    const key = `${r.portMin}-${r.portMax}:${c.network}/${c.prefix}`;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, r);
      continue;
    }
    // The same purpose twice: a repeated list entry, or a registry client inside the CI network,
    // both reported above as such.
    if (first.purpose === r.purpose) continue;
    issues.push({
      path: r.field,
      message: `would open tcp ${portsText(r)} from ${r.cidr} a second time (as "${r.purpose}", already "${first.purpose}" from ${first.field}); Neutron refuses identical rules: change one of the ports or sources`,
    });
  }
  return issues;
}
