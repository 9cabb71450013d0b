defmodule ElixirScope.Tracing.Patterns do
  @moduledoc false
  # The trace patterns ElixirScope.Tracing sets, derived from what it was asked to trace
  # (its state's :modules, :functions, :genservers, :calls_only and :meta): which
  # patterns and meta patterns each module should carry, which match spec a function
  # should have, and setting them through the OTP release's backend. Tracing keeps the
  # state; this module only reads it (set/2 also notes the module's md5, for reloads).

  alias ElixirScope.Tracing.GenServers

  # Return-tracing match spec: the message marker tells the C tracer that this call
  # pushed a return frame (c_src/nif/tracer.h). Calls only: no frame, no marker.
  @returns_ms [
    {:_, [], [{:return_trace}, {:exception_trace}, {:message, :"$elixir_scope_returns"}]}
  ]
  @calls_only_ms [{:_, [], []}]

  def calls_only_ms, do: @calls_only_ms

  # The patterns a module should carry, in the order they are set (a later one wins on
  # the functions it covers): the whole module, functions traced one by one, the
  # callbacks of watched GenServers, functions switched to calls only.
  def of(state, m) do
    module = for {^m, returns} <- state.modules, do: {{m, :_, :_}, match_spec(returns)}
    functions = for {{^m, _, _} = mfa, returns} <- state.functions, do: {mfa, match_spec(returns)}

    callbacks =
      if m in Map.values(state.genservers),
        do: for({f, a} <- GenServers.callbacks(), do: {{m, f, a}, @returns_ms}),
        else: []

    calls_only = for {^m, _, _} = mfa <- state.calls_only, do: {mfa, @calls_only_ms}
    module ++ Enum.sort(functions) ++ callbacks ++ Enum.sort(calls_only)
  end

  defp match_spec(true), do: @returns_ms
  defp match_spec(false), do: @calls_only_ms

  # Every key the backend set for a module (the meta ones as {:meta, mfa}).
  def keys(state, m),
    do:
      for({key, _} <- of(state, m), do: key) ++
        for({mfa, _} <- metas(state, m), do: {:meta, mfa})

  # The meta patterns a module should carry: its meta-traced functions, but those that
  # trace_module/trace_function trace with a pattern of their own (`nil`: removed).
  def metas(state, m) do
    for {^m, _, _} = mfa <- state.meta do
      if Map.has_key?(state.modules, m) or Map.has_key?(state.functions, mfa),
        do: {mfa, nil},
        else: {mfa, @returns_ms}
    end
  end

  # The match spec a function gets from ElixirScope, or nil.
  def expected_match_spec(state, {m, f, a}) do
    of(state, m)
    |> Enum.filter(fn {{_, pf, pa}, _} -> pf in [:_, f] and pa in [:_, a] end)
    |> List.last()
    |> case do
      nil -> nil
      {_, ms} -> ms
    end
  end

  def returns_traced?(state, mfa), do: expected_match_spec(state, mfa) == @returns_ms

  # Meta patterns a process pattern replaces go first, and those it no longer does come
  # back last: a call is never recorded twice (at worst, not at all meanwhile).
  def set(state, m) do
    metas = metas(state, m)
    for {mfa, nil} <- metas, do: state.backend.meta(state.handle, mfa, false)

    case of(state, m) do
      [] when metas == [] ->
        %{state | loaded: Map.delete(state.loaded, m)}

      patterns ->
        for {key, ms} <- patterns, do: state.backend.function(state.handle, key, ms)
        for {mfa, ms} <- metas, ms != nil, do: state.backend.meta(state.handle, mfa, ms)
        %{state | loaded: Map.put(state.loaded, m, md5(m))}
    end
  end

  # Every module that carries a pattern of ElixirScope's.
  def modules(state) do
    Enum.uniq(
      Map.keys(state.modules) ++
        Enum.map(Map.keys(state.functions), &elem(&1, 0)) ++
        Map.values(state.genservers) ++
        Enum.map(state.calls_only, &elem(&1, 0)) ++ Enum.map(state.meta, &elem(&1, 0))
    )
  end

  # The loaded code's md5 (a reload changes it), nil when the module is gone.
  def md5(m) do
    m.module_info(:md5)
  rescue
    UndefinedFunctionError -> nil
  end
end
