import * as pulumi from "@pulumi/pulumi";
import { internalError } from "../config/errors.ts";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import type { RegistryTls, RegistryUser, SecretValue } from "../config/types.ts";
import {
  BCRYPT_DEFAULT_COST,
  bcryptSaltFrom,
  htpasswdEntry,
  sshaEntry,
  renderHtpasswd,
  renderNginxConfig,
  renderRegistryConfig,
  REGISTRY_DEFAULTS,
} from "../renderers/index.ts";
import { certificateBlocks } from "../renderers/pem.ts";
import { NGINX_MAINTENANCE_DIR } from "../renderers/registry-gc.ts";
import { PinnedImages, assertPinned, commonContainerArgs, limitArgs } from "./docker-host.ts";
import type { ContainerLimit } from "../config/limits.ts";
import type { ContainerLogs } from "./docker-host.ts";
import {
  REGISTRY_CONTAINER,
  REGISTRY_MIRROR_CONTAINER,
  REGISTRY_NGINX_CONTAINER,
} from "../config/containers.ts";
import { METRICS_PORTS, REGISTRY_HTTPS_PORT } from "../config/ports.ts";
import type { StackCa } from "./pki.ts";

/** Paths inside the containers. */
const REGISTRY_CONFIG_PATH = "/etc/docker/registry/config.yml";
const NGINX_CONFIG_PATH = "/etc/nginx/nginx.conf";
const NGINX_HTPASSWD_PATH = "/etc/nginx/berth/htpasswd";
const NGINX_CERT_PATH = "/etc/nginx/berth/registry.crt";
const NGINX_KEY_PATH = "/etc/nginx/berth/registry.key";
/** gid of `nginx` in the official nginx images: workers read the htpasswd file on every request. */
const NGINX_WORKER_GID = "101";
/** Port the registry containers listen on (plain HTTP, only on the `berth-registry` network). */
const REGISTRY_PORT = 5000;

/** Name of the placeholder used when a password is only known encrypted (offline runs). */
export const OFFLINE_PLACEHOLDER_PREFIX = "berth-offline-placeholder-not-a-real-secret";

/**
 * A configured secret as a Pulumi secret. `encrypted` values only occur in offline runs (`berth
 * render`/`plan` without the stack's passphrase; under `pulumi up`, Pulumi has decrypted them): they
 * become a clearly named placeholder so the program still runs, never a usable credential.
 */
export function secretInput(value: SecretValue, what: string): pulumi.Output<string> {
  return pulumi.secret(value.kind === "plain" ? value.value : `${OFFLINE_PLACEHOLDER_PREFIX}-${what}`);
}

export interface RegistryArgs {
  /** Where the containers log (default json-file; journald when the stack forwards its journal). */
  containerLogs?: ContainerLogs;

  /** Host name of the host it runs on, e.g. `staging-ci-1` (resource names). */
  hostName: string;
  /** The host's address on the CI network: nginx publishes on it, and the certificate names it. */
  privateIp: string;
  /** DNS name clients use; the certificate and nginx's `server_name` carry it. */
  hostname: string;
  /** TLS settings from the stack configuration. */
  tls: RegistryTls;
  /** The stack's registry CA; required when `tls.mode` is `self-signed`. */
  ca?: StackCa;
  /** Users allowed to push and pull (basic auth). */
  users: RegistryUser[];
  /** Registry image, pinned by digest. */
  image: string;
  /** nginx image, pinned by digest. */
  nginxImage: string;
  /** Optional read-only pull-through cache of a public registry on its own port. */
  pullThroughCache?: { remoteUrl: string; port: number };
  /** Sources allowed to pull through the cache: the CI network CIDR and the registry client CIDRs. */
  mirrorAllowCidrs: string[];
  /** Protect the data volumes from deletion and retain them when the stack is destroyed. */
  protectData: boolean;
  /** Lifetime of a self-signed server certificate, in days. Default: `tls.validityDays`. */
  certValidityDays?: number;
  /** Memory and CPU limits of the registry, its mirror and nginx (config/limits.ts); unlimited when absent. */
  limits?: Partial<Record<"registry" | "registryMirror" | "nginx", ContainerLimit>>;
  /** This host's Docker provider. */
  provider: docker.Provider;
}

