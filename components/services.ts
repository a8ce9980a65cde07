import * as pulumi from "@pulumi/pulumi";
import { internalError } from "../config/errors.ts";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import { DEFAULT_IMAGES, SERVICE_CATALOG } from "../config/images.ts";
import { cidrContains, parseCidr, parseIpv4 } from "../config/net.ts";
import { MIN_SERVICES_PREFIX, servicesDynamicRange, servicesPlan } from "../config/addresses.ts";
import type { NamedService, ServiceKind } from "../config/types.ts";
import { DNSMASQ_CONTAINER, minimalContainer } from "../config/containers.ts";
import { renderDnsmasqConfig } from "../renderers/index.ts";
import {
  DOCKER_BRIDGE_GATEWAY,
  PinnedImages,
  assertPinned,
  commonContainerArgs,
  limitArgs,
} from "./docker-host.ts";
import type { ContainerLimit } from "../config/limits.ts";
import type { ContainerLogs } from "./docker-host.ts";

/** Name of the services network on every host. */
export const SERVICES_NETWORK = "ci-services";
/** Name of the DNS container (config/containers.ts, where validation checks names against it). */
export { DNSMASQ_CONTAINER };

/** Label on network holders: {@link HOLDER_TEMPLATE} for the long-lived ones, `build` for a build's own. */
export const HOLDER_LABEL = "org.berth.holder";
/** {@link HOLDER_LABEL} value of the long-lived holders `berth-holder start` copies. */
export const HOLDER_TEMPLATE = "template";
/** File in a holder listing what it forwards: `<local port>=<host>:<port>`, one per line. */
export const HOLDER_FORWARD_FILE = "/etc/berth/holder.forward";

/**
 * PID 1 of a network holder (POSIX sh, run by the holder image's `/bin/sh`): one socat per line of
 * {@link HOLDER_FORWARD_FILE}, listening on the holder's own 127.0.0.1 (and ::1 when the namespace
 * has IPv6 loopback), each connection forwarded to the host's service. Exits non-zero when a
 * forwarder dies, and at once on TERM/INT.
 */
export const HOLDER_FORWARD_SCRIPT = [
  `spec=$(cat ${HOLDER_FORWARD_FILE}) || exit 1`,
  "v6=; grep -qs ' lo$' /proc/net/if_inet6 && v6=1",
  "pids=",
  "for f in $spec; do",
  "  port=${f%%=*}; target=${f#*=}",
  '  socat "TCP4-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "TCP:$target,connect-timeout=5" & pids="$pids $!"',
  '  [ -z "$v6" ] || { socat "TCP6-LISTEN:$port,bind=[::1],fork,reuseaddr" "TCP:$target,connect-timeout=5" & pids="$pids $!"; }',
  "done",
  "trap 'kill $pids 2>/dev/null; exit 0' TERM INT",
  "while :; do",
  '  for p in $pids; do kill -0 "$p" 2>/dev/null || { echo "berth-holder: a forwarder exited" >&2; kill $pids 2>/dev/null; exit 1; }; done',
  "  sleep 5 & wait $!",
  "done",
].join("\n");

/**
 * A holder's health check and readiness probe: every forwarded service answers from the holder's
 * namespace, and every local listener accepts.
 */
export const HOLDER_CHECK_SCRIPT = [
  `for f in $(cat ${HOLDER_FORWARD_FILE}); do`,
  "  port=${f%%=*}; target=${f#*=}",
  '  socat -u OPEN:/dev/null "TCP:$target,connect-timeout=2" || { echo "berth-holder: $target does not answer" >&2; exit 1; }',
  '  socat -u OPEN:/dev/null "TCP4:127.0.0.1:$port,connect-timeout=2" || { echo "berth-holder: nothing on localhost:$port" >&2; exit 1; }',
  "done",
].join("\n");

