/**
 * Shared by the reference tests: one daemon per test file, a fresh session
 * per test, and the example scripts run under their own names.
 */

import assert from "node:assert/strict";
import { after, before } from "node:test";
import type { Client, ComputeResult, Session } from "../src/index.js";
import { Daemon, example } from "./daemon.js";

/** Starts a daemon and a client for the file's tests; stops both after. */
export function withDaemon(args: string[] = []): { session: (home?: string) => Promise<Session>; client: () => Client; daemon: () => Daemon } {
  let d: Daemon;
  let c: Client;
  before(async () => {
    d = await Daemon.start(args);
    c = await d.client();
  });
  after(async () => {
    await c?.close();
    assert.equal(await d?.stop(), 0, "the daemon exits 0 on SIGTERM");
  });
  return {
    session: (home?: string) => c.session(home === undefined ? {} : { home }),
    client: () => c,
    daemon: () => d,
  };
}

/** Runs `examples/<name>` named after its file (errors read `name:LINE:`). */
export function runExample(s: Session, name: string): Promise<ComputeResult> {
  return s.compute(example(name), { chunkName: `@${name}` });
}

/** The single value `code` returns. */
export async function evalOne(s: Session, code: string): Promise<unknown> {
  const { values } = await s.compute(code);
  assert.equal(values.length, 1, `expected one return value from:\n${code}`);
  return values[0];
}
