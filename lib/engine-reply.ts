/**
 * Reading a Docker Engine API reply, for the two clients that talk to dockerd directly:
 * `berth drift`'s (cli/engine.ts) and the end-to-end harness's (testkit/e2e/support/engine.ts).
 * Generic: nothing here knows Berth.
 */
import type { IncomingMessage } from "node:http";
import type { Json } from "./json.ts";

/** A reply read to its end: the HTTP status and the body as text. */
export interface EngineReply {
  status: number;
  text: string;
}

/** Collects `res`'s body; resolves when the reply has ended, rejects when it breaks off. */
export function readReply(res: IncomingMessage): Promise<EngineReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("error", reject);
    res.on("end", () =>
      resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
    );
  });
}

/** A successful reply's body: its JSON, null when empty, or the text itself when it is not JSON. */
export function replyBody(text: string): Json {
  if (text === "") return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

/** An error reply's message: the API's `message` field, or the trimmed body when it has none. */
export function replyMessage(text: string): string {
  const body = replyBody(text);
  if (body !== null && typeof body === "object" && !Array.isArray(body) && typeof body.message === "string")
    return body.message;
  return text.trim();
}
