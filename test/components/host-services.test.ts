/**
 * components/host-services.ts (HostServices), the service layer of each host, under Pulumi's mocks
 * in every shipped stack: the containers, networks and volumes of each host, their provider, image
 * pinning, secrets, data protection and published ports.
 */
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { IMAGE_DIGEST_PATTERN, SERVICE_CATALOG } from "../../config/images.ts";
import type { BerthConfig } from "../../config/types.ts";
import { runUnderMocks, type CapturedResource } from "../../plan/mocks.ts";
import { berthProgram } from "../../program.ts";
import { BERTH_HOST_LABEL, BERTH_STACK_LABEL } from "../../components/docker-host.ts";
import {
  HOLDER_CHECK_SCRIPT,
  HOLDER_FORWARD_FILE,
  HOLDER_FORWARD_SCRIPT,
  HOLDER_LABEL,
  HOLDER_TEMPLATE,
} from "../../components/services.ts";
import {
  isSecret,
  keyOf,
  list,
  publicStrings,
  reveal,
  type Upload,
  type VolumeMount,
} from "../support/captured.ts";
import { STACKS } from "../support/stack-runs.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
/** The image ID plan/mocks.ts gives a RemoteImage pulling `ref`. */
const mockImageId = (ref: string) => `sha256:${sha(ref)}`;

const mocked = runUnderMocks;

// --- reading the captured graph ------------------------------------------------------------------

interface Graph {
  config: BerthConfig;
  resources: CapturedResource[];
  byKey: Map<string, CapturedResource>;
  /** Host name of the HostServices a resource sits under (undefined outside the service layer). */
  hostOf(r: CapturedResource): string | undefined;
  ofType(type: string): CapturedResource[];
  containers(host: string): CapturedResource[];
  container(host: string, name: string): CapturedResource;
}

function graph(config: BerthConfig, resources: CapturedResource[]): Graph {
  const byKey = new Map(resources.map((r) => [`${r.type}::${r.name}`, r]));
  const hostOf = (r: CapturedResource): string | undefined => {
    let cur: CapturedResource | undefined = r;
    for (let depth = 0; cur && depth < 20; depth++) {
      if (cur.type === "berth:services:HostServices") return cur.name;
      cur = cur.parent ? byKey.get(keyOf(cur.parent)) : undefined;
    }
    return undefined;
  };
  const ofType = (type: string) => resources.filter((r) => r.type === type);
  const containers = (host: string) =>
    ofType("docker:index/container:Container").filter((r) => hostOf(r) === host);
  return {
    config,
    resources,
    byKey,
    hostOf,
    ofType,
    containers,
    container(host, name) {
      const found = containers(host).filter((r) => r.inputs.name === name);
      expect(found, `container ${name} on ${host}`).toHaveLength(1);
      return found[0]!;
    },
  };
}

async function build(stack: string): Promise<Graph> {
  const config = loadStack(PROJECT_ROOT, stack);
  const run = await mocked(stack, () => berthProgram(config));
  return graph(config, run.resources);
}

// --- value helpers -------------------------------------------------------------------------------

interface Port {
  internal: number;
  external?: number;
  ip?: string;
  protocol?: string;
}
interface NetAttach {
  name: string;
  ipv4Address?: string;
}
function uploadOf(c: CapturedResource, file: string): Upload {
  const found = list<Upload>(c.inputs.uploads).filter((u) => u.file === file);
  expect(found, `${c.inputs.name as string} uploads ${file}`).toHaveLength(1);
  return found[0]!;
}

function expectedContainers(c: BerthConfig, host: string): string[] {
  const names = [
    ...c.services.minimal,
    ...c.services.productionLike.map((s) => s.name),
    "dnsmasq",
    "node-exporter",
    ...c.services.networkHolders,
    // Each application slot's front (the applications are the builds', not the program's).
    ...(c.services.slots ?? []).map((s) => `slot-${s.name}`),
    ...Array.from({ length: c.jenkins.agentsPerHost }, (_, i) => `jenkins-agent-${i + 1}`),
  ];
  if (host === c.registry.host) {
    names.push("registry", "registry-nginx", ...(c.registry.pullThroughCache ? ["registry-mirror"] : []));
  }
  return names.sort();
}

