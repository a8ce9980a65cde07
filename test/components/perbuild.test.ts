/**
 * Per-build agents under Pulumi mocks: the dockerd mutual-TLS material stays secret, the ports the
 * Docker clouds use admit only the Jenkins controller, and the `jenkinsCasc` output (`berth
 * jenkins-casc`: test/cli/casc.test.ts) lists one Docker cloud per per-build host with the Docker plugin's fields,
 * its build containers on the host's `ci-services` network with dnsmasq as their resolver.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import { EPHEMERAL_PORTS } from "../../components/environment.ts";
import { DNSMASQ_CONTAINER, SERVICES_NETWORK } from "../../components/services.ts";
import { PER_BUILD_NETWORK } from "../../renderers/casc.ts";
import { resolveOutput, type CapturedResource } from "../../plan/mocks.ts";
import { runConfig, plain, isSecret, type StackRun } from "../../plan/run.ts";
import { declaredHosts } from "../../plan/declared.ts";
import { BUILD_TLS_DIR, BUILD_TLS_VOLUME } from "../../renderers/docker-access.ts";
import { gunzipSync } from "node:zlib";
import type { Casc } from "../support/casc.ts";

const TAG = "0123456789abcdef0123456789abcdef01234567";
const DIGEST = "sha256:" + "cd".repeat(32);

const staging = () => loadStack(PROJECT_ROOT, "staging", { agentImageTag: TAG });
function variant(edit: (c: BerthConfig) => void): BerthConfig {
  const c = structuredClone(staging());
  edit(c);
  return c;
}

interface Run {
  run: StackRun;
  casc: { value: string; secret: boolean };
  clientKey: { value: string; secret: boolean };
}
const runs = new Map<string, Run>();
async function execute(name: string, config: BerthConfig): Promise<void> {
  const run = await runConfig(config);
  const casc = await resolveOutput(run.outputs.jenkinsCasc);
  const clientKey = await resolveOutput(run.outputs.dockerTlsClientKeyPem ?? "");
  runs.set(name, { run, casc, clientKey });
}
const get = (name: string) => runs.get(name) as Run;

beforeAll(async () => {
  // One mock run at a time: the mocks are process-wide.
  await execute("staging", staging());
  await execute(
    "disabled",
    variant((c) => (c.jenkins.perBuild.enabled = false)),
  );
  await execute(
    "one host",
    variant((c) => (c.jenkins.perBuild.hosts = ["staging-ci-2"])),
  );
  await execute(
    "pinned",
    variant((c) => {
      c.jenkins.perBuild.image = `docker.io/example/agent:1@${DIGEST}`;
      c.jenkins.perBuild.imageSource = "pinned";
      c.jenkins.perBuild.pullStrategy = "PULL_NEVER";
      c.limits.containers.perBuild = { memoryMiB: 3072, cpus: 1.5, pids: 2048 };
    }),
  );
  await execute("testing", loadStack(PROJECT_ROOT, "testing"));
  await execute(
    "build tls",
    variant((c) => (c.jenkins.dockerAccess = { static: "tls", perBuild: "tls" })),
  );
  await execute(
    "build socket",
    variant((c) => (c.jenkins.dockerAccess = { static: "socket", perBuild: "socket" })),
  );
});

const byName = (run: StackRun, name: string): CapturedResource => {
  const r = run.resources.find((x) => x.name === name);
  if (!r) throw new Error(`no resource named ${name}`);
  return r;
};
const rules = (run: StackRun) =>
  run.resources
    .filter((r) => r.type === "openstack:networking/secGroupRule:SecGroupRule")
    .map((r) => ({
      name: r.name,
      min: plain(r.inputs.portRangeMin) as number | undefined,
      max: plain(r.inputs.portRangeMax) as number | undefined,
      cidr: plain(r.inputs.remoteIpPrefix) as string,
    }));
const sourcesOf = (run: StackRun, port: number) =>
  rules(run)
    .filter((r) => r.min !== undefined && r.max !== undefined && r.min <= port && port <= r.max)
    .map((r) => r.cidr);

/** Every string in `v` that is not inside a secret mark, with its path. */
function plainStrings(v: unknown, path: string, out: { path: string; text: string }[]): void {
  if (isSecret(v)) return;
  if (typeof v === "string") out.push({ path, text: v });
  else if (Array.isArray(v)) v.forEach((x, i) => plainStrings(x, `${path}[${i}]`, out));
  else if (v && typeof v === "object")
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) plainStrings(x, `${path}.${k}`, out);
}

