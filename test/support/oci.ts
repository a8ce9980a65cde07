/**
 * OCI image layouts made by tests (no image can be pulled here): skopeo pushes them to a real
 * registry (`oci:<dir>:latest`).
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const sha256 = (b: Buffer | string): string =>
  `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** An uncompressed tar holding one file `name` with `content`. */
function tarOf(name: string, content: Buffer): Buffer {
  // A 512-byte header, the content padded to 512, two zero blocks.
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(content.length.toString(8).padStart(11, "0") + "\0", 124);
  header.write("00000000000\0", 136);
  header.write("0", 156);
  header.write("ustar\0" + "00", 257);
  header.write("        ", 148);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  content.copy(body);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

/**
 * Writes an OCI image layout to `dir` (tag `latest`) with one layer per entry of `layers`, layer i
 * holding the file `berth-<i>.txt` with that content. Same layers, same digests.
 */
export function ociImage(dir: string, ...layers: (string | Buffer)[]): void {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const d = sha256(b);
    writeFileSync(join(blobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const tars = layers.map((l, i) =>
    put(tarOf(i === 0 ? "berth.txt" : `berth-${i}.txt`, typeof l === "string" ? Buffer.from(l) : l)),
  );
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: tars.map((t) => t.digest) },
        config: { Cmd: ["/bin/true"] },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: tars.map((t) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...t })),
      }),
    ),
  );
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "org.opencontainers.image.ref.name": "latest" },
        },
      ],
    }),
  );
}
