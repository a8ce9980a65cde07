/**
 * Several e2e engines at once, each in a network namespace of its own: a multi-host stack's hosts
 * each get their own dockerd, and since each dockerd is alone in its namespace, the stack's static
 * subnets (the services network 172.30.0.0/24 on every host, the same fixed service addresses) and
 * docker0's 172.17.0.1 exist once per namespace, as on separate hosts, without clashing with each
 * other or with anything on this machine.
 *
 * A namespace gets loopback, and a veth end on a shared "CI network" (the hosts' private addresses,
 * so one host's containers reach another host's published ports and dockerd, as on the stack's
 * network); its floating address is emulated on that namespace's loopback with a DNAT to the private
 * address (what OpenStack's floating IP does). Nothing leaves the namespaces: there is no default
 * route, and the engines' own networks stay inside.
 *
 * The engine itself is scripts/e2e-env.sh run with `nsenter --net` (only the network namespace
 * changes, so its mounts stay visible for `down`). Tools that must reach a namespace's addresses
 * (ssh, docker over TCP) run through {@link inNetns}; the Engine API socket is a file and works
 * from anywhere.
 */
import { mkdtempSync } from "node:fs";

import {
  E2E_ENV,
  E2E_STORAGE,
  engineOf,
  run,
  runOk,
  seedEnv,
  standinSeed,
  type Engine,
  type RunResult,
} from "../../../testkit/e2e/support/engine.ts";

/** Runs a command in network namespace `netns` (no shell). */
export function inNetns(
  netns: string,
  cmd: string,
  args: string[],
  options: Parameters<typeof run>[2] = {},
): RunResult {
  return run("nsenter", [`--net=/run/netns/${netns}`, "--", cmd, ...args], options);
}

export function inNetnsOk(
  netns: string,
  cmd: string,
  args: string[],
  options: Parameters<typeof run>[2] = {},
) {
  return runOk("nsenter", [`--net=/run/netns/${netns}`, "--", cmd, ...args], options);
}

export interface NetnsHost {
  netns: string;
  /** The host's private address on the shared CI network. */
  privateIp: string;
  /** Its floating address (DNAT to privateIp inside the namespace). */
  floatingIp: string;
}

/**
 * Creates one namespace per host, joined by a bridge-less veth mesh: two hosts get one veth pair
 * (more are not needed yet). Returns a cleanup that deletes them (idempotent).
 */
export function createHostNamespaces(
  prefix: string,
  hosts: readonly { privateIp: string; floatingIp: string; prefixLength: number }[],
): { hosts: NetnsHost[]; remove: () => void } {
  if (hosts.length < 1 || hosts.length > 2) throw new Error("createHostNamespaces: one or two hosts");
  const made: NetnsHost[] = [];
  const remove = () => {
    for (const h of made) run("ip", ["netns", "del", h.netns]);
  };
  try {
    hosts.forEach((h, i) => {
      const netns = `${prefix}-${String(i + 1)}`;
      runOk("ip", ["netns", "add", netns]);
      made.push({ netns, privateIp: h.privateIp, floatingIp: h.floatingIp });
      runOk("ip", ["-n", netns, "link", "set", "lo", "up"]);
      runOk("ip", ["-n", netns, "addr", "add", `${h.floatingIp}/32`, "dev", "lo"]);
    });
    const [a, b] = made;
    const veth = (i: number) => `bci${String(i)}-${String(process.pid % 100000)}`;
    if (a && b) {
      runOk("ip", [
        "link",
        "add",
        veth(1),
        "netns",
        a.netns,
        "type",
        "veth",
        "peer",
        veth(2),
        "netns",
        b.netns,
      ]);
    } else if (a) {
      runOk("ip", ["-n", a.netns, "link", "add", veth(1), "type", "dummy"]);
    }
    made.forEach((h, i) => {
      const dev = veth(i + 1);
      const len = hosts[i]?.prefixLength ?? 24;
      runOk("ip", ["-n", h.netns, "addr", "add", `${h.privateIp}/${String(len)}`, "dev", dev]);
      runOk("ip", ["-n", h.netns, "link", "set", dev, "up"]);
      // The floating address, as OpenStack maps it: to the private address (connections made here).
      inNetnsOk(h.netns, "iptables", [
        "-t",
        "nat",
        "-I",
        "OUTPUT",
        "1",
        "-d",
        `${h.floatingIp}/32`,
        "-p",
        "tcp",
        "-j",
        "DNAT",
        "--to-destination",
        h.privateIp,
      ]);
    });
  } catch (e) {
    remove();
    throw e;
  }
  return { hosts: made, remove };
}

/**
 * `e2e-env.sh up` inside `netns` (fresh work directory under /tmp), with extra environment; its disk
 * starts as a copy of the seed image (standinSeed; made, when needed, by an engine in this process's
 * own namespace, before this one starts).
 */
export function startEngineInNetns(netns: string, env: NodeJS.ProcessEnv = {}): Engine {
  const seed = standinSeed(E2E_STORAGE);
  const workdir = mkdtempSync("/tmp/be-");
  const r = inNetns(netns, "bash", [E2E_ENV, "up", workdir], {
    timeoutMs: 180_000,
    env: { BERTH_E2E_STORAGE: E2E_STORAGE, ...seedEnv(seed), ...env },
  });
  if (r.status !== 0) throw new Error(`e2e-env.sh up in ${netns} failed:\n${r.stderr}`);
  return engineOf(workdir, r.stdout, r.stderr);
}

/** `e2e-env.sh down` inside `netns` (its firewall snapshot and bridge are that namespace's). */
export function stopEngineInNetns(netns: string, workdir: string): RunResult {
  return inNetns(netns, "bash", [E2E_ENV, "down", workdir], { timeoutMs: 300_000 });
}
