import { describe, expect, it } from "vitest";
import {
  imageRepository,
  isNginxImage,
  isRegistryImage,
  registryBehindTlsAndAuth,
  TYPES,
} from "../../policy/policies.ts";
import {
  stackResources,
  UNKNOWN_STRING,
  validateStack,
  type Props,
  type StackResourceSpec,
} from "./support.ts";

const D = "b".repeat(64);
const REGISTRY_REF = `registry:2.8.3@sha256:${D}`;
const NGINX_REF = `nginx:1.27-alpine@sha256:${D}`;
const ID_REGISTRY = `sha256:${"1".repeat(64)}`;
const ID_NGINX = `sha256:${"2".repeat(64)}`;
const H1 = "urn:pulumi:testing::berth::pulumi:providers:docker::testing-ci-1";
const H2 = "urn:pulumi:testing::berth::pulumi:providers:docker::testing-ci-2";

const nginxUploads = [
  { file: "/etc/nginx/nginx.conf", content: "..." },
  { file: "/etc/nginx/berth/registry.crt", content: "cert" },
  { file: "/etc/nginx/berth/registry.key", content: "key" },
  { file: "/etc/nginx/berth/htpasswd", content: "jenkins:$2y$..." },
];

interface Layout {
  registryProps?: Props;
  nginxProps?: Props;
  nginxProvider?: string;
  /** Drop the nginx container altogether. */
  noNginx?: boolean;
  /** Containers name their image directly instead of through a RemoteImage. */
  direct?: boolean;
}

/** A registry host as Berth builds it: RemoteImages, the registry container, nginx in front. */
function layout(l: Layout = {}): StackResourceSpec[] {
  const specs: StackResourceSpec[] = [
    {
      type: TYPES.remoteImage,
      name: "img-registry",
      provider: H1,
      props: { name: REGISTRY_REF, imageId: ID_REGISTRY },
    },
    {
      type: TYPES.remoteImage,
      name: "img-nginx",
      provider: H1,
      props: { name: NGINX_REF, imageId: ID_NGINX },
    },
    {
      type: TYPES.container,
      name: "testing-ci-1-registry-registry",
      provider: H1,
      props: { name: "registry", image: l.direct ? REGISTRY_REF : ID_REGISTRY, ...l.registryProps },
      ...(l.direct ? {} : { propertyDependencies: { image: ["img-registry"] } }),
    },
  ];
  if (!l.noNginx)
    specs.push({
      type: TYPES.container,
      name: "testing-ci-1-registry-nginx",
      provider: l.nginxProvider ?? H1,
      props: {
        name: "registry-nginx",
        image: l.direct ? NGINX_REF : ID_NGINX,
        ports: [{ internal: 443, external: 443, ip: "10.42.0.11", protocol: "tcp" }],
        uploads: nginxUploads,
        ...l.nginxProps,
      },
      ...(l.direct ? {} : { propertyDependencies: { image: ["img-nginx"] } }),
    });
  return specs;
}

const check = (specs: StackResourceSpec[]) => validateStack(registryBehindTlsAndAuth, stackResources(specs));

describe("image references", () => {
  it.each([
    ["registry:2", "registry", true, false],
    [`docker.io/library/registry:2.8.3@sha256:${D}`, "registry", true, false],
    ["ghcr.io/distribution/distribution:3", "distribution/distribution", true, false],
    ["localhost:5000/mirror/registry", "mirror/registry", true, false],
    ["nginx:1.27-alpine", "nginx", false, true],
    ["nginxinc/nginx-unprivileged:1.27", "nginxinc/nginx-unprivileged", false, true],
    ["redis:7", "redis", false, false],
    ["registry-nginx", "registry-nginx", false, false],
  ])("%s → %s", (ref, repo, registry, nginx) => {
    expect(imageRepository(ref)).toBe(repo);
    expect(isRegistryImage(ref)).toBe(registry);
    expect(isNginxImage(ref)).toBe(nginx);
  });
});

