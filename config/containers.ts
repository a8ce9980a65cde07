/**
 * Names of the containers Berth runs on a CI host, in one pure module: the components name their
 * containers with these, and validation (`config/validate-input.ts`) refuses configured names
 * (production-like services, network holders) that would take one of them. Docker container names
 * share one namespace per host.
 */
import type { ServiceKind } from "./types.ts";

/** The DNS container of the production-like set. */
export const DNSMASQ_CONTAINER = "dnsmasq";
/** The registry, its pull-through mirror and nginx in front of both (on the registry host). */
export const REGISTRY_CONTAINER = "registry";
export const REGISTRY_MIRROR_CONTAINER = "registry-mirror";
export const REGISTRY_NGINX_CONTAINER = "registry-nginx";

/** node_exporter, on every host. */
export const NODE_EXPORTER_CONTAINER = "node-exporter";

/** Jenkins agent n (from 1). */
export function agentContainer(n: number): string {
  return `jenkins-agent-${n}`;
}

/** Whether `name` has the form of an agent's container name (for any n). */
export function isAgentContainerName(name: string): boolean {
  return /^jenkins-agent-[1-9][0-9]*$/.test(name);
}

/** A minimal-set service's container: named after its kind. */
export function minimalContainer(kind: ServiceKind): string {
  return kind;
}

/**
 * Labels on every Docker container, network and volume of a Berth host (components/docker-host.ts
 * `berthLabels` sets them): the stack, and the host it belongs to. `berth drift` finds orphans by them.
 */
export const BERTH_STACK_LABEL = "org.berth.stack";
export const BERTH_HOST_LABEL = "org.berth.host";