/** The forwarding list of a holder: each minimal-set kind's default port to `target` on the same port. */
export function holderForwardSpec(minimal: readonly ServiceKind[], target: string): string {
  return minimal
    .map((kind) => `${String(SERVICE_CATALOG[kind].port)}=${target}:${String(SERVICE_CATALOG[kind].port)}\n`)
    .join("");
}

/** Health-check timing shared by the service containers (the test commands come from the catalog). */
const SERVICE_HEALTH_TIMING = { interval: "30s", timeout: "10s", retries: 5, startPeriod: "60s" } as const;
/** Seconds a data service gets to shut down cleanly before its container is removed. */
const DATA_SERVICE_STOP_GRACE = 60;

/**
 * Credentials the images insist on: postgres refuses to start without a password, and RabbitMQ's
 * default `guest` user only logs in from localhost. Generated per container (secrets).
 */
const GENERATED_CREDENTIALS: Partial<
  Record<ServiceKind, { user: string; env: (password: string) => string[] }>
> = {
  postgres: { user: "postgres", env: (pw) => ["POSTGRES_USER=postgres", `POSTGRES_PASSWORD=${pw}`] },
  rabbitmq: { user: "berth", env: (pw) => ["RABBITMQ_DEFAULT_USER=berth", `RABBITMQ_DEFAULT_PASS=${pw}`] },
};

export interface BackendServicesArgs {
  /** Where the containers log (default json-file; journald when the stack forwards its journal). */
  containerLogs?: ContainerLogs;

  /** Host name, e.g. `staging-ci-1` (resource names). */
  hostName: string;
  /** Subnet of the `ci-services` bridge network. */
  subnet: string;
  /** Its gateway (the host's address on it). */
  gateway: string;
  /** Fixed address of the dnsmasq container on `ci-services`. */
  dnsAddress: string;
  /** dnsmasq's upstream resolvers. */
  upstreamDns: string[];
  /** Search domains, first preferred: every production-like name also resolves as `<name>.<domain>` under each. */
  searchDomains: string[];
  /** Kinds of the minimal set: one container each, on the host's default ports. */
  minimal: ServiceKind[];
  /** The production-like set: production's names, fixed addresses on `ci-services`. */
  productionLike: NamedService[];
  /** Names of the network-holder containers. */
  networkHolders: string[];
  /** Protect the data volumes from deletion and retain them when the stack is destroyed. */
  protectData: boolean;
  /** Addresses the minimal set is published on. Default: 127.0.0.1 and docker0's gateway. */
  minimalBindAddresses?: string[];
  /** dnsmasq image, pinned by digest. Default `DEFAULT_IMAGES.dnsmasq`. */
  dnsmasqImage?: string;
  /** Network-holder image, pinned by digest. Default `DEFAULT_IMAGES.holder`. */
  holderImage?: string;
  /**
   * Memory and CPU limits per kind (config/limits.ts): each service kind, `dnsmasq` and `holder`.
   * A kind without an entry runs unlimited.
   */
  limits?: Partial<Record<ServiceKind | "dnsmasq" | "holder", ContainerLimit>>;
  /** This host's Docker provider. */
  provider: docker.Provider;
}

/** A credential generated for a service container. */
export interface ServiceCredential {
  user: string;
  password: string;
}

