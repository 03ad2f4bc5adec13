-- Best Practice 1: Clear State Between Requests. The host calls clear_io()
-- before each request; this script shows what a request then sees: only the
-- new input, no output or metadata left over from the previous one.
--   luapool run examples/bp1_clear_state.lua --input examples/processing_arrays.json
-- prints {"hadMeta": false, "hadOutput": false, "numbers": 5}.
_io.output = {
  hadOutput = _io.output ~= nil,
  hadMeta = _io.meta ~= nil,
  numbers = _io.input and #_io.input.numbers or 0
}
