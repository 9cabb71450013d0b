defmodule ElixirScope.Tracing.Session do
  @moduledoc false
  # OTP 27+: everything ElixirScope sets in the runtime's tracing state — process flags,
  # trace patterns, lifecycle — lives in a trace session of its own, whose tracer is the
  # NIF tracer. :dbg, recon, redbug, LiveDebugger and the legacy :erlang.trace/3 API
  # have sessions of their own: a process can be traced by all of them at once, and none
  # sees or clears what another set. The session dies with its handle (when the term is
  # garbage-collected), so the Tracing process, which holds it, takes it along when it
  # ends. Garbage collection is never traced from it: two sessions tracing one process's
  # garbage collection can crash the emulator on OTP 27-29 (erlang/otp#11624).
  #
  # The same functions as ElixirScope.Tracing.Legacy, so Tracing picks one at start.

  @compile {:no_warn_undefined, :trace}

  @doc false
  # A session whose tracer is `tracer`: {module, state} or a pid.
  def open(tracer), do: :trace.session_create(:elixir_scope, tracer, [])

  @doc false
  # Everything the session set goes with it.
  def close(session, _patterns) do
    :trace.session_destroy(session)
    :ok
  end

  @doc false
  def process(session, who, on, flags) do
    :trace.process(session, who, on, flags)
    :ok
  rescue
    # a process that ended meanwhile
    ArgumentError -> :ok
  end

  @doc false
  def function(session, mfa, match_spec) do
    :trace.function(session, mfa, match_spec, [:local])
    :ok
  end

  @doc false
  # A meta pattern in the session: the function's calls in every process, with no
  # process's flags set (false removes it).
  def meta(session, mfa, match_spec) do
    :trace.function(session, mfa, match_spec, [:meta])
    :ok
  end

  @doc false
  def meta_spec(session, mfa) do
    case :trace.info(session, mfa, :meta_match_spec) do
      {:meta_match_spec, ms} when is_list(ms) -> ms
      _ -> false
    end
  end

  @doc false
  # Within the session every process is free to trace. `pid` may be :new.
  def holder(session, pid) do
    case :trace.info(session, pid, :flags) do
      {:flags, []} -> :free
      {:flags, _} -> :ours
      _ -> :dead
    end
  end

  @doc false
  def match_spec(session, mfa) do
    {:match_spec, ms} = :trace.info(session, mfa, :match_spec)
    ms
  end
end
