/** lib/json.ts's path reader. */
import { describe, expect, it } from "vitest";
import { at, type Json } from "../../lib/json.ts";

const inspect: Json = {
  State: { Health: { Status: "healthy" }, Running: true },
  Mounts: [{ Name: "data" }, { Name: "logs" }],
  Empty: null,
};

describe("at", () => {
  it("follows object keys and array indexes", () => {
    expect(at(inspect, "State", "Health", "Status")).toBe("healthy");
    expect(at(inspect, "State", "Running")).toBe(true);
    expect(at(inspect, "Mounts", 1, "Name")).toBe("logs");
    expect(at(inspect)).toBe(inspect);
  });

  it("is undefined when a step is missing or not an object", () => {
    expect(at(inspect, "State", "Nope", "Status")).toBeUndefined();
    expect(at(inspect, "Empty", "x")).toBeUndefined();
    expect(at(inspect, "State", "Running", "x")).toBeUndefined();
    expect(at(inspect, "Mounts", 5, "Name")).toBeUndefined();
    expect(at(undefined, "a")).toBeUndefined();
  });
});
