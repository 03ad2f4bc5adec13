/**
 * `luapool`: the Node.js client of the luapool daemon (`luapool serve`).
 *
 * ```js
 * import { connect } from "luapool";
 * const client = await connect("/tmp/luapool.sock");
 * const lua = await client.session();
 * await lua.setInput({ numbers: [1, 2, 3, 4, 5] });
 * await lua.compute(`
 *   local sum = 0
 *   for _, n in ipairs(_io.input.numbers) do sum = sum + n end
 *   _io.output = { sum = sum, count = #_io.input.numbers }`);
 * console.log(await lua.getOutput()); // { sum: 15, count: 5 }
 * await client.close();
 * ```
 */

export { connect, Client, type Stats, type Latency, type WorkerState, type SessionOptions, type HomeInfo } from "./client.js";
export type { Target } from "./connection.js";
export { Session, type ComputeOptions, type ComputeResult, type TableInfo } from "./session.js";
export { LuaFunction, encode, decode, prepare, MAX_BIGINT_DIGITS, MAX_DEPTH, MAX_FRAME, EXT_BIGINT, EXT_FUNCTION } from "./codec.js";
export * from "./errors.js";
