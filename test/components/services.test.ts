/**
 * BackendServices (components/services.ts) on its own, under Pulumi's mocks. The service layer of
 * each host in every stack: host-services.test.ts; Registry, JenkinsAgents and DockerHost: their own
 * test files.
 */
import { describe, expect, it } from "vitest";
import { resolveOutput, runUnderMocks } from "../../plan/mocks.ts";
import { DockerHost } from "../../components/docker-host.ts";
import { BackendServices, checkServiceAddresses } from "../../components/services.ts";
import { isSecret, list } from "../support/captured.ts";

const mocked = runUnderMocks;

// --- the component on its own (Registry, JenkinsAgents, DockerHost: their own test files) -------

describe("BackendServices", () => {
  it("hands out dynamic addresses only from the upper half of ci-services, and refuses fixed addresses there", () => {
    const base = { subnet: "172.30.0.0/24", gateway: "172.30.0.1", dnsAddress: "172.30.0.2" };
    expect(
      checkServiceAddresses({
        ...base,
        productionLike: [{ name: "a", kind: "redis", address: "172.30.0.11" }],
      }),
    ).toBe("172.30.0.128/25");
    expect(() =>
      checkServiceAddresses({
        ...base,
        productionLike: [{ name: "a", kind: "redis", address: "172.30.0.200" }],
      }),
    ).toThrow(/dynamically/);
    expect(() =>
      checkServiceAddresses({
        ...base,
        productionLike: [{ name: "a", kind: "redis", address: "172.30.1.5" }],
      }),
    ).toThrow(/not in the services subnet/);
    expect(() =>
      checkServiceAddresses({
        ...base,
        productionLike: [{ name: "a", kind: "redis", address: "172.30.0.2" }],
      }),
    ).toThrow(/also the address of dnsAddress/);
  });

  it("generates credentials for postgres and rabbitmq as secrets", async () => {
    const run = await mocked("staging", () => {
      const provider = new DockerHost("h-dockerd", { hostName: "h", address: "203.0.113.5", serverId: "s" })
        .provider;
      return new BackendServices("h-services", {
        hostName: "h",
        subnet: "172.30.0.0/24",
        gateway: "172.30.0.1",
        dnsAddress: "172.30.0.2",
        upstreamDns: ["9.9.9.9"],
        searchDomains: ["ci.example.internal"],
        minimal: ["postgres", "memcached"],
        productionLike: [{ name: "rabbitmq-events-1", kind: "rabbitmq", address: "172.30.0.41" }],
        networkHolders: [],
        protectData: false,
        provider,
      });
    });
    const creds = await resolveOutput(run.result.credentials);
    expect(creds.secret).toBe(true);
    expect(Object.keys(creds.value).sort()).toEqual(["postgres", "rabbitmq-events-1"]);
    const rabbit = run.resources.find((r) => r.inputs.name === "rabbitmq-events-1")!;
    expect(isSecret(rabbit.inputs.envs)).toBe(true);
    expect(list<string>(rabbit.inputs.envs)).toContain(
      `RABBITMQ_DEFAULT_PASS=${creds.value["rabbitmq-events-1"]!.password}`,
    );
    // memcached keeps no data: no volume for it.
    const volumes = run.resources
      .filter((r) => r.type === "docker:index/volume:Volume")
      .map((v) => v.inputs.name);
    expect(volumes.sort()).toEqual(["postgres-data", "rabbitmq-events-1-data"]);
  });
});
