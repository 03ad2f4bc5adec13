/**
 * One MessagePack-RPC connection to the daemon (docs/protocol.md,
 * "Framing"): requests go out as `[0, msgid, method, params]` as soon as
 * they are made (pipelining); responses `[1, msgid, error, result]` settle
 * the promise of their msgid, in whatever order they come; notifications
 * `[2, "log", [session, msgid, line]]` go to the call they belong to.
 *
 * When the connection ends, for any reason, every call still waiting fails
 * with a `ConnectionClosedError`, and so does every later call.
 */

import net from "node:net";
import { decode, encode, MAX_FRAME } from "./codec.js";
import { clientError, fromWire, LuapoolError } from "./errors.js";
import { Frames } from "./frames.js";

/** Where the daemon listens: a Unix socket path, or loopback TCP with a token. */
export type Target = string | { path: string } | { host: string; port: number; token: string };

/** Where a call's streamed `print` lines go. */
export interface LogRoute {
  session: number;
  onLog: (line: string, msgid: number) => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: LuapoolError) => void;
  logs?: LogRoute;
}

const MAX_MSGID = 0xffff_ffff;

export class Connection {
  private readonly frames = new Frames();
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;
  private ended: LuapoolError | null = null;
  private cause = "";
  private readonly closeWaiters: (() => void)[] = [];

  private constructor(
    private readonly socket: net.Socket,
    private readonly onEnd: (error: LuapoolError) => void,
  ) {
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", (e: Error) => {
      this.cause = e.message;
    });
    socket.on("close", () => this.end());
  }

  /** Connects to `target`; rejects with `ConnectFailedError` if nobody answers. */
  static open(target: Target, onEnd: (error: LuapoolError) => void): Promise<Connection> {
    const where = typeof target === "string" ? target : "path" in target ? target.path : `${target.host}:${target.port}`;
    const options: net.NetConnectOpts =
      typeof target === "string" ? { path: target } : "path" in target ? { path: target.path } : { host: target.host, port: target.port };
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(options);
      const failed = (e: NodeJS.ErrnoException) => {
        socket.destroy();
        reject(clientError("ConnectFailed", `cannot connect to the luapool daemon at ${where}: ${explain(e)}`));
      };
      socket.once("error", failed);
      socket.once("connect", () => {
        socket.off("error", failed);
        socket.setNoDelay?.(true);
        resolve(new Connection(socket, onEnd));
      });
    });
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.ended !== null;
  }

  /**
   * Sends `method` with `params` (checked already by the caller: see
   * `prepare`) and resolves with the result.
   */
  call(method: string, params: unknown[], logs?: LogRoute): Promise<unknown> {
    if (this.ended) return Promise.reject(this.ended);
    const msgid = this.allocate();
    let bytes: Uint8Array;
    try {
      bytes = encode([0, msgid, method, params]);
    } catch (e) {
      return Promise.reject(clientError("InvalidValue", `cannot encode ${method}: ${(e as Error).message}`));
    }
    if (bytes.length > MAX_FRAME) {
      return Promise.reject(
        clientError("InvalidValue", `${method} would be a ${bytes.length}-byte request; the daemon takes at most ${MAX_FRAME}`),
      );
    }
    return new Promise((resolve, reject) => {
      this.pending.set(msgid, { resolve, reject, logs });
      this.socket.write(bytes);
    });
  }

  /** Closes the connection. Calls still waiting fail at once with
   * ConnectionClosed; resolves when the socket has closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.closeWaiters.push(resolve);
      this.cause = "the client closed it";
      this.end();
      this.socket.end();
      // The daemon answers the half-close by closing; don't wait on it forever.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  /** A msgid not in use (msgids are unsigned 32-bit and wrap around). */
  private allocate(): number {
    do {
      this.lastId = this.lastId >= MAX_MSGID ? 1 : this.lastId + 1;
    } while (this.pending.has(this.lastId));
    return this.lastId;
  }

  private receive(chunk: Buffer): void {
    this.frames.push(chunk);
    for (;;) {
      let frame;
      try {
        frame = this.frames.next();
      } catch (e) {
        this.fail(clientError("DecodeError", `the daemon sent bytes that are not MessagePack: ${(e as Error).message}`));
        return;
      }
      if (frame === null) return;
      let message: unknown;
      try {
        message = decode(frame.bytes, frame.wide);
      } catch (e) {
        // The stream is intact (the frame was complete): only its call fails.
        const msgid = peekMsgid(frame.bytes);
        const p = msgid === null ? undefined : this.pending.get(msgid);
        if (p && msgid !== null) {
          this.pending.delete(msgid);
          p.reject(e as LuapoolError);
        }
        continue;
      }
      this.dispatch(message);
    }
  }

  private dispatch(message: unknown): void {
    if (!Array.isArray(message)) return;
    if (message[0] === 1 && message.length === 4) {
      const [, msgid, error, result] = message as [number, unknown, unknown, unknown];
      if (msgid === null) {
        // The daemon could not read our stream and closes the connection.
        this.fail(fromWire(error));
        return;
      }
      const p = this.pending.get(msgid as number);
      if (!p) return;
      this.pending.delete(msgid as number);
      if (error !== null && error !== undefined) p.reject(fromWire(error));
      else p.resolve(result);
    } else if (message[0] === 2 && message[1] === "log" && Array.isArray(message[2])) {
      const [session, msgid, line] = message[2] as [unknown, unknown, unknown];
      const p = this.pending.get(msgid as number);
      if (p?.logs && p.logs.session === session && typeof line === "string") {
        p.logs.onLog(line, msgid as number);
      }
    }
  }

  /** Ends the connection with `error` for every waiting call. */
  private fail(error: LuapoolError): void {
    this.end(error);
    this.socket.destroy();
  }

  private end(error?: LuapoolError): void {
    if (!this.ended) {
      const waiting = this.pending.size;
      this.ended =
        error ??
        clientError(
          "ConnectionClosed",
          `the connection to the luapool daemon closed${this.cause ? ` (${this.cause})` : ""}` +
            (waiting ? `; ${waiting} call${waiting === 1 ? " was" : "s were"} waiting for a reply` : ""),
        );
      const calls = [...this.pending.values()];
      this.pending.clear();
      for (const p of calls) p.reject(this.ended);
      this.onEnd(this.ended);
    }
    if (this.socket.destroyed) {
      for (const w of this.closeWaiters.splice(0)) w();
    }
  }
}

/** A readable reason for a connect failure. */
function explain(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case "ENOENT":
      return "no such socket (is `luapool serve --socket PATH` running?)";
    case "ECONNREFUSED":
      return "nothing is listening there (is the daemon running?)";
    case "EACCES":
      return "permission denied (the socket is its owner's only)";
    default:
      return e.message;
  }
}

/** The msgid of a response frame `[1, msgid, ...]`, read from its first bytes. */
function peekMsgid(b: Uint8Array): number | null {
  if (b.length < 3 || b[0] !== 0x94 || b[1] !== 0x01) return null;
  const m = b[2];
  if (m <= 0x7f) return m;
  const n = m === 0xcc ? 1 : m === 0xcd ? 2 : m === 0xce ? 4 : 0;
  if (n === 0 || b.length < 3 + n) return null;
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[3 + i];
  return v;
}
