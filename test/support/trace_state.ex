defmodule ElixirScope.Test.TraceState do
  @moduledoc """
  What ElixirScope has set in the runtime's tracing state, read where the running OTP
  keeps it: in ElixirScope's own trace session on OTP 27+ (`:trace.info/3` of the
  session named `:elixir_scope`), in the one shared state before (`:erlang.trace_info/2`
  of processes whose tracer is ElixirScope's). A reader of the real runtime state, so
  the same assertions hold, and can fail, on both.
  """

  @compile {:no_warn_undefined, :trace}

  @doc "True on OTP 27+, where ElixirScope traces through a session of its own."
  def sessions?, do: String.to_integer(System.otp_release()) >= 27

  @doc "ElixirScope's session (its weak handle), or nil when there is none."
  def session do
    if sessions?(), do: Enum.find(:trace.session_info(:all), &match?({:elixir_scope, _}, &1))
  end

  @doc "The trace flags ElixirScope set on a process (or `:new`); [] when none."
  def flags(pid) do
    if sessions?() do
      case session() do
        nil -> []
        s -> with({:flags, flags} <- :trace.info(s, pid, :flags), do: flags, else: (_ -> []))
      end
    else
      if ours?(pid), do: elem(:erlang.trace_info(pid, :flags), 1), else: []
    end
  end

  @doc "Whether ElixirScope traces a process (or `:new`) at all."
  def ours?(pid) do
    if sessions?(),
      do: flags(pid) != [],
      else: match?({:tracer, {ElixirScope.Native, _}}, legacy_tracer(pid))
  end

  @doc "The match spec ElixirScope's pattern gives a function; false when none."
  def match_spec(mfa), do: function_info(mfa, :match_spec)

  @doc "Whether the function has a pattern of ElixirScope's: :local, or false."
  def traced(mfa), do: function_info(mfa, :traced)

  defp function_info(mfa, item) do
    if sessions?() do
      case session() do
        nil -> false
        s -> elem(:trace.info(s, mfa, item), 1)
      end
    else
      elem(:erlang.trace_info(mfa, item), 1)
    end
  end

  defp legacy_tracer(pid) do
    :erlang.trace_info(pid, :tracer)
  rescue
    ArgumentError -> :undefined
  end
end
