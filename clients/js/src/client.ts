/**
 * The client: one connection to `luapool serve`. Open sessions on it with
 * `session()`; calls of different sessions run concurrently on the
 * daemon's workers, and any number of calls may be in flight at once.
 * Daemon-wide methods live here, one small method each.
 */

import { EventEmitter } from "node:events";
import { Connection, type Target } from "./connection.js";
import { clientError, type LuapoolError } from "./errors.js";
import { prepare } from "./codec.js";
import { Session } from "./session.js";

/** Percentiles of one duration over the computes measured, in
 * microseconds (each the upper edge of its histogram bucket: at most 12.5%
 * above the true value). */
export interface Latency {
  count: number;
  sum_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
}

/** What one worker is doing (`for_ms`: how long its compute has run). */
export type WorkerState =
  | { state: "starting" | "idle" | "crash_looped" }
  | { state: "running"; for_ms: number };

/** `stats()`: the daemon's counters (docs/protocol.md, `stats`): the whole
 * daemon's on the operator's socket (`scope: "daemon"`), this connection's
 * own elsewhere (`scope: "connection"`, the daemon-wide fields absent). */
export interface Stats {
  scope: "daemon" | "connection";
  workers: number;
  alive: number;
  crash_loop: boolean;
  sessions: number;
  queued_calls: number;
  store: { arenas: number; tables: number; bytes: number };
  /** From a compute's request being read until a worker started it. */
  wait: Latency;
  /** A compute's time on its worker. */
  run: Latency;
  /** Error responses sent, by kind (every kind, zeros included). */
  errors: Record<string, number>;
  /** The operator's only: each worker's state. */
  worker_states?: WorkerState[];
  restarts?: number;
  computes?: number;
  queued?: number;
  connections?: number;
  [more: string]: unknown;
}

/** A named home as `listHomes()` reports it. */
export interface HomeInfo {
  name: string;
  /** Bytes it accounts (in memory if loaded, else at its last commit). */
  bytes: number;
  /** Whether it is in memory now. */
  loaded: boolean;
  /** Sessions holding it now. */
  sessions: number;
}

/** Options of `client.session()`. */
export interface SessionOptions {
  /** A daemon-wide home shared by every session naming it (default: a private one). */
  home?: string;
}

/**
 * Connects to the daemon at `target`: a Unix socket path, or
 * `{ host, port, token }` for its loopback TCP listener.
 * Rejects with `ConnectFailedError` when nobody answers there.
 */
export async function connect(target: Target): Promise<Client> {
  const client = new Client();
  await client.open(target);
  return client;
}

/**
 * A connection to the daemon. Emits `"close"` with the error that pending
 * calls received (a `ConnectionClosedError` when the daemon went away).
 */
export class Client extends EventEmitter {
  private conn!: Connection;

  /** @internal Use `connect()`. */
  async open(target: Target): Promise<void> {
    this.conn = await Connection.open(target, (e: LuapoolError) => this.emit("close", e));
    if (typeof target === "object" && "token" in target) {
      await this.call("auth", [target.token]);
    }
  }

  /** Opens a session; `home` names a shared `_home`. */
  async session(options: SessionOptions = {}): Promise<Session> {
    const home = options.home ?? null;
    if (home !== null) checkName(home);
    const id = (await this.call("session.open", home === null ? [] : [home])) as number;
    return new Session(this.conn, id, home);
  }

  /** The daemon's counters. */
  async stats(): Promise<Stats> {
    return (await this.call("stats", [])) as Stats;
  }

  /**
   * Loads a script on this connection: its digest (the SHA-1 of `code` in
   * hex, as Redis's `SCRIPT LOAD` gives), which `session.compute` then
   * takes in place of the code on this connection, until it closes.
   */
  async loadScript(code: string): Promise<string> {
    if (typeof code !== "string") throw clientError("InvalidValue", `loadScript takes Lua source as a string, got ${typeof code}`);
    return (await this.call("script.load", [code])) as string;
  }

  /** Every named home, by name (the operator's socket only: elsewhere `OperatorOnlyError`). */
  async listHomes(): Promise<HomeInfo[]> {
    return (await this.call("home.list", [])) as HomeInfo[];
  }

  /** Deletes the named home, from disk too; false if there was none (`HomeInUseError` if a session holds it). */
  async dropHome(name: string): Promise<boolean> {
    return (await this.call("home.drop", [checkName(name)])) as boolean;
  }

  /** The named home as one value, its root table as an object (`HomeNotFoundError` if there is none). */
  async exportHome(name: string): Promise<unknown> {
    return this.call("home.export", [checkName(name)]);
  }

  /** Replaces the named home (created if new) with `value`, an object or an array (`HomeInUseError` if a session holds it). */
  async importHome(name: string, value: unknown): Promise<void> {
    await this.call("home.import", [checkName(name), value]);
  }

  /**
   * Any method of docs/protocol.md by name (for methods this client has no
   * wrapper for yet). Params are checked like every value sent.
   */
  call(method: string, params: unknown[]): Promise<unknown> {
    try {
      return this.conn.call(method, prepare(params, "params") as unknown[]);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.conn.closed;
  }

  /** Closes the connection; calls still waiting fail with `ConnectionClosedError`. */
  close(): Promise<void> {
    return this.conn.close();
  }
}

function checkName(name: unknown): string {
  if (typeof name !== "string") throw clientError("InvalidValue", `a home name must be a string, got ${typeof name}`);
  return name;
}
