import { createHash } from "node:crypto";

import { describe, expect, it } from "vitest";

import {
  NOVA_USER_DATA_LIMIT_BYTES,
  assertUserDataSize,
  buildHostIgnition,
  cinderVirtioDevicePath,
  file,
  hostIgnitionHasSecrets,
  osProfile,
  renderHostIgnition,
  serializeIgnition,
  userDataBase64Size,
  type FileContents,
  type HostIgnitionInput,
  type IgnitionConfig,
  type StorageFile,
} from "../../ignition/index.ts";
import { InternalError, RenderError } from "../../renderers/common.ts";
import {
  DAY2_SCRIPTS,
  DAY2_SCRIPTS_OVERLAY2,
  DAY2_UNITS,
  DAY2_UNITS_OVERLAY2,
  decodeContents,
  extraFragment,
  fcosFull,
  fcosOverlay2,
  fcosWithExtra,
  flatcarMinimal,
  flatcarOverlay2,
  KEYS,
  readable,
} from "./fixtures.ts";

const decode = (contents: FileContents | undefined): string => decodeContents(contents).toString("utf8");

function fileAt(config: IgnitionConfig, path: string): StorageFile {
  const f = config.storage?.files?.find((x) => x.path === path);
  if (!f) throw new Error(`no file ${path}`);
  return f;
}

const text = (config: IgnitionConfig, path: string): string => decode(fileAt(config, path).contents);

