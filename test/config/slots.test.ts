/**
 * Application slots' configuration (config/validate-slots.ts, and the slot CIDRs' exposure in
 * config/validate-network.ts): staging's slot resolves with its defaults; bad input is refused with
 * ONE error naming every bad field with its path and the fix, before anything is registered.
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../config/errors.ts";
import { loadStack } from "../../config/load.ts";
import { MAX_SLOT_NAME, slotContainerNames, slotIssues } from "../../config/validate-slots.ts";
import { editedStackRoot, type StackConfigMap } from "../support/stacks.ts";

const services = (c: StackConfigMap) => c["berth:services"]!;
const ok = { health: { http: "/healthz" } };

/** The issues (`path: message`) of the testing stack edited by `edit`; [] when it loads. */
function issuesOf(edit: (c: StackConfigMap) => void): string[] {
  try {
    loadStack(editedStackRoot(edit), "testing");
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
}
const paths = (issues: string[]) => [...new Set(issues.map((i) => i.slice(0, i.indexOf(": "))))].sort();

describe("application slots: accepted", () => {
  it("staging's slot resolves with its defaults", () => {
    const c = loadStack(process.cwd(), "staging");
    expect(c.services.slots).toEqual([
      {
        name: "shop",
        port: 8080,
        health: { http: "/healthz", timeoutSeconds: 120 },
        memoryMiB: 512,
        cpus: 1,
      },
    ]);
    expect(c.services.slotCidrs).toEqual(["198.51.100.0/27"]);
  });

  it("testing has none; a command health check, limits and several slots validate", () => {
    expect(loadStack(process.cwd(), "testing").services.slots).toEqual([]);
    expect(
      issuesOf((c) => {
        services(c).slots = [
          { name: "shop", port: 8080, ...ok },
          {
            name: "api-v2",
            port: 18080,
            health: { command: ["wget", "-q", "-O-", "localhost:18080/ping"], timeoutSeconds: 30 },
            memoryMiB: 256,
            cpus: 0.5,
          },
        ];
        services(c).slotCidrs = ["198.51.100.0/27", "203.0.113.0/24"];
      }),
    ).toEqual([]);
  });
});

describe("application slots: refused, all in one error", () => {
  it("names every bad field with its path and the fix", () => {
    const issues = issuesOf((c) => {
      c["berth:registry"]!.pullThroughCache = { port: 9443 };
      services(c).productionLike = [
        ...(services(c).productionLike as unknown[]),
        { name: "slot-cart-app", kind: "redis", address: "172.30.0.40" },
      ];
      services(c).slots = [
        { name: "Shop_1", port: 8080, ...ok }, // 0: not DNS-safe
        { name: "shop", port: 6379, ...ok }, // 1: redis
        { name: "shop", port: 9100, ...ok }, // 2: repeated name; node_exporter
        { name: "cart", port: 2201, ...ok }, // 3: agent range; name takes a production-like container's
        { name: "a".repeat(MAX_SLOT_NAME + 1), port: 8081, ...ok }, // 4: too long
        { name: "b", port: 8081, health: {} }, // 5: no check; port of slot 4
        { name: "c", port: 9443, health: { http: "/x", command: ["true"] } }, // 6: both; mirror port
        { name: "d", port: 27017, health: { http: "healthz" } }, // 7: not a path; mongodb
        { name: "e", port: 5432, ...ok }, // 8: postgres (not in testing's minimal set, still refused)
        { name: "f", port: 2376, ...ok }, // 9: dockerd TLS
        { name: "g", port: 80, ...ok }, // 10: below 1024 (schema)
      ];
      // Two public /16s: each fine alone, together more than a /16's worth (the world in pieces).
      services(c).slotCidrs = ["45.0.0.0/16", "45.1.0.0/16", "198.51.100.0/27", "198.51.100.0/27"];
    });
    expect(paths(issues)).toEqual(
      [
        "berth:services.slots[0].name",
        "berth:services.slots[1].port",
        "berth:services.slots[2].name",
        "berth:services.slots[2].port",
        "berth:services.slots[3].name",
        "berth:services.slots[3].port",
        "berth:services.slots[4].name",
        "berth:services.slots[5].health",
        "berth:services.slots[5].port",
        "berth:services.slots[6].health",
        "berth:services.slots[6].port",
        "berth:services.slots[7].health.http",
        "berth:services.slots[7].port",
        "berth:services.slots[8].port",
        "berth:services.slots[9].port",
        "berth:services.slots[10].port",
        "berth:services.slotCidrs",
        "berth:services.slotCidrs[3]",
        // Slot 3 on an agent port would add the slot CIDRs to the agents' sources: the world in pieces.
        "berth:jenkins.controllerCidr",
      ].sort(),
    );
    const at = (p: string) => issues.filter((i) => i.startsWith(`${p}: `)).join("\n");
    expect(at("berth:services.slots[0].name")).toMatch(/"Shop_1" is not DNS-safe.*e\.g\. "shop-1"/);
    expect(at("berth:services.slots[1].port")).toMatch(
      /6379 collides with the minimal set's redis.*pick another, such as 8082/,
    );
    expect(at("berth:services.slots[2].name")).toMatch(/repeats berth:services\.slots\[1\]\.name "shop"/);
    expect(at("berth:services.slots[2].port")).toMatch(/node_exporter/);
    expect(at("berth:services.slots[3].name")).toMatch(
      /"slot-cart-app", which berth:services\.productionLike\[2\]\.name also takes/,
    );
    expect(at("berth:services.slots[3].port")).toMatch(/agents.*berth:jenkins\.basePort/);
    expect(at("berth:services.slots[4].name")).toMatch(new RegExp(`at most ${String(MAX_SLOT_NAME)}`));
    expect(at("berth:services.slots[5].health")).toMatch(
      /needs a health check: give `http: \/path`.*or `command/,
    );
    expect(at("berth:services.slots[5].port")).toMatch(
      /another slot \(8081, berth:services\.slots\[4\]\.port\)/,
    );
    expect(at("berth:services.slots[6].health")).toMatch(/both `http` and `command`; keep one/);
    expect(at("berth:services.slots[6].port")).toMatch(
      /pull-through mirror.*berth:registry\.pullThroughCache\.port/,
    );
    expect(at("berth:services.slots[7].health.http")).toMatch(/not an HTTP path: start it with "\/"/);
    expect(at("berth:services.slots[7].port")).toMatch(/mongodb/);
    expect(at("berth:services.slots[8].port")).toMatch(/the postgres service port/);
    expect(at("berth:services.slots[9].port")).toMatch(/dockerd's TLS endpoint|Docker API/);
    expect(at("berth:services.slots[10].port")).toMatch(/must be >= 1024, got 80/);
    expect(at("berth:services.slotCidrs")).toMatch(
      /opens an application slot \(tcp port 8080\) to 131,104 public addresses \(45\.0\.0\.0\/16, 45\.1\.0\.0\/16, 198\.51\.100\.0\/27\).*allowWorld/,
    );
    expect(at("berth:jenkins.controllerCidr")).toMatch(
      /opens Jenkins agents \(tcp ports 2201-2202\).*berth:services\.slotCidrs/,
    );
    expect(at("berth:services.slotCidrs[3]")).toMatch(/repeats berth:services\.slotCidrs\[2\]/);
  });

  it("a world-open developer CIDR by itself is named", () => {
    const issues = issuesOf((c) => {
      services(c).slots = [{ name: "shop", port: 8080, ...ok }];
      services(c).slotCidrs = ["0.0.0.0/0"];
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^berth:services\.slotCidrs\[0\]: opens an application slot \(tcp port 8080\)/);
  });

  it("allowWorld: true opts in, as for every other rule", () => {
    expect(
      issuesOf((c) => {
        c["berth:openstack"]!.allowWorld = true;
        services(c).slots = [{ name: "shop", port: 8080, ...ok }];
        services(c).slotCidrs = ["0.0.0.0/0"];
      }),
    ).toEqual([]);
  });

  it("the pure check is defensive: garbage yields issues or nothing, never a throw", () => {
    for (const slots of [undefined, "x", [null], [{ name: 3, port: "x", health: "y" }], [{}]])
      expect(() => slotIssues({ services: { slots } })).not.toThrow();
    expect(slotContainerNames("shop")).toEqual([
      "slot-shop",
      "slot-shop-app",
      "slot-shop-next",
      "slot-shop-old",
    ]);
  });
});
