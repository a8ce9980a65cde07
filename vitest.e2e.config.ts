import { defineConfig } from "vitest/config";

// End-to-end suite on a real Docker engine (npm run test:e2e). Needs root; see test/e2e/engine.test.ts.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 180_000,
    // The first run debootstraps Debian and builds the stand-in images.
    hookTimeout: 45 * 60_000,
    // One private dockerd per test file, and the machine has few cores: one file at a time.
    fileParallelism: false,
    reporters: ["default", ["json", { outputFile: ".cache/vitest-e2e-report.json" }]],
  },
});
