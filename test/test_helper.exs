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

# The persister's last write on erlang:halt/0,1 needs OTP 26+ (ERL_NIF_OPT_ON_HALT).
halt_flush = if String.to_integer(System.otp_release()) < 26, do: [:halt_flush], else: []
if halt_flush != [], do: IO.puts("OTP < 26: tests tagged :halt_flush are excluded")

phoenix_app =
  if ElixirScope.Test.PhoenixApp.available?() do
    []
  else
    IO.puts(ElixirScope.Test.PhoenixApp.skip_reason())
    [:phoenix_app]
  end

ExUnit.start(exclude: [other | halt_flush ++ phoenix_app])
