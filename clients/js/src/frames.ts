/**
 * Cutting the daemon's byte stream into messages. MessagePack-RPC has no
 * length prefix: a message is one complete MessagePack value. `Frames`
 * keeps the bytes received, walks the headers of the current value where it
 * stopped last time (so a large reply is scanned once, not once per chunk),
 * and hands out each complete value's bytes. It also notes whether a value
 * holds 64-bit integers, so only those replies need exact decoding.
 */

/** One complete message: its bytes, and whether it holds 64-bit ints. */
export interface Frame {
  bytes: Uint8Array;
  wide: boolean;
}

export class Frames {
  private buf = new Uint8Array(64 * 1024);
  private start = 0; // first byte of the current frame
  private end = 0; // end of the bytes received
  private pos = 0; // scan position, relative to start
  private open: number[] = []; // items left in each open array or map
  private wide = false;

  /** Adds received bytes. */
  push(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      let size = this.buf.length;
      while (size < live + chunk.length) size *= 2;
      if (size === this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const grown = new Uint8Array(size);
        grown.set(this.buf.subarray(this.start, this.end), 0);
        this.buf = grown;
      }
      this.end = live;
      this.start = 0;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** The next complete message, or null until more bytes arrive. Throws
   * on bytes that are not MessagePack. */
  next(): Frame | null {
    const b = this.buf;
    for (;;) {
      const at = this.start + this.pos;
      if (at >= this.end) return null;
      const h = header(b, at, this.end);
      if (h === null) return null;
      const [size, items, wide] = h;
      if (at + size > this.end) return null;
      this.pos += size;
      if (wide) this.wide = true;
      if (items > 0) {
        this.open.push(items);
        continue;
      }
      // A value is complete: close every container it completes.
      for (;;) {
        const n = this.open.length;
        if (n === 0) {
          const frame = { bytes: b.slice(this.start, this.start + this.pos), wide: this.wide };
          this.start += this.pos;
          this.pos = 0;
          this.wide = false;
          if (this.start === this.end) this.start = this.end = 0;
          return frame;
        }
        if (--this.open[n - 1] > 0) break;
        this.open.pop();
      }
    }
  }
}

/** Reads `n` big-endian bytes at `at` as a number. */
function be(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + i];
  return v;
}

/**
 * The header at `at`: [bytes of header and payload, items that follow,
 * whether it is a 64-bit integer], or null if the header is incomplete.
 */
function header(b: Uint8Array, at: number, end: number): [number, number, boolean] | null {
  const m = b[at];
  // A length of `n` bytes after the marker, `skip` more header bytes, then a payload.
  const sized = (n: number, skip: number): [number, number, boolean] | null =>
    at + 1 + n > end ? null : [1 + n + skip + be(b, at + 1, n), 0, false];
  const count = (n: number, per: number): [number, number, boolean] | null =>
    at + 1 + n > end ? null : [1 + n, per * be(b, at + 1, n), false];
  if (m <= 0x7f || m >= 0xe0 || m === 0xc0 || m === 0xc2 || m === 0xc3) return [1, 0, false];
  if (m <= 0x8f) return [1, 2 * (m & 0x0f), false];
  if (m <= 0x9f) return [1, m & 0x0f, false];
  if (m <= 0xbf) return [1 + (m & 0x1f), 0, false];
  switch (m) {
    case 0xc4: case 0xd9: return sized(1, 0);
    case 0xc5: case 0xda: return sized(2, 0);
    case 0xc6: case 0xdb: return sized(4, 0);
    case 0xc7: return sized(1, 1);
    case 0xc8: return sized(2, 1);
    case 0xc9: return sized(4, 1);
    case 0xca: return [5, 0, false];
    case 0xcb: return [9, 0, false];
    case 0xcc: case 0xd0: return [2, 0, false];
    case 0xcd: case 0xd1: return [3, 0, false];
    case 0xce: case 0xd2: return [5, 0, false];
    case 0xcf: case 0xd3: return [9, 0, true];
    case 0xd4: return [3, 0, false];
    case 0xd5: return [4, 0, false];
    case 0xd6: return [6, 0, false];
    case 0xd7: return [10, 0, false];
    case 0xd8: return [18, 0, false];
    case 0xdc: return count(2, 1);
    case 0xdd: return count(4, 1);
    case 0xde: return count(2, 2);
    case 0xdf: return count(4, 2);
  }
  throw new Error(`byte 0x${m.toString(16)} is not MessagePack`);
}
