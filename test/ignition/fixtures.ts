/** Realistic host inputs shared by the Ignition tests, and a helper to apply a config with the real binary. */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  writeFileSync,
  existsSync,
  realpathSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

import type {
  FileContents,
  HostIgnitionInput,
  IgnitionConfig,
  IgnitionFragment,
} from "../../ignition/index.ts";
import { file, unit } from "../../ignition/index.ts";

// PEM-shaped material: Ignition and systemd only move these bytes around, they never parse them.
const pem = (kind: string, body: string): string =>
  `-----BEGIN ${kind}-----\n${body.match(/.{1,64}/g)?.join("\n") ?? ""}\n-----END ${kind}-----\n`;
const b64 = (seed: string, bytes: number): string =>
  Buffer.from(
    Array.from({ length: bytes }, (_, i) => (i * 31 + seed.charCodeAt(i % seed.length)) % 256),
  ).toString("base64");

export const REGISTRY_CA = pem("CERTIFICATE", b64("registry-ca", 700));
export const DOCKER_CA = pem("CERTIFICATE", b64("docker-ca", 700));
export const DOCKER_SERVER_CERT = pem("CERTIFICATE", b64("server-cert", 900));
export const DOCKER_SERVER_KEY = pem("PRIVATE KEY", b64("server-key", 1200));

export const KEYS = [
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHl0ZXN0a2V5b25lZm9yYmVydGh0ZXN0c29ubHkx ops@example",
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3RrZXl0d29mb3JiZXJ0aHRlc3Rzb25seTI ci@example",
];

/** Fedora CoreOS with everything: mutual TLS, registry with private CA and mirror port, service DNS. */
export const fcosFull: HostIgnitionInput = {
  name: "staging-ci-1",
  os: "fcos",
  sshAuthorizedKeys: KEYS,
  timezone: "Europe/Rome",
  dockerVolumeId: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
  docker: {
    logMaxSize: "10m",
    logMaxFile: 3,
    registryMirrors: ["https://registry.ci.internal:5001"],
    bip: "172.17.0.1/16",
  },
  registry: {
    hostname: "registry.ci.internal",
    address: "10.20.0.10",
    caCertPem: REGISTRY_CA,
    mirrorPort: 5001,
  },
  serviceDns: { address: "172.30.0.2", searchDomains: ["svc.ci.internal", "us-east-1.example.internal"] },
  dockerTls: {
    caCertPem: DOCKER_CA,
    serverCertPem: DOCKER_SERVER_CERT,
    serverKeyPem: DOCKER_SERVER_KEY,
    port: 2376,
  },
  metrics: {
    address: "10.20.0.10",
    registryTls: { address: "10.20.0.10", port: 443, serverName: "registry.ci.internal" },
  },
  pidsLimit: { defaultPids: 3124 },
};

/** Flatcar with only what is required. */
export const flatcarMinimal: HostIgnitionInput = {
  name: "pr-42-ci-1",
  os: "flatcar",
  sshAuthorizedKeys: [KEYS[0] as string],
  timezone: "UTC",
  dockerVolumeId: "a1b2c3d4-e5f6-4789-9abc-def012345678",
  dockerVolumeLabel: "dockerdata",
  docker: { logMaxSize: "50m", logMaxFile: 5, registryMirrors: [], bip: "10.99.0.1/24" },
  pidsLimit: { defaultPids: 1024 },
};

/** Fedora CoreOS with everything, on the overlay2 storage driver (an ext4 Docker volume). */
export const fcosOverlay2: HostIgnitionInput = {
  ...fcosFull,
  name: "staging-ci-3",
  storageDriver: "overlay2",
};

/** Flatcar with only what is required, on overlay2. */
export const flatcarOverlay2: HostIgnitionInput = {
  ...flatcarMinimal,
  name: "pr-43-ci-1",
  storageDriver: "overlay2",
};

/** A user snippet: a sysctl file, a large (gzip-compressed) script and a oneshot unit that runs it. */
export const extraFragment: IgnitionFragment = {
  source: "stack config extraIgnition[0]",
  config: {
    ignition: { version: "3.3.0" },
    storage: {
      files: [
        file(
          "/etc/sysctl.d/90-berth-ci.conf",
          "fs.inotify.max_user_watches = 524288\nvm.max_map_count = 262144\n",
        ),
        file(
          "/usr/local/bin/berth-warmup",
          `#!/bin/sh\n# warm-up script\n${Array.from({ length: 200 }, (_, i) => `echo "step ${i}"`).join("\n")}\n`,
          { mode: 0o755 },
        ),
      ],
    },
    systemd: {
      units: [
        unit(
          "berth-warmup.service",
          "[Unit]\nDescription=Berth warm-up\n\n[Service]\nType=oneshot\nExecStart=/usr/local/bin/berth-warmup\n\n[Install]\nWantedBy=multi-user.target\n",
          { enabled: true },
        ),
      ],
    },
  },
};

