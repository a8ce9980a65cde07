/**
 * Fresh production data (issue #17, item 1) on a real Docker engine, for the SHIPPED `staging`
 * stack: its `redis-cache-1` and `postgres-main-1` name sample sources under
 * https://backups.ci.example.com/. The REAL program runs under Pulumi's mocks; of what it registers
 * for `staging-ci-1`, the harness applies the services network, dnsmasq and those two services
 * (real redis and real PostgreSQL, stand-ins built from Debian's redis-server and postgresql-15),
 * exactly as planned. The host's rendered Ignition gives the restore script and its settings; the
 * script runs as the host's timer would run it (as root, `docker` reaching the test engine through
 * DOCKER_HOST), against a loopback nginx on 127.0.0.1 that serves the dumps over TLS.
 *
 * Substituted, visibly (printed `e2e:` lines): backups.ci.example.com:443 is reached at the
 * loopback nginx through curl's own configuration file ($CURL_HOME/.curlrc `connect-to`, and
 * `cacert` for the test CA), which curl reads besides the script's settings; the script's
 * directories (/etc/berth/restore, /var/lib/berth/restore, /var/lib/berth/textfile) are scratch
 * directories given through the script's environment.
 *
 * Proven: a dump is fetched over verified TLS, its checksum checked, restored into redis (a
 * restart on swapped data) and into postgres (live, a fresh database swapped in), masked before use,
 * read back BY THE PRODUCTION NAME from a container on ci-services resolved by the stack's dnsmasq;
 * status and metrics record it; a corrupt dump, a bad checksum and a failed download each leave the
 * previous data in place and say why. Not proven here: MongoDB (no Debian package), Swift.
 */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  existsSync,
} from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { SERVICE_CATALOG } from "../../config/images.ts";
import { loadStack } from "../../config/load.ts";
import type { BerthConfig } from "../../config/types.ts";
import { renderHostIgnition } from "../../ignition/host.ts";
import type { IgnitionConfig } from "../../ignition/model.ts";
import { osProfile } from "../../ignition/os.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";
import { RESTORE_CONF_DIR, RESTORE_SCRIPT } from "../../renderers/restore.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { fileText } from "../ignition/fixtures.ts";
import { AppliedHost, freePort, planHost } from "../../testkit/e2e/harness.ts";
import { issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  DockerApi,
  REPO_ROOT,
  buildStandins,
  run,
  runOk,
  startEngine,
  stopEngine,
  type Engine,
} from "../../testkit/e2e/support/engine.ts";
import { at } from "../../lib/json.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";

const HOST = "staging-ci-1";
const REDIS = "redis-cache-1";
const POSTGRES = "postgres-main-1";
const BACKUPS = "backups.ci.example.com";

