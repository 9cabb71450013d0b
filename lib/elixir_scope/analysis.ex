defmodule ElixirScope.Analysis do
  @moduledoc """
  Performance questions about the recording: how long a module's functions take, which
  calls were slowest, and how calls nested.

  Durations are in native time units (`System.convert_time_unit/3` turns them into
  what you like) and are measured in the traced process, from a call to its return,
  by the tracer in C. Aggregations run in C over one index chain (the module's, or
  the chain of `:return` events), on a dirty scheduler.

      ElixirScope.trace_module(MyApp.Pricing)
      # ... let the application work ...
      ElixirScope.performance_analysis(MyApp.Pricing)
      #=> [%{function: :quote, arity: 2, calls: 1200, returns: 1198, exceptions: 2,
      #      total: ..., mean: ..., p50: ..., p90: ..., p99: ..., max: ...}, ...]
  """

  alias ElixirScope.{Native, TraceDB}

  @doc """
  Statistics per function of `module`: `:calls`, `:returns`, `:exceptions`, and over
  the completed ones `:total`, `:mean`, `:p50`, `:p90`, `:p99` and `:max` durations.
  Percentiles are nearest-rank (the smallest duration with at least that share of all
  durations at or below it), read from a histogram: within 6.25% of the exact value,
  never above `:max`. Sorted by total time, largest first.
  """
  @spec performance_analysis(module(), keyword()) :: [map()]
  def performance_analysis(module, opts \\ []) do
    unless is_atom(module),
      do: raise(ArgumentError, "performance_analysis/1 expects a module, got: #{inspect(module)}")

    store(opts) |> Native.perf(module) |> Enum.sort_by(& &1.total, :desc)
  end

  @doc """
  The slowest completed calls, slowest first: their `:return` (or `:exception`) events
  with `:duration`, `:pid`, `:result` (or `:class` and `:reason`) and the call's `:args`.

  Options: `limit:` (default 10), `module:` to look at one module only, `store:`.
  """
  @spec slowest_function_calls(keyword()) :: [map()]
  def slowest_function_calls(opts \\ []) do
    limit = Keyword.get(opts, :limit, 10)
    module = Keyword.get(opts, :module)

    unless is_integer(limit) and limit >= 0 and limit <= 100_000,
      do: raise(ArgumentError, "limit must be an integer in 0..100000, got: #{inspect(limit)}")

    unless is_atom(module),
      do: raise(ArgumentError, "module must be an atom, got: #{inspect(module)}")

    store(opts) |> Native.slowest(limit, module) |> Enum.map(&ElixirScope.Event.wrap/1)
  end

  @doc """
  The calls of a process as a tree (as erlang_doctor's call trees): each node has
  `:module`, `:function`, `:arity`, `:args`, the outcome (`:result`, or `:class` and
  `:reason`), `:duration`, `:call_id` and `:children` in call order. Calls still running
  have `:result` `:running` and no duration.

  Given a pid: every traced call of that process (top-level calls in order). Given the
  id of a `:call` event: the tree under that one call.
  """
  @spec call_tree(pid() | pos_integer(), keyword()) :: [map()] | map() | nil
  def call_tree(pid_or_call_id, opts \\ [])

  def call_tree(pid, opts) when is_pid(pid), do: build(call_events(pid, [], opts))

  def call_tree(call_id, opts) when is_integer(call_id) and call_id > 0 do
    case Native.get(store(opts), call_id) do
      %{type: :call, pid: pid} ->
        pid
        |> call_events([after_id: call_id - 1], opts)
        |> build()
        |> Enum.find(&(&1.call_id == call_id))

      _ ->
        nil
    end
  end

  def call_tree(other, _opts),
    do:
      raise(
        ArgumentError,
        "call_tree/1 expects a pid or a :call event id, got: #{inspect(other)}"
      )

  defp call_events(pid, extra, opts) do
    filters =
      [pid: pid] ++ extra ++ Keyword.take(opts, [:store, :timestamp_start, :timestamp_end])

    [:call, :return, :exception]
    |> Enum.flat_map(&TraceDB.query_events([type: &1] ++ filters))
    |> Enum.sort_by(&{&1.timestamp, &1.id})
  end

  # Calls open nodes; a return or exception closes the node of its call_id.
  defp build(events) do
    {roots, stack} =
      Enum.reduce(events, {[], []}, fn
        %{type: :call} = call, {roots, stack} ->
          {roots, [open_node(call) | stack]}

        %{call_id: id} = done, {roots, [%{call_id: id} = open | rest]} ->
          close(finish(open, done), roots, rest)

        _unmatched, acc ->
          acc
      end)

    unwind(stack, roots)
  end

  # Calls without a return yet (or whose return was pruned) stay in the tree.
  defp unwind([], roots), do: Enum.reverse(roots)

  defp unwind([open | rest], roots) do
    {roots, rest} = close(open, roots, rest)
    unwind(rest, roots)
  end

  defp close(node, roots, [parent | rest]),
    do: {roots, [%{parent | children: parent.children ++ [node]} | rest]}

  defp close(node, roots, []), do: {[node | roots], []}

  defp open_node(call) do
    %{
      call_id: call.id,
      pid: call.pid,
      module: call.module,
      function: call.function,
      arity: call.arity,
      args: call[:args],
      timestamp: call.timestamp,
      result: :running,
      duration: nil,
      children: []
    }
  end

  defp finish(node, %{type: :return} = ret),
    do: %{node | result: ret[:result], duration: ret[:duration]}

  defp finish(node, exc) do
    node
    |> Map.merge(%{result: :exception, duration: exc[:duration]})
    |> Map.merge(Map.take(exc, [:class, :reason]))
  end

  defp store(opts), do: TraceDB.store!(Keyword.get(opts, :store, TraceDB))
end
