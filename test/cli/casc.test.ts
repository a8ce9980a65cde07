/** `berth jenkins-casc <stack>`: the stack's Docker clouds offline, with placeholder addresses. */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { main } from "../../cli/main.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { PLACEHOLDER_NOTE } from "../../plan/casc.ts";
import type { Casc } from "../support/casc.ts";

describe("berth jenkins-casc", () => {
  async function cli(...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) }, PROJECT_ROOT);
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  it("prints the staging clouds with the mock addresses, marked as placeholders", async () => {
    const r = await cli("jenkins-casc", "staging");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`# ${PLACEHOLDER_NOTE}`);
    const doc = parse(r.out) as Casc;
    const uris = doc!.jenkins.clouds.map((x) => x.docker.dockerApi.dockerHost.uri);
    expect(uris).toEqual(["tcp://203.0.113.11:2376", "tcp://203.0.113.12:2376"]);
  });

  it("needs exactly one stack", async () => {
    expect((await cli("jenkins-casc")).code).toBe(2);
    expect((await cli("jenkins-casc", "a", "b")).code).toBe(2);
  });
});
