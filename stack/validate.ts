/**
 * Checks that need the rendered host configuration, so they live above both `config/` (which must
 * not import the Ignition renderer) and `ignition/`: the CLI (`berth validate`, `plan`, `render`,
 * `jenkins-casc`) and `index.ts` (`pulumi up`, through `loadConfigFromPulumi`) run them after the
 * configuration itself is valid, before any resource is registered.
 *
 * Today: that the extra Ignition fragments merge into each host's own configuration (no path, unit
 * or device defined twice; the error names both sources), and the size of each host's user data,
 * which Nova caps at 65535 bytes once base64-encoded.
 * Material that only exists at deploy time (dockerd's TLS certificate and key, the generated
 * registry CA, the Cinder volume ID) is stood in for by placeholders at least as large as what
 * Pulumi's tls provider produces (ECDSA P-256), so the estimate errs on the safe side.
 */
import { existsSync } from "node:fs";
import { ConfigError, type ConfigIssue } from "../config/errors.ts";
import { loadStack, stackFile, type ResolveOptions } from "../config/load.ts";
import type { BerthConfig } from "../config/types.ts";
import { NOVA_USER_DATA_LIMIT_BYTES, buildHostIgnition, userDataBase64Size } from "../ignition/host.ts";
import { serializeIgnition } from "../ignition/serialize.ts";
import { IgnitionMergeConflictError } from "../ignition/builders.ts";
import { hostIgnitionBase } from "../stack/host-ignition.ts";

/** A PEM block of `bodyBytes` base64 characters (64 per line), standing in for generated material. */
function placeholderPem(label: string, bodyBytes: number): string {
  const body = "A".repeat(bodyBytes).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${body.trimEnd()}\n-----END ${label}-----\n`;
}

/**
 * Sizes (base64 characters) of the stand-ins. Pulumi's tls provider makes ECDSA P-256 certificates
 * of about 600-900 characters of PEM and keys of about 230; these are about twice that.
 */
export const PLACEHOLDER_SIZES = { caCert: 1600, serverCert: 1800, serverKey: 600 } as const;

/** The largest user data of the stack's hosts, in bytes once base64-encoded (what Nova counts). */
export function userDataSize(cfg: BerthConfig, hostName: string): number {
  const base = hostIgnitionBase(cfg, hostName);
  const ca = placeholderPem("CERTIFICATE", PLACEHOLDER_SIZES.caCert);
  const json = serializeIgnition(
    buildHostIgnition({
      ...base,
      dockerVolumeId: "00000000-0000-4000-8000-000000000000",
      ...(base.registry && base.registry.caCertPem === undefined && cfg.registry.tls.mode === "self-signed"
        ? { registry: { ...base.registry, caCertPem: ca } }
        : {}),
      ...(cfg.hosts.dockerTls
        ? {
            dockerTls: {
              caCertPem: ca,
              serverCertPem: placeholderPem("CERTIFICATE", PLACEHOLDER_SIZES.serverCert),
              serverKeyPem: placeholderPem("EC PRIVATE KEY", PLACEHOLDER_SIZES.serverKey),
              port: cfg.hosts.dockerTlsPort,
            },
          }
        : {}),
      ...(cfg.logs?.forward
        ? {
            logForward: {
              url: cfg.logs.forward.url,
              serverCaPem: cfg.logs.forward.serverCa,
              clientCertPem: placeholderPem("CERTIFICATE", PLACEHOLDER_SIZES.serverCert),
              clientKeyPem: placeholderPem("EC PRIVATE KEY", PLACEHOLDER_SIZES.serverKey),
            },
          }
        : {}),
    }),
  );
  return userDataBase64Size(json);
}

/** Problems only the rendered hosts show (see the module comment). */
export function renderedIssues(cfg: BerthConfig): ConfigIssue[] {
  // Every host renders the same settings but its name: the longest name is the largest.
  const host = cfg.hosts.names[cfg.hosts.names.length - 1] as string;
  let size: number;
  try {
    size = userDataSize(cfg, host);
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    // Extra fragments that define a path, unit or device the host (or another fragment) defines.
    if (e instanceof IgnitionMergeConflictError)
      return [{ path: "berth:extraIgnition", message: `${e.message}; rename or drop one of them` }];
    return [{ path: "berth", message: `the hosts' Ignition cannot be rendered: ${e.message}` }];
  }
  if (size <= NOVA_USER_DATA_LIMIT_BYTES) return [];
  const keys = Buffer.byteLength(JSON.stringify(cfg.hosts.sshKeys), "utf8");
  const fragments = Buffer.byteLength(JSON.stringify(cfg.extraIgnition.map((f) => f.config)), "utf8");
  const path = keys >= fragments ? "berth:hosts.sshKeys" : "berth:extraIgnition";
  return [
    {
      path,
      message:
        `makes each host's Ignition about ${size} bytes once base64-encoded, over Nova's user-data limit of ${NOVA_USER_DATA_LIMIT_BYTES} ` +
        `(the ${cfg.hosts.sshKeys.length} SSH keys take ${keys} bytes, berth:extraIgnition ${fragments}): ` +
        (path === "berth:hosts.sshKeys"
          ? "list fewer keys (the operators' own; give teams access through a bastion or a shared key)"
          : "make the fragments smaller (fetch large files at boot from a URL with a verification hash)"),
    },
  ];
}

/** Throws one ConfigError with {@link renderedIssues}, if any. */
export function checkRendered(cfg: BerthConfig, source: string): BerthConfig {
  const issues = renderedIssues(cfg);
  if (issues.length > 0) throw new ConfigError(cfg.stack, source, issues);
  return cfg;
}

/** `config/load.ts` `loadStack`, then the rendered checks: what the CLI validates and plans. */
export function loadCheckedStack(root: string, stack: string, options: ResolveOptions = {}): BerthConfig {
  const cfg = loadStack(root, stack, options);
  const source = existsSync(stackFile(root, stack))
    ? `stacks/Pulumi.${stack}.yaml`
    : `stacks/Pulumi.testing.yaml, derived for ${stack}`;
  return checkRendered(cfg, source);
}
