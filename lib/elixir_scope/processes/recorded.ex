defmodule ElixirScope.Processes.Recorded do
  @moduledoc false
  # The recorded half of ElixirScope.Processes: questions about processes answered by
  # queries of the C store (ElixirScope.Query), each through an index or an aggregate,
  # with the event types taken from the vocabulary's lifecycle roles
  # (ElixirScope.TraceDB.vocabulary/0): born (:spawn, :alive), died (:exit, :crash).

  alias ElixirScope.Processes.Live
  alias ElixirScope.TraceDB

  # The event types of a lifecycle role, in the vocabulary's order.
  def types(role), do: for(%{lifecycle: ^role, type: t} <- TraceDB.vocabulary().types, do: t)

  # The last event of pid of one type (or a list of types) at or before ts (nil: ever).
  def last(type, pid, name, ts \\ nil) do
    [type: type, pid: pid, order: :desc, limit: 1, store: name]
    |> Kernel.++(if ts, do: [timestamp_end: ts], else: [])
    |> TraceDB.query_events()
    |> List.first()
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
    [type: types(:born), where: [parent: pid], group_by: :pid, store: name]
    |> TraceDB.query_events()
    |> pids()
  end

  # The processes recorded running `module`: :state events of it, or a born event whose
  # initial call is in it.
  def running(module, name) do
    states = TraceDB.query_events(type: :state, module: module, group_by: :pid, store: name)

    born =
      TraceDB.query_events(
        type: types(:born),
        where: [{{:initial_call, 0}, module}],
        group_by: :pid,
        store: name
      )

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
