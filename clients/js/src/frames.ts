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
      // The header at `at`: its size with its payload, and the items after it.
      const m = b[at];
      let size = 1;
      let items = 0;
      if (m <= 0x7f || m >= 0xe0 || m === 0xc0 || m === 0xc2 || m === 0xc3) {
        // one byte
      } else if (m <= 0x8f) {
        items = 2 * (m & 0x0f);
      } else if (m <= 0x9f) {
        items = m & 0x0f;
      } else if (m <= 0xbf) {
        size = 1 + (m & 0x1f);
      } else {
        const f = FORMATS[m - 0xc0];
        if (f === undefined) throw new Error(`byte 0x${m.toString(16)} is not MessagePack`);
        const [fixed, lengthBytes, perItem] = f;
        if (lengthBytes === 0) {
          size = fixed;
        } else {
          if (at + 1 + lengthBytes > this.end) return null;
          const len = be(b, at + 1, lengthBytes);
          if (perItem > 0) {
            size = 1 + lengthBytes;
            items = perItem * len;
          } else {
            size = fixed + len;
          }
        }
        if (m === 0xcf || m === 0xd3) this.wide = true;
      }
      if (at + size > this.end) return null;
      this.pos += size;
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
          if (this.start === this.end) this.reset();
          return frame;
        }
        if (--this.open[n - 1] > 0) break;
        this.open.pop();
      }
    }
  }

  /** Empties the buffer, giving back the memory a large reply took. */
  private reset(): void {
    this.start = this.end = 0;
    if (this.buf.length > INITIAL) this.buf = new Uint8Array(INITIAL);
  }
}

const INITIAL = 64 * 1024;

/** Reads `n` big-endian bytes at `at` as a number. */
function be(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + i];
  return v;
}

/**
 * Markers 0xc0..0xdf: [header bytes (with the payload when the length is
 * fixed), bytes of the length that follows, items per counted element
 * (0: the length counts payload bytes)]; undefined for 0xc1.
 */
const FORMATS: ([number, number, number] | undefined)[] = [
  [1, 0, 0], // c0 nil
  undefined, // c1 never used
  [1, 0, 0], // c2 false
  [1, 0, 0], // c3 true
  [2, 1, 0], // c4 bin 8
  [3, 2, 0], // c5 bin 16
  [5, 4, 0], // c6 bin 32
  [3, 1, 0], // c7 ext 8 (length, type)
  [4, 2, 0], // c8 ext 16
  [6, 4, 0], // c9 ext 32
  [5, 0, 0], // ca float 32
  [9, 0, 0], // cb float 64
  [2, 0, 0], // cc uint 8
  [3, 0, 0], // cd uint 16
  [5, 0, 0], // ce uint 32
  [9, 0, 0], // cf uint 64
  [2, 0, 0], // d0 int 8
  [3, 0, 0], // d1 int 16
  [5, 0, 0], // d2 int 32
  [9, 0, 0], // d3 int 64
  [3, 0, 0], // d4 fixext 1
  [4, 0, 0], // d5 fixext 2
  [6, 0, 0], // d6 fixext 4
  [10, 0, 0], // d7 fixext 8
  [18, 0, 0], // d8 fixext 16
  [2, 1, 0], // d9 str 8
  [3, 2, 0], // da str 16
  [5, 4, 0], // db str 32
  [3, 2, 1], // dc array 16
  [5, 4, 1], // dd array 32
  [3, 2, 2], // de map 16
  [5, 4, 2], // df map 32
];