/**
 * The private registry on the stack's registry host: the distribution registry on an internal
 * network (never published), nginx in front of it terminating TLS and doing basic auth (bcrypt
 * htpasswd) on 443 of the host's CI address, optionally a second registry as a read-only
 * pull-through cache served by the same nginx on its own port, only to the CI network and the
 * registry client CIDRs. Images live on named volumes. The registry's Prometheus metrics (its
 * debug server) reach the host's CI address through nginx too, on `METRICS_PORTS.registry`.
 */
export class Registry extends pulumi.ComponentResource {
  /** `https://<hostname>`. */
  public readonly url: string;
  /** Mirror URL, when the pull-through cache is on. */
  public readonly mirrorUrl?: string;
  /** User names. */
  public readonly users: string[];
  /** Secret: user name → password. */
  public readonly passwords: pulumi.Output<Record<string, string>>;
  /** CA certificate clients must trust ("" when the provided certificate chains to a public CA). */
  public readonly caCertPem: pulumi.Output<string>;
  /** The server certificate nginx presents. */
  public readonly certPem: pulumi.Output<string>;
  /** Docker volume names holding the images. */
  public readonly dataVolumes: string[];

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    // Refuse bad input before anything is registered.
    if (args.tls.mode === "self-signed" && !args.ca) {
      throw internalError(`${name}: tls.mode self-signed needs the stack's registry CA (args.ca)`);
    }
    assertPinned(args.image, name);
    assertPinned(args.nginxImage, name);
    super("berth:registry:Registry", name, {}, { ...opts, providers: [args.provider] });
    const step: Step = {
      name,
      args,
      parent: this,
      child: { parent: this, provider: args.provider },
      images: new PinnedImages(name, this, args.provider),
    };

    // The steps, in the order they register resources.
    const storage = registryStorage(step);
    this.dataVolumes = storage.volumeNames;
    const tls = serverTls(step);
    this.certPem = tls.certPem;
    this.caCertPem = tls.caCertPem;
    const auth = basicAuth(step);
    this.users = auth.users;
    this.passwords = auth.passwords;
    const registries = registryContainers(step, storage);
    nginxContainer(step, storage.net, tls, auth.htpasswd, registries);

    this.url = `https://${args.hostname}`;
    if (args.pullThroughCache) this.mirrorUrl = `https://${args.hostname}:${args.pullThroughCache.port}`;
    this.registerOutputs({
      url: this.url,
      mirrorUrl: this.mirrorUrl,
      users: this.users,
      passwords: this.passwords,
      caCertPem: this.caCertPem,
    });
  }
}

/** What each step of {@link Registry}'s constructor works with. */
interface Step {
  name: string;
  args: RegistryArgs;
  /** The Registry: every child's parent. */
  parent: Registry;
  /** Options of a Docker resource: the Registry as parent, the host's provider. */
  child: pulumi.CustomResourceOptions;
  images: PinnedImages;
}

interface Storage {
  net: docker.Network;
  volume: docker.Volume;
  mirrorVolume?: docker.Volume;
  volumeNames: string[];
}

interface ServerTls {
  certPem: pulumi.Output<string>;
  keyPem: pulumi.Output<string>;
  caCertPem: pulumi.Output<string>;
}

interface BasicAuth {
  users: string[];
  /** Secret: user name → password. */
  passwords: pulumi.Output<Record<string, string>>;
  /** Secret: the htpasswd file. */
  htpasswd: pulumi.Output<string>;
}