export const fcosWithExtra: HostIgnitionInput = {
  ...fcosFull,
  name: "staging-ci-2",
  extraFragments: [extraFragment],
};

/** The Day-2 scripts every btrfs host gets (in the OS's script directory). */
export const DAY2_SCRIPTS = [
  "berth-build-inhibit",
  "berth-docker-upkeep",
  "berth-btrfs-maintenance",
  "berth-disk-check",
  "berth-pids-limit",
];
/** The Day-2 units every btrfs host gets, and those enabled at boot. */
export const DAY2_UNITS = [
  "berth-build-inhibit.service",
  "berth-docker-upkeep.service",
  "berth-docker-upkeep.timer",
  "berth-btrfs-balance.service",
  "berth-btrfs-balance.timer",
  "berth-btrfs-scrub.service",
  "berth-btrfs-scrub.timer",
  "berth-disk-check.service",
  "berth-disk-check.timer",
  "berth-pids-limit.service",
];
export const DAY2_ENABLED_UNITS = [
  "berth-build-inhibit.service",
  "berth-docker-upkeep.timer",
  "berth-btrfs-balance.timer",
  "berth-btrfs-scrub.timer",
  "berth-disk-check.timer",
  "berth-pids-limit.service",
];

/** What an overlay2 host gets instead: the same, without the btrfs balance and scrub. */
const notBtrfs = (name: string) => !name.startsWith("berth-btrfs-");
export const DAY2_SCRIPTS_OVERLAY2 = DAY2_SCRIPTS.filter(notBtrfs);
export const DAY2_UNITS_OVERLAY2 = DAY2_UNITS.filter(notBtrfs);
export const DAY2_ENABLED_UNITS_OVERLAY2 = DAY2_ENABLED_UNITS.filter(notBtrfs);

export const IGNITION_BINARY = "/usr/lib/dracut/modules.d/30ignition/ignition";

/** A scratch root prepared like a booted image's /sysroot as far as Ignition's files stage cares. */
export function makeScratchRoot(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  // mkdtemp makes 0700 directories; like a real /, the root must be traversable by core (see below).
  chmodSync(root, 0o755);
  const etc = join(root, "etc");
  mkdirSync(join(etc, "selinux", "targeted", "contexts", "files"), { recursive: true });
  // Debian's Ignition relabels unconditionally after the files stage (`setfiles`), reading SELINUXTYPE
  // from this file; a policy whose only rule is <<none>> makes setfiles leave every label alone.
  writeFileSync(join(etc, "selinux", "config"), "SELINUX=disabled\nSELINUXTYPE=targeted\n");
  writeFileSync(join(etc, "selinux", "targeted", "contexts", "files", "file_contexts"), "/.*\t<<none>>\n");
  writeFileSync(
    join(etc, "passwd"),
    "root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:CoreOS Admin:/home/core:/bin/bash\n",
  );
  // The groups Fedora CoreOS has for core (adm, wheel, sudo, systemd-journal) and its docker group.
  writeFileSync(
    join(etc, "group"),
    "root:x:0:\nadm:x:4:core\nwheel:x:10:core\nsudo:x:16:core\nsystemd-journal:x:190:core\ndocker:x:982:\ncore:x:1000:\n",
  );
  writeFileSync(join(etc, "shadow"), "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n", {
    mode: 0o600,
  });
  writeFileSync(
    join(etc, "gshadow"),
    "root:*::\nadm:*::core\nwheel:*::core\nsudo:*::core\nsystemd-journal:*::core\ndocker:!::\ncore:!::\n",
    { mode: 0o600 },
  );
  // shadow-utils' lock file exists on real images; setfiles is asked to relabel it after usermod.
  writeFileSync(join(etc, ".pwd.lock"), "", { mode: 0o600 });
  // Ignition writes ~core/.ssh as core (uid 1000), so the home directory must belong to core.
  mkdirSync(join(root, "home"), { mode: 0o755 });
  mkdirSync(join(root, "home", "core"), { mode: 0o700 });
  chownSync(join(root, "home", "core"), 1000, 1000);
  return root;
}

/** Result of running one Ignition stage. */
export interface StageRun {
  status: number | null;
  output: string;
}

/**
 * Runs the real Ignition `fetch` then `files` stages against `root` with the `file` platform, which
 * reads the config from $IGNITION_CONFIG_FILE. The `disks` and `mount` stages are not run: they need
 * real block devices, so the btrfs volume is exercised by the dockerd test instead.
 */
export function applyWithIgnition(root: string, configPath: string, workDir: string): StageRun[] {
  const env = { ...process.env, IGNITION_CONFIG_FILE: configPath };
  const common = [
    "-platform",
    "file",
    "-root",
    root,
    "-log-to-stdout",
    "-config-cache",
    join(workDir, "ignition.json"),
    "-state-file",
    join(workDir, "state"),
  ];
  const runs: StageRun[] = [];
  for (const stage of ["fetch", "files"]) {
    const extra = stage === "fetch" ? ["-neednet", join(workDir, "neednet")] : [];
    const r = spawnSync(IGNITION_BINARY, ["-stage", stage, ...common, ...extra], { env, encoding: "utf8" });
    runs.push({ status: r.status, output: `${r.stdout}${r.stderr}` });
    if (r.status !== 0) break;
  }
  return runs;
}

