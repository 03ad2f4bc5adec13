/**
 * Values on the wire: JavaScript values to MessagePack and back, through
 * `@msgpack/msgpack`, with the luapool rules of docs/protocol.md ("Values").
 *
 * - `prepare` checks a value before anything is sent and throws an
 *   `InvalidValueError` naming the offending path: functions, symbols,
 *   `undefined` in arrays, cycles, non-plain objects (Date, Map, class
 *   instances), strings (or keys) with a lone surrogate, which UTF-8
 *   cannot hold, bigints past the daemon's digits, nesting past the
 *   daemon's limit.
 * - Integers: a `bigint` inside the signed 64-bit range is a plain int;
 *   outside it, ext type 1 (ASCII decimal). Integers the daemon sends come
 *   back as numbers when they are safe integers, as `bigint` otherwise.
 * - Ext type 2 is a Lua function (its source); `LuaFunction` holds it.
 *   Any other ext type is a `DecodeError` naming the type.
 * - Maps come back as plain objects; their keys become strings, as every
 *   JavaScript object key does (Lua's `1` and `"1"` land on the same key).
 */

import { Decoder, Encoder, ExtData, type ExtensionCodecType } from "@msgpack/msgpack";
import { clientError, LuapoolError } from "./errors.js";

/** A Lua function as a value: its source text (MessagePack ext type 2). */
export class LuaFunction {
  constructor(readonly source: string) {}
}

/** Ext type of a big integer (ASCII decimal, optional leading '-'). */
export const EXT_BIGINT = 1;
/** Ext type of a Lua function (its UTF-8 source). */
export const EXT_FUNCTION = 2;

/** Containers nested deeper than this are refused before sending (the
 * daemon closes a connection whose frame nests more than 512 deep, and the
 * request's envelope takes two of those levels). */
export const MAX_DEPTH = 500;
/** The daemon's frame limit: a larger request would close the connection. */
export const MAX_FRAME = 256 * 1024 * 1024;
/** The most decimal digits of a big integer the daemon takes (its bigints
 * hold 2^18 bits): a longer one is refused before sending. */
export const MAX_BIGINT_DIGITS = 78_913;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lossy = new TextDecoder("utf-8");

/** An ext-1 integer met while decoding exactly: kept apart from 64-bit
 * ints so narrowing leaves it a BigInt. */
class BigExt {
  constructor(readonly value: bigint) {}
}

/** The ext types: `wrapBig` marks ext-1 integers for `narrow`. */
function extensions(wrapBig: boolean): ExtensionCodecType<undefined> {
  return {
    tryToEncode(object: unknown): ExtData | null {
      if (object instanceof ExtData) return object; // made by prepare()
      if (object instanceof LuaFunction) return new ExtData(EXT_FUNCTION, utf8.encode(object.source));
      return null;
    },
    decode(data: Uint8Array, type: number): unknown {
      switch (type) {
        case EXT_BIGINT: {
          const text = utf8Lossy.decode(data);
          if (!/^-?[0-9]+$/.test(text)) {
            throw clientError("DecodeError", `ext type 1 (big integer) holds ${JSON.stringify(text)}, not a decimal integer`);
          }
          return wrapBig ? new BigExt(BigInt(text)) : BigInt(text);
        }
        case EXT_FUNCTION:
          try {
            return new LuaFunction(utf8Strict.decode(data));
          } catch {
            throw clientError("DecodeError", "ext type 2 (Lua function) holds source that is not UTF-8");
          }
        default:
          throw clientError("DecodeError", `unknown MessagePack ext type ${type} (luapool uses 1 and 2)`);
      }
    },
  };
}

const encoder = new Encoder({
  extensionCodec: extensions(false),
  useBigInt64: true,
  ignoreUndefined: true,
  maxDepth: MAX_DEPTH + 16,
});

function mapKey(key: unknown): string | number {
  if (typeof key === "string" || typeof key === "number") return key;
  if (key instanceof Uint8Array) return utf8Lossy.decode(key);
  return String(key);
}

const plainDecoder = new Decoder({ extensionCodec: extensions(false), mapKeyConverter: mapKey });
const bigDecoder = new Decoder({ extensionCodec: extensions(true), mapKeyConverter: mapKey, useBigInt64: true });

/** Encodes a value that `prepare` has checked (or that holds no data). */
export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/**
 * Decodes one MessagePack value. `wide` says the bytes hold 64-bit integers
 * (the frame scanner knows): they are decoded exactly, then narrowed to
 * numbers where that loses nothing. Throws `DecodeError`.
 */
