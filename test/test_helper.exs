# Tests of one tracing path run on the OTP that has it: :trace_sessions (ElixirScope's
# own trace session) on OTP 27+, :legacy_tracing (the one shared tracing state, one
# tracer per process) before.
{path, other} =
  if ElixirScope.Test.TraceState.sessions?(),
    do: {"trace sessions", :legacy_tracing},
    else: {"the legacy tracing state", :trace_sessions}

IO.puts(
  "OTP #{System.otp_release()}, Elixir #{System.version()}: tracing through #{path}; " <>
    "tests tagged #{inspect(other)} are excluded"
)

ExUnit.start(exclude: [other])
