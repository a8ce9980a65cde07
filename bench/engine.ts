/**
 * Benchmark: Berth's containers on a real Docker engine, the btrfs storage driver on a btrfs loop
 * file (what Berth's hosts run) side by side with overlay2 on an ext4 loop file of the same size
 * (Docker's default), in one run:
 *
 * 1. time from an empty engine (fresh data root, stand-in images loaded) to every container of
 *    `testing-ci-1` healthy, applied by the e2e harness exactly as the program registers them;
 * 2. create+start latency and disk use of batches of Jenkins agents (the stand-in jenkins-agent
 *    image, Berth's agent definition, each with its own work volume), and whether removing them
 *    gives the space back;
 * 3. a write-heavy CI-like job in each of 10 agents (write, fsync and delete 50 MiB; unpack a
 *    tree of many small files into the work volume and into the container's own layer; append to
 *    the largest file of the image), then removal, and whether the space comes back.
 *
 *   npx tsx bench/engine.ts [batch sizes...]      default: 10 50
 *   BENCH_WRITE_COUNT (default 10), BENCH_LIMIT_MINUTES (default 40)
 *
 * Needs root and the e2e tools (scripts/e2e-env.sh). Engines run one at a time (they share the e2e
 * bridge and address pool), each on a fresh loop file, and are stopped and cleaned up (dockerd by
 * its pid, mounts deepest first, loop device, bridges, firewall rules) even on failure, on a
 * signal, or past the time limit.
 */
import { setTimeout as sleep } from "node:timers/promises";

import { applyHostToEngine, planHost, type ContainerPlan } from "../testkit/e2e/harness.ts";
import { DockerApi, runOk, type Engine } from "../testkit/e2e/support/engine.ts";
import { at } from "../lib/json.ts";
import {
  FILESYSTEM,
  HOST,
  STORAGES,
  diskReading,
  hostInputs,
  installCleanup,
  median,
  mib,
  percentile,
  ratio,
  removeScratch,
  systemDf,
  table,
  withEngine,
  type DiskReading,
  type HostInputs,
  type Storage,
  type SystemDf,
} from "./engine-support.ts";

const sizes = process.argv.slice(2).map(Number);
const BATCHES = sizes.length > 0 ? sizes : [10, 50];
if (BATCHES.some((n) => !Number.isInteger(n) || n < 1 || n > 120))
  throw new Error(
    `batch sizes must be integers from 1 to 120 (the services network's range), got ${process.argv.slice(2).join(" ")}`,
  );
const WRITE_COUNT = Number(process.env.BENCH_WRITE_COUNT ?? 10);
const LIMIT_MS = Number(process.env.BENCH_LIMIT_MINUTES ?? 40) * 60_000;
const HEALTH_TIMEOUT_MS = 240_000;

const s = (ms: number) => (ms / 1000).toFixed(1);
const msf = (ms: number) => ms.toFixed(0);

// --- 1. empty engine → host healthy ------------------------------------------------------------------

interface HostResult {
  storage: Storage;
  upMs: number;
  loadMs: number;
  imagesBytes: number;
  applyMs: number;
  healthyMs: number;
  containers: number;
  hostBytes: number;
}

async function hostToHealthy(storage: Storage, inputs: HostInputs): Promise<HostResult> {
  return withEngine(storage, async (engine, setup) => {
    const t0 = performance.now();
    const applied = await applyHostToEngine(inputs.stack, HOST, engine, inputs.options);
    const applyMs = performance.now() - t0;
    const status = await applied.waitAllHealthy(HEALTH_TIMEOUT_MS);
    const healthyMs = performance.now() - t0;
    const after = await diskReading(engine, storage);
    console.error(`bench: ${storage}: ${HOST} healthy: ${JSON.stringify(status)}`);
    return {
      storage,
      upMs: setup.upMs,
      loadMs: setup.loadMs,
      imagesBytes: setup.loaded.usedBytes - setup.empty.usedBytes,
      applyMs,
      healthyMs,
      containers: applied.plan.containers.length,
      hostBytes: after.usedBytes - setup.loaded.usedBytes,
    };
  });
}

// --- 2. batches of agents ------------------------------------------------------------------------------

/** Berth's agent definition for `testing-ci-1` (jenkins-agent-1), its work volume and network. */
interface AgentTemplate {
  container: ContainerPlan;
  volumeBody: Record<string, unknown>;
  network: { name: string; body: Record<string, unknown> };
}

