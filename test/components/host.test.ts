/** components/host.ts (CiHost) in every shipped stack: servers, their volumes, ports and Ignition. */
import { describe, expect, it } from "vitest";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { renderHostIgnition } from "../../ignition/index.ts";
import { plain } from "../../plan/run.ts";
import { STACKS, byName, ofType, stackRuns } from "../support/stack-runs.ts";

const get = stackRuns();

describe.each(STACKS)("stack %s", (stack) => {
  it("creates one server, volume, port and floating IP per configured host", () => {
    const run = get(stack);
    const n = run.config.hosts.count;
    expect(ofType(run, "openstack:compute/instance:Instance")).toHaveLength(n);
    expect(ofType(run, "openstack:blockstorage/volume:Volume")).toHaveLength(n);
    expect(ofType(run, "openstack:networking/port:Port")).toHaveLength(n);
    expect(ofType(run, "openstack:networking/floatingIp:FloatingIp")).toHaveLength(n);
    expect(ofType(run, "openstack:networking/floatingIpAssociate:FloatingIpAssociate")).toHaveLength(n);
    expect(ofType(run, "openstack:compute/serverGroup:ServerGroup")).toHaveLength(n > 1 ? 1 : 0);
    expect(ofType(run, "openstack:networking/network:Network")).toHaveLength(1);
    expect(ofType(run, "openstack:networking/router:Router")).toHaveLength(1);
  });

  it("boots each server with exactly that host's rendered Ignition, with the docker volume in blockDevices", () => {
    const run = get(stack);
    const c = run.config;
    const state = (name: string, key: string) => String(byName(run, name).state[key]);
    c.hosts.names.forEach((host, i) => {
      const server = byName(run, `${host}-server`);
      const volume = byName(run, `${host}-docker`);
      const expected = renderHostIgnition({
        ...hostIgnitionBase(c, host),
        dockerVolumeId: volume.id as string,
        registry: {
          ...hostIgnitionBase(c, host).registry!,
          caCertPem: state(`${c.stack}-registry-ca-cert`, "certPem"),
        },
        dockerTls: {
          caCertPem: state(`${c.stack}-docker-ca-cert`, "certPem"),
          serverCertPem: state(`${host}-dockerd-cert`, "certPem"),
          serverKeyPem: state(`${host}-dockerd-key`, "privateKeyPem"),
          port: c.hosts.dockerTlsPort,
        },
      });
      expect(plain(server.inputs.userData)).toBe(expected);
      const devices = plain(server.inputs.blockDevices) as Record<string, unknown>[];
      expect(devices[0]).toMatchObject({ sourceType: "image", bootIndex: 0, deleteOnTermination: true });
      expect(devices[1]).toMatchObject({
        sourceType: "volume",
        destinationType: "volume",
        uuid: volume.id,
        deleteOnTermination: false,
      });
      expect(plain(volume.inputs.size)).toBe(c.hosts.dockerVolumeSize);
      expect(plain(server.inputs.flavorName)).toBe(c.hosts.flavor);
      const port = byName(run, `${host}-port`);
      expect(plain(port.inputs.fixedIps)).toEqual([
        { subnetId: expect.any(String), ipAddress: c.hosts.addresses[i] },
      ]);
      expect(server.deleteBeforeReplace).toBe(true);
      expect(plain(server.inputs.metadata)).toMatchObject({
        "berth-stack": c.stack,
        "berth-environment": c.environment,
      });
    });
  });

  it("protects and retains data volumes only where the stack asks for it", () => {
    const run = get(stack);
    for (const v of ofType(run, "openstack:blockstorage/volume:Volume")) {
      expect(v.protect).toBe(stack === "production");
      expect(v.retainOnDelete).toBe(stack === "production");
    }
    for (const s of ofType(run, "openstack:compute/instance:Instance")) expect(s.protect).toBe(false);
  });
});