/** berth-registry (registry ↔ nginx only: internal, no route out, nothing published) and the data volumes. */
function registryStorage({ name, args, child }: Step): Storage {
  const data = { ...child, protect: args.protectData, retainOnDelete: args.protectData };
  const cache = args.pullThroughCache;
  const net = new docker.Network(
    `${name}-net`,
    { name: "berth-registry", driver: "bridge", internal: true },
    child,
  );
  const volume = new docker.Volume(`${name}-data`, { name: "registry-data" }, data);
  const mirrorVolume = cache
    ? new docker.Volume(`${name}-mirror-data`, { name: "registry-mirror-data" }, data)
    : undefined;
  return {
    net,
    volume,
    ...(mirrorVolume ? { mirrorVolume } : {}),
    volumeNames: ["registry-data", ...(cache ? ["registry-mirror-data"] : [])],
  };
}

/** The certificate nginx presents, its key (secret), and the CA clients trust. */
function serverTls({ name, args, parent }: Step): ServerTls {
  let caCertPem: pulumi.Output<string>;
  let certPem: pulumi.Output<string>;
  let keyPem: pulumi.Output<string>;
  if (args.tls.mode === "self-signed" && args.ca) {
    const issued = args.ca.issue(
      `${name}-server`,
      {
        commonName: args.hostname,
        dnsNames: [args.hostname],
        ipAddresses: [args.privateIp],
        usage: "server",
        validityHours: (args.certValidityDays ?? args.tls.validityDays) * 24,
      },
      parent,
    );
    certPem = issued.certPem;
    keyPem = pulumi.secret(issued.keyPem);
    caCertPem = args.ca.certPem;
  } else if (args.tls.mode === "provided") {
    // Only the certificate blocks: a key pasted into the certificate text must not become a
    // public input (the nginx upload of registry.crt, plan.json); the key has its own secret.
    certPem = pulumi.output(certificateBlocks(args.tls.certificate));
    keyPem = secretInput(args.tls.privateKey, "registry-tls-key");
    caCertPem = pulumi.output(args.tls.caCertificate ?? "");
  } else {
    throw internalError(`${name}: unreachable: self-signed TLS without a CA`);
  }

  return { certPem, keyPem, caCertPem };
}

/**
 * Basic auth: each user's password (generated unless configured, secret) and the htpasswd file
 * nginx checks them against (secret).
 */
function basicAuth({ name, args, parent }: Step): BasicAuth {
  const passwordEntries = args.users.map((u) => {
    const password = u.password
      ? secretInput(u.password, `registry-password-${u.name}`)
      : pulumi.secret(
          new random.RandomPassword(
            `${name}-user-${u.name}`,
            // No special characters: the password goes into `docker login` and CI credentials stores.
            { length: 32, special: false, minLower: 2, minUpper: 2, minNumeric: 2 },
            { parent },
          ).result,
        );
    // Generated passwords are long and random: nginx's salted SHA-1 is as safe as bcrypt for them
    // and costs nginx nothing on every request; a configured password keeps bcrypt's work factor
    // (renderers/htpasswd.ts sshaEntry).
    const generated = !u.password;
    // The salt comes from a random seed kept (secret) in the stack's state: stable between runs,
    // so the file only changes when a password does, and unrelated to the password, so whoever
    // reads an htpasswd line learns nothing from the salt.
    const saltSeed = pulumi.secret(
      new random.RandomPassword(`${name}-user-${u.name}-salt`, { length: 32, special: false }, { parent })
        .result,
    );
    return { user: u.name, password, generated, saltSeed };
  });
  const passwords = pulumi.secret(
    pulumi
      .all(passwordEntries.map((e) => e.password))
      .apply((pws) => Object.fromEntries(passwordEntries.map((e, i) => [e.user, pws[i] as string]))),
  );
  const htpasswd = pulumi.secret(
    pulumi
      .all([
        pulumi.all(passwordEntries.map((e) => e.password)),
        pulumi.all(passwordEntries.map((e) => e.saltSeed)),
      ])
      .apply(([pws, seeds]) =>
        renderHtpasswd(
          passwordEntries.map((e, i) =>
            e.generated
              ? sshaEntry(e.user, pws[i] as string, seeds[i] as string)
              : htpasswdEntry(e.user, pws[i] as string, {
                  salt: bcryptSaltFrom(seeds[i] as string, BCRYPT_DEFAULT_COST),
                  cost: BCRYPT_DEFAULT_COST,
                }),
          ),
        ),
      ),
  );

  return { users: args.users.map((u) => u.name), passwords, htpasswd };
}

