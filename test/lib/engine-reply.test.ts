/**
 * lib/engine-reply.ts against a real HTTP server on 127.0.0.1 that answers the way dockerd does:
 * JSON bodies, empty 204s, plain text, and error bodies with a `message`.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readReply, replyBody, replyMessage, type EngineReply } from "../../lib/engine-reply.ts";

const ANSWERS: Record<string, [number, string]> = {
  "/json": [200, '{"Id":"abc","Names":["/x"]}'],
  "/empty": [204, ""],
  "/text": [200, "OK"],
  "/error": [404, '{"message":"No such container: x"}\n'],
  "/plain-error": [500, "  upstream broke \n"],
  "/big": [200, JSON.stringify({ data: "z".repeat(200_000) })],
};

let server: Server;
let port = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const [status, body] = ANSWERS[req.url ?? ""] ?? [400, "?"];
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function get(path: string): Promise<EngineReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path }, (res) => readReply(res).then(resolve, reject));
    req.on("error", reject);
    req.end();
  });
}

describe("readReply", () => {
  it("collects the whole body with its status", async () => {
    expect(await get("/json")).toEqual({ status: 200, text: '{"Id":"abc","Names":["/x"]}' });
    expect(await get("/empty")).toEqual({ status: 204, text: "" });
    expect((await get("/big")).text).toHaveLength(200_000 + '{"data":""}'.length);
  });
});

describe("replyBody and replyMessage", () => {
  it("parse a success: JSON, null when empty, the text when it is not JSON", async () => {
    expect(replyBody((await get("/json")).text)).toEqual({ Id: "abc", Names: ["/x"] });
    expect(replyBody((await get("/empty")).text)).toBeNull();
    expect(replyBody((await get("/text")).text)).toBe("OK");
  });

  it("take an error's message from the API's `message`, else the trimmed body", async () => {
    const notFound = await get("/error");
    expect(notFound.status).toBe(404);
    expect(replyMessage(notFound.text)).toBe("No such container: x");
    expect(replyMessage((await get("/plain-error")).text)).toBe("upstream broke");
    expect(replyMessage('{"other":1}')).toBe('{"other":1}');
  });
});
