/**
 * Errors: every failure is a `LuapoolError` carrying `kind`. The daemon's
 * error kinds (docs/protocol.md, "Errors") each have a class; so do the
 * client's own failures (ConnectFailed, ConnectionClosed, InvalidValue,
 * DecodeError). A kind this client does not know yet becomes a plain
 * `LuapoolError` with that kind.
 */

/** The error map the daemon sends: at least `kind` and `message`. */
export interface ErrorDetails {
  kind: string;
  message: string;
  [field: string]: unknown;
}

/** Base class of every error this package throws. */
export class LuapoolError extends Error {
  /** The daemon's (or the client's) error kind, e.g. "LuaError". */
  readonly kind: string;
  /** The whole error map as the daemon sent it (or the client made it). */
  readonly details: ErrorDetails;

  constructor(details: ErrorDetails) {
    super(details.message);
    this.kind = details.kind;
    this.details = details;
    this.name = new.target === LuapoolError ? "LuapoolError" : new.target.name;
  }
}

/** The script raised an error or did not compile; `traceback` says where. */
export class LuaError extends LuapoolError {
  /** The Lua traceback at the point of the error. */
  get traceback(): string {
    return typeof this.details.traceback === "string" ? this.details.traceback : "";
  }
}
/** The compute ran past its wall-clock limit, CPU time or instruction budget. */
export class TimeoutError extends LuapoolError {}
/** The worker's Lua heap limit was reached. */
export class MemoryLimitError extends LuapoolError {}
/** The session's store quota would have been exceeded. */
export class QuotaExceededError extends LuapoolError {}
/** The worker process died during the compute (the daemon replaced it). */
export class WorkerCrashedError extends LuapoolError {}
/** The compute was cancelled (`session.cancel()` or the client went away). */
export class CancelledError extends LuapoolError {}
/** Every worker is busy and the queue is full: retry later. */
export class BusyError extends LuapoolError {}
/** The pool is stopping, or gave up respawning crashed workers. */
export class UnavailableError extends LuapoolError {}
/** A return value of the compute could not be converted. */
export class BadResultError extends LuapoolError {}
/** The daemon refused the request as malformed. */
export class BadRequestError extends LuapoolError {}
/** The daemon has no such method. */
export class UnknownMethodError extends LuapoolError {}
/** No such session is open on this connection. */
export class UnknownSessionError extends LuapoolError {}
/** TCP without (or with a wrong) token. */
export class UnauthorizedError extends LuapoolError {}
/** The daemon is shutting down. */
export class ShuttingDownError extends LuapoolError {}
/** Another store failure (nesting too deep, a cycle in the output). */
export class StoreError extends LuapoolError {}
/** The daemon could not do something it should have. */
export class InternalError extends LuapoolError {}
/** A bound of the daemon was reached (`limit` names it, `value` is its
 * value), or a compute option asked for more than the daemon allows. */
export class LimitReachedError extends LuapoolError {
  /** The limit's name, e.g. "sessions_per_connection" (undefined if none). */
  get limit(): string | undefined {
    return typeof this.details.limit === "string" ? this.details.limit : undefined;
  }
  /** The limit's value (undefined if none). */
  get value(): number | undefined {
    return typeof this.details.value === "number" ? this.details.value : undefined;
  }
}
/** A value the compute copied out of Lua passed the conversion limit. */
export class TooLargeError extends LuapoolError {}
/** A reply's data would pass the daemon's output limit (`--max-output`). */
export class OutputTooLargeError extends LuapoolError {}
/** A new home name past the daemon's `--max-homes`. */
export class TooManyHomesError extends LuapoolError {}
/** `dropHome` or `importHome` of a home that a session holds. */
export class HomeInUseError extends LuapoolError {}
/** `exportHome` of a home that does not exist. */
export class HomeNotFoundError extends LuapoolError {}
/** A method served on the operator's socket only (`listHomes`). */
export class OperatorOnlyError extends LuapoolError {}
/** `compute` named a script by digest that this connection has not loaded
 * (`loadScript` it again: after a reconnect, say). */
export class NoScriptError extends LuapoolError {}
/** Daemons sharing a PostgreSQL home store: another daemon committed to the
 * compute's home first each time it ran (`--conflict-retries`); nothing was kept. */
export class ConflictError extends LuapoolError {}

/** Client side: the daemon could not be reached at connect. */
export class ConnectFailedError extends LuapoolError {}
/** Client side: the connection closed before the reply came. */
export class ConnectionClosedError extends LuapoolError {}
/** Client side: a value that cannot cross the wire; nothing was sent. */
export class InvalidValueError extends LuapoolError {}
/** Client side: a reply that this client cannot decode. */
export class DecodeError extends LuapoolError {}

const CLASSES: Record<string, new (d: ErrorDetails) => LuapoolError> = {
  LuaError,
  Timeout: TimeoutError,
  MemoryLimit: MemoryLimitError,
  QuotaExceeded: QuotaExceededError,
  WorkerCrashed: WorkerCrashedError,
  Cancelled: CancelledError,
  Busy: BusyError,
  Unavailable: UnavailableError,
  BadResult: BadResultError,
  BadRequest: BadRequestError,
  UnknownMethod: UnknownMethodError,
  UnknownSession: UnknownSessionError,
  Unauthorized: UnauthorizedError,
  ShuttingDown: ShuttingDownError,
  StoreError,
  Internal: InternalError,
  LimitReached: LimitReachedError,
  TooLarge: TooLargeError,
  OutputTooLarge: OutputTooLargeError,
  TooManyHomes: TooManyHomesError,
  HomeInUse: HomeInUseError,
  HomeNotFound: HomeNotFoundError,
  OperatorOnly: OperatorOnlyError,
  NoScript: NoScriptError,
  Conflict: ConflictError,
  ConnectFailed: ConnectFailedError,
  ConnectionClosed: ConnectionClosedError,
  InvalidValue: InvalidValueError,
  DecodeError,
};

/** The error for an error map from the daemon (any shape is tolerated). */
export function fromWire(error: unknown): LuapoolError {
  const map = error !== null && typeof error === "object" ? (error as Record<string, unknown>) : {};
  const kind = typeof map.kind === "string" ? map.kind : "Unknown";
  const message =
    typeof map.message === "string" ? map.message : `daemon error ${JSON.stringify(String(error))}`;
  return makeError({ ...map, kind, message });
}

/** The error of the class for `details.kind` (LuapoolError if unknown). */
export function makeError(details: ErrorDetails): LuapoolError {
  const Class = Object.prototype.hasOwnProperty.call(CLASSES, details.kind)
    ? CLASSES[details.kind]
    : LuapoolError;
  return new Class(details);
}

/** A client-side error of `kind`. */
export function clientError(kind: string, message: string): LuapoolError {
  return makeError({ kind, message });
}