function agentTemplate(inputs: HostInputs): AgentTemplate {
  const plan = planHost(inputs.stack, HOST, inputs.options);
  const container = plan.containers.find((c) => c.name === "jenkins-agent-1");
  if (!container) throw new Error(`${HOST} has no jenkins-agent-1`);
  const hc = container.body.HostConfig as { Mounts?: { Type: string; Source: string }[] } | undefined;
  const work = hc?.Mounts?.find((m) => m.Type === "volume");
  const volume = plan.volumes.find((v) => v.name === work?.Source);
  if (!volume) throw new Error("jenkins-agent-1 has no work volume");
  const joined = container.connect.map((c) => c.network);
  const network = plan.networks.find((n) => joined.includes(n.name));
  if (!network || joined.length !== 1)
    throw new Error(`expected one extra network, got ${joined.join(", ")}`);
  return { container, volumeBody: volume.body, network: { name: network.name, body: network.body } };
}

/** The template for agent `name` with its own work volume `<name>-work` and real host keys. */
function agentDefinition(t: AgentTemplate, name: string, keys: Record<string, string>) {
  const body = structuredClone(t.container.body);
  body.Hostname = name;
  const hc = body.HostConfig as { Mounts: { Type: string; Source: string }[] };
  const volume = `${name}-work`;
  for (const m of hc.Mounts) if (m.Type === "volume") m.Source = volume;
  const uploads = t.container.uploads.map((u) => {
    const real = keys[u.path];
    return real === undefined ? u : { ...u, content: real };
  });
  return { name, volume, body, uploads };
}

interface BatchResult {
  storage: Storage;
  count: number;
  /** Created all at once (as `pulumi up` does with a host's independent containers). */
  concurrent: boolean;
  latencies: number[];
  totalMs: number;
  healthyMs: number;
  before: DiskReading;
  after: DiskReading;
  df: SystemDf;
  removeMs: number;
  removed: DiskReading;
  settled: DiskReading;
}

/**
 * Creates `count` agents, each: its work volume, then create + upload (sshd config, host keys) +
 * connect to ci-services + start, as the harness and the Pulumi provider do; the latency is the
 * container's part (without the volume). One after the other, or with `concurrent` all at once (what
 * `pulumi up` does: a host's agents do not depend on each other, and the CLI's parallelism is
 * unbounded by default). Then waits until all are healthy, reads the disk, removes the containers
 * and their volumes, and reads it again.
 */
async function agentBatch(
  engine: Engine,
  storage: Storage,
  t: AgentTemplate,
  keys: Record<string, string>,
  count: number,
  tag: string,
  opts: { concurrent?: boolean; job?: (name: string) => void } = {},
): Promise<BatchResult> {
  const api = new DockerApi(engine.socket);
  const before = await diskReading(engine, storage, true);
  const latencies: number[] = [];
  const names: string[] = [];
  const createOne = async (i: number): Promise<void> => {
    const a = agentDefinition(t, `bench-${tag}-${String(i)}`, keys);
    await api.call("POST", "/volumes/create", { ...t.volumeBody, Name: a.volume });
    const c0 = performance.now();
    const res = await api.call("POST", `/containers/create?name=${encodeURIComponent(a.name)}`, a.body);
    const id = at(res, "Id");
    if (typeof id !== "string") throw new Error(`create ${a.name}: ${JSON.stringify(res)}`);
    await api.upload(id, a.uploads);
    await api.call("POST", `/networks/${encodeURIComponent(t.network.name)}/connect`, {
      Container: id,
      EndpointConfig: {},
    });
    await api.start(id);
    latencies.push(performance.now() - c0);
    names.push(a.name);
  };
  const t0 = performance.now();
  const indexes = Array.from({ length: count }, (_, i) => i + 1);
  if (opts.concurrent) await Promise.all(indexes.map(createOne));
  else for (const i of indexes) await createOne(i);
  const totalMs = performance.now() - t0;
  await waitHealthy(api, names, HEALTH_TIMEOUT_MS);
  const healthyMs = performance.now() - t0;
  if (opts.job) for (const n of names) opts.job(n);
  const after = await diskReading(engine, storage);
  const df = await systemDf(api);
  const r0 = performance.now();
  for (const n of names) {
    await api.call("DELETE", `/containers/${encodeURIComponent(n)}?v=true&force=true`);
    await api.call("DELETE", `/volumes/${encodeURIComponent(`${n}-work`)}`);
  }
  const removeMs = performance.now() - r0;
  const removed = await diskReading(engine, storage);
  const settled = await diskReading(engine, storage, true);
  return {
    storage,
    count,
    concurrent: opts.concurrent ?? false,
    latencies,
    totalMs,
    healthyMs,
    before,
    after,
    df,
    removeMs,
    removed,
    settled,
  };
}

