/**
 * Compares two plans (`plan.json` of a base ref and of the working tree) for a pull-request
 * comment: what is added, changed and removed, and which servers will be replaced because an
 * input that forces a new server (above all their Ignition user data) changed.
 */
import type { Plan, PlanHost, PlanResource } from "./plan.ts";

/** Inputs whose change makes the provider replace the resource rather than update it. */
export const REPLACE_ON: Record<string, string[]> = {
  "openstack:compute/instance:Instance": [
    "userData",
    "blockDevices",
    "keyPair",
    "availabilityZone",
    "networks",
    "configDrive",
    "schedulerHints",
  ],
  "openstack:blockstorage/volume:Volume": ["availabilityZone", "volumeType", "snapshotId", "imageId"],
  "openstack:networking/port:Port": ["networkId"],
  // Neutron security group rules are immutable: any change is a new rule.
  "openstack:networking/secGroupRule:SecGroupRule": [
    "direction",
    "ethertype",
    "protocol",
    "portRangeMin",
    "portRangeMax",
    "remoteIpPrefix",
    "remoteGroupId",
    "securityGroupId",
    "description",
  ],
  "openstack:networking/subnet:Subnet": ["cidr", "networkId", "ipVersion"],
  "docker:index/container:Container": [
    "image",
    "envs",
    "ports",
    "volumes",
    "mounts",
    "uploads",
    "command",
    "entrypoints",
    "networksAdvanced",
    "labels",
    "healthcheck",
    "user",
    "dns",
    "dnsSearch",
    "securityOpts",
  ],
};

export interface ResourceChange {
  urn: string;
  type: string;
  name: string;
  /** Top-level inputs whose value differs. */
  fields: string[];
  /** Of `fields`, those that differ only in a secret value (reported, never shown). */
  secretFields: string[];
  replace: boolean;
  /** The name the resource had in the base plan, when it is matched through one of its aliases. */
  renamedFrom?: string;
}

export interface PlanDiff {
  stack: string;
  added: PlanResource[];
  removed: PlanResource[];
  changed: ResourceChange[];
  /** Servers whose Ignition changed: replaced on `pulumi up`. */
  replacedHosts: string[];
  /**
   * Hosts whose Docker volume is deleted (removed, or replaced by one under another name, as when
   * `hosts.storageDriver` changes): everything in /var/lib/docker on them is lost.
   */
  lostDockerVolumes: { host: string; volume: string; protect: boolean }[];
  /**
   * False when secret inputs could not be compared: this plan has secret digests and the base
   * plan has none (it was made by a Berth older than them).
   */
  secretsCompared: boolean;
}

const stable = (v: unknown): string => JSON.stringify(v);
const VOLUME_TYPE = "openstack:blockstorage/volume:Volume";

export function diffPlans(base: Plan, head: Plan): PlanDiff {
  const before = new Map(base.resources.map((r) => [r.urn, r]));
  const after = new Map(head.resources.map((r) => [r.urn, r]));
  // A resource with a new URN that names a base resource among its aliases is that resource, renamed:
  // Pulumi's engine matches it the same way (each old URN at most once) and updates it in place.
  const renamed = new Map<string, PlanResource>();
  const claimed = new Set<string>();
  for (const r of head.resources) {
    if (before.has(r.urn)) continue;
    const old = (r.aliases ?? []).find((a) => before.has(a) && !after.has(a) && !claimed.has(a));
    if (old === undefined) continue;
    claimed.add(old);
    renamed.set(r.urn, before.get(old) as PlanResource);
  }
  const added = head.resources.filter((r) => !before.has(r.urn) && !renamed.has(r.urn));
  const removed = base.resources.filter((r) => !after.has(r.urn) && !claimed.has(r.urn));
  const changed: ResourceChange[] = [];
  const baseHosts = new Map<string, PlanHost>(base.hosts.map((h) => [h.name, h]));
  for (const r of head.resources) {
    const from = renamed.get(r.urn);
    const b = before.get(r.urn) ?? from;
    if (!b) continue;
    const ai = (r.inputs ?? {}) as Record<string, unknown>;
    const bi = (b.inputs ?? {}) as Record<string, unknown>;
    const fields = [...new Set([...Object.keys(ai), ...Object.keys(bi)])]
      .filter((k) => stable(ai[k]) !== stable(bi[k]))
      .sort();
    // Masked values look equal; their digests (when both plans have them) do not.
    const secretFields: string[] = [];
    const ad = r.secretDigests;
    const bd = b.secretDigests;
    if (ad && bd)
      for (const k of [...new Set([...Object.keys(ad), ...Object.keys(bd)])].sort())
        if (ad[k] !== bd[k] && !fields.includes(k)) {
          fields.push(k);
          secretFields.push(k);
        }
    // Secret inputs are masked in plans; a server's Ignition is compared through its digest.
    if (r.type === "openstack:compute/instance:Instance") {
      const host = head.hosts.find((h) => r.name === `${h.name}-server`);
      const prev = host ? baseHosts.get(host.name) : undefined;
      if (host && prev && host.userDataDigest !== prev.userDataDigest && !fields.includes("userData"))
        fields.push("userData");
    }
    fields.sort();
    if (fields.length === 0 && !from) continue;
    const replaceOn = REPLACE_ON[r.type] ?? [];
    changed.push({
      urn: r.urn,
      type: r.type,
      name: r.name,
      fields,
      secretFields,
      replace: fields.some((f) => replaceOn.includes(f)),
      ...(from ? { renamedFrom: from.name } : {}),
    });
  }
  const replacedHosts = changed
    .filter((c) => c.type === "openstack:compute/instance:Instance" && c.replace)
    .map((c) => c.name.replace(/-server$/, ""))
    .sort();
  // A CI host's Docker volume is the Volume child of its berth:host:CiHost component.
  const hostOfVolume = (r: PlanResource) =>
    r.type === VOLUME_TYPE && r.parent && /[:$]berth:host:CiHost::[^:]+$/.test(r.parent)
      ? r.parent.slice(r.parent.lastIndexOf("::") + 2)
      : undefined;
  const lostDockerVolumes = [
    ...removed.map((r) => ({ r, protect: r.protect })),
    ...changed
      .filter((c) => c.replace)
      .map((c) => before.get(c.urn) ?? renamed.get(c.urn))
      .filter((r): r is PlanResource => r !== undefined)
      .map((r) => ({ r, protect: r.protect })),
  ]
    .map(({ r, protect }) => ({ host: hostOfVolume(r), volume: r.name, protect }))
    .filter((v): v is { host: string; volume: string; protect: boolean } => v.host !== undefined)
    .sort((a, b) => (a.volume < b.volume ? -1 : a.volume > b.volume ? 1 : 0));
  const digests = (p: Plan) => p.resources.some((r) => r.secretDigests !== undefined);
  const secretsCompared = !digests(head) || digests(base);
  return { stack: head.stack, added, removed, changed, replacedHosts, lostDockerVolumes, secretsCompared };
}

