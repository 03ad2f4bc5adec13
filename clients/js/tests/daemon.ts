/**
 * Test harness: a real `luapool serve` process in a temporary directory
 * (the binary from `cargo build`; LUAPOOL_BIN overrides where it is), the
 * example scripts of the repository, and a wait that fails instead of
 * hanging.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type Client, type LuapoolError } from "../src/index.js";

/** The repository's root (this file runs from clients/js/dist/tests/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
/** The `luapool` binary under test. */
export const LUAPOOL_BIN = process.env.LUAPOOL_BIN ?? join(REPO, "target/debug/luapool");
/** How long a wait may take before it counts as a hang (a failure, not a timing goal). */
export const HANG_MS = 60_000;

/** The text of `examples/<name>`. */
export function example(name: string): string {
  return readFileSync(join(REPO, "examples", name), "utf8");
}

/** The parsed JSON of `examples/<name>`. */
export function exampleJson(name: string): unknown {
  return JSON.parse(example(name));
}

/** A `luapool serve` child process with its own socket. */
export class Daemon {
  stderr = "";
  private exited: Promise<number | null>;

  private constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
    readonly socket: string,
  ) {
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (s: string) => (this.stderr += s));
    this.exited = new Promise((done) => proc.once("exit", (code) => done(code)));
  }

  /** Starts a daemon (two workers unless `args` say otherwise) and waits until it listens. */
  static async start(args: string[] = []): Promise<Daemon> {
    if (!existsSync(LUAPOOL_BIN)) {
      throw new Error(`${LUAPOOL_BIN} is missing: run \`cargo build --workspace\` or set LUAPOOL_BIN`);
    }
    const dir = mkdtempSync(join(tmpdir(), "luapool-js-"));
    const socket = join(dir, "luapool.sock");
    const workers = args.includes("--workers") ? [] : ["--workers", "2"];
    // Tests ask for long computes and for no instruction budget, which the
    // daemon allows only up to its operator maxima; the operator's socket
    // sees the daemon-wide stats.
    const maxima = args.includes("--max-timeout") ? [] : ["--max-timeout", "120", "--max-instructions", "0"];
    const operator = ["--operator-socket", join(dir, "operator.sock")];
    const proc = spawn(LUAPOOL_BIN, ["serve", "--socket", socket, ...workers, ...maxima, ...operator, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const d = new Daemon(proc, dir, socket);
    await eventually("the daemon says it is listening", () => {
      if (proc.exitCode !== null) throw new Error(`luapool serve exited with ${proc.exitCode}: ${d.stderr}`);
      return d.stderr.includes("workers)");
    });
    return d;
  }

  /** A new client connected to this daemon. */
  client(): Promise<Client> {
    return connect(this.socket);
  }

  /** A client on the operator's socket: its `stats()` cover the whole daemon. */
  operator(): Promise<Client> {
    return connect(join(this.dir, "operator.sock"));
  }

  /** The daemon's worker processes (its children). */
  workerPids(): number[] {
    const tasks = `/proc/${this.proc.pid}/task`;
    return readdirSync(tasks)
      .flatMap((t) => readFileSync(`${tasks}/${t}/children`, "utf8").split(/\s+/))
      .filter(Boolean)
      .map(Number);
  }

  /** Stops the daemon with `signal` (SIGTERM by default) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const code = await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}

/** Polls `f` until it is true; throws with `what` after HANG_MS. */
export async function eventually(what: string, f: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + HANG_MS;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The error `p` rejects with (handled at once, so it is never "unhandled");
 * throws if `p` resolves. */
export async function failure(p: Promise<unknown>): Promise<LuapoolError> {
  try {
    await p;
  } catch (e) {
    return e as LuapoolError;
  }
  throw new Error("expected the call to fail, and it succeeded");
}

/** `n` deterministic records `{id, value}` with values in [0, 100) (the Rust tests' generator). */
export function items(n: number): { id: number; value: number }[] {
  let x = 0x9e3779b97f4a7c15n;
  const mask = (1n << 64n) - 1n;
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    x ^= (x << 13n) & mask;
    x ^= x >> 7n;
    x ^= (x << 17n) & mask;
    out[i] = { id: i, value: (Number(x >> 11n) / 2 ** 53) * 100 };
  }
  return out;
}
