/**
 * Network holders on a test engine. The program's holders forward the minimal set from their own
 * localhost to where the host publishes it (`172.17.0.1:<default port>`, HOLDER_FORWARD_FILE). On a
 * test engine the harness publishes those ports elsewhere (`<hostIp>:<free port>`), so a test says
 * where each forward goes instead, and the long-lived holders are re-created with that forwarding
 * list: one visible substitution, recorded in the plan's mappings, and nothing else changes.
 */
import { HOLDER_FORWARD_FILE, HOLDER_LABEL, HOLDER_TEMPLATE } from "../../../components/services.ts";
import type { AppliedHost, PublishedPort } from "../../../testkit/e2e/harness.ts";
import { at } from "../../../lib/json.ts";

/** Where a forward to the published `port` goes on the test engine. */
export type ForwardTarget = (published: PublishedPort) => Promise<string> | string;

/** The published port itself (`<hostIp>:<hostPort>`): right when hostIp is reachable from containers. */
export const viaPublishedPort: ForwardTarget = (p) => `${p.hostIp}:${String(p.hostPort)}`;

/**
 * The publishing container's own address on the default bridge and its internal port: for tests
 * whose ports are published on loopback, which no container can reach.
 */
export function viaContainerAddress(applied: AppliedHost): ForwardTarget {
  return async (p) => {
    const ip = at(
      await applied.api.inspect(p.container),
      "NetworkSettings",
      "Networks",
      "bridge",
      "IPAddress",
    );
    if (typeof ip !== "string" || ip === "")
      throw new Error(`${p.container} has no address on the default bridge`);
    return `${ip}:${String(p.internal)}`;
  };
}

/** Names of the long-lived holders (the program's holder templates) in a plan. */
export function holderTemplates(applied: AppliedHost): string[] {
  return applied.plan.containers
    .filter((c) => (c.body.Labels as Record<string, string> | undefined)?.[HOLDER_LABEL] === HOLDER_TEMPLATE)
    .map((c) => c.name);
}

/**
 * Re-creates every holder template with its forwarding list pointed at `target`; returns the
 * substituted lists by holder. Fails if a forward names an address and port the program does not
 * publish.
 */
export async function retargetHolders(
  applied: AppliedHost,
  target: ForwardTarget,
): Promise<Record<string, string>> {
  const done: Record<string, string> = {};
  for (const name of holderTemplates(applied)) {
    const c = applied.container(name);
    const upload = c.uploads.find((u) => u.path === HOLDER_FORWARD_FILE);
    if (!upload) throw new Error(`${name} has no ${HOLDER_FORWARD_FILE}`);
    const original = String(upload.content);
    const lines: string[] = [];
    for (const line of original.split("\n").filter((l) => l !== "")) {
      const m = /^(\d+)=([\d.]+):(\d+)$/.exec(line);
      if (!m) throw new Error(`${name}: ${HOLDER_FORWARD_FILE}: cannot read ${JSON.stringify(line)}`);
      const published = applied.plan.ports.find(
        (p) => p.ip === m[2] && String(p.external) === m[3] && p.protocol === "tcp",
      );
      if (!published) throw new Error(`${name} forwards to ${m[2]}:${m[3]}, which nothing publishes`);
      lines.push(`${m[1] ?? ""}=${await target(published)}`);
    }
    const content = `${lines.join("\n")}\n`;
    upload.content = content;
    applied.plan.mappings.push(
      `${name}: upload ${HOLDER_FORWARD_FILE} substituted by the test: ${lines.join(" ")} ` +
        `(the program's: ${original.trim().split("\n").join(" ")})`,
    );
    await applied.remove(name);
    await applied.create(c);
    done[name] = content;
  }
  return done;
}
