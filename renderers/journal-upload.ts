/**
 * Journal forwarding (stack setting `berth:logs.forward`): the host's `systemd-journal-upload`
 * sends its journal over HTTPS to a `systemd-journal-remote` receiver, authenticating with a
 * client certificate of its own. Pure: same input, same bytes.
 *
 * The stock `systemd-journal-upload.service` runs as a dynamic user (`DynamicUser=yes`), which can
 * read no root-owned 0600 file. The client key is therefore written root-only and handed to the
 * service by systemd itself (`LoadCredential=`), which copies it into the service's private
 * credentials directory, readable by that service's user only. The certificate and the receiver's
 * CA are public and stay world-readable. The service's state (the cursor of the last uploaded
 * entry) is the stock unit's `StateDirectory=systemd/journal-upload`, created by systemd.
 */
import { RenderError } from "./common.ts";

/** The unit Berth enables and extends. */
export const JOURNAL_UPLOAD_UNIT = "systemd-journal-upload.service";
/** Drop-in of journal-upload.conf (journal-upload.conf(5) reads `journal-upload.conf.d/*.conf`). */
export const JOURNAL_UPLOAD_CONF_PATH = "/etc/systemd/journal-upload.conf.d/50-berth.conf";
/** Name of Berth's drop-in of {@link JOURNAL_UPLOAD_UNIT}. */
export const JOURNAL_UPLOAD_DROPIN_NAME = "50-berth.conf";
/** Directory of the host's client certificate, key and the receiver's CA. */
export const JOURNAL_UPLOAD_DIR = "/etc/berth/journal-upload";
/** The client key on disk: root-only (0600). */
export const JOURNAL_UPLOAD_KEY_PATH = `${JOURNAL_UPLOAD_DIR}/client-key.pem`;
/** The client certificate (public). */
export const JOURNAL_UPLOAD_CERT_PATH = `${JOURNAL_UPLOAD_DIR}/client-cert.pem`;
/** The CA that signed the receiver's certificate (public). */
export const JOURNAL_UPLOAD_SERVER_CA_PATH = `${JOURNAL_UPLOAD_DIR}/server-ca.pem`;
/** Name of the credential that carries the key into the service. */
export const JOURNAL_UPLOAD_KEY_CREDENTIAL = "berth-client-key.pem";
/** Where systemd puts that credential for the service (`$CREDENTIALS_DIRECTORY`). */
export const JOURNAL_UPLOAD_KEY_CREDENTIAL_PATH = `/run/credentials/${JOURNAL_UPLOAD_UNIT}/${JOURNAL_UPLOAD_KEY_CREDENTIAL}`;
/** systemd-journal-remote's default HTTPS port, which journal-upload uses when the URL names none. */
export const JOURNAL_REMOTE_DEFAULT_PORT = 19532;

/**
 * An `https://host[:port]` URL without user info, path, query or fragment (journal-upload appends
 * `/upload` itself). Host: a DNS name or an IPv4 address.
 */
export const JOURNAL_REMOTE_URL_PATTERN =
  /^https:\/\/([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)(:([1-9][0-9]{0,4}))?\/?$/i;

/** Whether `url` is a receiver URL Berth accepts ({@link JOURNAL_REMOTE_URL_PATTERN}, port ≤ 65535). */
export function isJournalRemoteUrl(url: string): boolean {
  const m = JOURNAL_REMOTE_URL_PATTERN.exec(url);
  if (!m) return false;
  return m[6] === undefined || Number(m[6]) <= 65535;
}

/** The host's forwarding settings, as rendered into its Ignition. */
export interface HostLogForward {
  /** Receiver, e.g. `https://logs.ci.example.com:19532`. */
  url: string;
  /** PEM CA that signed the receiver's certificate. */
  serverCaPem: string;
  /** PEM client certificate of this host (signed by the stack's logs CA, CN = host name). */
  clientCertPem: string;
  /** PEM client private key of this host: a secret; written 0600 root-only. */
  clientKeyPem: string;
}

/** journal-upload.conf.d drop-in: the receiver and the TLS material. */
export function renderJournalUploadConf(forward: Pick<HostLogForward, "url">): string {
  if (!isJournalRemoteUrl(forward.url)) {
    throw new RenderError(
      "renderJournalUploadConf",
      "url",
      `must be https://host[:port], got "${forward.url}"`,
    );
  }
  return [
    "# Berth: forward this host's journal to the stack's systemd-journal-remote receiver over TLS.",
    "[Upload]",
    `URL=${forward.url.replace(/\/$/, "")}`,
    "# The key reaches the service as a credential (see the unit's drop-in); on disk it is root-only.",
    `ServerKeyFile=${JOURNAL_UPLOAD_KEY_CREDENTIAL_PATH}`,
    `ServerCertificateFile=${JOURNAL_UPLOAD_CERT_PATH}`,
    `TrustedCertificateFile=${JOURNAL_UPLOAD_SERVER_CA_PATH}`,
    "",
  ].join("\n");
}

/** The drop-in of systemd-journal-upload.service: hand it the root-only client key. */
export function renderJournalUploadDropin(): string {
  return [
    "# Berth: the service runs as a dynamic user; systemd copies the root-only client key into the",
    "# service's own credentials directory, readable by that user only.",
    "[Service]",
    `LoadCredential=${JOURNAL_UPLOAD_KEY_CREDENTIAL}:${JOURNAL_UPLOAD_KEY_PATH}`,
    "",
  ].join("\n");
}
