defmodule Bench.EtsQueries do
  @moduledoc false
  # The ElixirScope query functions (message_flow, state_timeline, execution_path,
  # get_state_at, get_events_between, performance_analysis, slowest_function_calls)
  # written over the two plain-ETS stores of bench/store_bench.exs:
  #
  #   orig_* — Bench.OrigStore's table ({id, event} in a :set): :ets.tab2list, then
  #            filter and sort in Elixir, as the original ElixirScope did;
  #   best_* — Bench.BestEts: index lookups (:ets.select on the bound key of a
  #            :duplicate_bag), sort the {timestamp, id} keys, fetch the events.
  #
  # Both return what ElixirScope returns (same maps, same order); state timelines
  # compute their diffs with ElixirScope.diff/2, the C diff ElixirScope itself uses.
  # Performance statistics are computed in Elixir over the module's :return events:
  # exact percentiles by nearest rank (the smallest value with at least q of all values
  # at or below it), the rank ElixirScope's histogram uses.

  alias Bench.BestEts

  ## original: tab2list + filter + sort ---------------------------------------------

  defp all(tab), do: tab |> :ets.tab2list() |> Enum.map(fn {_id, event} -> event end)

  defp by_time(events), do: Enum.sort_by(events, &{&1.timestamp, &1.id})

  def orig_message_flow(tab, a, b) do
    tab
    |> all()
    |> Enum.filter(fn e ->
      e.type == :send and
        ((e[:from_pid] == a and e[:to_pid] == b) or (e[:from_pid] == b and e[:to_pid] == a))
    end)
    |> by_time()
  end

  def orig_state_timeline(tab, pid) do
    tab
    |> all()
    |> Enum.filter(&(&1.type == :state and &1[:pid] == pid))
    |> by_time()
    |> with_diffs()
  end

  # "The process the event is about": :pid, or :from_pid for messages.
  def orig_execution_path(tab, pid) do
    tab
    |> all()
    |> Enum.filter(&(&1[:pid] == pid or &1[:from_pid] == pid))
    |> by_time()
  end

  def orig_get_state_at(tab, pid, ts) do
    tab
    |> all()
    |> Enum.filter(&(&1.type == :state and &1[:pid] == pid and &1.timestamp <= ts))
    |> Enum.max_by(&{&1.timestamp, &1.id}, fn -> nil end)
    |> state_result()
  end

  def orig_events_between(tab, t1, t2) do
    tab
    |> all()
    |> Enum.filter(&(&1.timestamp >= t1 and &1.timestamp <= t2))
    |> by_time()
  end

  def orig_perf(tab, module) do
    tab
    |> all()
    |> Enum.filter(&(&1.type == :return and &1[:module] == module))
    |> perf_stats()
  end

  def orig_slowest(tab, module, limit) do
    tab
    |> all()
    |> Enum.filter(&(&1.type == :return and &1[:module] == module and timed?(&1)))
    |> slowest_of(limit)
  end

  ## best plain ETS: index lookups + sort + fetch ------------------------------------

  defp fetch(keys, s), do: keys |> Enum.sort() |> Enum.map(&:ets.lookup_element(s.events, &1, 2))

  def best_message_flow(s, a, b) do
    ab = :ets.select(s.by_pair, [{{{a, b}, :"$1"}, [], [:"$1"]}])
    ba = :ets.select(s.by_pair, [{{{b, a}, :"$1"}, [], [:"$1"]}])
    (ab ++ ba) |> fetch(s) |> Enum.filter(&(&1.type == :send))
  end

  def best_state_timeline(s, pid), do: s |> BestEts.state_history(pid) |> with_diffs()

  def best_execution_path(s, pid),
    do: s.by_pid |> :ets.select([{{pid, :_, :"$1"}, [], [:"$1"]}]) |> fetch(s)

  # {ts, id} =< {ts, :infinity} for every id: numbers sort before atoms.
  def best_get_state_at(s, pid, ts) do
    s.by_pid
    |> :ets.select([{{pid, :state, :"$1"}, [{:"=<", :"$1", {:const, {ts, :infinity}}}], [:"$1"]}])
    |> case do
      [] -> nil
      keys -> :ets.lookup_element(s.events, Enum.max(keys), 2)
    end
    |> state_result()
  end

  def best_events_between(s, t1, t2), do: BestEts.time_range(s, t1, t2)

  defp module_returns(s, module),
    do:
      s.by_module
      |> :ets.select([{{module, :_, :return, :"$1"}, [], [:"$1"]}])
      |> Enum.map(&:ets.lookup_element(s.events, &1, 2))

  def best_perf(s, module), do: s |> module_returns(module) |> perf_stats()

  def best_slowest(s, module, limit),
    do: s |> module_returns(module) |> Enum.filter(&timed?/1) |> slowest_of(limit)

  ## shared ----------------------------------------------------------------------------

  def with_diffs(states) do
    {entries, _} =
      Enum.map_reduce(states, :none, fn event, previous ->
        diff = if previous == :none, do: nil, else: ElixirScope.diff(previous, event.state)
        {Map.put(event, :diff, diff), event.state}
      end)

    entries
  end

  defp state_result(nil), do: {:error, :not_found}
  defp state_result(%{state: state}), do: {:ok, state}

  defp timed?(e), do: is_integer(e[:duration]) and e[:duration] >= 0

  # Slowest first; equal durations: oldest (smallest id) first, as ElixirScope.
  defp slowest_of(returns, limit),
    do: returns |> Enum.sort_by(&{-&1.duration, &1.id}) |> Enum.take(limit)

  @doc "Per {function, arity}: returns, total, mean, p50, p90, p99, max; by total, largest first."
  def perf_stats(returns) do
    returns
    |> Enum.group_by(&{&1[:function], &1[:arity]})
    |> Enum.map(fn {{f, a}, events} ->
      ds = for e <- events, timed?(e), do: e.duration
      n = length(ds)
      sorted = ds |> Enum.sort() |> List.to_tuple()
      total = Enum.sum(ds)
      q = fn q -> if n == 0, do: nil, else: elem(sorted, max(ceil(q * n), 1) - 1) end

      %{
        function: f,
        arity: a,
        returns: length(events),
        total: total,
        mean: if(n == 0, do: nil, else: div(total, n)),
        p50: q.(0.50),
        p90: q.(0.90),
        p99: q.(0.99),
        max: if(n == 0, do: nil, else: elem(sorted, n - 1))
      }
    end)
    |> Enum.sort_by(& &1.total, :desc)
  end
end
