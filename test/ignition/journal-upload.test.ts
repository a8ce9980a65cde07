/**
 * Journal forwarding (`berth:logs.forward`) with the real Debian programs: the host's Ignition is
 * applied by the real Ignition into a scratch root, and the real `systemd-journal-upload` runs with
 * that rendered configuration (its journal-upload.conf.d drop-in, the key handed over the way the
 * rendered `LoadCredential=` names it) against the real `systemd-journal-remote` on 127.0.0.1, in
 * private network, mount and PID namespaces (nothing leaves loopback; the namespace's processes die
 * with it). The rendered URL is used as is (its name resolves to 127.0.0.1 in the namespace):
 * systemd 252's journal-upload refuses `--url`, `--key` and `--cert` when its configuration sets
 * them. Only the journal to read (`--directory`), the state file and `--follow=no` are flags.
 *
 * Debian builds systemd-journal-remote without GnuTLS (`systemd-journal-remote --version` shows
 * -GNUTLS), so its `--trust=` option, which checks client certificates, is unavailable there. The
 * client-certificate check is therefore proven with a receiver that terminates TLS in the real
 * nginx (`ssl_verify_client on`, trusting the stack's logs CA) in front of journal-remote.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildHostIgnition, serializeIgnition, type HostIgnitionInput } from "../../ignition/index.ts";
import {
  JOURNAL_UPLOAD_CERT_PATH,
  JOURNAL_UPLOAD_CONF_PATH,
  JOURNAL_UPLOAD_KEY_PATH,
  JOURNAL_UPLOAD_UNIT,
} from "../../renderers/journal-upload.ts";
import { checkTools, toolsDescribe } from "../support/tools.ts";
import {
  IGNITION_BINARY,
  applyWithIgnition,
  fcosFull,
  makeScratchRoot,
  prepareVerifyRoot,
  verifyUnits,
} from "./fixtures.ts";

const REMOTE = "/lib/systemd/systemd-journal-remote";
const UPLOAD = "/lib/systemd/systemd-journal-upload";
const tools = checkTools("journal forwarding (real systemd-journal-upload/remote)", [
  { tool: REMOTE, debianPackage: "systemd-journal-remote" },
  { tool: UPLOAD, debianPackage: "systemd-journal-remote" },
  { tool: "journalctl", debianPackage: "systemd" },
  { tool: "systemd-analyze", debianPackage: "systemd" },
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "nginx", debianPackage: "nginx-light" },
  { tool: "unshare", debianPackage: "util-linux" },
  { tool: "ip", debianPackage: "iproute2" },
  { tool: IGNITION_BINARY, debianPackage: "ignition" },
  { tool: "setfiles", debianPackage: "policycoreutils" },
  { tool: "dockerd", debianPackage: "docker.io" },
]);

const HOST = "staging-ci-1";
const RENDERED_URL = "https://logs.ci.example.com:19532";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function run(cmd: string, args: string[], options: { input?: string; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000, ...options });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

/**
 * Certificates as the stack makes them (components/pki.ts: ECDSA P-256, the host's client
 * certificate with CN = host name, O = Berth, client_auth; keys in the tls provider's SEC1 form),
 * plus the receiver's CA and server certificate, and a second CA nobody trusts.
 */
function makeCerts(dir: string): void {
  const ca = (name: string) =>
    run("openssl", [
      "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.crt`), "-days", "2",
      "-subj", `/O=Berth/CN=${name}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]); // prettier-ignore
  const leaf = (name: string, signer: string, cn: string, usage: string, san?: string) => {
    run("openssl", [
      "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", join(dir, `${name}.pkcs8`), "-out", join(dir, `${name}.csr`), "-subj", `/O=Berth/CN=${cn}`,
    ]); // prettier-ignore
    run("openssl", ["ec", "-in", join(dir, `${name}.pkcs8`), "-out", join(dir, `${name}.key`)]);
    const ext = [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${usage}`,
      ...(san ? [`subjectAltName=${san}`] : []),
    ];
    writeFileSync(join(dir, `${name}.ext`), `${ext.join("\n")}\n`);
    run("openssl", [
      "x509", "-req", "-in", join(dir, `${name}.csr`), "-CA", join(dir, `${signer}.crt`),
      "-CAkey", join(dir, `${signer}.key`), "-CAcreateserial", "-out", join(dir, `${name}.crt`),
      "-days", "2", "-extfile", join(dir, `${name}.ext`),
    ]); // prettier-ignore
  };
  ca("receiver-ca");
  ca("logs-ca");
  ca("rogue-ca");
  leaf(
    "receiver",
    "receiver-ca",
    "logs.ci.example.com",
    "serverAuth",
    "DNS:logs.ci.example.com,IP:127.0.0.1",
  );
  leaf("host", "logs-ca", HOST, "clientAuth");
  leaf("rogue", "rogue-ca", HOST, "clientAuth");
}