describe("dockerd TLS material is secret", () => {
  it("no private key text appears in a non-secret input of any resource", () => {
    const { run } = get("staging");
    const leaks: string[] = [];
    for (const r of run.resources) {
      const found: { path: string; text: string }[] = [];
      plainStrings(r.inputs, r.name, found);
      for (const f of found) if (/PRIVATE KEY/.test(f.text)) leaks.push(f.path);
    }
    expect(leaks).toEqual([]);
  });

  it("the CA key, each server key and the client key reach their consumers as secrets", () => {
    const { run } = get("staging");
    const c = run.config;
    // The CA key signs every certificate: an input of each LocallySignedCert.
    const signed = run.resources.filter((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert");
    const dockerSigned = signed.filter(
      (r) => r.name.endsWith("-dockerd-cert") || r.name.includes("jenkins-client"),
    );
    expect(dockerSigned.map((r) => r.name).sort()).toEqual(
      [...c.hosts.names.map((h) => `${h}-dockerd-cert`), `${c.stack}-jenkins-client-cert`].sort(),
    );
    for (const r of dockerSigned) {
      expect(isSecret(r.inputs.caPrivateKeyPem), `${r.name}.caPrivateKeyPem`).toBe(true);
      expect(plain(r.inputs.caPrivateKeyPem)).toBe(
        byName(run, `${c.stack}-docker-ca-key`).state.privateKeyPem,
      );
    }
    // Each key pair's private half goes into its CSR as a secret.
    for (const name of [...c.hosts.names.map((h) => `${h}-dockerd`), `${c.stack}-jenkins-client`]) {
      const csr = byName(run, `${name}-csr`);
      expect(isSecret(csr.inputs.privateKeyPem), `${name}-csr.privateKeyPem`).toBe(true);
      expect(plain(csr.inputs.privateKeyPem)).toBe(byName(run, `${name}-key`).state.privateKeyPem);
    }
    // The server key travels in the host's user data, which is therefore secret as a whole.
    for (const host of c.hosts.names) {
      const userData = byName(run, `${host}-server`).inputs.userData;
      expect(isSecret(userData), host).toBe(true);
      expect(String(plain(userData))).toContain("/etc/docker/tls/server-key.pem");
    }
  });

  it("exports the client key as a secret, and the CASC snippet carries no key", () => {
    const { clientKey, casc } = get("staging");
    expect(clientKey.secret).toBe(true);
    expect(clientKey.value).toContain("PRIVATE KEY");
    expect(casc.secret).toBe(false);
    expect(casc.value).not.toMatch(/PRIVATE KEY|CERTIFICATE/);
  });
});

describe("security group", () => {
  it("admits dockerd's TLS port only from the controller CIDR", () => {
    for (const name of ["staging", "testing"]) {
      const { run } = get(name);
      const c = run.config;
      expect(sourcesOf(run, c.hosts.dockerTlsPort), name).toEqual([c.jenkins.controllerCidr]);
      const tls = rules(run).filter((r) => r.name.includes("docker-tls"));
      expect(tls).toEqual([
        {
          name: `${c.stack}-ci-docker-tls-2376-from-${c.jenkins.controllerCidr.replace("/", "-")}`,
          min: 2376,
          max: 2376,
          cidr: c.jenkins.controllerCidr,
        },
      ]);
      expect(sourcesOf(run, 2375), name).toEqual([]);
    }
  });

  it("opens the ports Docker publishes agents' SSH on, only to the controller and only when enabled", () => {
    const { run } = get("staging");
    const c = run.config;
    const range = rules(run).filter((r) => r.name.includes("per-build"));
    expect(range).toEqual([
      {
        name: `staging-ci-per-build-agents-${EPHEMERAL_PORTS.first}-${EPHEMERAL_PORTS.last}-from-198.51.100.40-32`,
        min: EPHEMERAL_PORTS.first,
        max: EPHEMERAL_PORTS.last,
        cidr: c.jenkins.controllerCidr,
      },
    ]);
    for (const port of [EPHEMERAL_PORTS.first, 45000, EPHEMERAL_PORTS.last])
      expect(sourcesOf(run, port)).toEqual([c.jenkins.controllerCidr]);
    for (const name of ["disabled", "testing"])
      expect(
        rules(get(name).run).filter((r) => r.name.includes("per-build")),
        name,
      ).toEqual([]);
  });

  it("enabling per-build agents adds only that rule: no server input changes", () => {
    const on = get("staging").run;
    const off = get("disabled").run;
    const names = (r: StackRun) => new Set(r.resources.map((x) => x.name));
    expect([...names(on)].filter((n) => !names(off).has(n))).toEqual([
      `staging-ci-per-build-agents-${EPHEMERAL_PORTS.first}-${EPHEMERAL_PORTS.last}-from-198.51.100.40-32`,
    ]);
    expect([...names(off)].filter((n) => !names(on).has(n))).toEqual([]);
    const servers = (r: StackRun) =>
      r.resources
        .filter((x) => x.type === "openstack:compute/instance:Instance")
        .map((x) => JSON.stringify(x.inputs));
    expect(servers(on)).toEqual(servers(off));
  });
});

describe("the jenkinsCasc output", () => {
  const parsed = (name: string) => parse(get(name).casc.value) as Casc;
  const floatingIp = (run: StackRun, host: string) =>
    String(byName(run, `${host}-fip`).state.address ?? "missing");

  it("parses as YAML with one Docker cloud per per-build host, at its floating IP over TLS", () => {
    const { run } = get("staging");
    const c = run.config;
    const clouds = parsed("staging")!.jenkins.clouds;
    expect(clouds.map((x) => x.docker.name)).toEqual(c.hosts.names);
    for (const cloud of clouds) {
      const ip = floatingIp(run, cloud.docker.name);
      expect(ip).toMatch(/^203\.0\.113\.\d+$/);
      expect(cloud.docker.dockerApi).toEqual({
        dockerHost: { uri: `tcp://${ip}:2376`, credentialsId: "staging-dockerd-tls" },
      });
      expect(cloud.docker.containerCap).toBe(4);
    }
  });

  it("has the Docker plugin's template fields, from the configuration", () => {
    const clouds = parsed("staging")!.jenkins.clouds;
    for (const cloud of clouds)
      expect(cloud.docker.templates).toEqual([
        {
          labelString: "docker-build staging-build",
          dockerTemplateBase: {
            image: `registry.staging.ci.example.com/berth/jenkins-agent:${TAG}`,
            pullCredentialsId: "staging-registry",
            network: "ci-services",
            dnsString: "172.30.0.2",
            // berth:limits.containers.perBuild, by default sized from m1.xlarge (config/limits.ts):
            // in MiB, swap equal to memory (none beyond the limit).
            memoryLimit: 1562,
            memorySwap: 1562,
            cpus: "1.61",
            // The plugin has no pids setter: the label carries it to the host's berth-pids-limit.
            extraDockerLabelsString: "org.berth.pids-limit=3124",
            // staging's two search domains, first preferred, space-separated as the plugin splits them.
            dnsSearchString: "ci.example.internal eu-west-1.ci.example.internal",
          },
          remoteFs: "/home/jenkins/agent",
          connector: { ssh: { sshKeyStrategy: { injectSSHKey: { user: "jenkins" } } } },
          instanceCapStr: "4",
          pullStrategy: "PULL_LATEST",
          removeVolumes: true,
        },
      ]);
    expect(get("staging").casc.value).toContain(
      "# Each build container is limited to 1562 MiB of memory (no swap beyond it), 1.61 CPUs\n# and 3124 processes (berth:limits.containers.perBuild)",
    );
    // Names the credentials the controller must hold.
    expect(get("staging").casc.value).toMatch(/^# {3}staging-dockerd-tls: X\.509 client certificate/m);
  });

  it("puts build containers on each host's ci-services network, resolving through that host's dnsmasq", () => {
    for (const name of ["staging", "one host"]) {
      const { run } = get(name);
      const c = run.config;
      expect(PER_BUILD_NETWORK).toBe(SERVICES_NETWORK);
      for (const cloud of parsed(name)!.jenkins.clouds) {
        const host = cloud.docker.name;
        const base = cloud.docker.templates[0]!.dockerTemplateBase as Record<string, unknown>;
        // What the host really runs, registered under that host's own Docker provider.
        const onHost = run.resources.filter((r) =>
          (r.provider ?? "").includes(`$pulumi:providers:docker::${host}-dockerd::`),
        );
        const network = onHost.filter(
          (r) => r.type === "docker:index/network:Network" && plain(r.inputs.name) === base.network,
        );
        expect(network, `${name}: ${host} has no ${String(base.network)} network`).toHaveLength(1);
        const dnsmasq = onHost.find(
          (r) => r.type === "docker:index/container:Container" && plain(r.inputs.name) === DNSMASQ_CONTAINER,
        );
        expect(plain(dnsmasq?.inputs.networksAdvanced), `${name}: ${host}'s dnsmasq`).toEqual([
          { name: base.network, ipv4Address: base.dnsString },
        ]);
        expect(base.dnsString).toBe(c.services.dnsAddress);
        // The long-lived agents of the same host use the same network and resolver.
        const agent = onHost.find(
          (r) => r.type === "docker:index/container:Container" && plain(r.inputs.name) === "jenkins-agent-1",
        );
        expect(plain(agent?.inputs.dns)).toEqual([base.dnsString]);
        expect(plain(agent?.inputs.dnsSearches)).toEqual(String(base.dnsSearchString).split(" "));
        expect(plain(agent?.inputs.dnsSearches)).toEqual(c.dns.searchDomains);
        expect(plain(agent?.inputs.networksAdvanced)).toContainEqual({ name: base.network });
      }
    }
  });

  it("uses only DockerTemplateBase fields the Docker plugin binds", () => {
    // The @DataBoundConstructor argument and @DataBoundSetter names of DockerTemplateBase
    // (jenkinsci/docker-plugin, src/main/java/com/nirima/jenkins/plugins/docker/DockerTemplateBase.java).
    // A misspelt field (`dns`, `networkMode`) fails here rather than when Jenkins loads the snippet.
    const pluginFields = new Set([
      "image",
      "pullCredentialsId",
      "dockerCommand",
      "hostname",
      "user",
      "extraGroupsString",
      "dnsString",
      // A @DataBoundSetter since the plugin's 1274.vc0203fdf2e74 (jenkinsci/docker-plugin#1105).
      "dnsSearchString",
      "network",
      "volumesString",
      "volumesFromString",
      "devicesString",
      "environmentsString",
      "mountsString",
      "cpus",
      "bindPorts",
      "bindAllPorts",
      "memoryLimit",
      "memorySwap",
      "cpus",
      "cpuPeriod",
      "cpuQuota",
      "cpuShares",
      "shmSize",
      "privileged",
      "tty",
      "macAddress",
      "extraHostsString",
      "securityOptsString",
      "capabilitiesToAddString",
      "capabilitiesToDropString",
      "extraDockerLabelsString",
    ]);
    for (const name of ["staging", "pinned", "build tls", "build socket"])
      for (const cloud of parsed(name)!.jenkins.clouds) {
        const base = cloud.docker.templates[0]!.dockerTemplateBase as Record<string, unknown>;
        expect(
          Object.keys(base).filter((k) => !pluginFields.has(k)),
          name,
        ).toEqual([]);
        // dnsString is split on spaces by the plugin: one IPv4 address here.
        expect(base.dnsString).toMatch(/^\d{1,3}(\.\d{1,3}){3}$/);
      }
  });

  it("lists only the configured hosts", () => {
    const clouds = parsed("one host")!.jenkins.clouds;
    expect(clouds.map((x) => x.docker.name)).toEqual(["staging-ci-2"]);
    expect(clouds[0]!.docker.dockerApi.dockerHost.uri).toBe(
      `tcp://${floatingIp(get("one host").run, "staging-ci-2")}:2376`,
    );
  });

  it("gives no registry credentials for an image from another registry", () => {
    const template = parsed("pinned")!.jenkins.clouds[0]!.docker.templates[0]!;
    expect(template.dockerTemplateBase).toEqual({
      image: `docker.io/example/agent:1@${DIGEST}`,
      network: "ci-services",
      dnsString: "172.30.0.2",
      // The variant's own limits reach the template.
      memoryLimit: 3072,
      memorySwap: 3072,
      cpus: "1.5",
      extraDockerLabelsString: "org.berth.pids-limit=2048",
      dnsSearchString: "ci.example.internal eu-west-1.ci.example.internal",
    });
    expect(template.pullStrategy).toBe("PULL_NEVER");
  });

  it("has no clouds when per-build agents are disabled", () => {
    for (const name of ["disabled", "testing"]) {
      expect(parsed(name), name).toBeNull();
      expect(get(name).casc.value).toContain("Per-build agents are disabled");
      expect(get(name).casc.value).not.toContain("docker:");
    }
  });
});

/** The contents of `path` in a host's Ignition (the server's user data). */
function ignitionFile(run: StackRun, host: string, path: string): string {
  const userData = JSON.parse(String(plain(byName(run, `${host}-server`).inputs.userData))) as {
    storage: { files: { path: string; contents?: { source: string; compression?: string } }[] };
  };
  const f = userData.storage.files.find((x) => x.path === path);
  if (!f?.contents) throw new Error(`${host}: no ${path} in the Ignition`);
  const { source, compression } = f.contents;
  if (source.startsWith("data:;base64,")) {
    const bytes = Buffer.from(source.slice("data:;base64,".length), "base64");
    return (compression === "gzip" ? gunzipSync(bytes) : bytes).toString("utf8");
  }
  return decodeURIComponent(source.slice("data:,".length));
}

describe("Docker access for builds (jenkins.dockerAccess)", () => {
  /** The containers of `host`: their parent component's name starts with the host's name. */
  const containers = (run: StackRun, host: string) =>
    run.resources.filter(
      (r) =>
        r.type === "docker:index/container:Container" &&
        ((r.parent ?? "").split("::").pop() ?? "").startsWith(`${host}-`),
    );
  const parsed = (name: string) => parse(get(name).casc.value) as Casc;
  const certOf = (run: StackRun, name: string) => String(byName(run, `${name}-cert`).state.certPem);

  it("gives each host its own build CA, trusted by that host's dockerd only, beside the stack's dockerd CA", () => {
    const { run } = get("build tls");
    const hosts = run.config.hosts.names;
    const stackCa = String(byName(run, `${run.config.stack}-docker-ca-cert`).state.certPem);
    for (const host of hosts) {
      const trusted = ignitionFile(run, host, "/etc/docker/tls/ca.pem");
      expect(trusted).toBe(`${stackCa.trim()}\n${certOf(run, `${host}-build-ca`).trim()}\n`);
      for (const other of hosts.filter((h) => h !== host))
        expect(trusted, `${host} trusts ${other}'s build CA`).not.toContain(
          certOf(run, `${other}-build-ca`).trim(),
        );
    }
    // Without tls access, dockerd trusts the stack CA alone, as before.
    const plainRun = get("staging").run;
    for (const host of hosts)
      expect(ignitionFile(plainRun, host, "/etc/docker/tls/ca.pem").trim()).toBe(
        String(byName(plainRun, `${run.config.stack}-docker-ca-cert`).state.certPem).trim(),
      );
    // Each host's build client certificate is signed by its own build CA.
    for (const host of hosts) {
      const signed = byName(run, `${host}-build-client-cert`);
      expect(plain(signed.inputs.caCertPem)).toBe(certOf(run, `${host}-build-ca`));
      expect(isSecret(signed.inputs.caPrivateKeyPem)).toBe(true);
    }
  });

  it("puts the host's build credentials in a volume through a never-started carrier: key secret, 0400, owned by jenkins", () => {
    const { run } = get("build tls");
    for (const host of run.config.hosts.names) {
      const carrier = containers(run, host).find((r) => plain(r.inputs.name) === BUILD_TLS_VOLUME);
      if (!carrier) throw new Error(`${host}: no carrier container`);
      expect(plain(carrier.inputs.start)).toBe(false);
      expect(plain(carrier.inputs.mustRun)).toBe(false);
      const uploads = plain(carrier.inputs.uploads) as { file: string; permissions: string; owner: string }[];
      expect(uploads.map((u) => [u.file, u.permissions, u.owner])).toEqual([
        [`${BUILD_TLS_DIR}/ca.pem`, "0444", "1000"],
        [`${BUILD_TLS_DIR}/cert.pem`, "0444", "1000"],
        [`${BUILD_TLS_DIR}/key.pem`, "0400", "1000"],
      ]);
      const raw = carrier.inputs.uploads as { content: unknown }[];
      expect(isSecret(raw[2]?.content), `${host}: the key upload is a secret`).toBe(true);
      expect(plain(raw[2]?.content)).toBe(byName(run, `${host}-build-client-key`).state.privateKeyPem);
      expect(isSecret(raw[1]?.content)).toBe(false);
    }
  });

  it("never gives a container the controller's client key", async () => {
    for (const name of ["build tls", "build socket", "staging"]) {
      const { run, clientKey } = get(name);
      expect(clientKey.value).toContain("PRIVATE KEY");
      for (const r of run.resources.filter((x) => x.type === "docker:index/container:Container"))
        expect(JSON.stringify(plain(r.inputs)), `${name}: ${r.name}`).not.toContain(clientKey.value.trim());
    }
  });

  it("gives static agents DOCKER_HOST at their own host's CI address and the volume read-only", () => {
    const { run } = get("build tls");
    const c = run.config;
    c.hosts.names.forEach((host, i) => {
      const agents = containers(run, host).filter((r) =>
        String(plain(r.inputs.name)).startsWith("jenkins-agent-"),
      );
      expect(agents.length).toBe(c.jenkins.agentsPerHost);
      for (const a of agents) {
        expect(plain(a.inputs.envs)).toEqual(
          expect.arrayContaining([
            `DOCKER_HOST=tcp://${c.hosts.addresses[i]}:${String(c.hosts.dockerTlsPort)}`,
            "DOCKER_TLS_VERIFY=1",
            `DOCKER_CERT_PATH=${BUILD_TLS_DIR}`,
          ]),
        );
        expect(plain(a.inputs.volumes)).toContainEqual({
          volumeName: BUILD_TLS_VOLUME,
          containerPath: BUILD_TLS_DIR,
          readOnly: true,
        });
        expect(a.inputs.securityOpts).toBeUndefined();
      }
    });
  });

  it("gives build containers their host's endpoint and the volume in the Docker cloud template", () => {
    const c = get("build tls").run.config;
    for (const cloud of parsed("build tls")!.jenkins.clouds) {
      const i = c.hosts.names.indexOf(cloud.docker.name);
      const base = cloud.docker.templates[0]!.dockerTemplateBase as Record<string, string>;
      expect(base.environmentsString!.split("\n")).toEqual([
        `DOCKER_HOST=tcp://${c.hosts.addresses[i]}:${String(c.hosts.dockerTlsPort)}`,
        "DOCKER_TLS_VERIFY=1",
        `DOCKER_CERT_PATH=${BUILD_TLS_DIR}`,
      ]);
      expect(base.mountsString).toBe(
        `type=volume,source=${BUILD_TLS_VOLUME},destination=${BUILD_TLS_DIR},readonly`,
      );
    }
    expect(get("build tls").casc.value).toMatch(/root on the host/);
    // socket: the socket, label=disable; none (shipped staging): nothing.
    for (const cloud of parsed("build socket")!.jenkins.clouds) {
      const base = cloud.docker.templates[0]!.dockerTemplateBase as Record<string, string>;
      expect(base.mountsString).toBe(
        "type=bind,source=/var/run/docker.sock,destination=/var/run/docker.sock",
      );
      expect(base.securityOptsString).toBe("label=disable");
      expect(base.environmentsString).toBe("DOCKER_HOST=unix:///var/run/docker.sock");
    }
    for (const cloud of parsed("staging")!.jenkins.clouds) {
      const base = cloud.docker.templates[0]!.dockerTemplateBase as Record<string, string>;
      expect([base.mountsString, base.environmentsString, base.securityOptsString]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    }
  });

  it("berth drift expects the carrier not to run (declared, never started)", () => {
    const { run } = get("build tls");
    for (const [host, declared] of declaredHosts(run)) {
      const carrier = declared.containers.find((c) => c.name === BUILD_TLS_VOLUME);
      expect(carrier?.started, host).toBe(false);
      expect(declared.containers.filter((c) => c.name !== BUILD_TLS_VOLUME).every((c) => c.started)).toBe(
        true,
      );
    }
  });

  it("with socket access, creates no build CA or carrier", () => {
    const { run } = get("build socket");
    expect(
      run.resources.filter((r) => r.name.includes("build-ca") || r.name.includes("build-docker-tls")),
    ).toEqual([]);
  });
});
