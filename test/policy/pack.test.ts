/**
 * The pack as Pulumi runs it: `@pulumi/pulumi/cmd/run-policy-pack` (the runner the Node.js language
 * host starts for `--policy-pack policy`: ts-node, CommonJS, cwd = policy/) serves it over gRPC; the
 * test asks it what the engine asks (GetAnalyzerInfo, Analyze). Only the engine itself is missing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";

const require = createRequire(import.meta.url);
type Cb<T> = (e: Error | null, r: T) => void;
interface Diagnostic {
  getPolicyname(): string;
  getEnforcementlevel(): number;
  getMessage(): string;
}
interface Client {
  getAnalyzerInfo(
    req: unknown,
    cb: Cb<{ getName(): string; getPoliciesList(): { getName(): string }[] }>,
  ): void;
  analyze(req: unknown, cb: Cb<{ getDiagnosticsList(): Diagnostic[] }>): void;
  analyzeStack(req: unknown, cb: Cb<{ getDiagnosticsList(): Diagnostic[] }>): void;
  close(): void;
}
const grpc = require("@grpc/grpc-js") as { credentials: { createInsecure(): unknown } };
const svc = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js") as {
  AnalyzerClient: new (address: string, creds: unknown) => Client;
};
type Setter = Record<string, (v: unknown) => void>;
const pb = require("@pulumi/pulumi/proto/analyzer_pb.js") as {
  AnalyzeRequest: new () => Setter;
  AnalyzeStackRequest: new () => Setter;
  AnalyzerResource: new () => Setter;
  AnalyzerResourceOptions: new () => Setter;
};
const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js") as {
  Struct: { fromJavaScript(o: object): unknown };
};
const { Empty } = require("google-protobuf/google/protobuf/empty_pb.js") as { Empty: new () => unknown };

/** EnforcementLevel.MANDATORY in pulumi's analyzer.proto. */
const MANDATORY = 1;

let child: ChildProcess;
let client: Client;

beforeAll(async () => {
  child = spawn(
    process.execPath,
    [join(PROJECT_ROOT, "node_modules/@pulumi/pulumi/cmd/run-policy-pack"), "127.0.0.1:1", "."],
    { cwd: join(PROJECT_ROOT, "policy"), stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += String(d)));
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once("data", (d) => resolve(String(d).trim()));
    child.once("exit", (code) => reject(new Error(`policy pack exited ${code}: ${stderr}`)));
  });
  expect(port).toMatch(/^\d+$/);
  client = new svc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}, 120_000);

afterAll(() => {
  client?.close();
  if (child?.pid !== undefined && child.exitCode === null) child.kill();
});

const call = <T>(fn: (cb: Cb<T>) => void) =>
  new Promise<T>((resolve, reject) => fn((e, r) => (e ? reject(e) : resolve(r))));

async function analyze(type: string, name: string, stack: string, props: object, protect = false) {
  const req = new pb.AnalyzeRequest();
  req.setType!(type);
  req.setName!(name);
  req.setUrn!(`urn:pulumi:${stack}::berth::${type}::${name}`);
  req.setProperties!(Struct.fromJavaScript(props));
  const opts = new pb.AnalyzerResourceOptions();
  opts.setProtect!(protect);
  req.setOptions!(opts);
  const res = await call<{ getDiagnosticsList(): Diagnostic[] }>((cb) => client.analyze(req, cb));
  return res.getDiagnosticsList();
}

/** AnalyzeStack over SecGroupRules: `[name, props]` each. */
async function analyzeRules(stack: string, rules: [string, object][]) {
  const type = "openstack:networking/secGroupRule:SecGroupRule";
  const req = new pb.AnalyzeStackRequest();
  req.setResourcesList!(
    rules.map(([name, props]) => {
      const r = new pb.AnalyzerResource();
      r.setType!(type);
      r.setName!(name);
      r.setUrn!(`urn:pulumi:${stack}::berth::${type}::${name}`);
      r.setProperties!(Struct.fromJavaScript(props));
      r.setOptions!(new pb.AnalyzerResourceOptions());
      return r;
    }),
  );
  const res = await call<{ getDiagnosticsList(): Diagnostic[] }>((cb) => client.analyzeStack(req, cb));
  return res.getDiagnosticsList();
}

