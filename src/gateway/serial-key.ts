/** Normalizes a serial as Node prints it (uppercase, maybe 00-padded) to the revocation sets' form. */
export function serialKey(serialNumber: string): string {
  return serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
}
