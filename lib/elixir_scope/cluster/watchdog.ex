defmodule ElixirScope.Cluster.Watchdog do
  @moduledoc false
  # On a member node: stops the recording the coordinator started there when the
  # coordinator's node goes down or disconnects (a :nodedown from
  # :erlang.monitor_node/2) or stops sending heartbeats (a hung coordinator, which the
  # runtime itself would notice only after net_ticktime). The coordinator beats every
  # @beat_ms (ElixirScope.Cluster.Coordinator). After @stale_ms without a beat (checked
  # every @check_ms) the watchdog asks the coordinator's node directly, waiting
  # @probe_ms: a coordinator that answers is merely slow (a loaded machine) and the
  # recording goes on; one that does not is hung. So a hung coordinator stops the
  # recording within @stale_ms + @check_ms + @probe_ms (+ the time ElixirScope.stop/0
  # takes) of its last beat, under a second. Recording is stopped with the data kept,
  # so what was recorded stays queryable locally. A node set up locally has no watchdog
  # (ElixirScope.Cluster.Remote).
  use GenServer
  require Logger

  @beat_ms 100
  @stale_ms 400
  @check_ms 100
  @probe_ms 300

  @doc false
  def beat_ms, do: @beat_ms

  def start(coordinator), do: GenServer.start(__MODULE__, coordinator, name: __MODULE__)

  # The coordinator whose heartbeats this node follows, or nil.
  def coordinator do
    GenServer.call(__MODULE__, :coordinator)
  catch
    :exit, _ -> nil
  end

  # A coordinator that set this node up again takes over the watch.
  def follow(coordinator), do: GenServer.call(__MODULE__, {:follow, coordinator})

  def stop do
    GenServer.stop(__MODULE__)
  catch
    :exit, _ -> :ok
  end

  @impl true
  def init(coordinator) do
    Process.send_after(self(), :check, @check_ms)
    {:ok, watch(%{coordinator: nil}, coordinator)}
  end

  defp watch(state, coordinator) do
    if state.coordinator, do: :erlang.monitor_node(state.coordinator, false)
    true = :erlang.monitor_node(coordinator, true)
    %{coordinator: coordinator, last: now()}
  end

  @impl true
  def handle_call(:coordinator, _from, state), do: {:reply, state.coordinator, state}
  def handle_call({:follow, c}, _from, state), do: {:reply, :ok, watch(state, c)}

  @impl true
  def handle_info({:heartbeat, coordinator}, %{coordinator: coordinator} = state),
    do: {:noreply, %{state | last: now()}}

  def handle_info({:nodedown, node}, %{coordinator: node} = state),
    do: give_up(state, :nodedown)

  def handle_info(:check, state) do
    cond do
      now() - state.last <= @stale_ms -> check_again(state)
      answers?(state.coordinator) -> check_again(%{state | last: now()})
      true -> give_up(state, :no_heartbeat)
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp check_again(state) do
    Process.send_after(self(), :check, @check_ms)
    {:noreply, state}
  end

  defp answers?(node) do
    :erpc.call(node, :erlang, :node, [], @probe_ms) == node
  catch
    _, _ -> false
  end

  defp give_up(state, why) do
    ElixirScope.stop()

    Logger.warning(
      "ElixirScope: recording stopped on #{node()}: its coordinator #{state.coordinator} " <>
        "is gone (#{why}); what was recorded stays queryable here"
    )

    {:stop, :normal, state}
  end

  defp now, do: System.monotonic_time(:millisecond)
end
