defmodule ElixirScope.Cluster.Coordinator do
  @moduledoc false
  # On the node that called ElixirScope.setup(nodes: ...): the members it started, the
  # options it started them with, and their heartbeat (ElixirScope.Cluster.Watchdog on
  # each member stops its recording when the beats stop). With `join: true` a node that
  # connects later is started too. ElixirScope.stop/0 stops it, and it stops the
  # members' recordings first.
  use GenServer
  require Logger

  alias ElixirScope.Cluster.{Remote, Watchdog}

  @start_timeout 15_000

  def start(nodes, opts, join) do
    stop()
    GenServer.start(__MODULE__, {nodes, opts, join}, name: __MODULE__)
  end

  # {started: [node], refused: [{node, reason}]} of the last start.
  def result, do: GenServer.call(__MODULE__, :result, @start_timeout * 2)

  def members do
    GenServer.call(__MODULE__, :members)
  catch
    :exit, _ -> []
  end

  def running?, do: Process.whereis(__MODULE__) != nil

  def stop do
    case Process.whereis(__MODULE__) do
      nil -> :ok
      pid -> GenServer.stop(pid)
    end
  catch
    :exit, _ -> :ok
  end

  @impl true
  def init({nodes, opts, join}) do
    if join, do: :net_kernel.monitor_nodes(true)
    Process.flag(:trap_exit, true)
    {started, refused} = start_members(nodes, opts)
    for node <- started, do: :erlang.monitor_node(node, true)
    send(self(), :beat)
    {:ok, %{opts: opts, members: started, refused: refused, lost: MapSet.new()}}
  end

  defp start_members(nodes, opts) do
    nodes
    |> Enum.reject(&(&1 == node()))
    |> Task.async_stream(&{&1, start_member(&1, opts)},
      timeout: @start_timeout,
      on_timeout: :kill_task,
      ordered: true
    )
    |> Enum.zip(nodes -- [node()])
    |> Enum.reduce({[], []}, fn
      {{:ok, {node, {:ok, _}}}, _}, {ok, bad} -> {ok ++ [node], bad}
      {{:ok, {node, {:error, reason}}}, _}, {ok, bad} -> {ok, bad ++ [{node, reason}]}
      {{:exit, _}, node}, {ok, bad} -> {ok, bad ++ [{node, :timeout}]}
    end)
  end

  defp start_member(node, opts) do
    :erpc.call(node, Remote, :start, [node(), opts, ElixirScope.version()], @start_timeout)
  catch
    :error, {:erpc, :noconnection} -> {:error, :noconnection}
    :error, {:erpc, :timeout} -> {:error, :timeout}
    :error, {:exception, :undef, [{Remote, _, _, _} | _]} -> {:error, :elixir_scope_not_loaded}
    kind, reason -> {:error, {kind, reason}}
  end

  @impl true
  def handle_call(:result, _from, state),
    do: {:reply, %{started: state.members, refused: state.refused}, state}

  def handle_call(:members, _from, state), do: {:reply, state.members, state}

  @impl true
  def handle_info(:beat, state) do
    for node <- state.members,
        not MapSet.member?(state.lost, node),
        do: send({Watchdog, node}, {:heartbeat, node()})

    Process.send_after(self(), :beat, Watchdog.beat_ms())
    {:noreply, state}
  end

  def handle_info({:nodeup, node}, state) do
    case start_members([node], state.opts) do
      {[^node], _} ->
        :erlang.monitor_node(node, true)
        members = Enum.uniq(state.members ++ [node])
        {:noreply, %{state | members: members, lost: MapSet.delete(state.lost, node)}}

      {_, [{^node, reason}]} ->
        Logger.warning("ElixirScope: #{node} joined but was not started: #{inspect(reason)}")
        {:noreply, state}
    end
  end

  # A member that went down or was cut off stopped its recording (its watchdog saw the
  # same): no more beats, which would only keep trying to reconnect. It stays a member,
  # so queries name it when it does not answer; `join: true` starts it again when it
  # comes back.
  def handle_info({:nodedown, node}, state),
    do: {:noreply, %{state | lost: MapSet.put(state.lost, node)}}

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    me = node()

    state.members
    |> Task.async_stream(&:erpc.call(&1, Remote, :stop, [me], 5_000), on_timeout: :kill_task)
    |> Stream.run()
  catch
    _, _ -> :ok
  end
end