/** Volumes holding data (protected in production) vs. caches. */
function expectedDataVolumes(c: BerthConfig, host: string): string[] {
  return [
    ...c.services.minimal.filter((k) => SERVICE_CATALOG[k].dataDir !== undefined).map((k) => `${k}-data`),
    ...c.services.productionLike
      .filter((s) => SERVICE_CATALOG[s.kind].dataDir !== undefined)
      .map((s) => `${s.name}-data`),
    ...(host === c.registry.host
      ? ["registry-data", ...(c.registry.pullThroughCache ? ["registry-mirror-data"] : [])]
      : []),
  ].sort();
}

// --- per stack -----------------------------------------------------------------------------------

describe.each(STACKS)("service layer of stack %s", (stack) => {
  let g: Graph;
  beforeAll(async () => {
    g = await build(stack);
  });

  it("has one HostServices per host, and the registry only on the registry host", () => {
    const c = g.config;
    expect(
      g
        .ofType("berth:services:HostServices")
        .map((r) => r.name)
        .sort(),
    ).toEqual([...c.hosts.names].sort());
    const registries = g.ofType("berth:registry:Registry");
    expect(registries).toHaveLength(1);
    expect(g.hostOf(registries[0]!)).toBe(c.registry.host);
  });

  it("runs exactly the configured containers on every host", () => {
    for (const host of g.config.hosts.names) {
      const names = g.containers(host).map((r) => r.inputs.name as string);
      expect(names.sort(), host).toEqual(expectedContainers(g.config, host));
    }
  });

  it("creates the ci-services network with the configured subnet, and berth-registry only on the registry host", () => {
    const c = g.config;
    for (const host of c.hosts.names) {
      const nets = g.ofType("docker:index/network:Network").filter((r) => g.hostOf(r) === host);
      const expected = ["ci-services", ...(host === c.registry.host ? ["berth-registry"] : [])].sort();
      expect(nets.map((n) => n.inputs.name).sort(), host).toEqual(expected);
      const svc = nets.find((n) => n.inputs.name === "ci-services")!;
      const ipam = list<{ subnet: string; gateway: string; ipRange: string }>(svc.inputs.ipamConfigs);
      expect(ipam).toHaveLength(1);
      expect(ipam[0]).toMatchObject({ subnet: c.services.subnet, gateway: c.services.gateway });
      const reg = nets.find((n) => n.inputs.name === "berth-registry");
      if (reg) expect(reg.inputs.internal).toBe(true);
    }
  });

  it("places the production-like services, dnsmasq and the holders on ci-services as configured", () => {
    const c = g.config;
    for (const host of c.hosts.names) {
      for (const svc of c.services.productionLike) {
        const ctr = g.container(host, svc.name);
        expect(ctr.inputs.hostname).toBe(svc.name);
        expect(list<NetAttach>(ctr.inputs.networksAdvanced)).toEqual([
          { name: "ci-services", ipv4Address: svc.address },
        ]);
        expect(ctr.inputs.dns).toEqual([c.services.dnsAddress]);
        expect(ctr.inputs.dnsSearches).toEqual(c.dns.searchDomains);
        expect(ctr.inputs.ports ?? []).toEqual([]);
      }
      const dns = g.container(host, "dnsmasq");
      expect(list<NetAttach>(dns.inputs.networksAdvanced)).toEqual([
        { name: "ci-services", ipv4Address: c.services.dnsAddress },
      ]);
      const conf = reveal(uploadOf(dns, "/etc/dnsmasq.conf").content) as string;
      expect(conf).toContain(`listen-address=${c.services.dnsAddress}\n`);
      for (const svc of c.services.productionLike) {
        expect(conf).toContain(
          `host-record=${[svc.name, ...c.dns.searchDomains.map((d) => `${svc.name}.${d}`)].join(",")},${svc.address}\n`,
        );
      }
      expect(conf.match(/^host-record=/gm) ?? []).toHaveLength(c.services.productionLike.length);
      for (const up of c.services.upstreamDns) expect(conf).toContain(`server=${up}\n`);

      for (const holder of c.services.networkHolders) {
        const h = g.container(host, holder);
        const nets = list<NetAttach>(h.inputs.networksAdvanced).map((n) => n.name);
        expect(nets).toContain("ci-services");
        expect(h.inputs.dns).toEqual([c.services.dnsAddress]);
        expect(h.inputs.dnsSearches).toEqual(c.dns.searchDomains);
        expect(nets).toEqual(["bridge", "ci-services"]);
        // seed 004's holder: the minimal set forwarded from its own localhost to docker0's gateway.
        expect(h.inputs.entrypoints).toEqual([
          "/bin/sh",
          "-c",
          HOLDER_FORWARD_SCRIPT,
          "berth-holder-forward",
        ]);
        expect(h.inputs.command).toBeUndefined();
        expect(list<{ label: string; value: string }>(h.inputs.labels)).toEqual([
          { label: "org.berth.pids-limit", value: String(c.limits.containers.holder.pids) },
          { label: HOLDER_LABEL, value: HOLDER_TEMPLATE },
          { label: BERTH_STACK_LABEL, value: c.stack },
          { label: BERTH_HOST_LABEL, value: host },
        ]);
        const forward = uploadOf(h, HOLDER_FORWARD_FILE).content as string;
        expect(forward).toBe(
          c.services.minimal
            .map((k) => `${SERVICE_CATALOG[k].port}=172.17.0.1:${SERVICE_CATALOG[k].port}\n`)
            .join(""),
        );
        expect(forward).toContain("6379=172.17.0.1:6379\n");
        expect((h.inputs.healthcheck as { tests: string[] }).tests).toEqual([
          "CMD",
          "/bin/sh",
          "-c",
          HOLDER_CHECK_SCRIPT,
        ]);
      }
    }
  });

  it("runs the minimal set on the default ports of 127.0.0.1 and docker0 only, off ci-services", () => {
    for (const host of g.config.hosts.names) {
      for (const kind of g.config.services.minimal) {
        const ctr = g.container(host, kind);
        const port = SERVICE_CATALOG[kind].port;
        const ports = list<Port>(ctr.inputs.ports)
          .map((p) => `${p.ip}:${p.external}->${p.internal}`)
          .sort();
        expect(ports, `${host} ${kind}`).toEqual([
          `127.0.0.1:${port}->${port}`,
          `172.17.0.1:${port}->${port}`,
        ]);
        expect(list<NetAttach>(ctr.inputs.networksAdvanced).map((n) => n.name)).not.toContain("ci-services");
        expect(
          list<string>(ctr.inputs.healthcheck && (ctr.inputs.healthcheck as { tests: string[] }).tests),
        ).toEqual([...SERVICE_CATALOG[kind].healthcheck]);
      }
    }
  });

  it("runs agentsPerHost Jenkins agents on basePort+1..basePort+N of the host's CI address", () => {
    const c = g.config;
    c.hosts.names.forEach((host, i) => {
      const agents = g.containers(host).filter((r) => /^jenkins-agent-\d+$/.test(r.inputs.name as string));
      expect(agents).toHaveLength(c.jenkins.agentsPerHost);
      for (let n = 1; n <= c.jenkins.agentsPerHost; n++) {
        const a = g.container(host, `jenkins-agent-${n}`);
        expect(list<Port>(a.inputs.ports)).toEqual([
          { internal: 22, external: c.jenkins.basePort + n, ip: c.hosts.addresses[i], protocol: "tcp" },
        ]);
        expect(list<string>(a.inputs.envs)).toContain(`JENKINS_AGENT_SSH_PUBKEY=${c.jenkins.agentPublicKey}`);
        expect(
          list<NetAttach>(a.inputs.networksAdvanced)
            .map((x) => x.name)
            .sort(),
        ).toEqual(["bridge", "ci-services"]);
        expect(a.inputs.dns).toEqual([c.services.dnsAddress]);
        expect(list<VolumeMount>(a.inputs.volumes)).toContainEqual({
          volumeName: `jenkins-agent-${n}-work`,
          containerPath: "/home/jenkins/agent",
        });
        // The Docker socket is opt-in; no shipped stack opts in.
        expect(list<VolumeMount>(a.inputs.volumes).some((v) => v.hostPath !== undefined)).toBe(
          c.jenkins.dockerAccess.static === "socket",
        );
      }
    });
  });

  it("gives every Docker resource its own host's provider", () => {
    const docker = g.resources.filter((r) => r.type.startsWith("docker:"));
    expect(docker.length).toBeGreaterThan(0);
    const providers = g.ofType("pulumi:providers:docker");
    expect(providers.map((p) => p.name).sort()).toEqual(
      g.config.hosts.names.map((h) => `${h}-dockerd`).sort(),
    );
    const endpoints = new Set(providers.map((p) => p.inputs.host));
    expect(endpoints.size).toBe(providers.length);
    for (const r of docker) {
      const host = g.hostOf(r);
      expect(host, r.name).toBeDefined();
      const provider = g.byKey.get(`pulumi:providers:docker::${host}-dockerd`)!;
      expect(r.provider, r.name).toBeDefined();
      const ref = r.provider!;
      const cut = ref.lastIndexOf("::");
      expect(keyOf(ref.slice(0, cut)), r.name).toBe(`pulumi:providers:docker::${host}-dockerd`);
      expect(ref.slice(cut + 2), r.name).toBe(provider.id);
    }
  });

  it("labels every container, network and volume with its stack and host; label changes never replace a network or volume", () => {
    const labelled = g.resources.filter((r) =>
      [
        "docker:index/container:Container",
        "docker:index/network:Network",
        "docker:index/volume:Volume",
      ].includes(r.type),
    );
    expect(labelled.length).toBeGreaterThan(0);
    for (const r of labelled) {
      const labels = list<{ label: string; value: string }>(r.inputs.labels);
      expect(labels, r.name).toEqual(
        expect.arrayContaining([
          { label: BERTH_STACK_LABEL, value: g.config.stack },
          { label: BERTH_HOST_LABEL, value: g.hostOf(r) },
        ]),
      );
      // Docker cannot relabel a network or volume: the provider would replace it (and a volume's data).
      expect(r.ignoreChanges, r.name).toEqual(r.type.endsWith(":Container") ? [] : ["labels"]);
    }
  });

  it("waits for dockerd before the provider is used, re-running only for a new server", () => {
    for (const host of g.config.hosts.names) {
      const provider = g.byKey.get(`pulumi:providers:docker::${host}-dockerd`)!;
      expect(provider.inputs.host).toMatch(/^ssh:\/\/core@\d+\.\d+\.\d+\.\d+$/);
      const wait = g.byKey.get(`command:local:Command::${host}-dockerd-ready`)!;
      expect(provider.dependencies.map(keyOf)).toContain(`command:local:Command::${host}-dockerd-ready`);
      expect(wait.inputs.create).toMatch(/^scripts\/wait-for-docker\.sh .*core@\d+\.\d+\.\d+\.\d+$/);
      expect((wait.inputs.triggers as unknown[]).length).toBe(1);
    }
  });

  it("pins every container image by digest, pulled on the container's own host", () => {
    const images = g.ofType("docker:index/remoteImage:RemoteImage");
    for (const img of images) expect(img.inputs.name as string).toMatch(IMAGE_DIGEST_PATTERN);
    const containers = g.ofType("docker:index/container:Container");
    expect(containers.length).toBeGreaterThan(0);
    for (const ctr of containers) {
      const host = g.hostOf(ctr);
      const image = images.find(
        (i) => g.hostOf(i) === host && mockImageId(i.inputs.name as string) === ctr.inputs.image,
      );
      expect(image, `${ctr.name} image ${String(ctr.inputs.image)}`).toBeDefined();
      expect(image!.provider).toBe(ctr.provider);
      expect(image!.inputs.keepLocally).toBe(true);
    }
  });

  it("keeps passwords, htpasswd, TLS keys and agent host keys secret, and their plaintext out of public inputs", () => {
    const c = g.config;
    const plaintexts: string[] = [];
    for (const pw of g.ofType("random:index/randomPassword:RandomPassword"))
      plaintexts.push(pw.state.result as string);
    for (const key of g.ofType("tls:index/privateKey:PrivateKey")) {
      plaintexts.push(key.state.privateKeyPem as string, key.state.privateKeyOpenssh as string);
    }
    const host = c.registry.host;
    const nginx = g.container(host, "registry-nginx");
    const htpasswd = uploadOf(nginx, "/etc/nginx/berth/htpasswd");
    expect(isSecret(htpasswd.content)).toBe(true);
    const lines = (reveal(htpasswd.content) as string).trim().split("\n");
    expect(lines.map((l) => l.split(":")[0]).sort()).toEqual(c.registry.users.map((u) => u.name).sort());
    plaintexts.push(...lines);
    const tlsKey = uploadOf(nginx, "/etc/nginx/berth/registry.key");
    expect(isSecret(tlsKey.content)).toBe(true);
    expect(tlsKey.permissions).toBe("0600");
    plaintexts.push(reveal(tlsKey.content) as string);
    for (const name of ["registry", ...(c.registry.pullThroughCache ? ["registry-mirror"] : [])]) {
      const conf = uploadOf(g.container(host, name), "/etc/docker/registry/config.yml");
      expect(isSecret(conf.content), name).toBe(true);
      const secretLine = /secret: "([^"]+)"/.exec(reveal(conf.content) as string)?.[1];
      expect(secretLine, name).toBeDefined();
      plaintexts.push(secretLine!);
    }
    for (const h of c.hosts.names) {
      for (let n = 1; n <= c.jenkins.agentsPerHost; n++) {
        const agent = g.container(h, `jenkins-agent-${n}`);
        for (const t of ["ed25519", "rsa"]) {
          const key = uploadOf(agent, `/etc/ssh/berth-hostkeys/ssh_host_${t}_key`);
          expect(isSecret(key.content), `${h} agent ${n} ${t}`).toBe(true);
          expect(reveal(key.content), `${h} agent ${n} ${t}`).toMatch(/PRIVATE KEY/);
          expect(key.permissions).toBe("0600");
          const pub = uploadOf(agent, `/etc/ssh/berth-hostkeys/ssh_host_${t}_key.pub`);
          expect(isSecret(pub.content)).toBe(false);
        }
      }
      for (const ctr of g.containers(h)) {
        const envs = ctr.inputs.envs;
        if (list<string>(envs).some((e) => /PASSWORD=|_PASS=/.test(e)))
          expect(isSecret(envs), ctr.name).toBe(true);
      }
    }
    const secrets = plaintexts.filter((p) => typeof p === "string" && p.length >= 8);
    expect(secrets.length).toBeGreaterThan(c.registry.users.length + 2);
    for (const r of g.resources) {
      for (const s of publicStrings(r.inputs)) {
        for (const p of secrets) expect(s.includes(p), `${r.type} ${r.name} exposes a secret`).toBe(false);
      }
    }
  });

  it("keeps registry and service data on named volumes, protected and retained only in production", () => {
    const c = g.config;
    const protect = c.stack === "production";
    expect(c.hosts.protectData).toBe(protect);
    for (const host of c.hosts.names) {
      const volumes = g.ofType("docker:index/volume:Volume").filter((r) => g.hostOf(r) === host);
      const data = expectedDataVolumes(c, host);
      const work = Array.from({ length: c.jenkins.agentsPerHost }, (_, i) => `jenkins-agent-${i + 1}-work`);
      expect(volumes.map((v) => v.inputs.name as string).sort()).toEqual([...data, ...work].sort());
      for (const v of volumes) {
        const isData = data.includes(v.inputs.name as string);
        expect(v.protect, `${host} ${v.inputs.name as string}`).toBe(isData && protect);
        expect(v.retainOnDelete, `${host} ${v.inputs.name as string}`).toBe(isData && protect);
      }
      // Each data service mounts its own named volume at the image's data directory.
      for (const svc of c.services.productionLike) {
        const dir = SERVICE_CATALOG[svc.kind].dataDir;
        const mounts = list<VolumeMount>(g.container(host, svc.name).inputs.volumes);
        expect(mounts).toEqual(dir ? [{ volumeName: `${svc.name}-data`, containerPath: dir }] : []);
      }
      if (host === c.registry.host) {
        expect(list<VolumeMount>(g.container(host, "registry").inputs.volumes)).toEqual([
          { volumeName: "registry-data", containerPath: "/var/lib/registry" },
        ]);
      }
      // No container bind-mounts a host directory for its data; node_exporter reads the host's
      // root file system, read-only.
      for (const ctr of g.containers(host)) {
        for (const m of list<VolumeMount>(ctr.inputs.volumes)) {
          if (ctr.inputs.name === "node-exporter") {
            expect(m).toEqual({ hostPath: "/", containerPath: "/host", readOnly: true });
            continue;
          }
          expect(m.hostPath === undefined || m.hostPath === "/var/run/docker.sock", ctr.name).toBe(true);
        }
      }
    }
  });

  it("publishes no port on 0.0.0.0 and the registry only on the host's CI address", () => {
    const c = g.config;
    for (const ctr of g.ofType("docker:index/container:Container")) {
      for (const p of list<Port>(ctr.inputs.ports)) {
        expect(p.ip, `${ctr.name} port ${p.internal}`).toBeDefined();
        expect(["0.0.0.0", "", "::"]).not.toContain(p.ip);
      }
    }
    const regIp = c.hosts.addresses[c.hosts.names.indexOf(c.registry.host)];
    const ports = list<Port>(g.container(c.registry.host, "registry-nginx").inputs.ports);
    // 5001: the registry's metrics (its debug server, through nginx).
    const expected = [443, ...(c.registry.pullThroughCache ? [c.registry.pullThroughCache.port] : []), 5001];
    expect(ports.map((p) => `${p.ip}:${p.external}`).sort()).toEqual(
      expected.map((p) => `${regIp}:${p}`).sort(),
    );
    for (const name of ["registry", "registry-mirror"]) {
      const r = g.containers(c.registry.host).find((x) => x.inputs.name === name);
      if (r) expect(r.inputs.ports ?? []).toEqual([]);
    }
  });

  it("fronts the registry with nginx: TLS for the registry hostname, basic auth, mirror only for the CI sources", () => {
    const c = g.config;
    const nginx = g.container(c.registry.host, "registry-nginx");
    const conf = reveal(uploadOf(nginx, "/etc/nginx/nginx.conf").content) as string;
    expect(conf).toContain(`server_name ${c.registry.hostname};`);
    expect(conf).toContain("auth_basic_user_file /etc/nginx/berth/htpasswd;");
    // Resolved per request through Docker's embedded DNS (renderers/nginx.ts).
    expect(conf).toContain("set $berth_registry registry:5000;");
    expect(conf).toContain("resolver 127.0.0.11 valid=1s ipv6=off;");
    const allows = [...conf.matchAll(/^\s*allow (\S+);$/gm)].map((m) => m[1]);
    if (c.registry.pullThroughCache) {
      expect(conf).toContain(`listen ${c.registry.pullThroughCache.port} ssl;`);
      expect(allows.sort()).toEqual([c.openstack.networkCidr, ...c.openstack.registryClientCidrs].sort());
      const mirror = g.container(c.registry.host, "registry-mirror");
      const mirrorConf = reveal(uploadOf(mirror, "/etc/docker/registry/config.yml").content) as string;
      expect(mirrorConf).toContain(`remoteurl: "${c.registry.pullThroughCache.remoteUrl}"`);
    } else {
      expect(allows).toEqual([]);
    }
    const registryConf = reveal(
      uploadOf(g.container(c.registry.host, "registry"), "/etc/docker/registry/config.yml").content,
    ) as string;
    expect(registryConf).toMatch(/delete:\n\s+enabled: true/);
  });

  it("sets restart, log options and health checks explicitly on every long-running container", () => {
    for (const ctr of g.ofType("docker:index/container:Container")) {
      expect(ctr.inputs.restart, ctr.name).toBe("unless-stopped");
      expect(ctr.inputs.logDriver, ctr.name).toBe("json-file");
      expect(ctr.inputs.logOpts, ctr.name).toEqual({ "max-size": "20m", "max-file": "5" });
      const isHolder = g.config.services.networkHolders.includes(ctr.inputs.name as string);
      if (!isHolder)
        expect(
          (ctr.inputs.healthcheck as { tests?: string[] } | undefined)?.tests?.length,
          ctr.name,
        ).toBeGreaterThan(0);
    }
  });

  it("feeds nothing of the service layer into any server input", () => {
    const serviceKeys = new Set(
      g.resources.filter((r) => g.hostOf(r) !== undefined).map((r) => `${r.type}::${r.name}`),
    );
    for (const server of g.ofType("openstack:compute/instance:Instance")) {
      for (const d of server.dependencies)
        expect(serviceKeys.has(keyOf(d)), `${server.name} ← ${d}`).toBe(false);
    }
  });
});
