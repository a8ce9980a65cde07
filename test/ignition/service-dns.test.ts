/**
 * Production names on the host itself (issue #17 "names per region", issue #15 item 3), as far as
 * real programs can show it without booting Fedora CoreOS or Flatcar.
 *
 * The real Ignition writes the host's systemd-resolved drop-in into a scratch root. Then, in network,
 * mount and PID namespaces of their own, Debian's real systemd-resolved (252, unpacked by
 * .ci/install-debian-packages, never installed) reads that drop-in, and the real dnsmasq serves the
 * program's rendered dnsmasq.conf at the dnsmasq address (on a veth pair, like the host's side of
 * ci-services). resolved writes its two resolv.conf files; glibc (`getent hosts`, nsswitch `dns`)
 * then resolves a short production-like name through /etc/resolv.conf linked as each OS links it:
 * Fedora CoreOS to the stub file (127.0.0.53: resolved routes the search domains to dnsmasq),
 * Flatcar to the uplink file (glibc asks the listed servers, dnsmasq first).
 *
 * Not proven here: Fedora CoreOS's newer resolved and its `nss-resolve` module (the hosts line there
 * asks resolved over D-Bus/varlink, here glibc asks the stub over DNS); NetworkManager's per-link
 * servers next to the global one; the drop-in being read at a real boot.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, expect, it } from "vitest";

import {
  RESOLVED_DROPIN_PATH,
  osProfile,
  renderHostIgnition,
  type HostIgnitionInput,
} from "../../ignition/index.ts";
import { renderDnsmasqConfig } from "../../renderers/dnsmasq.ts";
import { checkTools, toolsDescribe } from "../support/tools.ts";
import { IGNITION_BINARY, applyWithIgnition, fcosFull, flatcarMinimal, makeScratchRoot } from "./fixtures.ts";

/** Where .ci/install-debian-packages unpacks Debian's systemd-resolved (BERTH_SYSTEMD_RESOLVED overrides). */
const RESOLVED =
  process.env.BERTH_SYSTEMD_RESOLVED ?? "/opt/berth/systemd-resolved/lib/systemd/systemd-resolved";

const tools = checkTools(
  "host name resolution with the real systemd-resolved",
  [
    { tool: IGNITION_BINARY, debianPackage: "ignition" },
    { tool: "setfiles", debianPackage: "policycoreutils" },
    { tool: "usermod", debianPackage: "passwd" },
    { tool: "dnsmasq", debianPackage: "dnsmasq-base" },
    { tool: "unshare", debianPackage: "util-linux" },
    { tool: "ip", debianPackage: "iproute2" },
    { tool: "getent", debianPackage: "libc-bin" },
    {
      tool: RESOLVED,
      debianPackage: "systemd-resolved (unpack only, never install: see .ci/install-debian-packages)",
    },
  ],
  { needsRoot: true },
);

const SERVICE = { name: "mongodb-cluster-a-node-1", address: "172.30.0.11" };
const dns = fcosFull.serviceDns ?? { address: "", searchDomains: [] };

/**
 * Runs in the namespaces: dnsmasq and resolved, then `getent hosts` of each name with /etc/resolv.conf
 * bound to each of resolved's files. Everything the test asserts is written to $dir/out.
 */
const SCRIPT = String.raw`
set -u
dir=$1 resolved=$2 dns=$3 names=$4
out=$dir/out; mkdir -p "$out"
mount --make-rprivate /
ip link set lo up
# The host's side of ci-services (.1) and the dnsmasq container's address (.2), carrier up: resolved
# only uses DNS servers while a link is routable.
ip link add berth-h type veth peer name berth-c
prefix=$(echo "$dns" | cut -d. -f1-3)
ip addr add "$prefix.1/24" dev berth-h; ip addr add "$dns/24" dev berth-c
ip link set berth-h up; ip link set berth-c up
# resolved drops privileges to systemd-resolve: a user in this mount namespace only.
cp /etc/passwd "$dir/passwd"; cp /etc/group "$dir/group"
echo 'systemd-resolve:x:991:991::/:/usr/sbin/nologin' >>"$dir/passwd"
echo 'systemd-resolve:x:991:' >>"$dir/group"
mount --bind "$dir/passwd" /etc/passwd; mount --bind "$dir/group" /etc/group
mount --bind "$dir/etc-systemd" /etc/systemd
mount -t tmpfs tmpfs /run/systemd
dnsmasq --keep-in-foreground --conf-file="$dir/dnsmasq.conf" >"$out/dnsmasq.log" 2>&1 &
SYSTEMD_LOG_LEVEL=info "$resolved" >"$out/resolved.log" 2>&1 &
for _ in $(seq 100); do
  [[ -s /run/systemd/resolve/stub-resolv.conf && -s /run/systemd/resolve/resolv.conf ]] && break
  sleep 0.1
done
for _ in $(seq 100); do grep -q 'started' "$out/dnsmasq.log" && break; sleep 0.1; done
cp /run/systemd/resolve/stub-resolv.conf "$out/stub-resolv.conf"
cp /run/systemd/resolve/resolv.conf "$out/resolv.conf"
for file in stub-resolv.conf resolv.conf; do
  mount --bind "/run/systemd/resolve/$file" /etc/resolv.conf
  for n in $names; do
    a=$(getent hosts "$n" | cut -d' ' -f1 | head -n 1)
    [[ -n $a ]] || a=none
    echo "$n $a"
  done >"$out/getent-$file"
  umount /etc/resolv.conf
done
`;

interface Run {
  out: (file: string) => string;
  status: number | null;
  stderr: string;
}

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

