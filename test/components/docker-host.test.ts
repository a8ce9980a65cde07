/** The DockerHost component on its own, under Pulumi's mocks: its provider and readiness wait. */
import { describe, expect, it } from "vitest";
import { runUnderMocks } from "../../plan/mocks.ts";
import { DockerHost } from "../../components/docker-host.ts";
import { isSecret, keyOf, publicStrings } from "../support/captured.ts";

const mocked = runUnderMocks;

describe("DockerHost", () => {
  it("in TLS mode talks tcp://ip:port with the key as a secret, and waits with curl", async () => {
    const run = await mocked("staging", () => {
      new DockerHost("h-dockerd", {
        hostName: "h",
        address: "203.0.113.5",
        serverId: "server-1",
        tls: { caPem: "CA-PEM", certPem: "CERT-PEM", keyPem: "KEY-PEM-SECRET", port: 2376 },
      });
    });
    const provider = run.resources.find((r) => r.type === "pulumi:providers:docker")!;
    expect(provider.inputs.host).toBe("tcp://203.0.113.5:2376");
    expect(isSecret(provider.inputs.keyMaterial)).toBe(true);
    const wait = run.resources.find((r) => r.type === "command:local:Command")!;
    expect(wait.inputs.create).toBe("scripts/wait-for-docker.sh --tls --port 2376 --timeout 600 203.0.113.5");
    expect(wait.inputs.triggers).toEqual(["server-1"]);
    for (const r of run.resources)
      expect(
        publicStrings(r.inputs).some((s) => s.includes("KEY-PEM-SECRET")),
        r.name,
      ).toBe(false);
    expect(provider.dependencies.map(keyOf)).toContain("command:local:Command::h-dockerd-ready");
  });
});
