/** A canonical base64 string (padded, standard alphabet; of exactly `bytes` bytes when given): what sekisho writes into its key and token files. */
export function isBase64(v: unknown, bytes?: number): v is string {
  if (typeof v !== 'string' || v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return false;
  return bytes === undefined || Buffer.from(v, 'base64').length === bytes;
}
