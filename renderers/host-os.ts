/**
 * The host operating systems Berth provisions: the one list `berth:hosts.os` (config/schema.ts)
 * accepts and the OS profiles (ignition/os.ts) and renderers are keyed by. Kept in the lowest layer
 * so that the renderers can name the type too.
 */
export const HOST_OSES = ["fcos", "flatcar"] as const;

/** Operating system of the CI hosts: Fedora CoreOS or Flatcar Container Linux. */
export type HostOs = (typeof HOST_OSES)[number];
