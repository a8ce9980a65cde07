/**
 * The TCP ports Berth's hosts listen on and its security-group rules open, and the names of those
 * rules' purposes: one source for the program (components/network.ts, components/environment.ts,
 * config/schema.ts defaults, validation) and for the policy pack (policy/policies.ts).
 *
 * Pure data, with no imports: Pulumi's policy runner loads this file too (ts-node, CommonJS, from
 * policy/), which resolves only extension-less imports; keep it import-free.
 */

/** sshd of the hosts (operators, and Pulumi's Docker provider over `ssh://core@host`). */
export const SSH_PORT = 22;
/** The same, by the name validation's port table uses. */
export const HOST_SSH_PORT = SSH_PORT;
/** SSH inside a Jenkins agent container (published on `basePort + n`). */
export const AGENT_CONTAINER_SSH_PORT = 22;

/** Host port of agent n (from 1). */
export function agentPort(basePort: number, n: number): number {
  return basePort + n;
}
/** The registry's nginx front: HTTPS with basic auth. */
export const REGISTRY_HTTPS_PORT = 443;
/** dockerd's IANA ports: 2375 plain (never opened by Berth), 2376 TLS. */
export const DOCKER_API_PORTS = { first: 2375, last: 2376 } as const;
/** Default of `berth:hosts.dockerTlsPort`. */
export const DEFAULT_DOCKER_TLS_PORT = 2376;
/** Default of `berth:jenkins.basePort`: agent n (from 1) listens on basePort + n. */
export const DEFAULT_AGENT_BASE_PORT = 2200;
/** Largest `berth:jenkins.agentsPerHost`. */
export const MAX_AGENTS_PER_HOST = 64;
/** Default of `berth:registry.pullThroughCache.port`. */
export const DEFAULT_MIRROR_PORT = 8443;

/**
 * Metric endpoints, on each host's private address only (opened to `berth:monitoring.cidrs`):
 * node_exporter (every host), dockerd's `metrics-addr` (every host), and the registry's debug
 * server with Prometheus metrics, through its nginx front (registry host). renderers/prometheus.ts
 * `METRICS_PORTS` scrapes the same ports (a test keeps them equal).
 */
export const METRICS_PORTS = {
  /** prometheus-node-exporter's default port. */
  node: 9100,
  /** Docker's documented example port for daemon.json `metrics-addr`. */
  dockerd: 9323,
  /** distribution's debug server (`http.debug.addr`), which serves `/metrics`. */
  registry: 5001,
} as const;

/**
 * Linux's default ephemeral port range (`net.ipv4.ip_local_port_range`, also on Fedora CoreOS and
 * Flatcar): where dockerd picks the host port when the Jenkins Docker plugin publishes a per-build
 * agent's port 22. The controller reaches per-build agents there.
 */
export const EPHEMERAL_PORTS = { first: 32768, last: 60999 } as const;

/**
 * What each of Berth's ingress rules is for. A rule's description is `<purpose> from <cidr>`
 * (see {@link ruleDescription}); the policy pack reads it back to know which rules are Berth's own
 * and what they expose, whatever ports the stack configured.
 */
export const RULE_PURPOSES = {
  ssh: "ssh",
  jenkinsAgents: "jenkins-agents",
  dockerTls: "docker-tls",
  perBuildAgents: "per-build-agents",
} as const;

/** The monitoring rules carry their port in the purpose: `metrics-9100`, `metrics-9323`, `metrics-5001`. */
export function metricsPurpose(port: number): string {
  return `metrics-${port}`;
}

/** The registry's rules carry their port in the purpose: `registry-443`, `registry-8443`. */
export function registryPurpose(port: number): string {
  return `registry-${port}`;
}

/**
 * An application slot's rule carries the slot's port in its purpose: `slot-8080` (opened to
 * `berth:services.slotCidrs`, developers only). The policy pack reads it back, so a slot's port is
 * sensitive whatever port the stack gives it.
 */
export function slotPurpose(port: number): string {
  return `slot-${port}`;
}

/** What listens behind each purpose, for messages. */
export function purposeWhat(purpose: string): string | undefined {
  if (purpose === RULE_PURPOSES.ssh) return "SSH";
  if (purpose === RULE_PURPOSES.jenkinsAgents) return "Jenkins agents";
  if (purpose === RULE_PURPOSES.dockerTls) return "Docker API (mutual TLS)";
  if (purpose === RULE_PURPOSES.perBuildAgents) return "per-build agents";
  const metrics = /^metrics-(\d+)$/.exec(purpose);
  if (metrics) {
    const port = Number(metrics[1]);
    if (port === METRICS_PORTS.node) return "node_exporter metrics";
    if (port === METRICS_PORTS.dockerd) return "dockerd metrics";
    if (port === METRICS_PORTS.registry) return "registry metrics";
    return undefined;
  }
  if (/^slot-\d+$/.test(purpose)) return "an application slot";
  const m = /^registry-(\d+)$/.exec(purpose);
  if (m) return Number(m[1]) === REGISTRY_HTTPS_PORT ? "registry HTTPS" : "registry pull-through cache";
  return undefined;
}

/** A rule's description: `<purpose> from <cidr>` (Neutron rules are immutable: never reword it). */
export function ruleDescription(purpose: string, cidr: string): string {
  return `${purpose} from ${cidr}`;
}

/** The purpose of one of Berth's rules, from its description; `undefined` for any other rule. */
export function purposeOfDescription(description: string): string | undefined {
  const m = /^(\S+) from \S+$/.exec(description);
  const purpose = m?.[1];
  return purpose !== undefined && purposeWhat(purpose) !== undefined ? purpose : undefined;
}

/** A port range and what listens there. */
export interface PortRange {
  from: number;
  to: number;
  what: string;
}

/**
 * The ports Berth's hosts may listen on whatever a stack configures, as far as they are fixed:
 * SSH, the Docker API, the registry and its mirror's default port, the default agent range, the
 * per-build range, and the metric endpoints. The ports a stack configures differently (dockerTlsPort, basePort, the
 * mirror's port) are known from its own rules' purposes (policy pack) or configuration
 * (validation). Backend services' ports come from the service catalog (config/images.ts).
 */
export const FIXED_SENSITIVE_PORTS: readonly PortRange[] = [
  { from: SSH_PORT, to: SSH_PORT, what: "SSH" },
  { from: DOCKER_API_PORTS.first, to: DOCKER_API_PORTS.last, what: "Docker API" },
  { from: REGISTRY_HTTPS_PORT, to: REGISTRY_HTTPS_PORT, what: "registry HTTPS" },
  { from: DEFAULT_MIRROR_PORT, to: DEFAULT_MIRROR_PORT, what: "registry pull-through cache" },
  {
    from: DEFAULT_AGENT_BASE_PORT + 1,
    to: DEFAULT_AGENT_BASE_PORT + MAX_AGENTS_PER_HOST,
    what: "Jenkins agents",
  },
  { from: EPHEMERAL_PORTS.first, to: EPHEMERAL_PORTS.last, what: "per-build agents" },
  { from: METRICS_PORTS.node, to: METRICS_PORTS.node, what: "node_exporter metrics" },
  { from: METRICS_PORTS.dockerd, to: METRICS_PORTS.dockerd, what: "dockerd metrics" },
  { from: METRICS_PORTS.registry, to: METRICS_PORTS.registry, what: "registry metrics" },
];
