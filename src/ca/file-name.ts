/** File-name-safe facility name (keeps Japanese, drops path and control characters). Pure: the portal's browser code names its downloads with it too. */
export function safeFileName(name: string): string {
  return name.normalize('NFC').replace(/[\\/:*?"<>|\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '_').replace(/\s+/g, '_').slice(0, 60) || 'facility';
}
