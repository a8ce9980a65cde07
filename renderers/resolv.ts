/**
 * `resolv.conf` for job containers that should resolve the backend services through dnsmasq.
 * (Docker's `dns`, `dnsSearch` and `dnsOptions` container settings produce the same file; this is
 * for images or bind mounts where those are not available.)
 */
import { isIPv4, isIPv6 } from "node:net";
import { RenderError, checkHostname, checkIntRange, joinLines } from "./common.ts";

const R = "renderResolvConf";

export interface ResolvConfInput {
  /** 1 to 3 resolver addresses (glibc reads at most three). */
  nameservers: readonly string[];
  /** Search domains, in order. */
  search?: readonly string[];
  /** `options ndots:N`, 0..15. Default 1. */
  ndots?: number;
  /** `options timeout:N` seconds, 1..30. Default: not written (resolver default 5). */
  timeoutSeconds?: number;
  /** `options attempts:N`, 1..5. Default: not written (resolver default 2). */
  attempts?: number;
}

export function renderResolvConf(input: ResolvConfInput): string {
  if (input.nameservers.length < 1 || input.nameservers.length > 3) {
    throw new RenderError(R, "nameservers", "must list 1 to 3 addresses");
  }
  for (const ns of input.nameservers) {
    if (!isIPv4(ns) && !isIPv6(ns)) {
      throw new RenderError(R, "nameservers", `${JSON.stringify(ns)} is not an IP address`);
    }
  }
  const search = (input.search ?? []).map((d) => checkHostname(R, "search", d));
  const options = [`ndots:${checkIntRange(R, "ndots", input.ndots ?? 1, 0, 15)}`];
  if (input.timeoutSeconds !== undefined) {
    options.push(`timeout:${checkIntRange(R, "timeoutSeconds", input.timeoutSeconds, 1, 30)}`);
  }
  if (input.attempts !== undefined)
    options.push(`attempts:${checkIntRange(R, "attempts", input.attempts, 1, 5)}`);

  const lines = [
    "# Rendered by Berth (renderers/resolv.ts).",
    ...input.nameservers.map((ns) => `nameserver ${ns}`),
  ];
  if (search.length > 0) lines.push(`search ${search.join(" ")}`);
  lines.push(`options ${options.join(" ")}`);
  return joinLines(lines);
}
