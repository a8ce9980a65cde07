/**
 * One source of truth for the configuration: the types come from the JSON Schema
 * (config/schema-types.ts), the schema's defaults are what validation returns, and the lists the
 * schema accepts (host OSes, service kinds) are the program's own lists. The `expectTypeOf` lines
 * are checked by `tsc --noEmit` (which covers test/), the rest at run time.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import { berthSchema } from "../../config/schema.ts";
import type { BerthInput, BerthValidated } from "../../config/schema-types.ts";
import type { BerthConfig, HostOs, NamedService, ServiceKind } from "../../config/types.ts";
import { validateRaw } from "../../config/validate.ts";
import { resolveConfig } from "../../config/load.ts";
import { SERVICE_CATALOG, SERVICE_KINDS } from "../../config/images.ts";
import { HOST_OSES } from "../../renderers/host-os.ts";
import { LIMIT_KINDS } from "../../config/limits.ts";

/** The smallest stack the schema accepts: only required keys (typed by the derived input type). */
const minimal: BerthInput = {
  openstack: {
    image: "fedora-coreos-42.20250914.3.0-openstack.x86_64",
    externalNetwork: "public",
    adminCidrs: ["198.51.100.0/27"],
  },
  hosts: {
    count: 2,
    flavor: "m1.large",
    sshKeys: [
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7DBwMUm2GCPDKKZI9SnugKXuXJMG2QE3zQFsVXewFm ops@example.com",
    ],
  },
  registry: { hostname: "registry.types.ci.example.com" },
  jenkins: {
    controllerCidr: "198.51.100.40/32",
    agentPublicKey:
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPbL6hoEYsPYWZ4Sv6CTnWRukkpF6zJLwRUZWvPAG7WK jenkins@ci.example.com",
  },
  dns: { searchDomains: ["ci.example.internal"] },
};

interface SchemaNode {
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  required?: readonly string[];
}

/**
 * Every `default` the schema declares on the way down from the root through keys that are present
 * once defaults apply (required keys, or keys with a default of their own), as a path → default.
 */
function declaredDefaults(node: SchemaNode, path: string[] = []): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const at = [...path, key];
    if (child.default !== undefined) out.set(at.join("."), child.default);
    const present = child.default !== undefined || (node.required ?? []).includes(key);
    if (present) for (const [k, v] of declaredDefaults(child, at)) if (!out.has(k)) out.set(k, v);
  }
  return out;
}

function at(value: unknown, path: string): unknown {
  return path
    .split(".")
    .reduce<unknown>(
      (o, k) => (typeof o === "object" && o !== null ? (o as Record<string, unknown>)[k] : undefined),
      value,
    );
}

describe("types derived from the schema", () => {
  it("types the schema's keys: defaulted keys optional in the input, present once validated", () => {
    expectTypeOf<BerthInput["hosts"]["os"]>().toEqualTypeOf<HostOs | undefined>();
    expectTypeOf<BerthValidated["hosts"]["os"]>().toEqualTypeOf<HostOs>();
    expectTypeOf<BerthValidated["hosts"]["dockerVolumeType"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf<BerthValidated["services"]["minimal"]>().toEqualTypeOf<ServiceKind[]>();
    expectTypeOf<NamedService["kind"]>().toEqualTypeOf<keyof typeof SERVICE_CATALOG>();
    expectTypeOf<BerthConfig["hosts"]["os"]>().toEqualTypeOf<HostOs>();
    // A key the schema does not have is not in the types either.
    expectTypeOf<BerthValidated["hosts"]>().not.toHaveProperty("names");
    expectTypeOf<BerthConfig["hosts"]>().toHaveProperty("names");
  });

  it("validation returns every default the schema declares (ajv useDefaults), nothing else fills them", () => {
    const validated = validateRaw("types", "test", minimal);
    const defaults = declaredDefaults(berthSchema as unknown as SchemaNode);
    // The walk reaches the nested defaults too (inside a defaulted map, inside the registry's TLS).
    expect(defaults.has("hosts.upkeep.journalMaxUse")).toBe(true);
    expect(defaults.size).toBeGreaterThan(40);
    for (const [path, value] of defaults) {
      const got = at(validated, path);
      // A default that is a map is the starting point its own keys' defaults fill in.
      if (typeof value === "object" && value !== null && !Array.isArray(value))
        expect(got, path).toMatchObject(value as object);
      else expect(got, path).toEqual(value);
    }
  });

  it("applies the self-signed certificate's validity default inside the TLS modes", () => {
    const validated = validateRaw("types", "test", minimal);
    expect(validated.registry.tls).toEqual({ mode: "self-signed", validityDays: 365 });
    const cfg = resolveConfig("types", { values: structuredClone(minimal), source: "test" });
    expect(cfg.registry.tls).toEqual({ mode: "self-signed", validityDays: 365 });
  });

  it("accepts the program's own lists: host OSes and the service catalog's kinds", () => {
    expect(berthSchema.properties.hosts.properties.os.enum).toEqual([...HOST_OSES]);
    expect(berthSchema.properties.services.properties.minimal.items.enum).toEqual(
      Object.keys(SERVICE_CATALOG),
    );
    expect(SERVICE_KINDS).toEqual(["redis", "mongodb", "postgres", "memcached", "rabbitmq"]);
    for (const kind of SERVICE_KINDS) expect(LIMIT_KINDS).toContain(kind);
  });
});
