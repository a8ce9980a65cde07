/** `berth plan --against`: a resource renamed with an alias is matched with its old self, as Pulumi's engine does. */
import { describe, expect, it } from "vitest";
import type { Plan, PlanResource } from "../../plan/plan.ts";
import { diffPlans, renderDiffMarkdown } from "../../plan/diff.ts";

const RULE = "openstack:networking/secGroupRule:SecGroupRule";
const urn = (name: string) => `urn:pulumi:s::berth::berth:network:CiNetwork$${RULE}::${name}`;
function rule(name: string, cidr: string, aliases?: string[]): PlanResource {
  return {
    urn: urn(name),
    type: RULE,
    name,
    parent: null,
    provider: null,
    protect: false,
    retainOnDelete: false,
    deleteBeforeReplace: false,
    inputs: { portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: cidr, description: `ssh from ${cidr}` },
    secretInputs: [],
    ...(aliases ? { aliases } : {}),
  };
}
const plan = (resources: PlanResource[]): Plan => ({
  stack: "s",
  environment: "testing",
  resources,
  hosts: [],
});

describe("plan diff through aliases", () => {
  it("an unchanged resource under a new name is a rename, not an add and a remove", () => {
    const base = plan([rule("ssh-1", "198.51.100.0/27"), rule("ssh-2", "192.0.2.10/32")]);
    const head = plan([
      rule("ssh-22-from-198.51.100.0-27", "198.51.100.0/27", [urn("ssh-1")]),
      rule("ssh-22-from-192.0.2.10-32", "192.0.2.10/32", [urn("ssh-2")]),
    ]);
    const d = diffPlans(base, head);
    expect([d.added, d.removed]).toEqual([[], []]);
    expect(d.changed.map((c) => [c.renamedFrom, c.name, c.fields, c.replace])).toEqual([
      ["ssh-1", "ssh-22-from-198.51.100.0-27", [], false],
      ["ssh-2", "ssh-22-from-192.0.2.10-32", [], false],
    ]);
    const md = renderDiffMarkdown(d, "main");
    expect(md).toContain("(0 replaced, 2 renamed through an alias)");
    expect(md).toContain("| ssh-1 → ssh-22-from-198.51.100.0-27 | — | rename (alias; kept) |");
  });

  it("an alias onto a resource with other inputs is a replacement (the old position held another CIDR)", () => {
    const base = plan([rule("ssh-1", "198.51.100.0/27"), rule("ssh-2", "192.0.2.10/32")]);
    // The first CIDR removed in the same run as the rename: the second rule is now at position 1.
    const head = plan([rule("ssh-22-from-192.0.2.10-32", "192.0.2.10/32", [urn("ssh-1")])]);
    const d = diffPlans(base, head);
    expect(d.changed).toEqual([
      expect.objectContaining({
        renamedFrom: "ssh-1",
        fields: ["description", "remoteIpPrefix"],
        replace: true,
      }),
    ]);
    expect(d.removed.map((r) => r.name)).toEqual(["ssh-2"]);
  });

  it("an old URN is claimed once, and never while a resource still has it", () => {
    const base = plan([rule("ssh-1", "198.51.100.0/27"), rule("kept", "192.0.2.0/24")]);
    const head = plan([
      rule("a", "198.51.100.0/27", [urn("ssh-1")]),
      rule("b", "198.51.100.0/27", [urn("ssh-1")]),
      rule("kept", "192.0.2.0/24"),
      rule("c", "192.0.2.0/24", [urn("kept")]),
    ]);
    const d = diffPlans(base, head);
    expect(d.changed.map((c) => [c.name, c.renamedFrom])).toEqual([["a", "ssh-1"]]);
    expect(d.added.map((r) => r.name)).toEqual(["b", "c"]);
    expect(d.removed).toEqual([]);
  });
});
