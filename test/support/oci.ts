/**
 * OCI image layouts made by tests (no image can be pulled here): skopeo pushes them to a real
 * registry (`oci:<dir>:latest`).
 */
import { ociImage as image, writeOciLayout } from "../../lib/oci.ts";
import { tarArchive } from "../../lib/tar.ts";

/**
 * Writes an OCI image layout to `dir` (tag `latest`) with one uncompressed layer per entry of
 * `layers`: the first holds the file `berth.txt`, layer i > 0 the file `berth-<i>.txt`, with that
 * content. Same layers, same digests.
 */
export function ociImage(dir: string, ...layers: (string | Buffer)[]): void {
  const tars = layers.map((content, i) =>
    tarArchive([{ path: i === 0 ? "berth.txt" : `berth-${i}.txt`, content }]),
  );
  writeOciLayout(dir, image(tars));
}
