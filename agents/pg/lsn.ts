/**
 * WAL positions (LSNs). PostgreSQL prints them as two hex halves, "16/B374D848"; as bigints they
 * subtract to a distance in bytes of WAL, which is what replication lag is measured in here.
 */
export function parseLsn(text: string | null | undefined): bigint | null {
  if (text === null || text === undefined) return null;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) return null;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The larger of two positions, either possibly unknown. */
export function maxLsn(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}
