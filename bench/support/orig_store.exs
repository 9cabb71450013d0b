defmodule Bench.OrigStore do
  @moduledoc false
  # The "original ElixirScope" design: one GenServer owns an ETS :set keyed by event
  # id; writers GenServer.cast events to it, it stamps id/type/timestamp and inserts.
  # Queries copy the whole table out (:ets.tab2list), filter and sort.
  use GenServer

  def start do
    {:ok, pid} = GenServer.start(__MODULE__, nil)
    {pid, GenServer.call(pid, :table)}
  end

  def stop(pid), do: GenServer.stop(pid)

  def store_event(server, type, event), do: GenServer.cast(server, {:store_event, type, event})

  @doc "Returns once every event cast before it has been inserted (the mailbox is drained)."
  def sync(server), do: GenServer.call(server, :sync, :infinity)

  def query_events(table, filters) do
    table
    |> :ets.tab2list()
    |> Enum.map(fn {_id, event} -> event end)
    |> Enum.filter(fn event -> Enum.all?(filters, &match_filter(event, &1)) end)
    |> Enum.sort_by(&{&1.timestamp, &1.id})
  end

  defp match_filter(event, {:timestamp_start, t}), do: event.timestamp >= t
  defp match_filter(event, {:timestamp_end, t}), do: event.timestamp <= t
  defp match_filter(event, {key, value}), do: Map.get(event, key) == value

  @impl true
  def init(nil) do
    table = :ets.new(:orig_events, [:set, :public, read_concurrency: true])
    {:ok, %{table: table, next_id: 1}}
  end

  @impl true
  def handle_cast({:store_event, type, event}, %{table: table, next_id: id} = state) do
    event =
      event
      |> Map.put(:id, id)
      |> Map.put(:type, type)
      |> Map.put_new_lazy(:timestamp, &System.monotonic_time/0)

    :ets.insert(table, {id, event})
    {:noreply, %{state | next_id: id + 1}}
  end

  @impl true
  def handle_call(:table, _from, state), do: {:reply, state.table, state}
  def handle_call(:sync, _from, state), do: {:reply, :ok, state}
end
