/**
 * OCI images written in memory and laid out on disk as an OCI image layout (`oci:<dir>:<tag>` for
 * skopeo): nothing can be pulled here, so tests and the registry benchmark make their own. Same
 * input, same digests. Generic: nothing here knows Berth.
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
export const OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

/** `sha256:<hex>` of `data`. */
export const sha256Digest = (data: Buffer | string): string =>
  `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** A blob with its descriptor's fields. */
export interface OciBlob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export const ociBlob = (mediaType: string, data: Buffer): OciBlob => ({
  mediaType,
  digest: sha256Digest(data),
  size: data.length,
  data,
});

/** A blob's descriptor, as manifests and indexes list it. */
const descriptor = (b: OciBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

export interface OciImage {
  manifest: OciBlob;
  config: OciBlob;
  layers: OciBlob[];
}

/**
 * A linux/amd64 image whose layers are `tars`, in order, and whose command is /bin/true. With
 * `gzipLevel`, each layer is stored gzipped at that level (0: stored blocks, for data that does not
 * compress), otherwise as a plain tar.
 */
export function ociImage(tars: readonly Buffer[], options: { gzipLevel?: number } = {}): OciImage {
  const { gzipLevel } = options;
  const layers = tars.map((tar) =>
    gzipLevel === undefined
      ? ociBlob(OCI_LAYER_TAR, tar)
      : ociBlob(OCI_LAYER_TAR_GZIP, gzipSync(tar, { level: gzipLevel })),
  );
  const config = ociBlob(
    OCI_CONFIG,
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: tars.map((tar) => sha256Digest(tar)) },
        config: { Cmd: ["/bin/true"] },
      }),
    ),
  );
  const manifest = ociBlob(
    OCI_MANIFEST,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: descriptor(config),
        layers: layers.map(descriptor),
      }),
    ),
  );
  return { manifest, config, layers };
}

/** Writes `image` to `dir` as an OCI image layout with the one tag `tag`. */
export function writeOciLayout(dir: string, image: OciImage, tag = "latest"): void {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  for (const b of [image.manifest, image.config, ...image.layers]) {
    writeFileSync(join(blobs, b.digest.slice("sha256:".length)), b.data);
  }
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { ...descriptor(image.manifest), annotations: { "org.opencontainers.image.ref.name": tag } },
      ],
    }),
  );
}
