import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Tests that start real daemons use loop devices and mounts of their own; keep file-level parallelism modest.
    maxWorkers: 2,
  },
});