describe("buildHostIgnition (fcos, everything on)", () => {
  const config = buildHostIgnition(fcosFull);
  const units = config.systemd?.units ?? [];
  const daemon = JSON.parse(text(config, "/etc/docker/daemon.json")) as Record<string, unknown>;
  const dockerUnit = units.find((u) => u.name === "docker.service");
  const dockerDropin = dockerUnit?.dropins?.find((d) => d.name === "10-berth.conf")?.contents ?? "";

  it("sets up user core with the keys", () => {
    expect(config.passwd?.users).toEqual([{ name: "core", sshAuthorizedKeys: KEYS }]);
  });

  it("writes hostname, time zone link and a full /etc/hosts pinning the registry", () => {
    expect(text(config, "/etc/hostname")).toBe("staging-ci-1\n");
    expect(config.storage?.links).toEqual([
      { path: "/etc/localtime", target: "../usr/share/zoneinfo/Europe/Rome", hard: false, overwrite: true },
    ]);
    const hosts = text(config, "/etc/hosts");
    expect(hosts).toMatch(/^127\.0\.0\.1\s+localhost\b/m);
    expect(hosts).toMatch(/^::1\s+localhost\b/m);
    expect(hosts).toMatch(/^10\.20\.0\.10 registry\.ci\.internal$/m);
    expect(fileAt(config, "/etc/hosts").overwrite).toBe(true);
  });

  it("formats the Cinder volume as btrfs (kept across re-provisioning) and mounts it by label", () => {
    expect(config.storage?.filesystems).toEqual([
      {
        device: "/dev/disk/by-id/virtio-0f1e2d3c-4b5a-6978-8",
        format: "btrfs",
        label: "docker",
        wipeFilesystem: false,
      },
    ]);
    const mount = units.find((u) => u.name === "var-lib-docker.mount");
    expect(mount?.enabled).toBe(true);
    expect(mount?.contents).toContain("What=/dev/disk/by-label/docker");
    expect(mount?.contents).toContain("Where=/var/lib/docker");
    expect(mount?.contents).toContain("WantedBy=local-fs.target");
  });

  it("configures daemon.json for btrfs, json-file logs, live-restore, mirrors, bip, search domains and mutual TLS", () => {
    expect(daemon).toEqual({
      "dns-search": ["svc.ci.internal", "us-east-1.example.internal"],
      "selinux-enabled": true,
      "storage-driver": "btrfs",
      "log-driver": "json-file",
      "log-opts": { "max-size": "10m", "max-file": "3" },
      "live-restore": true,
      "registry-mirrors": ["https://registry.ci.internal:5001"],
      bip: "172.17.0.1/16",
      hosts: ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
      tls: true,
      tlsverify: true,
      tlscacert: "/etc/docker/tls/ca.pem",
      tlscert: "/etc/docker/tls/server-cert.pem",
      tlskey: "/etc/docker/tls/server-key.pem",
      "metrics-addr": "10.20.0.10:9323",
    });
    expect(fileAt(config, "/etc/docker/daemon.json").mode).toBe(0o644);
    expect(fileAt(config, "/etc/docker/tls/server-key.pem").mode).toBe(0o600);
    expect(text(config, "/etc/docker/tls/server-key.pem")).toBe(fcosFull.dockerTls?.serverKeyPem);
    expect(text(config, "/etc/docker/tls/ca.pem")).toBe(fcosFull.dockerTls?.caCertPem);
  });

  it("overrides docker.service: waits for the mount, bare ExecStart, no flag duplicating daemon.json", () => {
    expect(dockerUnit?.enabled).toBe(true);
    expect(dockerUnit?.contents).toBeUndefined();
    expect(dockerDropin).toMatch(/^\[Unit\]$/m);
    expect(dockerDropin).toContain("RequiresMountsFor=/var/lib/docker\n");
    expect(dockerDropin).toContain("After=var-lib-docker.mount\n");
    expect(dockerDropin).toContain("Environment=OPTIONS=\n");
    const execStarts = dockerDropin.split("\n").filter((l) => l.startsWith("ExecStart="));
    expect(execStarts).toEqual(["ExecStart=", "ExecStart=/usr/bin/dockerd"]);
    // Every daemon.json key has a same-named dockerd flag; none may appear on the command line.
    for (const key of Object.keys(daemon)) {
      expect(execStarts.join(" ")).not.toContain(`--${key}`);
    }
    expect(execStarts.join(" ")).not.toMatch(/\s-H\b|--host/);
  });

  it("trusts the registry CA for Docker (both ports) and the OS", () => {
    for (const path of [
      "/etc/docker/certs.d/registry.ci.internal/ca.crt",
      "/etc/docker/certs.d/registry.ci.internal:5001/ca.crt",
      "/etc/pki/ca-trust/source/anchors/berth-registry-ca.pem",
    ]) {
      expect(text(config, path), path).toBe(fcosFull.registry?.caCertPem);
    }
  });

  it("hardens sshd with a drop-in that sorts first", () => {
    const sshd = fileAt(config, "/etc/ssh/sshd_config.d/05-berth.conf");
    expect(sshd.mode).toBe(0o600);
    const body = decode(sshd.contents);
    expect(body).toMatch(/^PasswordAuthentication no$/m);
    expect(body).toMatch(/^KbdInteractiveAuthentication no$/m);
    expect(body).toMatch(/^PermitRootLogin no$/m);
  });

  it("makes the service domains the host's search domains, routed to dnsmasq, via systemd-resolved", () => {
    expect(text(config, "/etc/systemd/resolved.conf.d/50-berth.conf")).toBe(
      "# Berth: the services' domains are the host's search domains, and their queries go to the\n" +
        "# dnsmasq container only.\n[Resolve]\nDNS=172.30.0.2\nDomains=svc.ci.internal us-east-1.example.internal\n",
    );
  });

  it("without service DNS writes no resolved drop-in and no dns-search", () => {
    const bare = buildHostIgnition({ ...fcosFull, serviceDns: undefined });
    expect(bare.storage?.files?.map((f) => f.path)).not.toContain(
      "/etc/systemd/resolved.conf.d/50-berth.conf",
    );
    expect(JSON.parse(text(bare, "/etc/docker/daemon.json"))).not.toHaveProperty("dns-search");
  });

  it("refuses an empty or malformed search-domain list", () => {
    const dns = (searchDomains: string[]) => ({
      ...fcosFull,
      serviceDns: { address: "172.30.0.2", searchDomains },
    });
    expect(() => buildHostIgnition(dns([]))).toThrow(RenderError);
    expect(() => buildHostIgnition(dns([]))).toThrow(
      'buildHostIgnition: serviceDns.searchDomains: host "staging-ci-1": must list at least one domain',
    );
    expect(() => buildHostIgnition(dns(["ok.example", "not ok"]))).toThrow(
      /serviceDns\.searchDomains: .*must hold domains, got "not ok"/,
    );
  });

  it("matches the readable snapshot", async () => {
    await expect(serializeIgnition(config, 2) + "\n").toMatchFileSnapshot(
      "../fixtures/ignition/fcos-full.ign",
    );
    await expect(readable(config)).toMatchFileSnapshot("../fixtures/ignition/fcos-full.txt");
  });
});

