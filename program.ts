/**
 * The Berth program: from a validated configuration to the stack's resources and outputs. Used by
 * `index.ts` (what `pulumi up` runs) and, under Pulumi's mocks, by `berth render`/`berth plan` and
 * the tests, so all of them run the same code.
 */
import * as pulumi from "@pulumi/pulumi";
import type { BerthConfig } from "./config/types.ts";
import { CiEnvironment } from "./components/environment.ts";
import { renderJenkinsCasc, type CascInput } from "./renderers/casc.ts";

export interface BerthOutputs {
  environment: string;
  hosts: { name: string; privateIp: string; floatingIp: pulumi.Output<string>; ssh: pulumi.Output<string> }[];
  registryUrl: string;
  registryCaPem: pulumi.Output<string>;
  agentEndpoints: pulumi.Output<string>[];
  dockerTlsEndpoints?: pulumi.Output<string>[];
  dockerTlsCaPem?: pulumi.Output<string>;
  dockerTlsClientCertPem?: pulumi.Output<string>;
  /** Secret: the Jenkins controller's key for dockerd TLS. */
  dockerTlsClientKeyPem?: pulumi.Output<string>;
  registryUsers: string[];
  /** Secret: registry user → password. */
  registryPasswords: pulumi.Output<Record<string, string>>;
  /** known_hosts lines of every agent (stable across container replacement), for Jenkins. */
  agentKnownHosts: pulumi.Output<string>;
  /** Secret: generated credentials of the backend services (postgres, rabbitmq), per host. */
  serviceCredentials: pulumi.Output<Record<string, unknown>>;
  /** PEM CA of the hosts' journal-upload client certificates: the receiver's trust file (logs.forward only). */
  logsClientCaPem?: pulumi.Output<string>;
  /** JCasC YAML: one Jenkins Docker cloud per per-build host, at its floating IP (renderers/casc.ts). */
  jenkinsCasc: pulumi.Output<string>;
}

export function berthProgram(config: BerthConfig): BerthOutputs {
  const env = new CiEnvironment(config.stack, { config });
  const registry = env.hostServices.find((h) => h.registry)?.registry;
  return {
    environment: config.environment,
    hosts: env.hosts,
    registryUrl: env.registryUrl,
    registryCaPem: env.registryCaPem,
    agentEndpoints: env.agentEndpoints,
    registryUsers: registry?.users ?? [],
    registryPasswords: pulumi.secret(registry?.passwords ?? pulumi.output<Record<string, string>>({})),
    agentKnownHosts: pulumi.all(env.hostServices.map((h) => h.agents.knownHosts)).apply((l) => l.join("")),
    serviceCredentials: pulumi.secret(
      pulumi
        .all(
          env.hostServices.map((h, i) =>
            pulumi.all([config.hosts.names[i] as string, h.services.credentials]),
          ),
        )
        .apply((pairs) => Object.fromEntries(pairs)),
    ),
    // Only plain values reach the renderer: the apply creates no resources.
    jenkinsCasc: pulumi
      .all(env.hosts.map((h) => pulumi.all([h.name, h.floatingIp])))
      .apply((pairs) => renderJenkinsCasc(cascInput(config), Object.fromEntries(pairs))),
    ...(env.logsClientCaPem ? { logsClientCaPem: env.logsClientCaPem } : {}),
    ...(env.dockerTls
      ? {
          dockerTlsEndpoints: env.dockerTls.endpoints,
          dockerTlsCaPem: env.dockerTls.caCertPem,
          dockerTlsClientCertPem: env.dockerTls.clientCertPem,
          dockerTlsClientKeyPem: pulumi.secret(env.dockerTls.clientKeyPem),
        }
      : {}),
  };
}

/** The JCasC renderer's input: the few configuration values the snippet is made from. */
export function cascInput(config: BerthConfig): CascInput {
  return {
    stack: config.stack,
    perBuild: config.jenkins.perBuild,
    dockerAccess: config.jenkins.dockerAccess.perBuild,
    hostAddresses: Object.fromEntries(
      config.hosts.names.map((h, i) => [h, config.hosts.addresses[i] as string]),
    ),
    registryHostname: config.registry.hostname,
    dockerTlsPort: config.hosts.dockerTlsPort,
    dnsAddress: config.services.dnsAddress,
    limits: config.limits.containers.perBuild,
    searchDomains: config.dns.searchDomains,
  };
}
