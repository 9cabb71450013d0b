defmodule ElixirScope.Processes.Recorded do
  @moduledoc false
  # The recorded half of ElixirScope.Processes: questions about processes answered by
  # queries of the C store (ElixirScope.Query), each through an index or an aggregate,
  # with the event types taken from the vocabulary's lifecycle roles
  # (ElixirScope.TraceDB.vocabulary/0): born (:spawn, :alive), died (:exit, :crash),
  # and the events that stand for them (the original ElixirScope's :process events:
  # TraceDB.type_specs/1).

  alias ElixirScope.Processes.Live
  alias ElixirScope.TraceDB

  # The event types of a lifecycle role, in the vocabulary's order.
  def types(role), do: for(%{lifecycle: ^role, type: t} <- TraceDB.vocabulary().types, do: t)

  # The last event of pid of one type (or a list of types, or the events standing for
  # them) at or before ts (nil: ever).
  def last(type, pid, name, ts \\ nil) do
    bounds = [pid: pid, order: :desc, limit: 1, store: name]
    bounds = if ts, do: [timestamp_end: ts] ++ bounds, else: bounds

    type
    |> TraceDB.type_specs()
    |> Enum.flat_map(&TraceDB.query_events(&1 ++ bounds))
    |> Enum.max_by(&{&1.timestamp, &1.id}, fn -> nil end)
  end

  # One query per spec of TraceDB.type_specs(types), with `filters`; their groups.
  defp groups(types, filters) do
    for spec <- TraceDB.type_specs(types),
        group <- TraceDB.query_events(merge(spec, filters)),
        do: group
  end

  defp merge(spec, filters) do
    {where, filters} = Keyword.pop(filters, :where, [])
    Keyword.update(spec, :where, where, &(&1 ++ where)) ++ filters
  end

  # When pid died (its last died event), or nil.
  def death_time(pid, name) do
    case last(types(:died), pid, name) do
      %{timestamp: ts} -> ts
      nil -> nil
    end
  end

  # The :parent of pid's last born event at or before ts, in the vocabulary's order of
  # born types (a spawn before a process found running).
  def parent(pid, ts, name) do
    Enum.find_value(types(:born), fn type ->
      case last(type, pid, name, ts) do
        %{parent: parent} when is_pid(parent) -> parent
        _ -> nil
      end
    end)
  end

  # Every process whose born event names pid as parent.
  def children(pid, name) do
    :born |> types() |> groups(where: [parent: pid], group_by: :pid, store: name) |> pids()
  end

  # The processes recorded running `module`: :state events of it, or a born event whose
  # initial call is in it.
  def running(module, name) do
    states = TraceDB.query_events(type: :state, module: module, group_by: :pid, store: name)

    born =
      :born
      |> types()
      |> groups(where: [{{:initial_call, 0}, module}], group_by: :pid, store: name)

    MapSet.union(pids(states), pids(born))
  end

  # Recorded as a supervisor by its :alive event's initial call.
  def supervisor?(pid, name) do
    case last(:alive, pid, name) do
      %{initial_call: ic} -> Live.supervisor_call?(ic)
      _ -> false
    end
  end

  defp pids(groups), do: for(%{group: pid} <- groups, is_pid(pid), into: MapSet.new(), do: pid)
end