/**
 * The registry on berth-registry only (never published), and the optional read-only pull-through
 * cache, which also has the default bridge for its route to the upstream registry.
 */
function registryContainers(
  { name, args, parent, child, images }: Step,
  { net, volume, mirrorVolume }: Storage,
): docker.Container[] {
  const cache = args.pullThroughCache;
  const registryHealth = {
    tests: ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${REGISTRY_PORT}/v2/`],
    interval: "30s",
    timeout: "5s",
    retries: 3,
    startPeriod: "10s",
  };
  const httpSecret = (suffix: string) =>
    pulumi.secret(
      new random.RandomPassword(`${name}-${suffix}`, { length: 48, special: false }, { parent }).result,
    );

  const registry = new docker.Container(
    `${name}-registry`,
    {
      name: REGISTRY_CONTAINER,
      hostname: REGISTRY_CONTAINER,
      image: images.imageId(args.image),
      ...commonContainerArgs(args.containerLogs),
      ...limitArgs(args.limits?.registry),
      // Only on berth-registry (the provider detaches the default bridge when networksAdvanced is set).
      networkMode: "bridge",
      networksAdvanced: [{ name: net.name, aliases: [REGISTRY_CONTAINER] }],
      volumes: [{ volumeName: volume.name, containerPath: REGISTRY_DEFAULTS.rootDirectory }],
      uploads: [
        {
          file: REGISTRY_CONFIG_PATH,
          // Storage deletes are enabled in the rendered config (storage.delete), not by env.
          content: pulumi.secret(
            // No blob descriptor cache: berth-registry-gc collects garbage while this registry runs,
            // and the cache would go on claiming deleted blobs exist (renderers/registry-gc.ts).
            // The debug server (Prometheus metrics) listens on berth-registry only; nginx publishes
            // it on the private address.
            httpSecret("http-secret").apply((s) =>
              renderRegistryConfig({
                httpSecret: s,
                blobDescriptorCache: "off",
                metricsAddr: `:${METRICS_PORTS.registry}`,
              }),
            ),
          ),
          permissions: "0600",
        },
      ],
      healthcheck: registryHealth,
      wait: true,
      waitTimeout: 120,
    },
    child,
  );

  const mirror =
    cache && mirrorVolume
      ? new docker.Container(
          `${name}-mirror`,
          {
            name: REGISTRY_MIRROR_CONTAINER,
            hostname: REGISTRY_MIRROR_CONTAINER,
            image: images.imageId(args.image),
            ...commonContainerArgs(args.containerLogs),
            ...limitArgs(args.limits?.registryMirror),
            // The default bridge gives it a route to the upstream registry; nginx reaches it on berth-registry.
            networkMode: "bridge",
            networksAdvanced: [{ name: "bridge" }, { name: net.name, aliases: [REGISTRY_MIRROR_CONTAINER] }],
            volumes: [{ volumeName: mirrorVolume.name, containerPath: REGISTRY_DEFAULTS.rootDirectory }],
            uploads: [
              {
                file: REGISTRY_CONFIG_PATH,
                content: pulumi.secret(
                  httpSecret("mirror-http-secret").apply((s) =>
                    renderRegistryConfig({ httpSecret: s, proxy: { remoteUrl: cache.remoteUrl } }),
                  ),
                ),
                permissions: "0600",
              },
            ],
            healthcheck: registryHealth,
            wait: true,
            waitTimeout: 120,
          },
          child,
        )
      : undefined;

  return [registry, ...(mirror ? [mirror] : [])];
}

/**
 * nginx in front: TLS and basic auth on the host's CI address, the registries behind it on
 * berth-registry, its health check going through to the registry.
 */
function nginxContainer(
  { name, args, child, images }: Step,
  net: docker.Network,
  tls: ServerTls,
  htpasswd: pulumi.Output<string>,
  registries: docker.Container[],
): void {
  const cache = args.pullThroughCache;
  const nginxConf = renderNginxConfig({
    serverName: args.hostname,
    metrics: {
      port: METRICS_PORTS.registry,
      upstream: `${REGISTRY_CONTAINER}:${METRICS_PORTS.registry}`,
    },
    listenPort: REGISTRY_HTTPS_PORT,
    tlsCertificatePath: NGINX_CERT_PATH,
    tlsKeyPath: NGINX_KEY_PATH,
    htpasswdPath: NGINX_HTPASSWD_PATH,
    upstream: `${REGISTRY_CONTAINER}:${REGISTRY_PORT}`,
    // berth-registry-gc (on the host) puts its refusal here while it collects garbage.
    maintenanceDir: NGINX_MAINTENANCE_DIR,
    ...(cache
      ? {
          mirror: {
            port: cache.port,
            upstream: `${REGISTRY_MIRROR_CONTAINER}:${REGISTRY_PORT}`,
            allowCidrs: args.mirrorAllowCidrs,
          },
        }
      : {}),
  });
  const published = [REGISTRY_HTTPS_PORT, ...(cache ? [cache.port] : []), METRICS_PORTS.registry];

  new docker.Container(
    `${name}-nginx`,
    {
      name: REGISTRY_NGINX_CONTAINER,
      hostname: REGISTRY_NGINX_CONTAINER,
      image: images.imageId(args.nginxImage),
      ...commonContainerArgs(args.containerLogs),
      ...limitArgs(args.limits?.nginx),
      // Published ports need a non-internal network: the default bridge; upstreams on berth-registry.
      networkMode: "bridge",
      networksAdvanced: [{ name: "bridge" }, { name: net.name }],
      // Only on the host's CI address (clients coming through the floating IP arrive there too).
      ports: published.map((p) => ({ internal: p, external: p, ip: args.privateIp, protocol: "tcp" })),
      // The maintenance directory is a tmpfs: a refusal never outlives the container (a reboot
      // or restart in the middle of a garbage collection leaves the registry writable).
      tmpfs: { [NGINX_MAINTENANCE_DIR]: "mode=0755,size=64k" },
      uploads: [
        { file: NGINX_CONFIG_PATH, content: nginxConf, permissions: "0644" },
        { file: NGINX_CERT_PATH, content: tls.certPem, permissions: "0644" },
        { file: NGINX_KEY_PATH, content: tls.keyPem, permissions: "0600", owner: "0", group: "0" },
        {
          file: NGINX_HTPASSWD_PATH,
          content: htpasswd,
          permissions: "0640",
          owner: "0",
          group: NGINX_WORKER_GID,
        },
      ],
      // /healthz is proxied to the registry's /v2/ (renderers/nginx.ts): nginx is healthy only
      // while the registry behind it answers, not merely while nginx itself runs.
      healthcheck: {
        tests: [
          "CMD",
          "wget",
          "-q",
          "--no-check-certificate",
          "-O",
          "/dev/null",
          "https://127.0.0.1/healthz",
        ],
        interval: "30s",
        timeout: "5s",
        retries: 3,
        startPeriod: "5s",
      },
    },
    // nginx resolves the registries' names per request through Docker's embedded DNS (a replaced
    // registry is found at its new address), so it starts without them; created after them, its
    // health check (which goes through to the registry) passes from the start.
    { ...child, dependsOn: registries },
  );
}