/**
 * The backend services of one CI host, in three parts (after the seeds' CI practice):
 *
 * - **Minimal set** — one container per kind (`redis`, `mongodb`, …) on the default bridge, its
 *   default port published on 127.0.0.1 and on docker0's gateway (172.17.0.1, the `bip` of the
 *   host's daemon.json) only, never on the public interface: unit tests on the host, in the agents
 *   and in job containers reach `172.17.0.1:<default port>`. Empty databases reserved for tests.
 * - **Production-like set** — containers named and hostnamed exactly like production's services
 *   (`mongodb-cluster-a-node-1`), each at its fixed address on the `ci-services` network, with
 *   its own data volume. A dnsmasq container at `dnsAddress` answers every such name, short and
 *   under each search domain, and forwards anything else to the upstream resolvers; every
 *   container on `ci-services` uses it (`dns`/`dnsSearch`), so applications keep production's
 *   configuration (`mongodb.host = mongodb-cluster-a-node-1:27017`).
 * - **Network holders** (seed 004's "networkholder") — long-lived containers on the default bridge
 *   and `ci-services`, with dnsmasq and the search domains as resolver, that forward each minimal
 *   service's default port from their own `localhost` to the host's service (socat; the list is
 *   {@link HOLDER_FORWARD_FILE}). A container started with `--network container:<holder>` shares
 *   the namespace and its resolver: redis on `localhost:6379`, the production-like names, as on a
 *   laptop. Builds do not share these: `berth-holder start <build id>` (images/jenkins-agent)
 *   creates a build's own holder as a copy of one of them (labelled {@link HOLDER_LABEL} =
 *   {@link HOLDER_TEMPLATE}) and `berth-holder stop` removes it. The long-lived ones keep the
 *   holder image pulled on every host, carry the program's settings to the script, and their
 *   health check shows that the forwarding works on the host.
 *
 * `ci-services` hands out dynamic addresses (agents, holders) only from the upper half of its
 * subnet, so they never take a fixed address before its service is created; fixed addresses must
 * lie in the lower half.
 */
export class BackendServices extends pulumi.ComponentResource {
  /** Name of the `ci-services` network (resolves once the network exists). */
  public readonly networkName: pulumi.Output<string>;
  /** The dnsmasq address. */
  public readonly dnsAddress: string;
  /** Production-like service name → address. */
  public readonly addresses: Record<string, string>;
  /** Minimal set: kind → published port. */
  public readonly minimalPorts: Partial<Record<ServiceKind, number>>;
  /** Secret: container name → generated credential (postgres, rabbitmq). */
  public readonly credentials: pulumi.Output<Record<string, ServiceCredential>>;

  constructor(name: string, args: BackendServicesArgs, opts?: pulumi.ComponentResourceOptions) {
    // Refuse bad input before anything is registered.
    const ipRange = checkServiceAddresses(args);
    checkContainerNames(args);
    assertPinned(args.dnsmasqImage ?? DEFAULT_IMAGES.dnsmasq, name);
    assertPinned(args.holderImage ?? DEFAULT_IMAGES.holder, name);
    super("berth:services:BackendServices", name, {}, { ...opts, providers: [args.provider] });
    const child = { parent: this, provider: args.provider };
    const step: Step = {
      name,
      args,
      parent: this,
      child,
      data: { ...child, protect: args.protectData, retainOnDelete: args.protectData },
      images: new PinnedImages(name, this, args.provider),
      credentials: [],
    };

    // The steps, in the order they register resources.
    const net = servicesNetwork(step, ipRange);
    this.networkName = net.name;
    this.minimalPorts = minimalSet(step);
    const dnsmasq = dnsmasqContainer(step, net);
    this.addresses = productionLikeSet(step, net, dnsmasq);
    networkHolders(step, net, dnsmasq);

    this.dnsAddress = args.dnsAddress;
    this.credentials = credentialsOutput(step.credentials);
    this.registerOutputs({
      networkName: this.networkName,
      dnsAddress: this.dnsAddress,
      addresses: this.addresses,
      minimalPorts: this.minimalPorts,
      credentials: this.credentials,
    });
  }
}

/** What each step of {@link BackendServices}' constructor works with. */
interface Step {
  name: string;
  args: BackendServicesArgs;
  /** The BackendServices: every child's parent. */
  parent: BackendServices;
  /** Options of a Docker resource: the BackendServices as parent, the host's provider. */
  child: pulumi.CustomResourceOptions;
  /** Options of a data volume: {@link child}, protected and retained as `protectData` says. */
  data: pulumi.CustomResourceOptions;
  images: PinnedImages;
  /** Credentials generated so far (postgres, rabbitmq), in the order their containers were declared. */
  credentials: { container: string; user: string; password: pulumi.Output<string> }[];
}

