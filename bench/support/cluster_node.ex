defmodule Bench.ClusterNode do
  @moduledoc false
  # Loaded into each peer of bench/cluster_bench.exs (the bench's own helper, as a
  # binary; ElixirScope itself is each node's own code): fills the store and runs
  # traced cross-node traffic.
  use GenServer

  def fill(n) do
    for i <- 1..n, do: :ok = ElixirScope.TraceDB.store_event(:bench, %{i: i, node: node()})
    :ok
  end

  def start_server do
    {:ok, pid} = GenServer.start(__MODULE__, 0)
    :ok = ElixirScope.trace_genserver(pid)
    pid
  end

  # A traced client: n rounds of a call to one of `servers` and a plain message to
  # another.
  def run_client(servers, n) do
    me = self()

    pid =
      spawn(fn ->
        receive do
          :go -> :ok
        end

        servers = List.to_tuple(servers)

        for i <- 1..n do
          GenServer.call(elem(servers, rem(i, tuple_size(servers))), {:echo, i})
          send(elem(servers, rem(i + 1, tuple_size(servers))), {:note, node(), i})
        end

        send(me, {:done, self()})
      end)

    :ok = ElixirScope.trace_process(pid)
    send(pid, :go)

    receive do
      {:done, ^pid} -> pid
    after
      120_000 -> raise "client did not finish"
    end
  end

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_call({:echo, i}, _from, n), do: {:reply, i, n + 1}

  @impl true
  def handle_info({:note, _node, _i}, n), do: {:noreply, n + 1}
end