const tools = requireE2eTools("end-to-end restore", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "nginx", debianPackage: "nginx-light" },
  { tool: "curl", debianPackage: "curl" },
]);

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe.skipIf(tools.skip)(`fresh production data for the shipped staging stack on a real engine`, () => {
  let engine: Engine | undefined;
  let nginx: ChildProcess | undefined;
  let scratch = "";
  let config: BerthConfig;
  let stack: StackRun;
  let applied: AppliedHost;
  const dirs = { conf: "", state: "", textfile: "", www: "", curlHome: "" };
  let script = "";
  const d = (...args: string[]) => run("docker", ["-H", engine?.host ?? "", ...args], { timeoutMs: 300_000 });
  const dOk = (...args: string[]) =>
    runOk("docker", ["-H", engine?.host ?? "", ...args], { timeoutMs: 300_000 });
  const redisImage = () => standinFor(SERVICE_CATALOG.redis.image);
  const pgImage = () => standinFor(SERVICE_CATALOG.postgres.image);
  /** A throwaway container on ci-services with the stack's dnsmasq and search domains, as a job's. */
  const job = (image: string, env: string[], ...cmd: string[]) =>
    d(
      "run",
      "--rm",
      "--network",
      "ci-services",
      "--dns",
      config.services.dnsAddress,
      ...config.dns.searchDomains.flatMap((s) => ["--dns-search", s]),
      ...env.flatMap((e) => ["-e", e]),
      "--entrypoint",
      cmd[0] ?? "sh",
      image,
      ...cmd.slice(1),
    );
  const pgPassword = async () => {
    const env = at(await applied.api.inspect(POSTGRES), "Config", "Env") as string[];
    return (env.find((e) => e.startsWith("POSTGRES_PASSWORD=")) ?? "").slice("POSTGRES_PASSWORD=".length);
  };
  /** `psql` BY THE PRODUCTION NAME, over the network, with the program's generated password. */
  const psqlByName = async (db: string, sql: string) =>
    job(
      pgImage(),
      [`PGPASSWORD=${await pgPassword()}`],
      "psql",
      "-h",
      POSTGRES,
      "-U",
      "postgres",
      "-d",
      db,
      "-tAc",
      sql,
    );
  const redisByName = (...args: string[]) => job(redisImage(), [], "redis-cli", "-h", REDIS, ...args);
  /** Runs the rendered script as the host's timer would (root, the host's docker through DOCKER_HOST). */
  const restore = (service: string) => {
    const t = Date.now();
    const r = run("bash", [script, service], {
      timeoutMs: 600_000,
      env: {
        DOCKER_HOST: engine?.host ?? "",
        BERTH_RESTORE_CONF_DIR: dirs.conf,
        BERTH_RESTORE_STATE_DIR: dirs.state,
        BERTH_TEXTFILE_DIR: dirs.textfile,
        CURL_HOME: dirs.curlHome,
      },
    });
    console.log(
      `e2e: berth-restore ${service}: exit ${String(r.status)} in ${String(Date.now() - t)} ms\n${r.stderr}`,
    );
    return r;
  };
  const status = (service: string) =>
    JSON.parse(readFileSync(join(dirs.state, `${service}.json`), "utf8")) as Record<string, unknown>;
  const publish = (rel: string, from: string) => {
    const to = join(dirs.www, rel);
    mkdirSync(join(to, ".."), { recursive: true });
    writeFileSync(to, readFileSync(from));
    writeFileSync(`${to}.sha256`, `${sha256(to)}  ${rel.split("/").at(-1) ?? ""}\n`);
  };
  const redisRel = `production/${REDIS}/latest.rdb`;
  const pgRel = `production/${POSTGRES}/latest.dump`;

  /** An RDB made by real redis (a scratch container, no network) from `commands`. */
  const makeRdb = (name: string, commands: string[][]) => {
    const c = `e2e-make-rdb-${name}`;
    dOk(
      "run",
      "-d",
      "--name",
      c,
      "--network",
      "none",
      "--entrypoint",
      "redis-server",
      redisImage(),
      "--save",
      "",
    );
    for (let i = 0; i < 50 && d("exec", c, "redis-cli", "ping").stdout.trim() !== "PONG"; i++)
      run("sleep", ["0.2"]);
    for (const cmd of commands) dOk("exec", c, "redis-cli", ...cmd);
    expect(dOk("exec", c, "redis-cli", "save").trim()).toBe("OK");
    const out = join(scratch, `${name}.rdb`);
    dOk("cp", `${c}:/data/dump.rdb`, out);
    dOk("rm", "-f", "-v", c);
    return out;
  };
  /**
   * Waits for the final server: the entrypoint's initialisation runs a server on the socket only
   * (pg_isready already answers then), so TCP on 127.0.0.1 inside the container is the sign.
   */
  const waitPg = async (c: string) => {
    for (let i = 0; i < 480; i++) {
      if (d("exec", c, "pg_isready", "-h", "127.0.0.1", "-U", "postgres").status === 0) return;
      await sleep(250);
    }
    throw new Error(`${c}: postgres did not come up`);
  };
  /** A pg_dump custom-format archive made by real PostgreSQL from `sql`. */
  const makePgDump = async (name: string, sql: string) => {
    const c = `e2e-make-pg-${name}`;
    dOk("run", "-d", "--name", c, "--network", "none", "-e", "POSTGRES_PASSWORD=unused", pgImage());
    await waitPg(c);
    dOk("exec", c, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE prod");
    dOk("exec", c, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-d", "prod", "-c", sql);
    const out = join(scratch, `${name}.dump`);
    const r = run("sh", [
      "-c",
      `docker -H '${engine?.host ?? ""}' exec ${c} pg_dump -U postgres -Fc -d prod > '${out}'`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    dOk("rm", "-f", "-v", c);
    return out;
  };

  beforeAll(async () => {
    const t0 = Date.now();
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-restore-"));
    for (const k of Object.keys(dirs) as (keyof typeof dirs)[]) {
      dirs[k] = join(scratch, k);
      mkdirSync(dirs[k], { mode: 0o755 });
    }

    // --- the shipped staging stack, its program and its host's Ignition ------------------------
    config = loadStack(REPO_ROOT, "staging");
    const withRestore = config.services.productionLike.filter((s) => s.restore).map((s) => s.name);
    expect(withRestore).toEqual(expect.arrayContaining([REDIS, POSTGRES]));
    stack = await runConfig(config);
    const ign = JSON.parse(
      renderHostIgnition({
        ...hostIgnitionBase(config, HOST),
        dockerVolumeId: "0e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7",
      }),
    ) as IgnitionConfig;
    script = join(scratch, RESTORE_SCRIPT);
    writeFileSync(script, fileText(ign, `${osProfile(config.hosts.os).scriptDir}/${RESTORE_SCRIPT}`), {
      mode: 0o755,
    });
    for (const f of ign.storage?.files ?? []) {
      if (!f.path.startsWith(`${RESTORE_CONF_DIR}/`)) continue;
      expect(f.mode, f.path).toBe(0o600);
      const to = join(dirs.conf, f.path.slice(RESTORE_CONF_DIR.length + 1));
      writeFileSync(to, fileText(ign, f.path), { mode: 0o600 });
    }
    expect(existsSync(join(dirs.conf, `${REDIS}.conf`))).toBe(true);
    expect(readFileSync(join(dirs.conf, `${REDIS}.conf`), "utf8")).toContain(
      `https://${BACKUPS}/${redisRel}`,
    );

    // --- the loopback TLS server for backups.ci.example.com ------------------------------------
    const tlsDir = join(scratch, "tls");
    mkdirSync(tlsDir, { mode: 0o700 });
    const tls = issueRegistryTls({
      workDir: tlsDir,
      caCertPath: join(tlsDir, "ca.crt"),
      caName: "berth e2e backups CA",
      hostname: BACKUPS,
      privateIp: "127.0.0.1",
    });
    const port = await freePort();
    const nginxDir = join(scratch, "nginx");
    mkdirSync(nginxDir);
    writeFileSync(
      join(nginxDir, "nginx.conf"),
      [
        "daemon off;",
        "worker_processes 1;",
        `pid ${nginxDir}/nginx.pid;`,
        `error_log ${nginxDir}/error.log;`,
        "events { worker_connections 64; }",
        "http {",
        `  access_log ${nginxDir}/access.log;`,
        `  client_body_temp_path ${nginxDir}/body; proxy_temp_path ${nginxDir}/proxy; fastcgi_temp_path ${nginxDir}/fcgi;`,
        `  uwsgi_temp_path ${nginxDir}/uwsgi; scgi_temp_path ${nginxDir}/scgi;`,
        "  server {",
        `    listen 127.0.0.1:${String(port)} ssl;`,
        `    server_name ${BACKUPS};`,
        `    ssl_certificate ${tls.serverCertPath};`,
        `    ssl_certificate_key ${tls.serverKeyPath};`,
        `    root ${dirs.www};`,
        "  }",
        "}",
        "",
      ].join("\n"),
    );
    chmodSync(scratch, 0o755);
    nginx = spawn("nginx", ["-p", nginxDir, "-c", join(nginxDir, "nginx.conf")], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      if (
        run("curl", [
          "-s",
          "-o",
          "/dev/null",
          "--cacert",
          join(tlsDir, "ca.crt"),
          "--connect-to",
          `${BACKUPS}:443:127.0.0.1:${String(port)}`,
          `https://${BACKUPS}/`,
        ]).status === 0
      )
        break;
      await sleep(100);
    }
    writeFileSync(
      join(dirs.curlHome, ".curlrc"),
      `connect-to = "${BACKUPS}:443:127.0.0.1:${String(port)}"\ncacert = "${join(tlsDir, "ca.crt")}"\n`,
    );
    console.log(
      `e2e: ${BACKUPS}:443 → nginx on 127.0.0.1:${String(port)} (curl's $CURL_HOME/.curlrc connect-to, cacert: the test CA); ` +
        `script directories: ${JSON.stringify(dirs)}`,
    );

    // --- engine, stand-ins, the part of the host the restore works on --------------------------
    engine = startEngine();
    buildStandins(engine);
    const plan = planHost(stack, HOST, {
      publishedIps: ["127.0.0.1", "172.17.0.1", config.hosts.addresses[0] as string],
      hostPathMap: { "/": join(scratch, "host-root") },
      healthInterval: "1s",
    });
    const keep = new Set(["dnsmasq", REDIS, POSTGRES]);
    const containers = plan.containers.filter((c) => keep.has(c.name));
    expect(containers.map((c) => c.name).sort()).toEqual([...keep].sort());
    const volumes = plan.volumes.filter((v) => v.name === `${REDIS}-data` || v.name === `${POSTGRES}-data`);
    const networks = plan.networks.filter((n) => n.name === "ci-services");
    const subset = { ...plan, containers, volumes, networks, ports: [], mappings: [...plan.mappings] };
    subset.mappings.push(
      `only ${[...keep].join(", ")} applied (with ci-services and their volumes): what the restore works on`,
    );
    const api = new DockerApi(engine.socket);
    for (const n of networks) await api.call("POST", "/networks/create", n.body);
    for (const v of volumes) await api.call("POST", "/volumes/create", v.body);
    applied = new AppliedHost(subset, api);
    for (const c of containers) await applied.create({ ...c, after: [] });
    await applied.waitAllHealthy(180_000);
    console.log(
      `e2e: ${HOST} (part) applied and healthy; setup ${String(Date.now() - t0)} ms; mappings:\n  ${subset.mappings.join("\n  ")}`,
    );
  }, 45 * 60_000);

  afterAll(() => {
    try {
      if (nginx?.pid !== undefined) nginx.kill("SIGTERM");
      if (engine) {
        const stopped = stopEngine(engine.workdir);
        if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
      }
    } finally {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
  }, 5 * 60_000);

  it("redis: the dump is fetched over TLS, verified, masked and swapped in; read back by the production name", () => {
    // The data the service has now (the "previous data").
    expect(redisByName("set", "marker", "before-restore").stdout.trim()).toBe("OK");
    const rdb = makeRdb("prod-1", [
      ["set", "marker", "production-1"],
      ["set", "user:1:email", "alice@customer.example.com"],
      ["set", "user:2:email", "bob@customer.example.com"],
      ["set", "session:abc", "secret-session"],
    ]);
    publish(redisRel, rdb);
    const r = restore(REDIS);
    expect(r.status, r.stderr).toBe(0);
    expect(redisByName("get", "marker").stdout.trim()).toBe("production-1");
    const email = redisByName("get", "user:1:email").stdout.trim();
    expect(email).toMatch(/^user-[0-9a-f]{12}@example\.invalid$/);
    expect(redisByName("--scan", "--pattern", "session:*").stdout.trim()).toBe("");
    // The short name and the name under the preferred search domain are the same service.
    expect(
      redisByName("-h", `${REDIS}.${config.dns.searchDomains[0] ?? ""}`, "get", "marker").stdout.trim(),
    ).toBe("production-1");
    const s = status(REDIS);
    expect(s).toMatchObject({
      service: REDIS,
      result: "ok",
      bytes: statSync(rdb).size,
      sha256: sha256(rdb),
      source: `https://${BACKUPS}/${redisRel}`,
      masking: "stacks/masking/staging-redis-cache-1.redis",
    });
    expect(typeof s.dumpAgeSeconds).toBe("number");
    const prom = readFileSync(join(dirs.textfile, `berth-restore-${REDIS}.prom`), "utf8");
    expect(prom).toContain(`berth_restore_last_attempt_success{service="${REDIS}"} 1`);
    expect(prom).toContain(
      `berth_restore_last_success_bytes{service="${REDIS}"} ${String(statSync(rdb).size)}`,
    );
    // The restored data is what the service persists: it survives a restart of the container.
    dOk("restart", REDIS);
    let marker = "";
    for (let i = 0; i < 100 && marker !== "production-1"; i++) {
      marker = d("exec", REDIS, "redis-cli", "get", "marker").stdout.trim();
      if (marker !== "production-1") run("sleep", ["0.2"]);
    }
    expect(marker).toBe("production-1");
  }, 300_000);

  it("redis: a corrupt dump (right signature and checksum) leaves the previous data and says why", () => {
    const good = join(scratch, "prod-1.rdb");
    const bad = join(scratch, "corrupt.rdb");
    const bytes = readFileSync(good);
    // The header stays (REDISnnnn), the body is garbage: only loading it can tell.
    writeFileSync(bad, Buffer.concat([bytes.subarray(0, 9), Buffer.alloc(4096, 0xa7)]));
    publish(redisRel, bad);
    const r = restore(REDIS);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/redis could not load the dump/);
    expect(status(REDIS)).toMatchObject({
      result: "failed",
      reason: expect.stringMatching(/could not load/),
    });
    expect(redisByName("get", "marker").stdout.trim()).toBe("production-1");
    expect(readFileSync(join(dirs.textfile, `berth-restore-${REDIS}.prom`), "utf8")).toContain(
      `berth_restore_last_attempt_success{service="${REDIS}"} 0`,
    );
    // Nothing left behind: no scratch container, no work directory with the dump.
    expect(d("inspect", `berth-restore-${REDIS}`).status).not.toBe(0);
    expect(run("sh", ["-c", `ls -A '${dirs.state}' | grep '^\\.' || true`]).stdout.trim()).toBe("");
  }, 300_000);

  it("redis: a bad checksum and a failed download leave the previous data and say why", () => {
    const next = makeRdb("prod-2", [["set", "marker", "production-2"]]);
    publish(redisRel, next);
    writeFileSync(join(dirs.www, `${redisRel}.sha256`), `${"0".repeat(64)}  latest.rdb\n`);
    const r = restore(REDIS);
    expect(r.status).toBe(1);
    expect(status(REDIS).reason).toMatch(
      /checksum mismatch: the dump's sha256 is [0-9a-f]{64}, expected 0{64}/,
    );
    expect(redisByName("get", "marker").stdout.trim()).toBe("production-1");

    rmSync(join(dirs.www, redisRel));
    const gone = restore(REDIS);
    expect(gone.status).toBe(1);
    expect(status(REDIS).reason).toMatch(/download of https:\/\/backups\.ci\.example\.com\/.* failed: .*404/);
    expect(redisByName("get", "marker").stdout.trim()).toBe("production-1");
    // The last success is still on record.
    const last = JSON.parse(readFileSync(join(dirs.state, `${REDIS}.last-success.json`), "utf8")) as Record<
      string,
      unknown
    >;
    expect(last).toMatchObject({ result: "ok", sha256: sha256(join(scratch, "prod-1.rdb")) });
  }, 300_000);

  it("postgres: a pg_dump archive is restored live into a fresh database, masked, swapped in; read back by name", async () => {
    // The previous data: database app with a table of its own.
    await waitPg(POSTGRES);
    dOk("exec", POSTGRES, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE app");
    dOk(
      "exec",
      POSTGRES,
      "psql",
      "-U",
      "postgres",
      "-v",
      "ON_ERROR_STOP=1",
      "-d",
      "app",
      "-c",
      "CREATE TABLE before_restore (x int); INSERT INTO before_restore VALUES (1)",
    );
    const dump = await makePgDump(
      "prod-1",
      [
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL)",
        "INSERT INTO users VALUES (1, 'alice@customer.example.com', 'Alice Real'), (2, 'bob@customer.example.com', 'Bob Real')",
        "CREATE TABLE sessions (id text PRIMARY KEY)",
        "INSERT INTO sessions VALUES ('secret-session')",
        "CREATE TABLE generation (n int)",
        "INSERT INTO generation VALUES (1)",
      ].join("; "),
    );
    publish(pgRel, dump);
    const r = restore(POSTGRES);
    expect(r.status, r.stderr).toBe(0);
    const users = await psqlByName("app", "SELECT id, email, name FROM users ORDER BY id");
    expect(users.stdout.trim(), users.stderr).toBe(
      "1|user-1@example.invalid|User 1\n2|user-2@example.invalid|User 2",
    );
    expect((await psqlByName("app", "SELECT count(*) FROM sessions")).stdout.trim()).toBe("0");
    expect((await psqlByName("app", "SELECT n FROM generation")).stdout.trim()).toBe("1");
    // The whole database was swapped: the old table is gone, and no helper database is left.
    expect((await psqlByName("app", "SELECT to_regclass('before_restore') IS NULL")).stdout.trim()).toBe("t");
    expect(
      (
        await psqlByName("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
      ).stdout.trim(),
    ).toBe("app,postgres,template0,template1");
    expect(status(POSTGRES)).toMatchObject({ result: "ok", sha256: sha256(dump), detail: "3 tables" });
  }, 300_000);

  it("postgres: a corrupt archive and a bad checksum leave the previous data in place", async () => {
    const good = join(scratch, "prod-1.dump");
    const bytes = readFileSync(good);
    const bad = join(scratch, "corrupt.dump");
    writeFileSync(bad, Buffer.concat([bytes.subarray(0, 5), Buffer.alloc(2048, 0x5a)]));
    publish(pgRel, bad);
    const r = restore(POSTGRES);
    expect(r.status).toBe(1);
    expect(status(POSTGRES).reason).toMatch(/pg_restore failed/);
    expect((await psqlByName("app", "SELECT n FROM generation")).stdout.trim()).toBe("1");
    expect(
      (
        await psqlByName("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
      ).stdout.trim(),
    ).toBe("app,postgres,template0,template1");

    const next = await makePgDump(
      "prod-2",
      "CREATE TABLE users (id int, email text, name text); CREATE TABLE sessions (id text); CREATE TABLE generation (n int); INSERT INTO generation VALUES (2)",
    );
    publish(pgRel, next);
    writeFileSync(join(dirs.www, `${pgRel}.sha256`), `${"f".repeat(64)}\n`);
    const mismatch = restore(POSTGRES);
    expect(mismatch.status).toBe(1);
    expect(status(POSTGRES).reason).toMatch(/checksum mismatch/);
    expect((await psqlByName("app", "SELECT n FROM generation")).stdout.trim()).toBe("1");

    // With the right checksum the same dump goes in: the failures above were the dumps', not the job's.
    publish(pgRel, next);
    expect(restore(POSTGRES).status).toBe(0);
    expect((await psqlByName("app", "SELECT n FROM generation")).stdout.trim()).toBe("2");
  }, 300_000);
});