async function waitHealthy(api: DockerApi, names: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const pending = new Set(names);
  while (pending.size > 0) {
    for (const n of [...pending]) {
      const state = at(await api.inspect(n), "State");
      if (at(state, "Health", "Status") === "healthy") pending.delete(n);
      else if (at(state, "Running") !== true) throw new Error(`${n} stopped: ${JSON.stringify(state)}`);
    }
    if (pending.size === 0) return;
    if (performance.now() > deadline)
      throw new Error(`not healthy after ${String(timeoutMs)} ms: ${[...pending].join(", ")}`);
    await sleep(250);
  }
}

// --- 3. write-heavy job --------------------------------------------------------------------------------

/** Per container, milliseconds of each step (measured inside the container with `date +%s%N`). */
interface JobTimes {
  blob: number;
  unpackVolume: number;
  unpackLayer: number;
  copyUp: number;
}

/**
 * What a CI job does to the disk, in an agent, as the jenkins user would (but as root: storage does
 * not care): write 50 MiB of random data to /var/tmp with fsync and delete it; unpack the image's
 * /usr/share (many small files) into the work volume (a checkout) and into /var/tmp (build output in
 * the container's own layer: the image declares /tmp a volume, like upstream's); append a line to the image's largest file (a modified image file: overlay2
 * copies it up whole, btrfs copies the changed extent). Each step ends with `sync -f`.
 */
const JOB = `
set -eu
now() { date +%s%N; }
a=$(now)
dd if=/dev/urandom of=/var/tmp/blob bs=1M count=50 conv=fsync status=none
rm /var/tmp/blob
sync -f /var/tmp
b=$(now)
mkdir -p /home/jenkins/agent/ws
tar -C /usr/share -cf - . | tar -C /home/jenkins/agent/ws -xf -
sync -f /home/jenkins/agent/ws
c=$(now)
mkdir -p /var/tmp/build
tar -C /usr/share -cf - . | tar -C /var/tmp/build -xf -
sync -f /var/tmp/build
d=$(now)
echo berth-bench >>"$1"
sync -f "$1"
e=$(now)
echo "$a $b $c $d $e"
`;

function jobRunner(engine: Engine, largest: string, times: JobTimes[]): (name: string) => void {
  return (name) => {
    const out = runOk("docker", ["-H", engine.host, "exec", name, "sh", "-c", JOB, "job", largest], {
      timeoutMs: 180_000,
    });
    const ns = (out.trim().split("\n").pop() ?? "").split(" ").map((x) => Number(x));
    if (ns.length !== 5 || ns.some((x) => !Number.isFinite(x)))
      throw new Error(`job in ${name} printed ${out}`);
    const step = (i: number) => ((ns[i + 1] as number) - (ns[i] as number)) / 1e6;
    times.push({ blob: step(0), unpackVolume: step(1), unpackLayer: step(2), copyUp: step(3) });
  };
}

/** The image's largest regular file and the size of /usr/share, read from a throwaway container. */
function imageFacts(
  engine: Engine,
  image: string,
): { volumes: string; largest: string; largestBytes: number; shareBytes: number; shareFiles: number } {
  const out = runOk(
    "docker",
    [
      "-H",
      engine.host,
      "run",
      "--rm",
      "--entrypoint",
      "sh",
      image,
      "-c",
      "find / -xdev -type f -printf '%s %p\\n' | sort -n | tail -1; du -sb /usr/share | cut -f1; find /usr/share | wc -l",
    ],
    { timeoutMs: 120_000 },
  )
    .trim()
    .split("\n");
  const [size, path] = (out[0] ?? "").split(" ");
  const volumes = runOk("docker", [
    "-H",
    engine.host,
    "image",
    "inspect",
    "--format",
    "{{json .Config.Volumes}}",
    image,
  ]).trim();
  return {
    volumes: Object.keys(JSON.parse(volumes === "null" ? "{}" : volumes) as object).join(", "),
    largest: path ?? "",
    largestBytes: Number(size),
    shareBytes: Number(out[1]),
    shareFiles: Number(out[2]),
  };
}

// --- main ------------------------------------------------------------------------------------------------

interface DriverRun {
  batches: BatchResult[];
  write: BatchResult;
  jobs: JobTimes[];
  facts: ReturnType<typeof imageFacts>;
}