/** Decodes a `data:` URL the way Ignition does (percent-decoding to bytes, base64, then gzip). */
export function decodeContents(contents: FileContents | undefined): Buffer {
  const source = contents?.source ?? "";
  if (!source.startsWith("data:")) throw new Error(`not a data URL: ${source.slice(0, 40)}`);
  const comma = source.indexOf(",");
  const data = source.slice(comma + 1);
  let raw: Buffer;
  if (source.slice(0, comma).endsWith(";base64")) {
    raw = Buffer.from(data, "base64");
  } else {
    const bytes: number[] = [];
    for (let i = 0; i < data.length; i++) {
      if (data[i] === "%") {
        bytes.push(Number.parseInt(data.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.push(data.charCodeAt(i));
      }
    }
    raw = Buffer.from(bytes);
  }
  return contents?.compression === "gzip" ? gunzipSync(raw) : raw;
}

/** The decoded text of the file at `path` in `config`; throws when there is none. */
export function fileText(config: IgnitionConfig, path: string): string {
  const f = config.storage?.files?.find((x) => x.path === path);
  if (!f) throw new Error(`no file ${path} in config`);
  return decodeContents(f.contents).toString("utf8");
}

/** Stand-in for the image's stock docker.service, so the drop-in has something to apply to. */
export const STOCK_DOCKER_SERVICE = `[Unit]
Description=Stand-in for the image's docker.service
After=network-online.target docker.socket containerd.service
Wants=network-online.target
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/sysconfig/docker
ExecStart=/usr/bin/dockerd --host=fd:// --log-driver=journald --live-restore $OPTIONS

[Install]
WantedBy=multi-user.target
`;

const prepared = new Set<string>();
/** Gives a scratch root what `systemd-analyze verify --root` needs: stock units, a docker.service stand-in, dockerd. */
export function prepareVerifyRoot(root: string, dockerd: string): void {
  if (prepared.has(root)) return;
  prepared.add(root);
  const unitDir = join(root, "usr/lib/systemd/system");
  mkdirSync(unitDir, { recursive: true });
  cpSync("/usr/lib/systemd/system", unitDir, { recursive: true, verbatimSymlinks: true });
  writeFileSync(join(unitDir, "docker.service"), STOCK_DOCKER_SERVICE);
  // verify checks that ExecStart's binary exists inside --root: put the real dockerd where the
  // images have it (hard link when on the same file system, else a copy).
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  try {
    linkSync(dockerd, join(root, "usr/bin/dockerd"));
  } catch {
    copyFileSync(dockerd, join(root, "usr/bin/dockerd"));
  }
  // The drop-in's ExecStartPost runs /bin/sh, which both images have: a copy of this machine's.
  mkdirSync(join(root, "bin"), { recursive: true });
  if (!existsSync(join(root, "bin/sh"))) copyFileSync(realpathSync("/bin/sh"), join(root, "bin/sh"));
}

export function verifyUnits(
  root: string,
  units: string[],
  systemdAnalyze = "systemd-analyze",
): { status: number | null; output: string } {
  const r = spawnSync(systemdAnalyze, ["verify", `--root=${root}`, ...units], {
    encoding: "utf8",
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** A reviewer-friendly view of a config: every file decoded, every unit and drop-in spelled out. */
export function readable(config: IgnitionConfig): string {
  const out: string[] = [];
  for (const u of config.passwd?.users ?? []) out.push(`user ${u.name}: ${JSON.stringify(u)}`);
  for (const fs of config.storage?.filesystems ?? []) out.push(`filesystem: ${JSON.stringify(fs)}`);
  for (const l of config.storage?.links ?? []) out.push(`link ${l.path} -> ${l.target}`);
  for (const f of config.storage?.files ?? []) {
    const mode = (f.mode ?? 0).toString(8).padStart(4, "0");
    const how = f.contents?.compression === "gzip" ? "gzip+base64" : "plain";
    out.push(
      `\n=== file ${f.path} (mode ${mode}, overwrite ${String(f.overwrite)}, ${how})\n${decodeContents(f.contents).toString("utf8")}`,
    );
  }
  for (const u of config.systemd?.units ?? []) {
    out.push(`\n=== unit ${u.name} (enabled ${String(u.enabled)}, mask ${String(u.mask)})`);
    if (u.contents !== undefined) out.push(u.contents);
    for (const d of u.dropins ?? []) out.push(`--- drop-in ${u.name}.d/${d.name}\n${d.contents ?? ""}`);
  }
  return `${out.join("\n")}\n`;
}