/** A journal file holding one line logged on the host, made by systemd-journal-remote from an export stream. */
function hostJournal(dir: string, message: string): void {
  mkdirSync(dir, { recursive: true });
  const now = BigInt(Date.now()) * 1000n;
  const entry = [
    `__REALTIME_TIMESTAMP=${now}`,
    "__MONOTONIC_TIMESTAMP=1000000",
    "_BOOT_ID=0123456789abcdef0123456789abcdef",
    `_HOSTNAME=${HOST}`,
    "SYSLOG_IDENTIFIER=berth-forward-test",
    "PRIORITY=6",
    `MESSAGE=${message}`,
    "",
    "",
  ].join("\n");
  run(REMOTE, [`--output=${join(dir, "host.journal")}`, "-"], { input: entry });
}

/** The receiver's messages, as `journalctl --directory` reads them. */
function received(dir: string): string {
  return spawnSync("journalctl", [`--directory=${dir}`, "-o", "cat", "--no-pager"], { encoding: "utf8" })
    .stdout;
}

/**
 * Runs in fresh network/mount/PID namespaces: loopback only; the scratch root's /etc laid over /etc
 * (so journal-upload reads the rendered journal-upload.conf.d and certificate files at their real
 * paths); the key put where the rendered LoadCredential= makes systemd put it; then the receivers
 * and the uploads. Every process started here dies with the namespace.
 */
const SCENARIO = String.raw`
set -u
W="$1"; ROOT="$2"; CRED_SRC="$3"; CRED_DST="$4"; CERT="$5"
mount --make-rprivate /
ip link set lo up
# The receiver's name resolves to loopback here (as the hosts' DNS resolves it to the receiver).
mount -t overlay overlay -o "lowerdir=$W/resolve:$ROOT/etc:/etc" /etc
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p "$(dirname "$CRED_DST")"
cp "$CRED_SRC" "$CRED_DST"
chmod 0400 "$CRED_DST"
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened"; return 1; }

# 1. journal-remote itself terminates TLS.
${REMOTE} --listen-https=127.0.0.1:19532 --key="$W/receiver.key" --cert="$W/receiver.crt" \
  --output="$W/direct/" --split-mode=host 2>"$W/direct.log" &
R1=$!
wait_port 19532
${UPLOAD} --directory="$W/src-host" --save-state="$W/state-direct" --follow=no 2>"$W/upload-direct.log"
echo "upload-direct=$?"
kill "$R1"; wait "$R1" 2>/dev/null

# 2. nginx checks client certificates against the stack's logs CA, journal-remote behind it.
${REMOTE} --listen-http=127.0.0.1:19534 --output="$W/verified/all.journal" --split-mode=none 2>"$W/verified.log" &
R2=$!
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" &
N=$!
wait_port 19534; wait_port 19532
${UPLOAD} --directory="$W/src-host" --save-state="$W/state-verified" --follow=no 2>"$W/upload-verified.log"
echo "upload-verified=$?"
# A host whose certificate and key come from another CA: the same configuration, other files.
unshare --mount bash -c '
  mount --bind "$1/rogue.crt" "$2" && mount --bind "$1/rogue.key" "$3" &&
  exec "$4" --directory="$1/src-rogue" --save-state="$1/state-rogue" --follow=no' \
  rogue "$W" "$CERT" "$CRED_DST" ${UPLOAD} 2>"$W/upload-rogue.log"
echo "upload-rogue=$?"
kill "$N" "$R2"; wait "$N" "$R2" 2>/dev/null
exit 0
`;

function nginxConf(w: string): string {
  const n = join(w, "nginx");
  return `daemon off;
master_process off;
error_log ${n}/error.log;
pid ${n}/nginx.pid;
events {}
http {
  access_log off;
  client_body_temp_path ${n}/body;
  proxy_temp_path ${n}/proxy;
  fastcgi_temp_path ${n}/fastcgi;
  uwsgi_temp_path ${n}/uwsgi;
  scgi_temp_path ${n}/scgi;
  server {
    listen 127.0.0.1:19532 ssl;
    ssl_certificate ${w}/receiver.crt;
    ssl_certificate_key ${w}/receiver.key;
    ssl_client_certificate ${w}/logs-ca.crt;
    ssl_verify_client on;
    client_max_body_size 0;
    location / {
      proxy_pass http://127.0.0.1:19534;
      proxy_http_version 1.1;
    }
  }
}
`;
}