/** The `ci-services` bridge: fixed addresses in the lower half, dynamic ones (`ipRange`) in the upper. */
function servicesNetwork({ name, args, child }: Step, ipRange: string): docker.Network {
  return new docker.Network(
    `${name}-net`,
    {
      name: SERVICES_NETWORK,
      driver: "bridge",
      ipamConfigs: [{ subnet: args.subnet, gateway: args.gateway, ipRange }],
    },
    child,
  );
}

/** Where the minimal set is published: `minimalBindAddresses`, by default 127.0.0.1 and docker0's gateway. */
function minimalBinds(args: BackendServicesArgs): string[] {
  return args.minimalBindAddresses ?? ["127.0.0.1", DOCKER_BRIDGE_GATEWAY];
}

/** dnsmasq as resolver, with the search domains (production-like services and holders). */
function dnsSettings(args: BackendServicesArgs): { dns: string[]; dnsSearches: string[] } {
  return { dns: [args.dnsAddress], dnsSearches: [...args.searchDomains] };
}

/** The environment of a service whose image insists on credentials: a generated password (secret). */
function serviceEnv(
  { parent, credentials }: Step,
  kind: ServiceKind,
  container: string,
  resourceName: string,
): { envs?: pulumi.Output<string[]> } {
  const gen = GENERATED_CREDENTIALS[kind];
  if (!gen) return {};
  const password = pulumi.secret(
    new random.RandomPassword(`${resourceName}-password`, { length: 32, special: false }, { parent }).result,
  );
  credentials.push({ container, user: gen.user, password });
  return { envs: pulumi.secret(password.apply(gen.env)) };
}

/** The data volume of a service kind that keeps data (none for the others), mounted at its data directory. */
function dataVolume(
  { data }: Step,
  kind: ServiceKind,
  volumeName: string,
  resourceName: string,
): { volumeName: pulumi.Output<string>; containerPath: string }[] {
  const dir = SERVICE_CATALOG[kind].dataDir;
  if (dir === undefined) return [];
  const volume = new docker.Volume(resourceName, { name: volumeName }, data);
  return [{ volumeName: volume.name, containerPath: dir }];
}

/** A service kind's health check: the catalog's test, the shared timing. */
function serviceHealth(kind: ServiceKind) {
  return { tests: [...SERVICE_CATALOG[kind].healthcheck], ...SERVICE_HEALTH_TIMING };
}

/**
 * The minimal set: one container per kind on the default bridge, its default port published on the
 * bind addresses only. Returns kind → published port.
 */
function minimalSet(step: Step): Partial<Record<ServiceKind, number>> {
  const { name, args, child, images } = step;
  const binds = minimalBinds(args);
  const ports: Partial<Record<ServiceKind, number>> = {};
  for (const kind of args.minimal) {
    const spec = SERVICE_CATALOG[kind];
    ports[kind] = spec.port;
    new docker.Container(
      `${name}-${kind}`,
      {
        name: minimalContainer(kind),
        hostname: minimalContainer(kind),
        image: images.imageId(spec.image),
        ...commonContainerArgs(args.containerLogs),
        ...limitArgs(args.limits?.[kind]),
        // Default bridge only: reachable through the published ports, not on ci-services.
        networkMode: "bridge",
        ports: binds.map((ip) => ({ internal: spec.port, external: spec.port, ip, protocol: "tcp" })),
        volumes: dataVolume(step, kind, `${kind}-data`, `${name}-${kind}-data`),
        ...serviceEnv(step, kind, kind, `${name}-${kind}`),
        healthcheck: serviceHealth(kind),
        destroyGraceSeconds: DATA_SERVICE_STOP_GRACE,
      },
      child,
    );
  }
  return ports;
}

