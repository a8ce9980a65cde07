/** Small wire-protocol clients the end-to-end tests use to talk to services on 127.0.0.1. */
import { connect } from "node:net";

/** Sends `payload` to `host`:`port` and resolves with what comes back until `done` says so. */
export function exchange(
  port: number,
  payload: Buffer,
  done: (received: Buffer) => boolean,
  host = "127.0.0.1",
): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host, port }, () => socket.write(payload));
    socket.setTimeout(10_000, () => socket.destroy(new Error(`${host}:${String(port)}: timed out`)));
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (done(all)) {
        socket.end();
        resolvePromise(all);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolvePromise(Buffer.concat(chunks)));
  });
}

/** A MongoDB OP_MSG carrying `{ ping: 1, $db: "admin" }`, hand-encoded. */
export function mongoPing(): Buffer {
  const cstring = (s: string) => Buffer.concat([Buffer.from(s, "utf8"), Buffer.alloc(1)]);
  const int32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return b;
  };
  const ping = Buffer.concat([Buffer.from([0x10]), cstring("ping"), int32(1)]);
  const db = Buffer.concat([Buffer.from([0x02]), cstring("$db"), int32(6), cstring("admin")]);
  const elements = Buffer.concat([ping, db]);
  const doc = Buffer.concat([int32(elements.length + 5), elements, Buffer.alloc(1)]);
  const body = Buffer.concat([int32(0), Buffer.from([0]), doc]);
  return Buffer.concat([int32(16 + body.length), int32(7), int32(0), int32(2013), body]);
}