const short = (t: string) => t.replace(/^([a-z]+):[^:]*:/, "$1:");

export function renderDiffMarkdown(d: PlanDiff, against: string): string {
  const lines: string[] = [`### \`${d.stack}\` against \`${against}\``, ""];
  const uncompared = d.secretsCompared
    ? []
    : [
        `_Secret inputs were not compared: the plan of \`${against}\` carries no secret digests (made by an older Berth)._`,
        "",
      ];
  if (d.added.length + d.removed.length + d.changed.length === 0) {
    lines.push("No changes.", "", ...uncompared);
    return lines.join("\n");
  }
  const lost = new Set(d.lostDockerVolumes.map((v) => v.host));
  const kept = d.replacedHosts.filter((h) => !lost.has(h));
  if (d.replacedHosts.length > 0)
    lines.push(
      `> [!WARNING]`,
      `> **${d.replacedHosts.length} server${d.replacedHosts.length === 1 ? "" : "s"} will be replaced**: ${d.replacedHosts.map((h) => `\`${h}\``).join(", ")}. Their Ignition (first-boot configuration) changed; \`pulumi up\` deletes and recreates them${kept.length === d.replacedHosts.length ? " (the docker volumes are kept)" : kept.length > 0 ? ` (the docker volumes of ${kept.map((h) => `\`${h}\``).join(", ")} are kept)` : ""}.`,
      "",
    );
  if (d.lostDockerVolumes.length > 0) {
    const protectedOnes = d.lostDockerVolumes.filter((v) => v.protect);
    lines.push(
      `> [!CAUTION]`,
      `> **${d.lostDockerVolumes.length} Docker volume${d.lostDockerVolumes.length === 1 ? "" : "s"} will be deleted**: ${d.lostDockerVolumes.map((v) => `\`${v.volume}\``).join(", ")} (/var/lib/docker of ${[...lost].map((h) => `\`${h}\``).join(", ")}), e.g. because \`hosts.storageDriver\` changed. Everything Docker kept there is lost: images are pulled again, and Docker volumes (the registry's images, agents' workspaces, services' data) are gone.` +
        (protectedOnes.length > 0
          ? ` ${protectedOnes.map((v) => `\`${v.volume}\``).join(", ")} ${protectedOnes.length === 1 ? "is" : "are"} protected (\`hosts.protectData\`): \`pulumi up\` refuses to delete ${protectedOnes.length === 1 ? "it" : "them"} until that is set to false.`
          : ""),
      "",
    );
  }
  const renames = d.changed.filter((c) => c.renamedFrom !== undefined).length;
  lines.push(
    `**${d.added.length}** to add, **${d.changed.length}** to change (${d.changed.filter((c) => c.replace).length} replaced${renames > 0 ? `, ${renames} renamed through an alias` : ""}), **${d.removed.length}** to remove.`,
    "",
  );
  const secretChanges = d.changed.filter((c) => c.secretFields.length > 0);
  if (secretChanges.length > 0)
    lines.push(
      `> [!NOTE]`,
      `> **Secret inputs changed** (values not shown): ${secretChanges.map((c) => `\`${c.name}\` (${c.secretFields.join(", ")})`).join(", ")}.`,
      "",
    );
  lines.push(...uncompared);
  if (d.added.length > 0)
    lines.push(
      "| added | name |",
      "|---|---|",
      ...d.added.map((r) => `| ${short(r.type)} | ${r.name} |`),
      "",
    );
  if (d.changed.length > 0)
    lines.push(
      "| changed | name | inputs | action |",
      "|---|---|---|---|",
      ...d.changed.map(
        (c) =>
          `| ${short(c.type)} | ${c.renamedFrom !== undefined ? `${c.renamedFrom} → ` : ""}${c.name} | ${c.fields.map((f) => (c.secretFields.includes(f) ? `${f} (secret)` : f)).join(", ") || "—"} | ${c.replace ? "**replace**" : c.fields.length > 0 ? "update" : "rename (alias; kept)"} |`,
      ),
      "",
    );
  if (d.removed.length > 0)
    lines.push(
      "| removed | name |",
      "|---|---|",
      ...d.removed.map((r) => `| ${short(r.type)} | ${r.name} |`),
      "",
    );
  return lines.join("\n");
}