const tcp = (port: number, remoteIpPrefix: string, description?: string) => ({
  direction: "ingress",
  protocol: "tcp",
  portRangeMin: port,
  portRangeMax: port,
  remoteIpPrefix,
  ...(description ? { description } : {}),
});

describe("policy pack under Pulumi's policy runner", () => {
  it("serves the berth pack with its six policies", async () => {
    const info = await call<{ getName(): string; getPoliciesList(): { getName(): string }[] }>((cb) =>
      client.getAnalyzerInfo(new Empty(), cb),
    );
    expect(info.getName()).toBe("berth");
    expect(info.getPoliciesList().map((p) => p.getName())).toHaveLength(6);
  });

  it("reports SSH open to the world as a mandatory violation", async () => {
    const d = await analyze("openstack:networking/secGroupRule:SecGroupRule", "ssh", "testing", {
      direction: "ingress",
      protocol: "tcp",
      portRangeMin: 22,
      portRangeMax: 22,
      remoteIpPrefix: "0.0.0.0/0",
    });
    expect(d).toHaveLength(1);
    expect(d[0]!.getPolicyname()).toBe("berth-no-world-ingress");
    expect(d[0]!.getEnforcementlevel()).toBe(MANDATORY);
    expect(d[0]!.getMessage()).toMatch(/opens tcp port 22 to 0\.0\.0\.0\/0/);
  });

  it("reads protect from the resource options, and the stack from the URN", async () => {
    const type = "openstack:blockstorage/volume:Volume";
    expect((await analyze(type, "v", "production", { size: 10 }))[0]?.getMessage()).toMatch(/not protected/);
    expect(await analyze(type, "v", "production", { size: 10 }, true)).toEqual([]);
    expect(await analyze(type, "v", "staging", { size: 10 })).toEqual([]);
  });

  it("takes the program's ports and exposure limit: dockerd TLS on a configured port, half the world", async () => {
    const type = "openstack:networking/secGroupRule:SecGroupRule";
    const d = await analyze(type, "tls", "testing", tcp(12376, "128.0.0.0/1", "docker-tls from 128.0.0.0/1"));
    expect(d.map((x) => x.getMessage())).toEqual([
      expect.stringMatching(
        /port 12376 to 128\.0\.0\.0\/1 \(.* public addresses\), which includes Docker API \(mutual TLS\)/,
      ),
    ]);
  });

  it("judges the rules of a stack together: SSH from two public /16s is the world in pieces", async () => {
    const d = await analyzeRules("testing", [
      ["a", tcp(22, "45.0.0.0/16", "ssh from 45.0.0.0/16")],
      ["b", tcp(22, "45.1.0.0/16", "ssh from 45.1.0.0/16")],
    ]);
    expect(d.map((x) => [x.getPolicyname(), x.getEnforcementlevel()])).toEqual([
      ["berth-no-world-ingress-total", MANDATORY],
    ]);
    expect(d[0]!.getMessage()).toMatch(/together open SSH \(port 22\) to 131,072 public IPv4 addresses/);
    expect(await analyzeRules("testing", [["a", tcp(22, "45.0.0.0/16", "ssh from 45.0.0.0/16")]])).toEqual(
      [],
    );
  });

  it("passes a compliant rule", async () => {
    const d = await analyze("openstack:networking/secGroupRule:SecGroupRule", "ssh", "testing", {
      direction: "ingress",
      protocol: "tcp",
      portRangeMin: 22,
      portRangeMax: 22,
      remoteIpPrefix: "198.51.100.0/27",
    });
    expect(d).toEqual([]);
  });
});