describe("buildHostIgnition (flatcar, minimal)", () => {
  const config = buildHostIgnition(flatcarMinimal);
  const paths = (config.storage?.files ?? []).map((f) => f.path);

  it("writes only what is asked for (plus the Day-2 files every host gets)", () => {
    expect(paths).toEqual([
      "/etc/hostname",
      "/etc/hosts",
      "/etc/docker/daemon.json",
      "/etc/ssh/sshd_config.d/05-berth.conf",
      "/etc/flatcar/update.conf",
      ...DAY2_SCRIPTS.map((s) => `/opt/bin/${s}`),
      "/etc/systemd/journald.conf.d/50-berth.conf",
    ]);
    // Flatcar's default window: Sunday night (locksmithd takes one day), in the host's zone.
    expect(text(config, "/etc/flatcar/update.conf")).toBe(
      "# Berth: when this host may reboot into a downloaded OS update (rendered, first boot).\n" +
        'REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_WINDOW_START="Sun 02:00"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=60m\n',
    );
    expect(text(config, "/etc/hosts")).not.toContain("registry");
    const daemon = JSON.parse(text(config, "/etc/docker/daemon.json")) as Record<string, unknown>;
    expect(daemon.hosts).toEqual(["unix:///var/run/docker.sock"]);
    expect(daemon).not.toHaveProperty("tls");
    expect(daemon["registry-mirrors"]).toEqual([]);
    expect(config.storage?.filesystems?.[0]).toMatchObject({
      device: "/dev/disk/by-id/virtio-a1b2c3d4-e5f6-4789-9",
      label: "dockerdata",
    });
    expect(config.systemd?.units?.find((u) => u.name === "var-lib-docker.mount")?.contents).toContain(
      "What=/dev/disk/by-label/dockerdata",
    );
  });

  it("uses Flatcar's paths and quirks from os.ts", () => {
    const dropin =
      config.systemd?.units?.find((u) => u.name === "docker.service")?.dropins?.[0]?.contents ?? "";
    expect(dropin).not.toContain("Environment=OPTIONS=");
    expect(dropin).toContain(`ExecStart=${osProfile("flatcar").dockerdPath}\n`);
    const withCa = buildHostIgnition({
      ...flatcarMinimal,
      registry: {
        hostname: "registry.ci.internal",
        address: "10.0.0.5",
        caCertPem: fcosFull.registry?.caCertPem,
      },
    });
    expect(withCa.storage?.files?.map((f) => f.path)).toContain("/etc/ssl/certs/berth-registry-ca.pem");
  });

  it("matches the readable snapshot", async () => {
    await expect(serializeIgnition(config, 2) + "\n").toMatchFileSnapshot(
      "../fixtures/ignition/flatcar-minimal.ign",
    );
    await expect(readable(config)).toMatchFileSnapshot("../fixtures/ignition/flatcar-minimal.txt");
  });
});

describe("buildHostIgnition: the storage driver (hosts.storageDriver)", () => {
  const btrfs = buildHostIgnition(fcosFull);
  const cases = [
    ["fcos", fcosOverlay2, "/usr/local/bin", "docker"],
    ["flatcar", flatcarOverlay2, "/opt/bin", "dockerdata"],
  ] as const;
  const daemonOf = (c: IgnitionConfig) =>
    JSON.parse(text(c, "/etc/docker/daemon.json")) as Record<string, unknown>;
  const unitNames = (c: IgnitionConfig) => (c.systemd?.units ?? []).map((u) => u.name);

  it("defaults to btrfs: a host that names no driver renders exactly as one that names btrfs", () => {
    expect(fcosFull.storageDriver).toBeUndefined();
    expect(renderHostIgnition({ ...fcosFull, storageDriver: "btrfs" })).toBe(renderHostIgnition(fcosFull));
    expect(daemonOf(btrfs)["storage-driver"]).toBe("btrfs");
  });

  describe.each(cases)("%s on overlay2", (_os, input, bin, label) => {
    const config = buildHostIgnition(input);
    const paths = (config.storage?.files ?? []).map((f) => f.path);

    it("formats the Docker volume ext4, never wiping an existing file system, and mounts it as ext4", () => {
      expect(config.storage?.filesystems).toEqual([
        {
          device: cinderVirtioDevicePath(input.dockerVolumeId),
          format: "ext4",
          label,
          wipeFilesystem: false,
        },
      ]);
      const mount = config.systemd?.units?.find((u) => u.name === "var-lib-docker.mount");
      expect(mount?.enabled).toBe(true);
      expect(mount?.contents).toContain("Type=ext4\n");
      expect(mount?.contents).toContain(`What=/dev/disk/by-label/${label}\n`);
    });

    it("sets daemon.json's storage-driver to overlay2 and changes nothing else in it", () => {
      const daemon = daemonOf(config);
      expect(daemon["storage-driver"]).toBe("overlay2");
      const btrfsDaemon = daemonOf(buildHostIgnition({ ...input, storageDriver: "btrfs" }));
      expect({ ...daemon, "storage-driver": "btrfs" }).toEqual(btrfsDaemon);
    });

    it("renders no btrfs balance or scrub, and a free-space check that also watches inodes", () => {
      expect(paths).not.toContain(`${bin}/berth-btrfs-maintenance`);
      for (const script of DAY2_SCRIPTS_OVERLAY2) expect(paths).toContain(`${bin}/${script}`);
      const names = unitNames(config);
      for (const u of DAY2_UNITS_OVERLAY2) expect(names).toContain(u);
      expect(names.filter((n) => n.includes("btrfs"))).toEqual([]);
      expect(JSON.stringify(config)).not.toMatch(/btrfs/);
      const check = text(config, `${bin}/berth-disk-check`);
      expect(check).toContain('df -P -i "$mnt"');
      expect(check).toContain("LOW FREE INODES");
      expect(text(btrfs, "/usr/local/bin/berth-disk-check")).not.toContain("inodes");
    });

    it("says so in the docker.service drop-in", () => {
      const dropin =
        config.systemd?.units?.find((u) => u.name === "docker.service")?.dropins?.[0]?.contents ?? "";
      expect(dropin).toContain("Docker keeps its data on the ext4 volume");
      expect(dropin).toContain("RequiresMountsFor=/var/lib/docker\n");
    });
  });

  it("refuses a driver it does not know, naming the host", () => {
    const bad = { ...fcosFull, storageDriver: "zfs" } as unknown as HostIgnitionInput;
    expect(() => buildHostIgnition(bad)).toThrow(
      'buildHostIgnition: storageDriver: host "staging-ci-1": must be one of btrfs, overlay2, got "zfs"',
    );
  });
});

