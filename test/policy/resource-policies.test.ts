import { describe, expect, it } from "vitest";
import {
  imagesPinnedByDigest,
  noWorldIngress,
  policies,
  productionDataProtected,
  TYPES,
  userDataBase64Size,
  userDataSize,
} from "../../policy/policies.ts";
import { UNKNOWN_NUMBER, UNKNOWN_STRING, validateResource, type Props } from "./support.ts";

const D = "a".repeat(64);
const rule = (props: Props) => ({ type: TYPES.secGroupRule, name: "rule", props });
const tcp = (
  min: number | undefined,
  max: number | undefined,
  remoteIpPrefix?: string,
  extra: Props = {},
) => ({
  direction: "ingress",
  ethertype: "IPv4",
  protocol: "tcp",
  ...(min !== undefined ? { portRangeMin: min } : {}),
  ...(max !== undefined ? { portRangeMax: max } : {}),
  ...(remoteIpPrefix !== undefined ? { remoteIpPrefix } : {}),
  securityGroupId: "sg",
  ...extra,
});

describe("the pack", () => {
  it("every policy is mandatory, uniquely named, and has one validator", () => {
    expect(new Set(policies.map((p) => p.name)).size).toBe(policies.length);
    expect(policies).toHaveLength(6);
    for (const p of policies) {
      expect(p.enforcementLevel).toBe("mandatory");
      expect(p.description.length).toBeGreaterThan(20);
      expect("validateResource" in p || "validateStack" in p).toBe(true);
    }
  });
});