/**
 * dnsmasq at its fixed address on `ci-services`: every production-like name, short and under each
 * search domain; anything else forwarded upstream.
 */
function dnsmasqContainer({ name, args, child, images }: Step, net: docker.Network): docker.Container {
  const dnsmasqConf = renderDnsmasqConfig({
    searchDomains: args.searchDomains,
    listenAddresses: [args.dnsAddress],
    upstreamServers: args.upstreamDns,
    records: args.productionLike.map((s) => ({ name: s.name, address: s.address })),
    logFacility: "-",
  });
  const probe = args.productionLike[0];
  return new docker.Container(
    `${name}-dnsmasq`,
    {
      name: DNSMASQ_CONTAINER,
      hostname: DNSMASQ_CONTAINER,
      image: images.imageId(args.dnsmasqImage ?? DEFAULT_IMAGES.dnsmasq),
      ...commonContainerArgs(args.containerLogs),
      ...limitArgs(args.limits?.dnsmasq),
      entrypoints: ["dnsmasq"],
      command: ["--keep-in-foreground", "--conf-file=/etc/dnsmasq.conf"],
      networkMode: "bridge",
      networksAdvanced: [{ name: net.name, ipv4Address: args.dnsAddress }],
      uploads: [{ file: "/etc/dnsmasq.conf", content: dnsmasqConf, permissions: "0644" }],
      healthcheck: {
        tests: probe
          ? ["CMD", "nslookup", `${probe.name}.${args.searchDomains[0] ?? ""}`, args.dnsAddress]
          : ["CMD", "pidof", "dnsmasq"],
        interval: "30s",
        timeout: "5s",
        retries: 3,
        startPeriod: "5s",
      },
    },
    child,
  );
}

/**
 * The production-like set: production's names, each at its fixed address on `ci-services` with its
 * own data volume, dnsmasq as resolver. Returns name → address.
 */
function productionLikeSet(
  step: Step,
  net: docker.Network,
  dnsmasq: docker.Container,
): Record<string, string> {
  const { name, args, child, images } = step;
  const addresses: Record<string, string> = {};
  for (const svc of args.productionLike) {
    const spec = SERVICE_CATALOG[svc.kind];
    addresses[svc.name] = svc.address;
    new docker.Container(
      `${name}-svc-${svc.name}`,
      {
        name: svc.name,
        hostname: svc.name,
        image: images.imageId(spec.image),
        ...commonContainerArgs(args.containerLogs),
        ...limitArgs(args.limits?.[svc.kind]),
        networkMode: "bridge",
        networksAdvanced: [{ name: net.name, ipv4Address: svc.address }],
        ...dnsSettings(args),
        volumes: dataVolume(step, svc.kind, `${svc.name}-data`, `${name}-svc-${svc.name}-data`),
        ...serviceEnv(step, svc.kind, svc.name, `${name}-svc-${svc.name}`),
        healthcheck: serviceHealth(svc.kind),
        destroyGraceSeconds: DATA_SERVICE_STOP_GRACE,
      },
      { ...child, dependsOn: [dnsmasq] },
    );
  }
  return addresses;
}

/**
 * The long-lived network holders. Each forwards the minimal set from its own localhost and is the
 * template `berth-holder start` copies for a build's own holder (image, entrypoint, networks, DNS,
 * forwarding, check).
 */