describe("extra fragments", () => {
  it("are merged after the host's own config", () => {
    const config = buildHostIgnition(fcosWithExtra);
    const paths = (config.storage?.files ?? []).map((f) => f.path);
    expect(paths.slice(-2)).toEqual(["/etc/sysctl.d/90-berth-ci.conf", "/usr/local/bin/berth-warmup"]);
    expect(config.systemd?.units?.map((u) => u.name)).toEqual([
      "var-lib-docker.mount",
      "docker.service",
      ...DAY2_UNITS,
      "berth-textfile-metrics.service",
      "berth-textfile-metrics.timer",
      "berth-warmup.service",
    ]);
  });

  it("cannot silently replace a host file or unit", () => {
    const clash = {
      source: "stack config extraIgnition[1]",
      config: {
        ignition: { version: "3.3.0" as const },
        storage: { files: [file("/etc/docker/daemon.json", "{}")] },
      },
    };
    expect(() => buildHostIgnition({ ...fcosFull, extraFragments: [clash] })).toThrow(
      /path "\/etc\/docker\/daemon\.json" is defined by both "berth host staging-ci-1" and "stack config extraIgnition\[1\]"/,
    );
    const unitClash = {
      source: "snippet",
      config: {
        ignition: { version: "3.3.0" as const },
        systemd: { units: [{ name: "docker.service", dropins: [{ name: "10-berth.conf", contents: "" }] }] },
      },
    };
    expect(() => buildHostIgnition({ ...fcosFull, extraFragments: [unitClash] })).toThrow(
      /10-berth\.conf.*snippet/,
    );
  });
});

describe("determinism", () => {
  it("renders the same bytes for the same input, however the input was built", () => {
    const reordered = JSON.parse(JSON.stringify(fcosWithExtra)) as typeof fcosWithExtra;
    const shuffled = Object.fromEntries(Object.entries(reordered).reverse()) as typeof fcosWithExtra;
    const first = renderHostIgnition(fcosWithExtra);
    expect(renderHostIgnition(fcosWithExtra)).toBe(first);
    expect(renderHostIgnition(shuffled)).toBe(first);
    expect(first).not.toContain("\n");
  });

  it("changes when a host-level setting changes", () => {
    expect(renderHostIgnition({ ...fcosFull, timezone: "UTC" })).not.toBe(renderHostIgnition(fcosFull));
  });
});