async function main(): Promise<void> {
  installCleanup(LIMIT_MS);
  const docker = runOk("dockerd", ["--version"]).trim();
  const kernel = runOk("uname", ["-r"]).trim();
  const started = new Date();
  let inputs: HostInputs | undefined;
  try {
    inputs = await hostInputs();
    const tmpl = agentTemplate(inputs);
    const keys = inputs.agentHostKeys;

    const hosts: HostResult[] = [];
    for (const storage of STORAGES) {
      console.error(`bench: ${storage}: empty engine → ${HOST} healthy`);
      hosts.push(await hostToHealthy(storage, inputs));
    }

    const runs = new Map<Storage, DriverRun>();
    for (const storage of STORAGES) {
      runs.set(
        storage,
        await withEngine(storage, async (engine) => {
          const api = new DockerApi(engine.socket);
          await api.call("POST", "/networks/create", tmpl.network.body);
          const batches: BatchResult[] = [];
          for (const n of BATCHES) {
            console.error(`bench: ${storage}: ${String(n)} agents, one after the other`);
            batches.push(await agentBatch(engine, storage, tmpl, keys, n, `a${String(n)}`));
            console.error(`bench: ${storage}: ${String(n)} agents, all at once`);
            batches.push(
              await agentBatch(engine, storage, tmpl, keys, n, `c${String(n)}`, { concurrent: true }),
            );
          }
          const facts = imageFacts(engine, tmpl.container.image);
          const jobs: JobTimes[] = [];
          console.error(`bench: ${storage}: write-heavy job in ${String(WRITE_COUNT)} agents`);
          const write = await agentBatch(engine, storage, tmpl, keys, WRITE_COUNT, "w", {
            job: jobRunner(engine, facts.largest, jobs),
          });
          return { batches, write, jobs, facts };
        }),
      );
    }
    print({ started, docker, kernel, hosts, runs });
  } finally {
    removeScratch(inputs);
  }
}

