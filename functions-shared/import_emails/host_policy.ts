/**
 * Where the importer may connect. A mailbox's host is user input: without a check,
 * a user could point the importer at the project's internal network (loopback,
 * private ranges, the cloud metadata address) and learn from the errors which
 * ports answer. The host is resolved once, every address checked, and the
 * connection then goes to that checked address (TLS still verifies the host name),
 * so a DNS answer cannot change between the check and the connection.
 * Self-hosted setups on a private network set IMAP_ALLOW_PRIVATE_HOSTS=true.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

const PRIVATE_V4: Array<[number, number]> = [
  [0x00000000, 8], // "this" network
  [0x0a000000, 8], // 10/8
  [0x64400000, 10], // 100.64/10 carrier-grade NAT
  [0x7f000000, 8], // loopback
  [0xa9fe0000, 16], // 169.254/16 link-local, cloud metadata
  [0xac100000, 12], // 172.16/12
  [0xc0000000, 24], // 192.0.0/24
  [0xc0a80000, 16], // 192.168/16
  [0xc6120000, 15], // 198.18/15 benchmarking
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved, broadcast
];

function v4ToNumber(address: string): number {
  return address.split(".").reduce((value, part) => value * 256 + Number(part), 0);
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) {
    const value = v4ToNumber(address);
    return PRIVATE_V4.some(([network, bits]) =>
      (value >>> (32 - bits)) === (network >>> (32 - bits))
    );
  }
  if (family === 6) {
    const lower = address.toLowerCase();
    const mapped = lower.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
    if (mapped) return isPrivateAddress(mapped[1]);
    return lower === "::" || lower === "::1" || /^f[cd]/.test(lower) || /^fe[89ab]/.test(lower) ||
      /^ff/.test(lower);
  }
  return true; // not an address at all: refuse
}

export class HostNotAllowedError extends Error {}

/**
 * Resolves the host and returns the address to connect to. Throws
 * HostNotAllowedError for a private or local address unless allowed.
 */
export async function resolveMailboxHost(
  host: string,
  options: { allowPrivate: boolean },
): Promise<string> {
  const addresses = isIP(host)
    ? [{ address: host }]
    : await lookup(host, { all: true, verbatim: true });
  if (addresses.length === 0) throw new HostNotAllowedError(`Cannot resolve ${host}`);
  if (!options.allowPrivate) {
    const blocked = addresses.find(({ address }) => isPrivateAddress(address));
    if (blocked) {
      throw new HostNotAllowedError(
        `Refusing to connect to ${host}: ${blocked.address} is a loopback, private or link-local address ` +
          "(set IMAP_ALLOW_PRIVATE_HOSTS=true for a self-hosted server on a private network)",
      );
    }
  }
  return addresses[0].address;
}
