/**
 * `berth:dns.searchDomains` (issue #17, names per region): a list, first preferred, that replaces the
 * single `searchDomain`. Every bad list is refused with one ConfigError naming each bad field.
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../config/errors.ts";
import { readStackFile, resolveConfig } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { MAX_SEARCH_DOMAINS, MAX_SEARCH_LIST_CHARS } from "../../config/schema.ts";

type Obj = Record<string, unknown>;

/** The shipped testing stack's values with `berth:dns` replaced. */
function withDns(dns: unknown, edit?: (values: Obj) => void) {
  const raw = readStackFile(PROJECT_ROOT, "testing");
  const values = structuredClone(raw.values);
  values.dns = dns;
  edit?.(values);
  return () => resolveConfig("testing", { ...raw, values });
}

function issues(run: () => unknown): { path: string; message: string }[] {
  try {
    run();
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  throw new Error("the configuration was accepted");
}

describe("berth:dns.searchDomains", () => {
  it("keeps the order given: the first domain is the preferred one", () => {
    const c = withDns({ searchDomains: ["us-east-1.example.internal", "ci.example.internal"] })();
    expect(c.dns.searchDomains).toEqual(["us-east-1.example.internal", "ci.example.internal"]);
  });

  it(`accepts ${MAX_SEARCH_DOMAINS} domains whose search line fits`, () => {
    const six = Array.from({ length: MAX_SEARCH_DOMAINS }, (_, i) => `r${i}.example.internal`);
    expect(withDns({ searchDomains: six })().dns.searchDomains).toEqual(six);
  });

  it("refuses the old single key with one message saying what to write instead", () => {
    const found = issues(withDns({ searchDomain: "ci.example.internal" }));
    expect(found).toEqual([
      {
        path: "berth:dns.searchDomain",
        message:
          "was renamed to berth:dns.searchDomains, a list (first preferred): write `searchDomains: [ci.example.internal]` under berth:dns instead",
      },
    ]);
  });

  it("refuses the old key next to the new one, naming only the old", () => {
    const found = issues(withDns({ searchDomain: "a.example", searchDomains: ["a.example"] }));
    expect(found.map((i) => i.path)).toEqual(["berth:dns.searchDomain"]);
    expect(found[0]?.message).toContain("remove berth:dns.searchDomain");
  });

  it.each<[string, unknown, string, string]>([
    ["an empty list", [], "berth:dns.searchDomains", "must list at least 1"],
    ["a string instead of a list", "ci.example.internal", "berth:dns.searchDomains", "must be array"],
    ["a name with a space", ["ci example"], "berth:dns.searchDomains[0]", "a DNS name"],
    ["an empty name", [""], "berth:dns.searchDomains[0]", "must not be empty"],
    ["a repeated name", ["a.example", "a.example"], "berth:dns.searchDomains", "must not repeat"],
    [
      "a name repeated in other case",
      ["a.example", "A.Example"],
      "berth:dns.searchDomains[1]",
      "ignore case",
    ],
    ["a trailing dot", ["a.example."], "berth:dns.searchDomains[0]", "ends with a dot"],
    [
      `${MAX_SEARCH_DOMAINS + 1} domains`,
      Array.from({ length: MAX_SEARCH_DOMAINS + 1 }, (_, i) => `r${i}.example`),
      "berth:dns.searchDomains",
      `must list at most ${MAX_SEARCH_DOMAINS}`,
    ],
    [
      "a search line too long for resolv.conf",
      ["a", "b", "c", "d"].map((l) => `${l.repeat(61)}.example`),
      "berth:dns.searchDomains",
      `at most ${MAX_SEARCH_LIST_CHARS}`,
    ],
  ])("refuses %s", (_what, list, path, message) => {
    const found = issues(withDns({ searchDomains: list }));
    expect(found.map((i) => i.path)).toContain(path);
    expect(found.find((i) => i.path === path)?.message).toContain(message);
  });

  it("reports every bad field of the stack in one ConfigError", () => {
    const found = issues(
      withDns({ searchDomains: ["ok.example", "OK.example", "bad name"] }, (v) => {
        (v.hosts as Obj).count = 0;
      }),
    );
    expect(found.map((i) => i.path)).toEqual(
      expect.arrayContaining([
        "berth:dns.searchDomains[1]",
        "berth:dns.searchDomains[2]",
        "berth:hosts.count",
      ]),
    );
  });

  it("checks each production-like name under the longest domain against DNS's 253 characters", () => {
    const long = ["a", "b", "c"].map((l) => l.repeat(63)).join(".");
    const found = issues(
      withDns({ searchDomains: ["short.example", long] }, (v) => {
        ((v.services as Obj).productionLike as Obj[])[0]!.name = "n".repeat(63);
      }),
    );
    expect(found.map((i) => i.path)).toEqual(["berth:services.productionLike[0].name"]);
    expect(found[0]?.message).toContain("253");
  });
});