function print(r: {
  started: Date;
  docker: string;
  kernel: string;
  hosts: HostResult[];
  runs: Map<Storage, DriverRun>;
}): void {
  const get = (s: Storage): DriverRun => {
    const x = r.runs.get(s);
    if (!x) throw new Error(`no run for ${s}`);
    return x;
  };
  const b = get("btrfs");
  const o = get("overlay2");
  const out: string[] = [];
  out.push(`# Berth on a real engine: btrfs on btrfs vs overlay2 on ext4 (${r.started.toISOString()})`);
  out.push(`${r.docker}; kernel ${r.kernel}; loop files of ${process.env.BERTH_E2E_DISK_SIZE ?? "12G"} each`);
  out.push("");
  out.push(`## 1. Empty engine (fresh data root) → every container of ${HOST} healthy`);
  out.push("");
  out.push(
    table(
      [
        "driver (fs)",
        "engine up s",
        "stand-ins loaded s",
        "images on disk MiB",
        "containers",
        "apply s",
        "apply → all healthy s",
        "host's containers on disk MiB",
      ],
      r.hosts.map((h) => [
        `${h.storage} (${FILESYSTEM[h.storage]})`,
        s(h.upMs),
        s(h.loadMs),
        mib(h.imagesBytes),
        String(h.containers),
        s(h.applyMs),
        s(h.healthyMs),
        mib(h.hostBytes),
      ]),
    ),
  );
  const hb = r.hosts.find((h) => h.storage === "btrfs");
  const ho = r.hosts.find((h) => h.storage === "overlay2");
  if (hb && ho)
    out.push(
      `\nratio btrfs/overlay2: to healthy ${ratio(hb.healthyMs, ho.healthyMs)}, image load ${ratio(hb.loadMs, ho.loadMs)}, images on disk ${ratio(hb.imagesBytes, ho.imagesBytes)}`,
    );
  out.push("");
  out.push(
    "## 2. Jenkins agents (Berth's definition, own work volume each), created one after the other and all at once",
  );
  out.push("");
  const rows: string[][] = [];
  const ratios: string[][] = [];
  const mode = (m: BatchResult) => (m.concurrent ? "all at once" : "one after the other");
  b.batches.forEach((x, i) => {
    const y = o.batches[i];
    if (!y) return;
    const n = x.count;
    for (const m of [x, y])
      rows.push([
        String(n),
        mode(m),
        `${m.storage} (${FILESYSTEM[m.storage]})`,
        msf(median(m.latencies)),
        msf(percentile(m.latencies, 90)),
        s(m.totalMs),
        s(m.healthyMs),
        mib(m.after.usedBytes - m.before.usedBytes),
        mib(m.df.containersBytes),
        String(m.after.inodesUsed - m.before.inodesUsed),
        s(m.removeMs),
        mib(m.settled.usedBytes - m.before.usedBytes),
      ]);
    ratios.push([
      String(n),
      mode(x),
      ratio(median(x.latencies), median(y.latencies)),
      ratio(percentile(x.latencies, 90), percentile(y.latencies, 90)),
      ratio(x.totalMs, y.totalMs),
      ratio(x.healthyMs, y.healthyMs),
      ratio(x.after.usedBytes - x.before.usedBytes, y.after.usedBytes - y.before.usedBytes),
    ]);
  });
  out.push(
    table(
      [
        "agents",
        "created",
        "driver (fs)",
        "create+start median ms",
        "p90 ms",
        "total s",
        "until all healthy s",
        "df used Δ MiB",
        "system df containers MiB",
        "inodes Δ",
        "remove s",
        "df after removal Δ MiB",
      ],
      rows,
    ),
  );
  out.push("");
  out.push(
    table(
      ["agents", "created", "median btrfs/overlay2", "p90", "total", "until healthy", "df used Δ"],
      ratios,
    ),
  );
  // How wall time grows with the batch when created all at once, per driver.
  const growth: string[][] = [];
  for (const run of [b, o]) {
    const all = run.batches.filter((x) => x.concurrent);
    const first = all[0];
    for (const x of all.slice(1))
      if (first)
        growth.push([
          `${x.storage} (${FILESYSTEM[x.storage]})`,
          `${String(first.count)} → ${String(x.count)}`,
          ratio(x.count, first.count),
          ratio(x.totalMs, first.totalMs),
          ratio(x.healthyMs, first.healthyMs),
        ]);
  }
  if (growth.length > 0) {
    out.push("");
    out.push(table(["driver (fs)", "agents, all at once", "agents ×", "total ×", "until healthy ×"], growth));
  }
  out.push("");
  const f = b.facts;
  out.push(
    `## 3. Write-heavy job in ${String(WRITE_COUNT)} agents, one after the other, then removal (containers and volumes)`,
  );
  out.push("");
  out.push(
    `Per agent: 50 MiB from /dev/urandom to /var/tmp (container layer) with fsync, deleted; /usr/share (${mib(f.shareBytes)} MiB, ${String(f.shareFiles)} entries) unpacked into the work volume and into /var/tmp (container layer; the image declares ${f.volumes} volumes); a line appended to ${f.largest} (${mib(f.largestBytes)} MiB). Times are medians over the agents, measured inside the container.`,
  );
  out.push("");
  const jrow = (x: DriverRun): string[] => {
    const pick = (k: keyof JobTimes) => median(x.jobs.map((j) => j[k]));
    const w = x.write;
    return [
      `${w.storage} (${FILESYSTEM[w.storage]})`,
      msf(pick("blob")),
      msf(pick("unpackVolume")),
      msf(pick("unpackLayer")),
      msf(pick("copyUp")),
      mib(w.after.usedBytes - w.before.usedBytes),
      mib(w.df.containersBytes),
      mib(w.df.volumesBytes),
      mib(w.removed.usedBytes - w.before.usedBytes),
      mib(w.settled.usedBytes - w.before.usedBytes),
    ];
  };
  out.push(
    table(
      [
        "driver (fs)",
        "50 MiB write+fsync+rm ms",
        "unpack → volume ms",
        "unpack → layer ms",
        "append to image file ms",
        "df used Δ after jobs MiB",
        "system df containers MiB",
        "system df volumes MiB",
        "df Δ right after removal MiB",
        "df Δ settled MiB",
      ],
      [jrow(b), jrow(o)],
    ),
  );
  const jr = (k: keyof JobTimes) => ratio(median(b.jobs.map((j) => j[k])), median(o.jobs.map((j) => j[k])));
  out.push(
    `\nratio btrfs/overlay2: write ${jr("blob")}, unpack → volume ${jr("unpackVolume")}, unpack → layer ${jr("unpackLayer")}, append ${jr("copyUp")}, df used Δ after jobs ${ratio(b.write.after.usedBytes - b.write.before.usedBytes, o.write.after.usedBytes - o.write.before.usedBytes)}`,
  );
  out.push(
    "\n(df Δ: the data root's file system, statfs after sync, relative to just before the batch; 'settled' waits for btrfs to clean deleted subvolumes. Inodes: btrfs reports none.)",
  );
  console.log(out.join("\n"));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
