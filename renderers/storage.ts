/**
 * Docker's storage on a Berth host (stack setting `hosts.storageDriver`): the storage driver and the
 * file system the Docker volume gets for it. Plain facts, used by the Ignition renderer (volume,
 * daemon.json, which upkeep units exist), the alert rules, validation and the tests.
 *
 * - `btrfs` (the default, as the seeds chose): the btrfs driver on a btrfs volume; Berth adds a
 *   weekly usage-filtered balance and a monthly scrub.
 * - `overlay2`: the overlay2 driver on an ext4 volume. ext4 because it is what the engine benchmark
 *   measured (docs/performance.md) and what the tests run; xfs (also supported by overlay2, with
 *   `ftype=1`) is not offered, since nothing here measures or tests it. ext4 needs no balance or
 *   scrub; it has a fixed number of inodes, which the free-space check watches too.
 */

/** The storage drivers a host can run. */
export const STORAGE_DRIVERS = ["btrfs", "overlay2"] as const;
export type StorageDriver = (typeof STORAGE_DRIVERS)[number];

/** What a host runs when the stack names no driver. */
export const DEFAULT_STORAGE_DRIVER: StorageDriver = "btrfs";

/** File system of the Docker volume (/var/lib/docker) for each driver. */
export const DOCKER_VOLUME_FILESYSTEM: Readonly<Record<StorageDriver, "btrfs" | "ext4">> = {
  btrfs: "btrfs",
  overlay2: "ext4",
};

/** True for the names in {@link STORAGE_DRIVERS} (input may come from untyped configuration). */
export function isStorageDriver(value: unknown): value is StorageDriver {
  return typeof value === "string" && (STORAGE_DRIVERS as readonly string[]).includes(value);
}
