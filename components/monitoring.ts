import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { NODE_EXPORTER_CONTAINER } from "../config/containers.ts";
import { METRICS_PORTS } from "../config/ports.ts";
import { TEXTFILE_DIR } from "../renderers/host-metrics.ts";
import { PinnedImages, assertPinned, commonContainerArgs, limitArgs } from "./docker-host.ts";
import type { ContainerLogs } from "./docker-host.ts";
import type { ContainerLimit } from "../config/limits.ts";

/** Where the host's root file system appears inside the container (node_exporter's `--path.rootfs`). */
export const NODE_EXPORTER_ROOTFS = "/host";

export interface NodeExporterArgs {
  /** Host name, e.g. `staging-ci-1` (resource names). */
  hostName: string;
  /** The host's private address: the only address the exporter is published on. */
  privateIp: string;
  /** node_exporter image, pinned by digest (`prom/node-exporter`, or a stand-in with its interface). */
  image: string;
  /** Memory and CPU limits (config/limits.ts, kind `nodeExporter`); unlimited when absent. */
  limits?: ContainerLimit;
  /** Log driver of Berth's containers (journald when the journal is forwarded). */
  containerLogs?: ContainerLogs;
  /** This host's Docker provider. */
  provider: docker.Provider;
}

/**
 * node_exporter on one host, as a container of the service layer (updated in place, pinned by
 * digest; an image bump never replaces the server). It sees the host through a read-only bind of
 * `/` at {@link NODE_EXPORTER_ROOTFS} (file systems, including the btrfs docker volume, and the
 * textfile directory the host's `berth-textfile-metrics` timer fills) and the host-wide parts of
 * /proc and /sys (CPU, memory, boot time, btrfs allocation). It runs on the default bridge, not in
 * the host's network namespace, so its port is published on the private address only, like every
 * other Berth port; the price is that its network-device counters are the container's own.
 */
export class NodeExporter extends pulumi.ComponentResource {
  /** `<private ip>:9100`. */
  public readonly endpoint: string;

  constructor(name: string, args: NodeExporterArgs, opts?: pulumi.ComponentResourceOptions) {
    assertPinned(args.image, name);
    super("berth:monitoring:NodeExporter", name, {}, { ...opts, providers: [args.provider] });
    const child = { parent: this, provider: args.provider };
    const images = new PinnedImages(name, this, args.provider);
    const port = METRICS_PORTS.node;

    new docker.Container(
      `${name}-container`,
      {
        name: NODE_EXPORTER_CONTAINER,
        hostname: NODE_EXPORTER_CONTAINER,
        image: images.imageId(args.image),
        ...commonContainerArgs(args.containerLogs),
        ...limitArgs(args.limits),
        networkMode: "bridge",
        command: [
          `--path.rootfs=${NODE_EXPORTER_ROOTFS}`,
          `--collector.textfile.directory=${NODE_EXPORTER_ROOTFS}${TEXTFILE_DIR}`,
          // Upstream's default plus the files Docker binds into every container (/etc/hosts, …),
          // which would otherwise show up as file systems of the host.
          "--collector.filesystem.mount-points-exclude=^/(dev|proc|run|sys|etc/(hostname|hosts|resolv\\.conf)|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
          `--web.listen-address=:${port}`,
        ],
        // Inside the container it listens on every address of its own namespace; the host publishes
        // it on the private address only (the security group admits berth:monitoring.cidrs).
        ports: [{ internal: port, external: port, ip: args.privateIp, protocol: "tcp" }],
        volumes: [{ hostPath: "/", containerPath: NODE_EXPORTER_ROOTFS, readOnly: true }],
        // SELinux (Fedora CoreOS) would deny a container_t process reading the host's files.
        securityOpts: ["label=disable"],
        // The image's busybox wget; the landing page answers once the exporter listens.
        healthcheck: {
          tests: ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${port}/`],
          interval: "30s",
          timeout: "5s",
          retries: 3,
          startPeriod: "5s",
        },
      },
      child,
    );
    this.endpoint = `${args.privateIp}:${port}`;
    this.registerOutputs({ endpoint: this.endpoint });
  }
}
