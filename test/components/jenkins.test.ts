/**
 * The JenkinsAgents component on its own, under Pulumi's mocks: the Docker socket only when opted
 * in, stable known_hosts lines, and the refusal of keys and images the agents cannot use.
 */
import type * as docker from "@pulumi/docker";
import { describe, expect, it } from "vitest";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { resolveOutput, runUnderMocks } from "../../plan/mocks.ts";
import { DockerHost } from "../../components/docker-host.ts";
import { JenkinsAgents, type JenkinsAgentsArgs } from "../../components/jenkins.ts";
import { list, type VolumeMount } from "../support/captured.ts";

const mocked = runUnderMocks;

/** Components that refuse their input throw before registering anything: no provider needed. */
const NO_PROVIDER = {} as docker.Provider;

const staging = () => loadStack(PROJECT_ROOT, "staging");

describe("JenkinsAgents", () => {
  /** Staging's agent settings for one host "h", with `over` on top. */
  const agentArgs = (over: Partial<JenkinsAgentsArgs> = {}): JenkinsAgentsArgs => {
    const c = staging();
    return {
      hostName: "h",
      count: 1,
      image: c.jenkins.image,
      basePort: 2200,
      agentPublicKey: c.jenkins.agentPublicKey,
      dockerAccess: "none",
      dockerEndpoint: { privateIp: "10.42.20.11", tlsPort: 2376 },
      bindAddress: "10.42.20.11",
      publicAddress: "203.0.113.5",
      servicesNetwork: "ci-services",
      dnsAddress: "172.30.0.2",
      searchDomains: ["ci.example.internal"],
      provider: NO_PROVIDER,
      ...over,
    };
  };

  it("mounts the Docker socket with label=disable only when opted in, and exports stable known_hosts lines", async () => {
    const make = (dockerAccess: "socket" | "none") =>
      mocked("staging", () => {
        const provider = new DockerHost("h-dockerd", { hostName: "h", address: "203.0.113.5", serverId: "s" })
          .provider;
        return new JenkinsAgents("h-agents", agentArgs({ count: 2, dockerAccess, provider }));
      });
    const on = await make("socket");
    const off = await make("none");
    for (const a of on.resources.filter((r) => r.type === "docker:index/container:Container")) {
      expect(list<VolumeMount>(a.inputs.volumes)).toContainEqual({
        hostPath: "/var/run/docker.sock",
        containerPath: "/var/run/docker.sock",
      });
      expect(a.inputs.securityOpts).toEqual(["label=disable"]);
      expect(list<string>(a.inputs.envs)).toContain("DOCKER_HOST=unix:///var/run/docker.sock");
    }
    for (const a of off.resources.filter((r) => r.type === "docker:index/container:Container")) {
      expect(list<VolumeMount>(a.inputs.volumes).map((v) => v.hostPath)).toEqual([undefined]);
      expect(a.inputs.securityOpts).toBeUndefined();
    }
    const known = await resolveOutput(off.result.knownHosts);
    expect(known.value.endsWith("\n")).toBe(true);
    const lines = known.value.slice(0, -1).split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\[203\.0\.113\.5\]:2201 ssh-/);
    expect(lines[3]).toMatch(/^\[203\.0\.113\.5\]:2202 ssh-/);
    expect(off.result.agents.map((a) => a.port)).toEqual([2201, 2202]);
  });

  it("refuses an agent key the image would ignore", () => {
    expect(
      () => new JenkinsAgents("h-agents", agentArgs({ agentPublicKey: "ecdsa-sha2-nistp256 AAAA jenkins" })),
    ).toThrow(/ssh-/);
  });

  it("refuses images not pinned by digest", () => {
    expect(() => new JenkinsAgents("h-agents", agentArgs({ image: "jenkins/ssh-agent:latest" }))).toThrow(
      /not pinned by digest/,
    );
  });
});