describe("(a) no world-open ingress to sensitive ports", () => {
  it.each([
    ["SSH from the world", tcp(22, 22, "0.0.0.0/0"), /opens tcp port 22 to 0\.0\.0\.0\/0.*SSH \(port 22\)/],
    ["Docker API 2375", tcp(2375, 2375, "0.0.0.0/0"), /Docker API \(ports 2375-2376\)/],
    ["dockerd TLS 2376", tcp(2376, 2376, "0.0.0.0/0"), /Docker API/],
    ["registry 443", tcp(443, 443, "0.0.0.0/0"), /registry HTTPS/],
    ["mirror 8443", tcp(8443, 8443, "0.0.0.0/0"), /pull-through cache/],
    ["one agent port", tcp(2201, 2201, "0.0.0.0/0"), /Jenkins agents \(ports 2201-2264\)/],
    ["range overlapping agents", tcp(2000, 2205, "0.0.0.0/0"), /ports 2000-2205.*Jenkins agents/],
    ["range containing redis", tcp(6000, 7000, "0.0.0.0/0"), /redis/],
    ["mongodb", tcp(27017, 27017, "0.0.0.0/0"), /mongodb/],
    ["postgres", tcp(5432, 5432, "0.0.0.0/0"), /postgres/],
    ["memcached", tcp(11211, 11211, "0.0.0.0/0"), /memcached/],
    ["rabbitmq", tcp(5672, 5672, "0.0.0.0/0"), /rabbitmq/],
    ["no prefix and no group = any address", tcp(22, 22, undefined), /any address \(no remoteIpPrefix\)/],
    ["empty prefix = any address", tcp(22, 22, ""), /any address/],
    ["all ports (no range)", tcp(undefined, undefined, "0.0.0.0/0"), /every port.*SSH.*rabbitmq/],
    ["range 0-0 = all ports", tcp(0, 0, "0.0.0.0/0"), /every port/],
    ["any protocol", { ...tcp(22, 22, "0.0.0.0/0"), protocol: undefined }, /any protocol port 22/],
    ["udp", { ...tcp(5672, 5672, "0.0.0.0/0"), protocol: "udp" }, /rabbitmq/],
    ["IPv6 world", { ...tcp(22, 22, "::/0"), ethertype: "IPv6" }, /::\/0/],
    [
      "half the world",
      tcp(22, 22, "0.0.0.0/1"),
      /to 0\.0\.0\.0\/1 \(2,0\d\d,\d{3},\d{3} public addresses\).*SSH/,
    ],
    ["a public /8", tcp(22, 22, "45.0.0.0/8"), /16,777,216 public addresses/],
    ["a public /15", tcp(443, 443, "45.0.0.0/15"), /131,072 public addresses.*registry HTTPS/],
    ["the IPv6 half holding all global unicast", { ...tcp(22, 22, "::/1"), ethertype: "IPv6" }, /::\/1 \(/],
    ["the per-build range", tcp(32768, 60999, "0.0.0.0/0"), /per-build agents \(ports 32768-60999\)/],
    ["one per-build port", tcp(45000, 45000, "0.0.0.0/0"), /per-build agents/],
    [
      "Berth's dockerd TLS rule on a configured port (12376)",
      tcp(12376, 12376, "0.0.0.0/0", { description: "docker-tls from 0.0.0.0/0" }),
      /port 12376 to 0\.0\.0\.0\/0, which includes Docker API \(mutual TLS\) \(port 12376\)/,
    ],
    [
      "Berth's agents rule on a configured base port (3000)",
      tcp(3001, 3004, "128.0.0.0/1", { description: "jenkins-agents from 128.0.0.0/1" }),
      /Jenkins agents \(ports 3001-3004\)/,
    ],
    [
      "Berth's mirror rule on a configured port",
      tcp(9443, 9443, "0.0.0.0/0", { description: "registry-9443 from 0.0.0.0/0" }),
      /registry pull-through cache \(port 9443\)/,
    ],
  ])("reports %s", async (_name, props, message) => {
    const v = await validateResource(noWorldIngress, rule(props));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(message);
    expect(v[0]!.message).toMatch(/restrict remoteIpPrefix/);
  });

  it.each([
    ["SSH from an admin CIDR", tcp(22, 22, "198.51.100.0/27")],
    ["agents from the controller", tcp(2201, 2204, "198.51.100.40/32")],
    ["world on a harmless port", tcp(80, 80, "0.0.0.0/0")],
    ["SSH from a public /16 (the limit)", tcp(22, 22, "45.0.0.0/16")],
    ["SSH from private space", tcp(22, 22, "10.0.0.0/8")],
    [
      "dockerd TLS from the controller on a configured port",
      tcp(12376, 12376, "198.51.100.40/32", { description: "docker-tls from 198.51.100.40/32" }),
    ],
    [
      "a rule whose description only looks like Berth's",
      tcp(12376, 12376, "0.0.0.0/0", { description: "web from 0.0.0.0/0" }),
    ],
    ["world on a range between sensitive ports", tcp(3000, 5000, "0.0.0.0/0")],
    ["no prefix but a remote group", tcp(22, 22, undefined, { remoteGroupId: "sg-hosts" })],
    ["egress to the world", { ...tcp(443, 443, "0.0.0.0/0"), direction: "egress" }],
    ["ICMP from the world", { ...tcp(undefined, undefined, "0.0.0.0/0"), protocol: "icmp" }],
    ["another resource type", { remoteIpPrefix: "0.0.0.0/0" }],
  ])("accepts %s", async (name, props) => {
    const type = name === "another resource type" ? TYPES.instance : TYPES.secGroupRule;
    expect(await validateResource(noWorldIngress, { type, name: "r", props })).toEqual([]);
  });

  it("does not guess at values unknown during preview", async () => {
    expect(await validateResource(noWorldIngress, rule(tcp(22, 22, UNKNOWN_STRING)))).toEqual([]);
    expect(
      await validateResource(noWorldIngress, rule(tcp(UNKNOWN_NUMBER as unknown as number, 22, "0.0.0.0/0"))),
    ).toEqual([]);
  });
});

describe("(c) images pinned by digest", () => {
  const container = (image: unknown) => ({ type: TYPES.container, name: "c", props: { name: "c", image } });
  const remote = (name: unknown) => ({
    type: TYPES.remoteImage,
    name: "img",
    props: { name, keepLocally: true },
  });

  it.each([
    [`redis:7.4-alpine@sha256:${D}`],
    [`ghcr.io/acme/agent@sha256:${D}`],
    [`localhost:5000/x/y:1@sha256:${D}`],
    [`sha256:${D}`], // a pulled RemoteImage's ID
  ])("accepts container image %s", async (image) => {
    expect(await validateResource(imagesPinnedByDigest, container(image))).toEqual([]);
  });

  it.each([
    ["redis:7.4-alpine"],
    ["redis"],
    [`redis@sha256:${"a".repeat(63)}`],
    [`redis@sha256:${"A".repeat(64)}`],
    [""],
  ])("reports container image %j", async (image) => {
    const v = await validateResource(imagesPinnedByDigest, container(image));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(/container "c" uses image .* not pinned by digest/);
  });

  it("reports a container without an image", async () => {
    expect(
      await validateResource(imagesPinnedByDigest, { type: TYPES.container, name: "c", props: {} }),
    ).toHaveLength(1);
  });

  it("checks the RemoteImage reference too (an ID alone is not a pinned reference)", async () => {
    expect(await validateResource(imagesPinnedByDigest, remote(`registry:2.8.3@sha256:${D}`))).toEqual([]);
    const v = await validateResource(imagesPinnedByDigest, remote("registry:2"));
    expect(v[0]?.message).toMatch(/image "registry:2" \(RemoteImage "img"\) is not pinned by digest/);
    expect(await validateResource(imagesPinnedByDigest, remote(`sha256:${D}`))).toHaveLength(1);
  });

  it("leaves an image ID unknown during preview to the update", async () => {
    expect(await validateResource(imagesPinnedByDigest, container(UNKNOWN_STRING))).toEqual([]);
  });
});

describe("(d) production data is protected", () => {
  const cinder = (stack: string, protect: boolean) => ({
    type: TYPES.blockVolume,
    name: `${stack}-ci-1-docker`,
    props: { name: `${stack}-ci-1-docker`, size: 500 },
    stack,
    opts: { protect },
  });
  const dvol = (stack: string, resource: string, volumeName: string, protect: boolean) => ({
    type: TYPES.dockerVolume,
    name: resource,
    props: { name: volumeName },
    stack,
    opts: { protect },
  });

  it("reports an unprotected Cinder volume in production", async () => {
    const v = await validateResource(productionDataProtected, cinder("production", false));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(/Cinder volume "production-ci-1-docker" in production is not protected/);
  });

  it("reports unprotected *-data Docker volumes in production, by volume or resource name", async () => {
    const byVolume = await validateResource(
      productionDataProtected,
      dvol("production", "x-reg", "registry-data", false),
    );
    expect(byVolume[0]?.message).toMatch(/Docker volume "registry-data" in production is not protected/);
    const byResource = await validateResource(
      productionDataProtected,
      dvol("production", "production-ci-1-mongodb-data", UNKNOWN_STRING, false),
    );
    expect(byResource).toHaveLength(1);
  });

  it.each([
    ["protected Cinder volume in production", cinder("production", true)],
    ["unprotected Cinder volume in staging", cinder("staging", false)],
    ["unprotected Cinder volume in a preview stack", cinder("pr-17", false)],
    ["protected data volume in production", dvol("production", "r-data", "registry-data", true)],
    [
      "work volume (not *-data) in production",
      dvol("production", "agent-1-work", "jenkins-agent-1-work", false),
    ],
    ["stack merely containing 'production'", cinder("production-old", false)],
  ])("accepts %s", async (_n, spec) => {
    expect(await validateResource(productionDataProtected, spec)).toEqual([]);
  });
});

describe("(e) user data within Nova's 64 KiB", () => {
  const server = (userData: unknown) => ({
    type: TYPES.instance,
    name: "testing-ci-1-server",
    props: { userData },
  });

  it("computes the base64 size", () => {
    expect(userDataBase64Size("")).toBe(0);
    expect(userDataBase64Size("{}")).toBe(4);
    expect(userDataBase64Size('{"a":1}')).toBe(Buffer.from('{"a":1}').toString("base64").length);
    expect(userDataBase64Size("é")).toBe(4); // 2 bytes of UTF-8
    expect(userDataBase64Size(Buffer.from("x".repeat(100)).toString("base64"))).toBe(136); // already base64
  });

  it("accepts exactly 65535 base64 bytes and reports one more block", async () => {
    // 49149 bytes → 4 * 16383 = 65532; 49152 bytes → 65536.
    const ok = `{"x":"${"a".repeat(49149 - 8)}"}`;
    expect(userDataBase64Size(ok)).toBe(65532);
    expect(await validateResource(userDataSize, server(ok))).toEqual([]);
    const big = `{"x":"${"a".repeat(49152 - 8)}"}`;
    expect(userDataBase64Size(big)).toBe(65536);
    const v = await validateResource(userDataSize, server(big));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(
      /server "testing-ci-1-server" has 65536 bytes of user data once base64-encoded; Nova accepts at most 65535/,
    );
  });

  it("ignores servers without user data, unknown user data, and other types", async () => {
    expect(await validateResource(userDataSize, server(undefined))).toEqual([]);
    expect(await validateResource(userDataSize, server(UNKNOWN_STRING))).toEqual([]);
    expect(
      await validateResource(userDataSize, {
        type: TYPES.container,
        name: "c",
        props: { userData: "x".repeat(70000) },
      }),
    ).toEqual([]);
  });
});
