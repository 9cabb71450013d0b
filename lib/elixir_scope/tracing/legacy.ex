defmodule ElixirScope.Tracing.Legacy do
  @moduledoc false
  # OTP < 27: the runtime has one tracing state, shared with every other tool. A process
  # has one tracer: one that another tool (:dbg, recon) traces is left to it, and
  # `erlang:trace(all, ...)` skips such processes. Trace patterns are global: another
  # tool's pattern on a function replaces ours, and recon's clear, redbug's stop and
  # :dbg.stop_clear/0 remove every flag and pattern, ours included (ElixirScope.Tracing's
  # watchdog notices and re-arms what is still free).
  #
  # The same functions as ElixirScope.Tracing.Session, so Tracing picks one at start.

  @doc false
  # The `{:tracer, ...}` flag that names `tracer` ({module, state} or a pid).
  def open({module, state}), do: {:tracer, module, state}
  def open(pid) when is_pid(pid), do: {:tracer, pid}

  @doc false
  # Removes this tracer from every process (and from new ones) and the patterns given
  # ({:meta, mfa}: a meta pattern).
  def close(handle, patterns) do
    if holder(handle, :new) == :ours, do: :erlang.trace(:new, false, [:all])

    for pid <- Process.list(),
        holder(handle, pid) == :ours,
        do: process(handle, pid, false, [:all])

    for pattern <- patterns do
      case pattern do
        {:meta, mfa} -> meta(handle, mfa, false)
        mfa -> function(handle, mfa, false)
      end
    end

    :ok
  end

  @doc false
  def process(handle, who, true, flags), do: trace(who, true, [handle | flags])
  def process(_handle, who, false, flags), do: trace(who, false, flags)

  defp trace(who, on, flags) do
    :erlang.trace(who, on, flags)
    :ok
  rescue
    # a process that ended meanwhile
    ArgumentError -> :ok
  end

  @doc false
  def function(_handle, mfa, match_spec) do
    :erlang.trace_pattern(mfa, match_spec, [:local])
    :ok
  end

  @doc false
  # A meta pattern: the function's calls in every process, reported to this tracer with
  # no process's flags set (false removes it).
  def meta(handle, mfa, false) do
    if meta_spec(handle, mfa) not in [false, :other],
      do: :erlang.trace_pattern(mfa, false, [:meta])

    :ok
  end

  def meta(handle, mfa, match_spec) do
    :erlang.trace_pattern(mfa, match_spec, [{:meta, tracer_module(handle), tracer_state(handle)}])
    :ok
  end

  @doc false
  # The match spec of this tracer's meta pattern on a function, false when it has none,
  # :other when another tracer's meta pattern is there.
  def meta_spec(handle, mfa) do
    case :erlang.trace_info(mfa, :meta) do
      {:meta, false} ->
        false

      {:meta, tracer} ->
        if ours?(handle, {:tracer, tracer}) do
          {:meta_match_spec, ms} = :erlang.trace_info(mfa, :meta_match_spec)
          ms
        else
          :other
        end

      _undefined ->
        false
    end
  end

  defp tracer_module({:tracer, m, _}), do: m
  defp tracer_state({:tracer, _, s}), do: s

  @doc false
  # :free, :ours, {:other, tracer} (another tool's) or :dead. `pid` may be :new.
  def holder(handle, pid) do
    case safe_trace_info(pid) do
      :undefined -> :dead
      {:tracer, []} -> :free
      {:tracer, other} = info -> if ours?(handle, info), do: :ours, else: {:other, other}
    end
  end

  defp safe_trace_info(pid) do
    :erlang.trace_info(pid, :tracer)
  rescue
    ArgumentError -> :undefined
  end

  defp ours?({:tracer, m, s}, {:tracer, {m, t}}), do: t == s
  defp ours?({:tracer, pid}, {:tracer, pid}), do: true
  defp ours?(_, _), do: false

  @doc false
  def match_spec(_handle, mfa) do
    {:match_spec, ms} = :erlang.trace_info(mfa, :match_spec)
    ms
  end
end
