import type { BerthConfig } from "../config/types.ts";

/** The short summary `berth validate` prints for a valid stack. */
export function summarize(c: BerthConfig): string {
  const h = c.hosts;
  const j = c.jenkins;
  const ports = j.agentsPerHost === 0 ? "none" : `ports ${j.basePort + 1}-${j.basePort + j.agentsPerHost}`;
  const lines = [
    `stack ${c.stack} (${c.environment}${c.preview ? `, PR #${c.preview.pr}, expires ${c.preview.ttlHours}h after creation` : ""}): configuration is valid`,
    `  hosts:     ${h.count} x ${h.flavor} (${h.os}), ${h.dockerVolumeSize} GiB ${h.storageDriver === "overlay2" ? "ext4 (overlay2)" : "btrfs"} docker volume each${h.protectData ? ", data protected" : ""}: ${h.names.join(", ")}`,
    `  network:   ${c.openstack.networkCidr} via ${c.openstack.externalNetwork}; SSH from ${c.openstack.adminCidrs.join(", ")}`,
    `  registry:  https://${c.registry.hostname} on ${c.registry.host} (${c.registry.tls.mode} TLS, users ${c.registry.users.map((u) => u.name).join(", ")})${c.registry.pullThroughCache ? `, pull-through cache of ${c.registry.pullThroughCache.remoteUrl} on :${c.registry.pullThroughCache.port}` : ""}`,
    `  jenkins:   ${j.agentsPerHost} SSH agents per host (${ports}), from ${j.controllerCidr}; Docker access: static agents ${j.dockerAccess.static}, per-build ${j.dockerAccess.perBuild}${j.dockerAccess.static !== "none" || j.dockerAccess.perBuild !== "none" ? " (root on the host)" : ""}`,
    `  services:  minimal ${c.services.minimal.join(", ") || "none"}; production-like ${c.services.productionLike.map((s) => s.name).join(", ") || "none"} on ${c.services.subnet}, names under ${c.dns.searchDomains.join(", ")}`,
    limitsLine(c),
  ];
  return lines.join("\n");
}

/** Each builder's limits and the fullest host's sums against the over-commit allowance (config/limits.ts). */
function limitsLine(c: BerthConfig): string {
  const l = c.limits;
  const fullest = [...l.hosts].sort((a, b) => b.memoryMiB - a.memoryMiB)[0];
  const agent = l.containers.agent;
  return (
    `  limits:    ${c.hosts.flavorSize.memoryMiB} MiB, ${c.hosts.flavorSize.vcpus} vCPUs per host; agents ${agent.memoryMiB} MiB, ${agent.cpus} CPUs each` +
    (fullest
      ? `; ${fullest.name}: ${fullest.memoryMiB} of ${l.memoryBudgetMiB} MiB, ${fullest.cpus} of ${l.cpuBudget} CPUs (overcommit memory ${l.overcommit.memory}, cpu ${l.overcommit.cpu})`
      : "")
  );
}
