import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    // Tests that run real programs from Debian packages (or need root) carry this tag
    // (test/support/tools.ts). `npm run test:portable` deselects them for runners without those
    // programs; `npm run test:real-tools` runs only them.
    tags: [{ name: "real-tools", description: "runs real programs from Debian packages, or needs root" }],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Tests that start real daemons use loop devices and mounts of their own; keep file-level parallelism modest.
    maxWorkers: 2,
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: ".cache/vitest-report.json" }]],
  },
});
