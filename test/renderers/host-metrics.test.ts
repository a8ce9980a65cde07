/**
 * The metric renderers' contracts: the textfile writer and its units, the registry's debug server,
 * nginx's metrics server, and the ports the scrape configuration uses against the ports the program
 * binds and the policy pack treats as sensitive. (The writer runs against real programs in
 * test/ignition/textfile-metrics.test.ts; nginx's metrics server in test/renderers/nginx.test.ts's
 * real-nginx runs is not exercised.)
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import { FIXED_SENSITIVE_PORTS, METRICS_PORTS as PROGRAM_PORTS, purposeWhat } from "../../config/ports.ts";
import { buildHostIgnition, dockerDaemonJson, dockerServiceDropin } from "../../ignition/host.ts";
import {
  TEXTFILE_METRICS_TIMER,
  TEXTFILE_METRICS_UNIT,
  certArgument,
  renderTextfileMetricsScript,
  renderTextfileMetricsUnits,
} from "../../renderers/host-metrics.ts";
import { renderNginxConfig } from "../../renderers/nginx.ts";
import { BERTH_TEXTFILE_METRICS, METRICS_PORTS } from "../../renderers/prometheus.ts";
import { renderRegistryConfig } from "../../renderers/registry.ts";
import { fcosFull, flatcarMinimal, fileText } from "../ignition/fixtures.ts";
import { requireTools } from "../support/tools.ts";

const shellcheck = requireTools("shellcheck", [{ tool: "shellcheck", debianPackage: "shellcheck" }]);

const NGINX = {
  serverName: "registry.ci.internal",
  tlsCertificatePath: "/etc/nginx/berth/registry.crt",
  tlsKeyPath: "/etc/nginx/berth/registry.key",
  htpasswdPath: "/etc/nginx/berth/htpasswd",
  upstream: "registry:5000",
};

describe("ports", () => {
  it("the scrape configuration scrapes the ports the program binds, and the policy pack treats them as sensitive", () => {
    expect(METRICS_PORTS).toEqual(PROGRAM_PORTS);
    for (const port of Object.values(PROGRAM_PORTS)) {
      expect(
        FIXED_SENSITIVE_PORTS.some((r) => r.from <= port && port <= r.to),
        String(port),
      ).toBe(true);
      expect(purposeWhat(`metrics-${port}`), String(port)).toMatch(/metrics$/);
    }
    expect(purposeWhat("metrics-9999")).toBeUndefined();
  });
});

describe("textfile writer", () => {
  it("bash -n accepts it", () => {
    const r = spawnSync("bash", ["-n"], { input: renderTextfileMetricsScript(), encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.skipIf(shellcheck.skip)("shellcheck finds nothing", () => {
    const r = spawnSync("shellcheck", ["-"], { input: renderTextfileMetricsScript(), encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  it("writes every metric of the contract, with its help, atomically (temporary in the same directory, then rename)", () => {
    const s = renderTextfileMetricsScript();
    for (const [name, help] of Object.entries(BERTH_TEXTFILE_METRICS))
      expect(s).toContain(`# HELP ${name} ${help}`);
    expect(s).toContain('tmp=$(mktemp -- "$dir/.berth.prom.XXXXXX")');
    expect(s).toContain('mv -f -- "$tmp" "$dir/berth.prom"');
  });

  it("its service passes each certificate source, its timer runs every minute", () => {
    const units = renderTextfileMetricsUnits({
      binDir: "/usr/local/bin",
      certs: [
        { name: "dockerd", file: "/etc/docker/tls/server-cert.pem" },
        { name: "registry", tls: { address: "10.42.0.11", port: 443, serverName: "registry.ci.internal" } },
      ],
    });
    expect(units.map((u) => [u.name, u.enabled])).toEqual([
      [TEXTFILE_METRICS_UNIT, false],
      [TEXTFILE_METRICS_TIMER, true],
    ]);
    expect(units[0]?.contents).toContain(
      "ExecStart=/usr/local/bin/berth-textfile-metrics /var/lib/berth/textfile --cert dockerd=file:/etc/docker/tls/server-cert.pem --cert registry=tls:10.42.0.11:443:registry.ci.internal",
    );
    expect(units[1]?.contents).toContain("OnUnitActiveSec=1min");
  });

  it("refuses bad sources with the field", () => {
    const bad = (certs: Parameters<typeof renderTextfileMetricsUnits>[0]["certs"]) => () =>
      renderTextfileMetricsUnits({ binDir: "/usr/local/bin", certs });
    expect(bad([{ name: "Docker d", file: "/x" }])).toThrow(/certs\[0\]\.name/);
    expect(bad([{ name: "a", file: "relative" }])).toThrow(/certs\[0\]\.file/);
    expect(
      bad([
        { name: "a", file: "/x" },
        { name: "a", file: "/y" },
      ]),
    ).toThrow(/certs\[1\]\.name.*repeats/);
    expect(bad([{ name: "r", tls: { address: "registry", port: 443, serverName: "r.example" } }])).toThrow(
      /tls\.address/,
    );
    expect(bad([{ name: "r", tls: { address: "10.0.0.1", port: 0, serverName: "r.example" } }])).toThrow(
      /tls\.port/,
    );
    expect(certArgument({ name: "d", file: "/p" })).toBe("d=file:/p");
  });
});

describe("host Ignition", () => {
  it("dockerd's metrics-addr is the private address, and docker.service waits for that address", () => {
    expect(dockerDaemonJson(fcosFull)["metrics-addr"]).toBe("10.20.0.10:9323");
    const dropin = dockerServiceDropin(fcosFull);
    expect(dropin).toMatch(/^ExecStartPre=-\/bin\/sh -c '.*grep -qF " inet 10\.20\.0\.10\/".*'$/m);
    expect(dropin.indexOf("ExecStartPre=")).toBeLessThan(dropin.indexOf("ExecStart="));
  });

  it("installs the writer and its units; without metrics, none of it", () => {
    const full = buildHostIgnition(fcosFull);
    expect(fileText(full, "/usr/local/bin/berth-textfile-metrics")).toBe(renderTextfileMetricsScript());
    const units = full.systemd?.units ?? [];
    const service = units.find((u) => u.name === TEXTFILE_METRICS_UNIT);
    expect(service?.contents).toContain("--cert dockerd=file:/etc/docker/tls/server-cert.pem");
    expect(service?.contents).toContain("--cert registry=tls:10.20.0.10:443:registry.ci.internal");
    expect(units.find((u) => u.name === TEXTFILE_METRICS_TIMER)?.enabled).toBe(true);

    const minimal = buildHostIgnition(flatcarMinimal);
    expect(dockerDaemonJson(flatcarMinimal)["metrics-addr"]).toBeUndefined();
    expect((minimal.systemd?.units ?? []).some((u) => u.name.startsWith("berth-textfile-metrics"))).toBe(
      false,
    );
    expect(dockerServiceDropin(flatcarMinimal)).not.toContain("ExecStartPre");
  });

  it("refuses a metrics address that is not IPv4", () => {
    expect(() => buildHostIgnition({ ...fcosFull, metrics: { address: "ci-1" } })).toThrow(
      /metrics\.address/,
    );
  });
});

describe("registry and nginx", () => {
  it("the registry's debug server serves Prometheus metrics when asked, and only then", () => {
    const on = renderRegistryConfig({ httpSecret: "0123456789abcdef0123", metricsAddr: ":5001" });
    expect(on).toContain(
      '  debug:\n    addr: ":5001"\n    prometheus:\n      enabled: true\n      path: /metrics\n',
    );
    expect(renderRegistryConfig({ httpSecret: "0123456789abcdef0123" })).not.toContain("debug:");
    expect(() => renderRegistryConfig({ httpSecret: "0123456789abcdef0123", metricsAddr: ":5000" })).toThrow(
      /metricsAddr/,
    );
  });

  it("nginx passes GET /metrics to the registry's debug server on its own plain port, nothing else", () => {
    const conf = renderNginxConfig({ ...NGINX, metrics: { port: 5001, upstream: "registry:5001" } });
    const server = conf.slice(conf.indexOf("# The registry's Prometheus metrics"));
    expect(server).toContain("listen 5001;");
    expect(server).toContain("set $berth_registry_metrics registry:5001;");
    expect(server).toContain("proxy_pass http://$berth_registry_metrics/metrics;");
    expect(server).toMatch(/limit_except GET HEAD \{\s+deny all;\s+\}/);
    expect(server).toMatch(/location \/ \{\s+return 404;/);
    expect(renderNginxConfig(NGINX)).not.toContain("berth_registry_metrics");
    expect(() => renderNginxConfig({ ...NGINX, metrics: { port: 443, upstream: "registry:5001" } })).toThrow(
      /metrics\.port/,
    );
  });
});
