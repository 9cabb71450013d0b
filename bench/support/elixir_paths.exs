defmodule Bench.ElixirPaths do
  @moduledoc false
  # The Elixir implementations the query engine replaced (issue 15), kept as they were
  # on main before it (commit a32e900) so that bench/engine_bench.exs measures them
  # against the engine in the same run: Phoenix.requests/1's page loop,
  # Processes.system_snapshot_at/2 and analyze_state_change/4, Analysis.call_tree/1, and
  # a group-by with percentiles as Elixir code would write it. They read the store
  # through TraceDB.query_events/1, whose filters mean what they meant then. Only what
  # made them modules' private functions changed (names, the store option), and the
  # processes a snapshot lists, which issue 13 redefined (processes_at/2 below).

  alias ElixirScope.TraceDB

  @page 256

  ## Phoenix.requests/1: pages of an indexed query, filtered in Elixir, up to the limit

  def phoenix_requests(query, match) do
    match = [kind: :endpoint, phase: :stop] ++ match
    collect(query, fn e -> Enum.all?(match, fn {k, v} -> Map.get(e, k) == v end) end)
  end

  defp collect(filters, keep?) do
    filters = Keyword.put_new(filters, :type, :phoenix)
    {limit, filters} = Keyword.pop(filters, :limit)
    order = Keyword.get(filters, :order, :asc)
    page(filters, order, nil, keep?, limit, @page, [])
  end

  defp page(_filters, _order, _cursor, _keep?, 0, _size, acc), do: Enum.reverse(acc)

  defp page(filters, order, cursor, keep?, left, size, acc) do
    events = TraceDB.query_events(bounded(filters, order, cursor) ++ [limit: size])
    fresh = if cursor, do: Enum.filter(events, &beyond?(&1, cursor, order)), else: events
    {acc, left} = take_matching(fresh, keep?, acc, left)

    cond do
      left == 0 or length(events) < size -> Enum.reverse(acc)
      fresh == [] -> page(filters, order, cursor, keep?, left, size * 4, acc)
      true -> page(filters, order, key(List.last(events)), keep?, left, @page, acc)
    end
  end

  defp bounded(filters, _order, nil), do: filters

  defp bounded(filters, :asc, {ts, _}),
    do:
      Keyword.put(filters, :timestamp_start, max(ts, Keyword.get(filters, :timestamp_start, ts)))

  defp bounded(filters, :desc, {ts, _}),
    do: Keyword.put(filters, :timestamp_end, min(ts, Keyword.get(filters, :timestamp_end, ts)))

  defp beyond?(event, cursor, :asc), do: key(event) > cursor
  defp beyond?(event, cursor, :desc), do: key(event) < cursor

  defp take_matching([], _keep?, acc, left), do: {acc, left}
  defp take_matching(_events, _keep?, acc, 0), do: {acc, 0}

  defp take_matching([e | rest], keep?, acc, left) do
    if keep?.(e),
      do: take_matching(rest, keep?, [e | acc], decrement(left)),
      else: take_matching(rest, keep?, acc, left)
  end

  defp decrement(nil), do: nil
  defp decrement(n), do: n - 1

  defp key(%{timestamp: ts, id: id}), do: {ts, id}

  ## Processes.system_snapshot_at/2

  def system_snapshot_at(timestamp, name \\ TraceDB) do
    timestamp
    |> processes_at(name)
    |> Enum.map(fn pid ->
      parent = recorded_parent(pid, timestamp, name)

      %{
        pid: pid,
        name: name_at(pid, timestamp, name),
        state:
          case TraceDB.get_state_at(pid, timestamp, store: name) do
            {:ok, state} -> state
            {:error, :not_found} -> nil
          end,
        links: recorded_links(pid, timestamp, name),
        parent: parent,
        supervisor: if(parent && supervisor?(parent, name), do: parent)
      }
    end)
  end

  # Which processes a snapshot lists changed with issue 13: every process with any event
  # at or before t — as the event's actor: its :pid, else its :from_pid — and no exit
  # recorded by then, no longer only those with a :spawn or :alive event
  # (TraceDB.get_processes_at/2, the rule this code was written for: it left out, say, a
  # GenServer traced after it started). Kept as the rest of this code: plain Elixir over
  # the events, here every event up to t (only the fields it reads decoded).
  defp processes_at(ts, name) do
    [timestamp_end: ts, select: [:pid, :from_pid, :event], store: name]
    |> TraceDB.query_events()
    |> Enum.reduce({MapSet.new(), MapSet.new()}, fn event, {seen, exited} = acc ->
      case actor(event) do
        nil ->
          acc

        pid ->
          {MapSet.put(seen, pid), if(exit?(event), do: MapSet.put(exited, pid), else: exited)}
      end
    end)
    |> then(fn {seen, exited} -> seen |> MapSet.difference(exited) |> Enum.sort() end)
  end

  defp actor(%{pid: pid}) when is_pid(pid), do: pid
  defp actor(%{from_pid: pid}) when is_pid(pid), do: pid
  defp actor(_event), do: nil

  # an exit in the vocabulary's terms (TraceDB.vocabulary/0): :exit, :crash, and the
  # original ElixirScope's :process events standing for them
  defp exit?(%{type: type}) when type in [:exit, :crash], do: true
  defp exit?(%{type: :process, event: event}) when event in [:exit, :crash], do: true
  defp exit?(_event), do: false

  defp name_at(pid, ts, name) do
    [:alive, :register, :unregister]
    |> Enum.map(&last_event(&1, pid, name, ts))
    |> Enum.reject(&is_nil/1)
    |> Enum.max_by(&{&1.timestamp, &1.id}, fn -> nil end)
    |> case do
      %{type: type} = ev when type in [:alive, :register] -> Map.get(ev, :name)
      _ -> nil
    end
  end

  defp recorded_links(pid, ts, name) do
    bound = if ts == :infinity, do: [], else: [timestamp_end: ts]

    [
      [type: :link, pid: pid],
      [type: :unlink, pid: pid],
      [type: :link, to_pid: pid],
      [type: :unlink, to_pid: pid]
    ]
    |> Enum.flat_map(&TraceDB.query_events(&1 ++ bound ++ [store: name]))
    |> Enum.sort_by(&{&1.timestamp, &1.id})
    |> Enum.reduce(MapSet.new(), fn ev, acc ->
      other = if ev.pid == pid, do: Map.get(ev, :to_pid), else: ev.pid

      cond do
        not is_pid(other) or other == pid -> acc
        ev.type == :link -> MapSet.put(acc, other)
        true -> MapSet.delete(acc, other)
      end
    end)
    |> Enum.reject(&exited_by?(&1, ts, name))
    |> Enum.sort()
  end

  defp exited_by?(pid, ts, name),
    do: last_event(:exit, pid, name, ts) != nil or last_event(:crash, pid, name, ts) != nil

  defp recorded_parent(pid, ts, name) do
    Enum.find_value([:spawn, :alive], fn type ->
      case last_event(type, pid, name, ts) do
        %{parent: parent} when is_pid(parent) -> parent
        _ -> nil
      end
    end)
  end

  defp supervisor?(pid, name) do
    if local?(pid) and Process.alive?(pid) do
      live_supervisor?(pid)
    else
      case last_event(:alive, pid, name) do
        %{initial_call: ic} -> supervisor_call?(ic)
        _ -> false
      end
    end
  end

  defp live_supervisor?(pid) do
    case Process.info(pid, :dictionary) do
      {:dictionary, dict} -> supervisor_call?(dict[:"$initial_call"])
      nil -> false
    end
  end

  defp supervisor_call?({:supervisor, _, _}), do: true
  defp supervisor_call?({DynamicSupervisor, :init, 1}), do: true
  defp supervisor_call?(_), do: false

  defp last_event(type, pid, name, ts \\ :infinity) do
    bound = if ts == :infinity, do: [], else: [timestamp_end: ts]

    List.first(
      TraceDB.query_events([type: type, pid: pid, order: :desc, limit: 1, store: name] ++ bound)
    )
  end

  defp local?(pid), do: node(pid) == node()

  ## Processes.analyze_state_change/4 (events_between without a limit)

  def analyze_state_change(pid, before_state, after_state, name \\ TraceDB) do
    history = TraceDB.get_state_history(pid, store: name)

    with {:ok, before, rest} <- find_state(history, before_state),
         {:ok, later, _} <- find_state(rest, after_state) do
      between =
        TraceDB.query_events(pid: pid, after_id: before.id, before_id: later.id, store: name)

      {:ok,
       %{
         before: before,
         after: later,
         cause: Map.get(later, :cause),
         callback: Map.get(later, :callback),
         events_between: between,
         diff: ElixirScope.diff(before_state, after_state)
       }}
    end
  end

  defp find_state([], _state), do: {:error, :not_found}

  defp find_state([ev | rest], state) do
    case ev do
      %{state: s} when s === state -> {:ok, ev, rest}
      _ -> find_state(rest, state)
    end
  end

  ## Analysis.call_tree/1 of a pid

  def call_tree(pid, opts \\ []), do: build(call_events(pid, [], opts))

  defp call_events(pid, extra, opts) do
    filters =
      [pid: pid] ++ extra ++ Keyword.take(opts, [:store, :timestamp_start, :timestamp_end])

    [:call, :return, :exception]
    |> Enum.flat_map(&TraceDB.query_events([type: &1] ++ filters))
    |> Enum.sort_by(&{&1.timestamp, &1.id})
  end

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

  ## A group-by with percentiles, in Elixir over the events of a query

  def group_by(filters, key, measure) do
    filters
    |> TraceDB.query_events()
    |> Enum.group_by(&Map.get(&1, key), &Map.get(&1, measure))
    |> Enum.map(fn {group, values} ->
      sorted = values |> Enum.filter(&is_number/1) |> Enum.sort()
      n = length(sorted)
      rank = fn q -> Enum.at(sorted, max(ceil(q * n), 1) - 1) end

      %{
        group: group,
        count: length(values),
        min: List.first(sorted),
        max: List.last(sorted),
        mean: if(n > 0, do: Enum.sum(sorted) / n),
        p50: rank.(0.5),
        p90: rank.(0.9),
        p99: rank.(0.99)
      }
    end)
  end
end