function networkHolders(
  { name, args, child, images }: Step,
  net: docker.Network,
  dnsmasq: docker.Container,
): void {
  const forwardTarget = minimalBinds(args).find((ip) => ip !== "127.0.0.1") ?? DOCKER_BRIDGE_GATEWAY;
  const forwardSpec = holderForwardSpec(args.minimal, forwardTarget);
  for (const holder of args.networkHolders) {
    new docker.Container(
      `${name}-holder-${holder}`,
      {
        name: holder,
        hostname: holder,
        image: images.imageId(args.holderImage ?? DEFAULT_IMAGES.holder),
        ...commonContainerArgs(args.containerLogs),
        ...limitArgs(args.limits?.holder, [{ label: HOLDER_LABEL, value: HOLDER_TEMPLATE }]),
        entrypoints: ["/bin/sh", "-c", HOLDER_FORWARD_SCRIPT, "berth-holder-forward"],
        networkMode: "bridge",
        networksAdvanced: [{ name: "bridge" }, { name: net.name }],
        ...dnsSettings(args),
        uploads: [{ file: HOLDER_FORWARD_FILE, content: forwardSpec, permissions: "0644" }],
        healthcheck: {
          tests: ["CMD", "/bin/sh", "-c", HOLDER_CHECK_SCRIPT],
          interval: "30s",
          timeout: "10s",
          retries: 3,
          startPeriod: "10s",
        },
      },
      { ...child, dependsOn: [dnsmasq] },
    );
  }
}

/** Secret: container name → generated credential. */
function credentialsOutput(
  credentials: Step["credentials"],
): pulumi.Output<Record<string, ServiceCredential>> {
  return pulumi.secret(
    pulumi
      .all(credentials.map((c) => c.password))
      .apply((pws) =>
        Object.fromEntries(
          credentials.map((c, i) => [c.container, { user: c.user, password: pws[i] as string }]),
        ),
      ),
  );
}

/**
 * Checks the fixed addresses against the subnet and returns the dynamic range (`ipRange`) of the
 * address plan (config/addresses.ts): the upper half of the subnet. Fixed addresses (dnsmasq, production-like services) must be inside the
 * subnet, below that range, distinct, and not the gateway.
 */
export function checkServiceAddresses(
  args: Pick<BackendServicesArgs, "subnet" | "gateway" | "dnsAddress" | "productionLike">,
): string {
  const subnet = parseCidr(args.subnet);
  if (!subnet || subnet.hostBits || subnet.prefix > MIN_SERVICES_PREFIX)
    throw internalError(
      `services subnet ${args.subnet} must be an IPv4 CIDR of /${MIN_SERVICES_PREFIX} or larger`,
    );
  const half = servicesDynamicRange(subnet);
  const { ipRange } = servicesPlan(args.subnet, args.dnsAddress);
  const fixed = [
    { what: "dnsAddress", address: args.dnsAddress },
    ...args.productionLike.map((s) => ({ what: `service ${s.name}`, address: s.address })),
  ];
  const seen = new Map<string, string>();
  for (const f of fixed) {
    const ip = parseIpv4(f.address);
    if (ip === undefined || !cidrContains(subnet, ip)) {
      throw internalError(`${f.what}: ${f.address} is not in the services subnet ${args.subnet}`);
    }
    if (cidrContains(half, ip)) {
      throw internalError(
        `${f.what}: ${f.address} is in ${ipRange}, the range ci-services hands out dynamically`,
      );
    }
    if (f.address === args.gateway || ip === subnet.network) {
      throw internalError(`${f.what}: ${f.address} is the subnet's network or gateway address`);
    }
    const other = seen.get(f.address);
    if (other) throw internalError(`${f.what}: ${f.address} is also the address of ${other}`);
    seen.set(f.address, f.what);
  }
  return ipRange;
}

/** Container names share one namespace per host: refuse duplicates before Docker does. */
function checkContainerNames(
  args: Pick<BackendServicesArgs, "minimal" | "productionLike" | "networkHolders">,
): void {
  const names = [
    DNSMASQ_CONTAINER,
    ...args.minimal.map(minimalContainer),
    ...args.productionLike.map((s) => s.name),
    ...args.networkHolders,
  ];
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n))
      throw internalError(`container name ${JSON.stringify(n)} is used twice on the host's services`);
    seen.add(n);
  }
}
