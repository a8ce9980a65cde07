import { defineConfig } from "vitest/config";

/**
 * The files that also run on overlay2 (hosts.storageDriver: overlay2): the engine basics and the
 * whole service layer of a host. The rest (holders, per-build agents, dev, metadata, and the
 * two-host build of build.test.ts) does not depend on the storage driver, and CI time is short.
 */
export const OVERLAY2_FILES = ["test/e2e/engine.test.ts", "test/e2e/services.test.ts"];

// The two-host build suite (test/e2e/build.test.ts) is in the btrfs project like every file. It was
// left out until 2026-11-30: its two engines' ~32 containers, health-checked every second, kept this
// 2-core machine at a load near 50 and the file took over 30 minutes. It now shortens the interval
// only for the containers the program waits on (harness option `healthIntervalFor: "waited"`).

// End-to-end suite on a real Docker engine (npm run test:e2e). Needs root; see test/e2e/engine.test.ts.
// Two projects, one after the other: `btrfs` (every file, on a btrfs engine: Berth's default) and then
// `overlay2` (OVERLAY2_FILES on an overlay2-on-ext4 engine, scripts/e2e-env.sh's BERTH_E2E_STORAGE).
// The stand-in images are built once per cache (images/standins/build.sh), and each storage driver
// gets one seed image (scripts/e2e-env.sh seed: a file system that holds them, made by the first
// engine of that driver under the cache's lock); every engine's disk then starts as a copy of it
// (~2 s) instead of `docker load`ing the saved stand-ins (~25-35 s per engine). Without a usable seed
// an engine starts on an empty disk and loads them, saying so on stderr.
// One project only: `--project btrfs` or `--project overlay2`.
export default defineConfig({
  test: {
    testTimeout: 180_000,
    // The first run debootstraps Debian and builds the stand-in images.
    hookTimeout: 45 * 60_000,
    // One private dockerd per test file, and the machine has few cores: one file at a time.
    fileParallelism: false,
    reporters: ["default", ["json", { outputFile: ".cache/vitest-e2e-report.json" }]],
    projects: [
      {
        extends: true,
        test: {
          name: "btrfs",
          include: ["test/e2e/**/*.test.ts"],
          env: { BERTH_E2E_STORAGE: "btrfs" },
          // Not 0: vitest puts files of a groupOrder-0 project without file parallelism into a
          // group of its own that runs after every numbered group, i.e. after overlay2.
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: "overlay2",
          include: OVERLAY2_FILES,
          env: { BERTH_E2E_STORAGE: "overlay2" },
          // After the btrfs project: the engines share one bridge and address pool.
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