toolsDescribe(tools)("logs.forward with the real systemd-journal-upload and systemd-journal-remote", () => {
  let w = "";
  let root = "";
  let input: HostIgnitionInput;
  let output = "";

  beforeAll(() => {
    w = mkdtempSync(join(tmpdir(), "berth-journal-"));
    dirs.push(w);
    makeCerts(w);
    input = {
      ...fcosFull,
      logForward: {
        url: RENDERED_URL,
        serverCaPem: readFileSync(join(w, "receiver-ca.crt"), "utf8"),
        clientCertPem: readFileSync(join(w, "host.crt"), "utf8"),
        clientKeyPem: readFileSync(join(w, "host.key"), "utf8"),
      },
    };
    const ign = join(w, "host.ign");
    writeFileSync(ign, serializeIgnition(buildHostIgnition(input)), { mode: 0o600 });
    root = makeScratchRoot("berth-journal-root-");
    dirs.push(root);
    const work = join(w, "ignition");
    mkdirSync(work);
    const runs = applyWithIgnition(root, ign, work);
    expect(
      runs.map((r) => r.status),
      runs.at(-1)?.output,
    ).toEqual([0, 0]);

    hostJournal(join(w, "src-host"), `berth-marker ${HOST} forwarded`);
    hostJournal(join(w, "src-rogue"), `berth-marker rogue upload`);
    mkdirSync(join(w, "direct"));
    mkdirSync(join(w, "verified"));
    mkdirSync(join(w, "nginx"));
    mkdirSync(join(w, "resolve"));
    writeFileSync(join(w, "resolve", "hosts"), "127.0.0.1 localhost logs.ci.example.com\n");
    writeFileSync(join(w, "nginx", "nginx.conf"), nginxConf(w));

    const credential = /^LoadCredential=([^:\n]+):(\S+)$/m.exec(
      readFileSync(join(root, `etc/systemd/system/${JOURNAL_UPLOAD_UNIT}.d/50-berth.conf`), "utf8"),
    );
    expect(credential, "the rendered drop-in hands the key over with LoadCredential=").not.toBeNull();
    const [, id, source] = credential as RegExpExecArray;
    const r = spawnSync(
      "unshare",
      [
        "--net",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "bash",
        "-c",
        SCENARIO,
        "scenario",
        w,
        root,
        source as string,
        `/run/credentials/${JOURNAL_UPLOAD_UNIT}/${id as string}`,
        JOURNAL_UPLOAD_CERT_PATH,
      ],
      { encoding: "utf8", timeout: 90_000, killSignal: "SIGKILL" },
    );
    const logs = [
      "direct.log",
      "upload-direct.log",
      "verified.log",
      "upload-verified.log",
      "upload-rogue.log",
    ]
      .map((f) => {
        try {
          return `--- ${f}\n${readFileSync(join(w, f), "utf8")}`;
        } catch {
          return `--- ${f} (none)`;
        }
      })
      .join("\n");
    output = `${r.stdout}${r.stderr}\n${logs}`;
    expect(r.status, output).toBe(0);
  }, 120_000);

  it("Ignition writes the client key root-only (0600) and the upload config at journal-upload.conf.d", () => {
    const key = statSync(join(root, JOURNAL_UPLOAD_KEY_PATH));
    expect(key.mode & 0o777).toBe(0o600);
    expect([key.uid, key.gid]).toEqual([0, 0]);
    const conf = readFileSync(join(root, JOURNAL_UPLOAD_CONF_PATH), "utf8");
    expect(conf).toContain(`URL=${RENDERED_URL}\n`);
    const preset = readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8");
    expect(preset).toContain(`enable ${JOURNAL_UPLOAD_UNIT}\n`);
  });

  it("a line logged on the host arrives at systemd-journal-remote over TLS", () => {
    expect(output).toContain("upload-direct=0");
    expect(received(join(w, "direct"))).toContain(`berth-marker ${HOST} forwarded`);
  });

  it("a receiver that checks client certificates takes the host's and refuses one from another CA", () => {
    expect(output).toContain("upload-verified=0");
    expect(output).toMatch(/upload-rogue=[1-9]/);
    expect(output).toContain("400 The SSL certificate error");
    const got = received(join(w, "verified"));
    expect(got).toContain(`berth-marker ${HOST} forwarded`);
    expect(got).not.toContain("berth-marker rogue upload");
  });

  it("systemd-analyze verify accepts the unit with Berth's drop-in", () => {
    prepareVerifyRoot(root, tools.paths.dockerd ?? "/usr/sbin/dockerd");
    // verify checks that ExecStart's binary exists inside --root: the stock unit names /lib/systemd.
    mkdirSync(join(root, "lib/systemd"), { recursive: true });
    copyFileSync(UPLOAD, join(root, "lib/systemd/systemd-journal-upload"));
    const v = verifyUnits(root, [JOURNAL_UPLOAD_UNIT], tools.paths["systemd-analyze"]);
    expect(v.output).toBe("");
    expect(v.status).toBe(0);
  });
});

describe("logs.forward Ignition (no tools)", () => {
  it("makes the host's config secret", async () => {
    const { hostIgnitionHasSecrets } = await import("../../ignition/index.ts");
    expect(hostIgnitionHasSecrets({ ...fcosFull, dockerTls: undefined })).toBe(false);
    expect(
      hostIgnitionHasSecrets({
        ...fcosFull,
        dockerTls: undefined,
        logForward: { url: RENDERED_URL, serverCaPem: "x", clientCertPem: "x", clientKeyPem: "x" },
      }),
    ).toBe(true);
  });
});
