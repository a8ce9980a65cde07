import type { BerthConfig } from "../config/types.ts";

/** The short summary `berth validate` prints for a valid stack. */
export function summarize(c: BerthConfig): string {
  const h = c.hosts;
  const j = c.jenkins;
  const ports = j.agentsPerHost === 0 ? "none" : `ports ${j.basePort + 1}-${j.basePort + j.agentsPerHost}`;
  const lines = [
    `stack ${c.stack} (${c.environment}${c.preview ? `, PR #${c.preview.pr}, expires ${c.preview.ttlHours}h after creation` : ""}): configuration is valid`,
    `  hosts:     ${h.count} x ${h.flavor} (${h.os}), ${h.dockerVolumeSize} GiB btrfs docker volume each${h.protectData ? ", data protected" : ""}: ${h.names.join(", ")}`,
    `  network:   ${c.openstack.networkCidr} via ${c.openstack.externalNetwork}; SSH from ${c.openstack.adminCidrs.join(", ")}`,
    `  registry:  https://${c.registry.hostname} on ${c.registry.host} (${c.registry.tls.mode} TLS, users ${c.registry.users.map((u) => u.name).join(", ")})${c.registry.pullThroughCache ? `, pull-through cache of ${c.registry.pullThroughCache.remoteUrl} on :${c.registry.pullThroughCache.port}` : ""}`,
    `  jenkins:   ${j.agentsPerHost} SSH agents per host (${ports}), from ${j.controllerCidr}${j.dockerSocket ? ", docker socket mounted" : ""}`,
    `  services:  minimal ${c.services.minimal.join(", ") || "none"}; production-like ${c.services.productionLike.map((s) => s.name).join(", ") || "none"} on ${c.services.subnet}, names under ${c.dns.searchDomains.join(", ")}`,
  ];
  return lines.join("\n");
}
