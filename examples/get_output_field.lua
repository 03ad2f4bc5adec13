-- getOutputField(key): a host reads one field of the output
-- (session.get_output_field("status") is "ok"; a missing field is null).
--   luapool run examples/get_output_field.lua
_io.output = {
  status = "ok",
  data = { huge = "dataset" },
  timestamp = 1234567890
}