export function decode(bytes: Uint8Array, wide = true): unknown {
  try {
    return wide ? narrow(bigDecoder.decode(bytes)) : plainDecoder.decode(bytes);
  } catch (e) {
    if (e instanceof LuapoolError) throw e;
    throw clientError("DecodeError", `cannot decode a reply: ${(e as Error).message}`);
  }
}

/** Safe-integer bigints become numbers, in place (the value is fresh);
 * ext-1 integers stay bigints. */
function narrow(v: unknown): unknown {
  if (v instanceof BigExt) return v.value;
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = narrow(v[i]);
  } else if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof LuaFunction)) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = narrow(o[k]);
  }
  return v;
}

/**
 * Checks that `value` can cross the wire and returns what to encode: the
 * value itself, or (copied on write) with big integers as ext values.
 * `what` names the value in the error ("input", "metadata").
 */
export function prepare(value: unknown, what: string): unknown {
  return walk(value, 0, new Set(), [what]);
}

function fail(path: (string | number)[], why: string): never {
  const where = path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`))
    .join("");
  throw clientError("InvalidValue", `cannot send ${where}: ${why}`);
}

function describe(v: object): string {
  const name: unknown = v.constructor?.name;
  if (typeof name !== "string" || name === "") return "an object with a prototype";
  return /^[AEIOU]/.test(name) ? `an ${name}` : `a ${name}`;
}

/** Whether `s` is valid Unicode (no lone surrogate): only then does it
 * have a UTF-8 form (Node 20 has `isWellFormed`; ES2024 declares it). */
function wellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

const LONE_SURROGATE = "a string with a lone surrogate (not valid Unicode, so not UTF-8) cannot cross the wire";

function walk(v: unknown, depth: number, open: Set<object>, path: (string | number)[]): unknown {
  switch (typeof v) {
    case "string":
      return wellFormed(v) ? v : fail(path, LONE_SURROGATE);
    case "boolean":
    case "number":
    case "undefined":
      return v;
    case "bigint": {
      if (v >= INT64_MIN && v <= INT64_MAX) return v;
      const text = v.toString();
      const digits = text.length - (v < 0n ? 1 : 0);
      if (digits > MAX_BIGINT_DIGITS) {
        return fail(path, `a bigint of ${digits} digits is over the daemon's limit of ${MAX_BIGINT_DIGITS} digits`);
      }
      return new ExtData(EXT_BIGINT, utf8.encode(text));
    }
    case "function":
      return fail(path, "a function cannot cross the wire (send Lua source as a LuaFunction)");
    case "symbol":
      return fail(path, "a symbol cannot cross the wire");
  }
  if (v === null) return v;
  if (v instanceof LuaFunction) {
    if (!wellFormed(v.source)) return fail(path, `its source: ${LONE_SURROGATE}`);
    // The daemon refuses it: write \0 inside a Lua string instead.
    return v.source.includes("\0") ? fail(path, "its source holds a NUL byte (write \\0 inside a string)") : v;
  }
  const obj = v as object;
  if (obj instanceof Uint8Array) return obj;
  if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer) {
    return fail(path, `${describe(obj)} cannot cross the wire (bytes go as a Uint8Array)`);
  }
  if (depth >= MAX_DEPTH) return fail(path, `nested more than ${MAX_DEPTH} levels deep`);
  if (open.has(obj)) return fail(path, "a cycle (the value contains itself)");
  open.add(obj);
  let out: unknown = obj;
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      const item: unknown = obj[i];
      if (item === undefined) {
        fail([...path, i], "undefined in an array (use null for nil)");
      }
      path.push(i);
      const p = walk(item, depth + 1, open, path);
      path.pop();
      if (p !== item) {
        if (out === obj) out = obj.slice();
        (out as unknown[])[i] = p;
      }
    }
  } else {
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      fail(path, `${describe(obj)} cannot cross the wire (use a plain object, array, string, number, boolean or null)`);
    }
    const rec = obj as Record<string, unknown>;
    for (const key of Object.keys(rec)) {
      const item = rec[key];
      path.push(key);
      if (!wellFormed(key)) fail(path, `its key: ${LONE_SURROGATE}`);
      const p = walk(item, depth + 1, open, path);
      path.pop();
      if (p !== item) {
        if (out === obj) out = { ...rec };
        (out as Record<string, unknown>)[key] = p;
      }
    }
  }
  open.delete(obj);
  return out;
}
