/**
 * A serial as Node prints it (`X509Certificate.serialNumber`: uppercase hex
 * of the value, maybe 00-padded, "-…" for the negative serial a
 * non-conforming CA issued) in the form the revocation sets hold and report
 * (serial-set.ts): lowercase hex, two digits a byte, of the DER INTEGER's
 * content without leading zero bytes (one byte at least, so zero is "00"). A
 * negative serial is its two's complement, as a CRL entry carries it: a
 * certificate with serial -0x1234 is found under "edcc", where its CRL put it.
 */
export function serialKey(serialNumber: string): string {
  const s = serialNumber.toLowerCase();
  if (s.startsWith('-')) {
    const magnitude = BigInt(`0x${s.slice(1)}`);
    let bytes = 1;
    while (1n << BigInt(8 * bytes - 1) < magnitude) bytes++;
    return ((1n << BigInt(8 * bytes)) - magnitude).toString(16).padStart(2 * bytes, '0');
  }
  const digits = s.replace(/^0+/, '');
  return digits.length === 0 ? '00' : digits.length % 2 === 1 ? `0${digits}` : digits;
}