describe("validation", () => {
  it("derives the virtio by-id path from the first 20 characters of the volume id", () => {
    expect(cinderVirtioDevicePath("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")).toBe(
      "/dev/disk/by-id/virtio-0f1e2d3c-4b5a-6978-8",
    );
    // The id is Cinder's, not the user's: a bug check.
    expect(() => cinderVirtioDevicePath("not-a-uuid")).toThrow(InternalError);
    expect(() => cinderVirtioDevicePath("not-a-uuid")).toThrow(/volume id must be a UUID, got "not-a-uuid"/);
  });

  it("rejects bad input with the host name in the message", () => {
    expect(() => buildHostIgnition({ ...fcosFull, sshAuthorizedKeys: [] })).toThrow(RenderError);
    expect(() => buildHostIgnition({ ...fcosFull, sshAuthorizedKeys: [] })).toThrow(
      /sshAuthorizedKeys: host "staging-ci-1": at least one/,
    );
    expect(() => buildHostIgnition({ ...fcosFull, timezone: "../etc/passwd" })).toThrow(
      /timezone: host "staging-ci-1": must be an IANA name/,
    );
    expect(() => buildHostIgnition({ ...fcosFull, name: "bad_name" })).toThrow(
      'name: host "bad_name": must be a valid host name',
    );
    expect(() =>
      buildHostIgnition({ ...fcosFull, docker: { ...fcosFull.docker, bip: "172.17.0.1" } }),
    ).toThrow(/docker\.bip: host "staging-ci-1": must be an IPv4 address with prefix length/);
    expect(() => buildHostIgnition({ ...fcosFull, os: "ubuntu" as "fcos" })).toThrow(RenderError);
    expect(() => buildHostIgnition({ ...fcosFull, os: "ubuntu" as "fcos" })).toThrow(
      /^osProfile: os: unknown host OS "ubuntu"/,
    );
  });
});

describe("secrets and size", () => {
  it("reports secrets only when the TLS key (or a secret snippet) is included", () => {
    expect(hostIgnitionHasSecrets(fcosFull)).toBe(true);
    expect(hostIgnitionHasSecrets(flatcarMinimal)).toBe(false);
    expect(hostIgnitionHasSecrets({ ...flatcarMinimal, extraFragmentsHaveSecrets: true })).toBe(true);
    expect(renderHostIgnition(flatcarMinimal)).not.toContain("PRIVATE KEY");
  });

  it("keeps realistic configs well under the Nova limit", () => {
    // With metrics (dockerd's endpoint, the textfile writer and its units, about 2.6 KB) this
    // config is 35.4 KB of the 64 KB: the budget is 60%, leaving room for larger fragments.
    const size = userDataBase64Size(renderHostIgnition(fcosWithExtra));
    expect(size).toBeLessThan(NOVA_USER_DATA_LIMIT_BYTES * 0.6);
  });

  it("counts base64 size exactly", () => {
    expect(userDataBase64Size("")).toBe(0);
    expect(userDataBase64Size("abc")).toBe(4);
    expect(userDataBase64Size("abcd")).toBe(8);
    expect(userDataBase64Size("é")).toBe(4);
    const atLimit = "x".repeat((NOVA_USER_DATA_LIMIT_BYTES - 3) * 0.75); // 49149 bytes -> 65532
    expect(() => assertUserDataSize("h", atLimit)).not.toThrow();
    expect(() => assertUserDataSize("h", atLimit + "xxxx")).toThrow(RenderError);
    expect(() => assertUserDataSize("h", atLimit + "xxxx")).toThrow(/"h" is 65540 bytes/);
  });

  it("refuses a host whose snippets blow the limit, naming host and size", () => {
    // Incompressible bytes: gzip cannot save this one.
    const noise = Buffer.concat(
      Array.from({ length: 1900 }, (_, i) => createHash("sha256").update(`block ${i}`).digest()),
    );
    const huge = {
      source: "huge snippet",
      config: {
        ignition: { version: "3.3.0" as const },
        storage: { files: [file("/opt/noise.bin", noise)] },
      },
    };
    const host = { ...flatcarMinimal, extraFragments: [huge] };
    const json = serializeIgnition(buildHostIgnition(host));
    const expected = userDataBase64Size(json);
    expect(expected).toBeGreaterThan(NOVA_USER_DATA_LIMIT_BYTES);
    expect(() => renderHostIgnition(host)).toThrow(
      new RegExp(`host "pr-42-ci-1" is ${expected} bytes after base64 encoding`),
    );
  });

  it("leaves the extra fragment object untouched", () => {
    const before = JSON.stringify(extraFragment);
    renderHostIgnition(fcosWithExtra);
    expect(JSON.stringify(extraFragment)).toBe(before);
  });
});