describe("(b) registry only behind TLS and basic auth", () => {
  it("accepts Berth's layout (images through RemoteImage dependencies)", async () => {
    expect(await check(layout())).toEqual([]);
  });

  it("accepts the layout with image references given directly", async () => {
    expect(await check(layout({ direct: true }))).toEqual([]);
  });

  it("finds the registry by image ID when there is no property dependency", async () => {
    const specs = layout({ noNginx: true }).map((s) => ({ ...s, propertyDependencies: {} }));
    const v = await check(specs);
    expect(v).toHaveLength(1);
  });

  it("reports a registry without an nginx front, against the registry's URN", async () => {
    const v = await check(layout({ noNginx: true }));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(
      /registry container "testing-ci-1-registry-registry" has no nginx container on the same Docker host/,
    );
    expect(v[0]!.urn).toMatch(/::testing-ci-1-registry-registry$/);
  });

  it("reports an nginx on another Docker host as no front at all", async () => {
    const v = await check(layout({ nginxProvider: H2 }));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(/no nginx container on the same Docker host/);
  });

  it.each([
    [
      "without htpasswd",
      { uploads: nginxUploads.filter((u) => !u.file.includes("htpasswd")) },
      /does not upload an htpasswd file/,
    ],
    [
      "without a TLS key",
      { uploads: nginxUploads.filter((u) => !u.file.endsWith(".key")) },
      /does not upload a TLS private key/,
    ],
    ["without uploads", { uploads: [] }, /htpasswd file \(basic auth\), upload a TLS private key/],
    ["publishing 80 only", { ports: [{ internal: 80, external: 80 }] }, /does not publish port 443/],
    ["publishing 443 internally only", { ports: [{ internal: 443 }] }, /does not publish port 443/],
  ])("reports an nginx front %s", async (_n, nginxProps, message) => {
    const v = await check(layout({ nginxProps }));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(
      /is fronted by nginx container "testing-ci-1-registry-nginx", which does not/,
    );
    expect(v[0]!.message).toMatch(message);
    expect(v[0]!.message).toMatch(/must never be reachable without TLS and authentication/);
  });

  it("reports a registry publishing a port itself, even with a good front", async () => {
    const v = await check(layout({ registryProps: { ports: [{ internal: 5000, external: 5000 }] } }));
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(/publishes port\(s\) 5000 itself, bypassing TLS and authentication/);
  });

  it("checks each registry host separately", async () => {
    const second = layout().map((s) => ({
      ...s,
      name: s.name.replace("ci-1", "ci-2").replace("img-", "img2-"),
      provider: H2,
      ...(s.propertyDependencies
        ? {
            propertyDependencies: {
              image: s.propertyDependencies.image!.map((n) => n.replace("img-", "img2-")),
            },
          }
        : {}),
    }));
    expect(await check([...layout(), ...second])).toEqual([]);
    const broken = second.filter((s) => !s.name.endsWith("nginx"));
    const v = await check([...layout(), ...broken]);
    expect(v).toHaveLength(1);
    expect(v[0]!.urn).toMatch(/testing-ci-2-registry-registry$/);
  });

  it("ignores stacks without a registry", async () => {
    expect(
      await check([
        {
          type: TYPES.container,
          name: "redis",
          provider: H1,
          props: { name: "redis", image: `redis@sha256:${D}` },
        },
      ]),
    ).toEqual([]);
  });

  it("during preview (image IDs and file contents unknown) still decides from what is known", async () => {
    const preview = layout({
      registryProps: { image: UNKNOWN_STRING },
      nginxProps: {
        image: UNKNOWN_STRING,
        uploads: nginxUploads.map((u) => ({ ...u, content: UNKNOWN_STRING })),
      },
    });
    expect(await check(preview)).toEqual([]);
    const previewNoAuth = layout({
      registryProps: { image: UNKNOWN_STRING },
      nginxProps: {
        image: UNKNOWN_STRING,
        uploads: [{ file: "/etc/nginx/nginx.conf", content: UNKNOWN_STRING }],
      },
    });
    expect((await check(previewNoAuth))[0]?.message).toMatch(/htpasswd/);
  });

  it("gives no verdict while the front's uploads are unknown", async () => {
    expect(await check(layout({ nginxProps: { uploads: UNKNOWN_STRING } }))).toEqual([]);
  });
});
