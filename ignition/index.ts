/** Public API of the Ignition renderer: pure functions, no Pulumi imports. */
export * from "./model.ts";
export * from "./builders.ts";
export * from "./serialize.ts";
export * from "./os.ts";
export * from "./host.ts";
