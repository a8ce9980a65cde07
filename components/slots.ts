import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { DEFAULT_IMAGES } from "../config/images.ts";
import type { AppSlot } from "../config/types.ts";
import { SLOT_FRONT, SLOT_LABEL, slotAppName, slotFrontName } from "../config/validate-slots.ts";
import type { ContainerLimit } from "../config/limits.ts";
import {
  PinnedImages,
  assertPinned,
  commonContainerArgs,
  limitArgs,
  type ContainerLogs,
} from "./docker-host.ts";

export { SLOT_APP, SLOT_FRONT, SLOT_LABEL, slotAppName, slotFrontName } from "../config/validate-slots.ts";

/**
 * The labels that carry a slot's definition to `berth-slot` (images/jenkins-agent/berth-slot reads
 * them from the front): name, port, health check, limits, how long a deploy waits.
 */
export function slotLabels(slot: AppSlot): Record<string, string> {
  const labels: Record<string, string> = {
    [SLOT_LABEL]: SLOT_FRONT,
    [`${SLOT_LABEL}.name`]: slot.name,
    [`${SLOT_LABEL}.port`]: String(slot.port),
    [`${SLOT_LABEL}.timeout`]: String(slot.health.timeoutSeconds),
    [`${SLOT_LABEL}.memory-mib`]: String(slot.memoryMiB),
    [`${SLOT_LABEL}.cpus`]: String(slot.cpus),
  };
  if (slot.health.http !== undefined) labels[`${SLOT_LABEL}.health.http`] = slot.health.http;
  if (slot.health.command !== undefined)
    labels[`${SLOT_LABEL}.health.command`] = JSON.stringify(slot.health.command);
  return labels;
}

/**
 * The front's command (socat, the holder image's entrypoint): accept on the slot's port and forward
 * each connection to `slot-<name>-app` on the same port, the name resolved by Docker's DNS at each
 * connection, so the container `berth-slot` makes live is reached from the next connection on.
 */
export function slotFrontCommand(slot: Pick<AppSlot, "name" | "port">): string[] {
  return [
    `TCP4-LISTEN:${slot.port},fork,reuseaddr`,
    `TCP:${slotAppName(slot.name)}:${slot.port},connect-timeout=5`,
  ];
}

/** The front's health check: its own listener accepts a connection. */
export function slotFrontCheck(slot: Pick<AppSlot, "port">): string[] {
  return ["socat", "-u", "OPEN:/dev/null", `TCP4:127.0.0.1:${slot.port},connect-timeout=2`];
}

export interface AppSlotsArgs {
  /** Host name, e.g. `staging-ci-1` (resource names). */
  hostName: string;
  /** The slots (validated: config/validate-slots.ts). */
  slots: AppSlot[];
  /** The host's private address: each slot's port is published there only. */
  privateIp: string;
  /** The `ci-services` network (the application reaches the production-like services on it). */
  servicesNetwork: pulumi.Input<string>;
  /** dnsmasq, and the search domains: the front's resolver, which `berth-slot` gives the application. */
  dnsAddress: string;
  searchDomains: string[];
  /** The front's image (socat and busybox), pinned by digest. Default `DEFAULT_IMAGES.holder`. */
  image?: string;
  /** The front's limits (the holders' kind: a forwarder). */
  limits?: ContainerLimit;
  containerLogs?: ContainerLogs;
  provider: docker.Provider;
}

/**
 * A host's application slots (seed 004, build step 5: the latest build's application, running
 * against the production-like services, reachable by developers for live tests).
 *
 * The program declares only each slot's **front** (`slot-<name>`): a forwarder on `ci-services`
 * that publishes the slot's port on the host's private address (the security group opens it to
 * `berth:services.slotCidrs` only) and carries the slot's definition in its labels. The application
 * container itself (`slot-<name>-app`) is made by builds with `berth-slot deploy` from the agent
 * images: it changes with every build, so it is not a Pulumi resource (a replacement by a build is
 * no drift, and `pulumi up` never rolls a build back); `berth drift` knows it by its labels.
 */
export class AppSlots extends pulumi.ComponentResource {
  /** Slot name → `<private ip>:<port>`. */
  public readonly endpoints: Record<string, string>;

  constructor(name: string, args: AppSlotsArgs, opts?: pulumi.ComponentResourceOptions) {
    const image = args.image ?? DEFAULT_IMAGES.holder;
    assertPinned(image, name);
    super("berth:slots:AppSlots", name, {}, { ...opts, providers: [args.provider] });
    const child = { parent: this, provider: args.provider };
    const images = new PinnedImages(name, this, args.provider);
    this.endpoints = {};
    for (const slot of args.slots) {
      const front = slotFrontName(slot.name);
      new docker.Container(
        `${name}-${slot.name}`,
        {
          name: front,
          hostname: front,
          image: images.imageId(image),
          ...commonContainerArgs(args.containerLogs),
          ...limitArgs(
            args.limits,
            Object.entries(slotLabels(slot)).map(([label, value]) => ({ label, value })),
          ),
          entrypoints: ["socat"],
          command: slotFrontCommand(slot),
          networkMode: "bridge",
          networksAdvanced: [{ name: args.servicesNetwork }],
          dns: [args.dnsAddress],
          dnsSearches: [...args.searchDomains],
          ports: [{ internal: slot.port, external: slot.port, ip: args.privateIp, protocol: "tcp" }],
          // The front listens (whether an application is live is berth-slot's and drift's business).
          healthcheck: {
            tests: ["CMD", ...slotFrontCheck(slot)],
            interval: "30s",
            timeout: "5s",
            retries: 3,
            startPeriod: "5s",
          },
        },
        child,
      );
      this.endpoints[slot.name] = `${args.privateIp}:${slot.port}`;
    }
    this.registerOutputs({ endpoints: this.endpoints });
  }
}
