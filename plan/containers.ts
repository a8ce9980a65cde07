/**
 * The containers of a program run, per host, with the pinned image reference each one runs.
 * Shared by `berth plan` (what reviewers see) and `berth dev` (what a laptop runs), so both read
 * the program's registrations the same way.
 */
import type { CapturedResource } from "./mocks.ts";
import { plain, type StackRun } from "./run.ts";

/** The URN of the provider a resource uses (its reference without the `::<id>` suffix). */
export function providerUrn(r: CapturedResource): string | null {
  if (!r.provider) return null;
  const i = r.provider.lastIndexOf("::");
  return i < 0 ? r.provider : r.provider.slice(0, i);
}

/** Host name → the docker containers registered on that host's Docker provider. */
export function containersByHost(run: StackRun): Map<string, CapturedResource[]> {
  // Containers belong to the host whose Docker provider they use (the provider is a child of the host's services).
  const providerHost = new Map<string, string>();
  for (const p of run.resources.filter((r) => r.type === "pulumi:providers:docker")) {
    const host = run.config.hosts.names.find((h) => p.name.startsWith(`${h}-`) || p.name === h);
    if (host) providerHost.set(p.urn, host);
  }
  const byHost = new Map<string, CapturedResource[]>(run.config.hosts.names.map((h) => [h, []]));
  for (const c of run.resources.filter((r) => r.type === "docker:index/container:Container")) {
    const host = providerHost.get(providerUrn(c) ?? "");
    if (host) byHost.get(host)?.push(c);
  }
  return byHost;
}

/**
 * The pinned reference a container's `image` input stands for: containers take the image ID their
 * `RemoteImage` resolved, and the reference is that RemoteImage's `name`.
 */
export function imageReferences(run: StackRun): (container: CapturedResource) => string {
  const imageNames = new Map<string, string>();
  for (const img of run.resources.filter((r) => r.type === "docker:index/remoteImage:RemoteImage")) {
    const id = img.state.imageId;
    if (typeof id === "string") imageNames.set(id, String(plain(img.inputs.name)));
  }
  return (c) => imageNames.get(String(plain(c.inputs.image))) ?? String(plain(c.inputs.image));
}
