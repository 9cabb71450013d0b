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

  alias ElixirScope.TraceDB

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

    module |> TraceDB.perf(name(opts)) |> Enum.sort_by(& &1.total, :desc)
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

    limit |> TraceDB.slowest(module, name(opts)) |> Enum.map(&ElixirScope.Event.wrap/1)
  end

  @doc """
  The calls of a process as a tree (as erlang_doctor's call trees): each node has
  `:module`, `:function`, `:arity`, `:args`, the outcome (`:result`, or `:class` and
  `:reason`), `:duration`, `:call_id` and `:children` in call order. Calls still running
  have `:result` `:running` and no duration. A `:return` or `:exception` closes the
  innermost open call when its `:call_id` names it. The tree is built in C, in one walk
  of the process's calls and returns, decoding only the fields the nodes show.

  Given a pid: every traced call of that process (top-level calls in order). Given the
  id of a `:call` event: the tree under that one call. Options: `:timestamp_start`,
  `:timestamp_end`, `:store`.
  """
  @spec call_tree(pid() | pos_integer(), keyword()) :: [map()] | map() | nil
  def call_tree(pid_or_call_id, opts \\ [])

  def call_tree(pid, opts) when is_pid(pid), do: TraceDB.call_tree(pid, bounds(opts), name(opts))

  def call_tree(call_id, opts) when is_integer(call_id) and call_id > 0 do
    case TraceDB.get(call_id, name(opts)) do
      %{type: :call, pid: pid} ->
        pid
        |> TraceDB.call_tree([after_id: call_id - 1] ++ bounds(opts), name(opts))
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

  defp bounds(opts), do: Keyword.take(opts, [:timestamp_start, :timestamp_end])
  defp name(opts), do: Keyword.get(opts, :store, TraceDB)
end
