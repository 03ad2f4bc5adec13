/**
 * A session: one `_io` table (input, output, meta) bound to one `_home`,
 * with the reference's methods as promises. Each method is one request of
 * docs/protocol.md ("Methods"); a new daemon method is one more line here.
 *
 * Calls of one session run on the daemon in the order they were made, so
 * they may be issued without awaiting each other (pipelining).
 */

import { EventEmitter } from "node:events";
import { prepare } from "./codec.js";
import type { Connection } from "./connection.js";
import { clientError } from "./errors.js";

/** Per-compute options (docs/protocol.md, `compute`). */
export interface ComputeOptions {
  /** Wall-clock limit in milliseconds (the worker is killed past it). */
  timeoutMs?: number;
  /** CPU-time limit in milliseconds on the worker's own CPU clock; 0 = none. */
  cpuTimeMs?: number;
  /** Lua instruction budget; 0 = none. */
  instructions?: number;
  /** Lua heap limit in bytes; 0 = none. */
  memory?: number;
  /** The name in error messages (default `=compute`; `@x.lua` reads `x.lua:3:`). */
  chunkName?: string;
  /** Send each `print` line while the compute runs (default true). */
  streamLogs?: boolean;
  /** Called with each `print` line as it arrives. */
  onLog?: (line: string) => void;
}

/** What a compute returns. */
export interface ComputeResult {
  /** The chunk's return values. */
  values: unknown[];
  /** The lines it printed (up to 1 MiB of them). */
  logs: string[];
}

/** `getTableInfo()`: table ids, and what the session's and home's stores hold. */
export interface TableInfo {
  io: number;
  home: number;
  session_tables: number;
  session_bytes: number;
  session_quota: number;
  home_tables: number;
  home_bytes: number;
}

const WIRE_OPTIONS: Record<string, string> = {
  timeoutMs: "timeout_ms",
  cpuTimeMs: "cpu_time_ms",
  instructions: "instructions",
  memory: "memory",
  chunkName: "chunk_name",
  streamLogs: "stream_logs",
};

/**
 * A session. Emits `"log"` with `(line, msgid)` for every `print` line of
 * its computes, as they run.
 */
export class Session extends EventEmitter {
  /** @internal Made by `Client.session()`. */
  constructor(
    private readonly conn: Connection,
    /** The daemon's id of this session. */
    readonly id: number,
    /** The home it is bound to (null: a private one). */
    readonly home: string | null,
  ) {
    super();
  }

  /** Sets `_io.input` (read-only in Lua), replacing the previous input. */
  async setInput(data: unknown): Promise<void> {
    await this.call("set_input", prepare(data, "input"));
  }

  /** `_io.output` (null if unset). */
  async getOutput(): Promise<unknown> {
    return this.call("get_output");
  }

  /** Sets `_io.input[key]`, creating the input table if there is none. */
  async setInputField(key: string, value: unknown): Promise<void> {
    await this.call("set_input_field", checkKey(key), prepare(value, `input field ${JSON.stringify(key)}`));
  }

  /** `_io.output[key]` (null if absent or if the output is not a table). */
  async getOutputField(key: string): Promise<unknown> {
    return this.call("get_output_field", checkKey(key));
  }

  /** Sets `_io.meta` (writable from Lua). */
  async setMetadata(meta: unknown): Promise<void> {
    await this.call("set_metadata", prepare(meta, "metadata"));
  }

  /** Clears `_io.input`, `_io.output` and `_io.meta`; `_home` is untouched. */
  async clearIo(): Promise<void> {
    await this.call("clear_io");
  }

  /** The id of the session's `_io` table (for debugging and tooling). */
  async getIoTableId(): Promise<number> {
    return (await this.call("get_io_table_id")) as number;
  }

  /** Table ids, and the tables and bytes alive in the session's and home's stores. */
  async getTableInfo(): Promise<TableInfo> {
    return (await this.call("get_table_info")) as TableInfo;
  }

  /**
   * Runs the Lua chunk `code` with this session's `_io` and `_home`. `code`
   * may be the digest of a script this connection loaded (`client.loadScript`):
   * 40 hex digits, which no Lua chunk is (`NoScriptError` if it is not loaded).
   */
  async compute(code: string, options: ComputeOptions = {}): Promise<ComputeResult> {
    if (typeof code !== "string") throw clientError("InvalidValue", `compute takes Lua source as a string, got ${typeof code}`);
    const wire: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(options)) {
      if (name === "onLog" || value === undefined) continue;
      const wireName = WIRE_OPTIONS[name];
      if (!wireName) {
        throw clientError("InvalidValue", `unknown compute option ${JSON.stringify(name)} (known: ${Object.keys(WIRE_OPTIONS).join(", ")}, onLog)`);
      }
      wire[wireName] = value;
    }
    const onLog = options.onLog;
    // A listener that throws does not stop the compute: its first error is
    // thrown from here once the compute is over.
    let thrown: { error: unknown } | undefined;
    const route = {
      session: this.id,
      onLog: (line: string, msgid: number) => {
        if (thrown) return;
        try {
          this.emit("log", line, msgid);
          onLog?.(line);
        } catch (error) {
          thrown = { error };
        }
      },
    };
    const params = [this.id, prepare(code, "the code"), prepare(wire, "compute options")];
    const result = (await this.conn.call("compute", params, route)) as ComputeResult;
    if (thrown) throw thrown.error;
    return result;
  }

  /** Cancels the running compute and the computes queued before this call. */
  async cancel(): Promise<void> {
    await this.call("cancel");
  }

  /** Closes the session after its earlier calls have run; frees its tables. */
  async close(): Promise<void> {
    await this.call("session.close");
  }

  private call(method: string, ...params: unknown[]): Promise<unknown> {
    return this.conn.call(method, [this.id, ...params]);
  }
}

function checkKey(key: unknown): string {
  if (typeof key !== "string") throw clientError("InvalidValue", `a field key must be a string, got ${typeof key}`);
  return prepare(key, "the field key") as string;
}