/** The drop-in as the real Ignition writes it for `host`. */
function dropinByIgnition(host: HostIgnitionInput): string {
  const work = mkdtempSync(join(tmpdir(), "berth-ign-dns-"));
  cleanup.push(work);
  const configPath = join(work, "config.ign");
  writeFileSync(configPath, renderHostIgnition(host));
  const root = makeScratchRoot("berth-root-dns-");
  cleanup.push(root);
  const runs = applyWithIgnition(root, configPath, work);
  expect(
    runs.map((r) => r.status),
    runs.map((r) => r.output).join("\n"),
  ).toEqual([0, 0]);
  return readFileSync(join(root, RESOLVED_DROPIN_PATH), "utf8");
}

/** resolved with `dropin` and dnsmasq with the rendered config, in namespaces of their own. */
function resolveWith(dropin: string, names: readonly string[]): Run {
  const dir = mkdtempSync(join(tmpdir(), "berth-resolved-"));
  cleanup.push(dir);
  mkdirSync(join(dir, "etc-systemd", "resolved.conf.d"), { recursive: true });
  writeFileSync(join(dir, "etc-systemd", "resolved.conf.d", "50-berth.conf"), dropin);
  writeFileSync(
    join(dir, "dnsmasq.conf"),
    renderDnsmasqConfig({
      searchDomains: dns.searchDomains,
      listenAddresses: [dns.address],
      // Nothing is forwarded: no query leaves the namespace.
      upstreamServers: [],
      records: [SERVICE],
      logQueries: true,
      logFacility: "-",
      pidFile: join(dir, "dnsmasq.pid"),
    }),
  );
  writeFileSync(join(dir, "inner.sh"), SCRIPT);
  const r = spawnSync(
    "unshare",
    [
      "--net",
      "--mount",
      "--pid",
      "--fork",
      "--mount-proc",
      "bash",
      join(dir, "inner.sh"),
      dir,
      RESOLVED,
      dns.address,
      names.join(" "),
    ],
    { encoding: "utf8", timeout: 90_000 },
  );
  return {
    status: r.status,
    stderr: r.stderr,
    out: (file: string) => {
      try {
        return readFileSync(join(dir, "out", file), "utf8");
      } catch {
        return "";
      }
    },
  };
}

const names = [SERVICE.name, ...dns.searchDomains.map((d) => `${SERVICE.name}.${d}`), "nothing-here"];
const resolvesAll = [
  ...names.slice(0, -1).map((n) => `${n} ${SERVICE.address}`),
  "nothing-here none",
  "",
].join("\n");

toolsDescribe(tools)(
  "the host's resolver with the drop-in the real Ignition writes (real systemd-resolved, dnsmasq)",
  () => {
    let run: Run;
    let dropin = "";

    beforeAll(() => {
      dropin = dropinByIgnition(fcosFull);
      run = resolveWith(dropin, names);
    }, 180_000);

    it("Ignition writes the same drop-in for Fedora CoreOS and Flatcar", () => {
      expect(dropin).toMatch(/^Domains=svc\.ci\.internal us-east-1\.example\.internal$/m);
      expect(dropinByIgnition({ ...flatcarMinimal, serviceDns: dns })).toBe(dropin);
    }, 120_000);

    it("resolved publishes the search domains, in order, in both of its resolv.conf files", () => {
      expect(run.status, `${run.stderr}\n${run.out("resolved.log")}`).toBe(0);
      const search = `search ${dns.searchDomains.join(" ")}`;
      expect(run.out("stub-resolv.conf").split("\n")).toContain(search);
      expect(run.out("stub-resolv.conf")).toMatch(/^nameserver 127\.0\.0\.53$/m);
      expect(run.out("resolv.conf").split("\n")).toContain(search);
      // The uplink file lists the global DNS= server: dnsmasq first.
      expect(run.out("resolv.conf")).toMatch(
        new RegExp(`^nameserver ${dns.address.replace(/\./g, "\\.")}$`, "m"),
      );
    });

    it(`Fedora CoreOS (/etc/resolv.conf → ${osProfile("fcos").resolvConf}): the short name and the name under each domain`, () => {
      expect(run.out("getent-stub-resolv.conf"), run.out("resolved.log")).toBe(resolvesAll);
      // The short name went out under the first (preferred) domain, through resolved to dnsmasq.
      expect(run.out("dnsmasq.log")).toContain(`query[A] ${SERVICE.name}.${dns.searchDomains[0] ?? ""} from`);
    });

    it(`Flatcar (/etc/resolv.conf → ${osProfile("flatcar").resolvConf}): the short name and the name under each domain`, () => {
      expect(run.out("getent-resolv.conf"), run.out("dnsmasq.log")).toBe(resolvesAll);
    });

    it("is a meaningful check: with the old routing-only drop-in (Domains=~…) the short name does not resolve on Fedora CoreOS", () => {
      const old = dropin.replace(
        /^Domains=.*$/m,
        `Domains=${dns.searchDomains.map((d) => `~${d}`).join(" ")}`,
      );
      const before = resolveWith(old, [SERVICE.name, `${SERVICE.name}.${dns.searchDomains[1] ?? ""}`]);
      expect(before.status, before.stderr).toBe(0);
      // Routing-only domains are no search domains (resolved 252 writes "search ." then).
      const searchLine = before.out("stub-resolv.conf").match(/^search .*$/m)?.[0] ?? "";
      for (const d of dns.searchDomains) expect(searchLine.split(" ")).not.toContain(d);
      expect(before.out("getent-stub-resolv.conf")).toBe(
        `${SERVICE.name} none\n${SERVICE.name}.${dns.searchDomains[1] ?? ""} ${SERVICE.address}\n`,
      );
    }, 120_000);
  },
);
