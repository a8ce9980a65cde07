import * as pulumi from "@pulumi/pulumi";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { offlineHooksPresent, runUnderMocks } from "../../plan/mocks.ts";

const debuggable = createRequire(import.meta.url)("@pulumi/pulumi/runtime/debuggable.js") as {
  debuggablePromise: (p: Promise<unknown>, ctx: string) => Promise<unknown>;
};

class Thing extends pulumi.CustomResource {
  constructor(
    name: string,
    props: Record<string, pulumi.Input<string>>,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("test:index:Thing", name, props, opts);
  }
}

describe("offline runtime (plan/mocks.ts)", () => {
  it("finds the SDK debugging aids it turns off (fails when an SDK upgrade renames them)", () => {
    expect(offlineHooksPresent()).toEqual({ debuggablePromise: true, callsites: true });
  });

  it("turns them off during a run and puts everything back afterwards", async () => {
    const before = {
      debuggablePromise: debuggable.debuggablePromise,
      callsites: (pulumi.Resource as unknown as { callsites: unknown }).callsites,
      stackTraceLimit: Error.stackTraceLimit,
      sourceMaps: process.sourceMapsEnabled,
    };
    const during: { wrapped: boolean; callsites: unknown[]; stackTraceLimit: number }[] = [];
    const run = await runUnderMocks("offline", () => {
      const p = Promise.resolve(1);
      during.push({
        // The SDK's wrapper returns a new promise (with a debug context); offline it is the identity.
        wrapped: debuggable.debuggablePromise(p, "ctx") !== p,
        callsites: (pulumi.Resource as unknown as { callsites: () => unknown[] }).callsites(),
        stackTraceLimit: Error.stackTraceLimit,
      });
      const a = new Thing("a", { value: "x" });
      new Thing("b", { value: a.id.apply((id) => `after-${id}`) }, { dependsOn: a });
    });
    expect(during).toEqual([{ wrapped: false, callsites: [], stackTraceLimit: 0 }]);
    // The run itself still works: resources, inputs resolved through outputs, dependencies.
    const b = run.resources.find((r) => r.name === "b");
    expect(b?.inputs.value).toMatch(/^after-[0-9a-f-]{36}$/);
    expect(b?.dependencies).toEqual([run.resources.find((r) => r.name === "a")?.urn]);
    expect(debuggable.debuggablePromise).toBe(before.debuggablePromise);
    expect((pulumi.Resource as unknown as { callsites: unknown }).callsites).toBe(before.callsites);
    expect(Error.stackTraceLimit).toBe(before.stackTraceLimit);
    expect(process.sourceMapsEnabled).toBe(before.sourceMaps);
    // Outside a run the SDK's wrapper is back in place.
    const p = Promise.resolve(2);
    expect(debuggable.debuggablePromise(p, "ctx")).not.toBe(p);
  });
});
