defmodule ElixirScope.Test.ClusterApp do
  @moduledoc """
  A small application spread over nodes, for the cluster tests and bench
  (`bench/cluster_bench.exs` loads it into its peers): an inventory GenServer on one
  node answers calls from a request process on another, which then broadcasts the
  change to a subscriber on every node (as Phoenix.PubSub would: a send to each
  subscriber's pid). Each piece is traced by ElixirScope on its own node.
  """
  use GenServer

  @doc "Starts the inventory GenServer on this node, traced; its pid."
  def start_inventory do
    {:ok, pid} = GenServer.start(__MODULE__, 100)
    :ok = ElixirScope.trace_genserver(pid)
    pid
  end

  @doc "Starts a traced subscriber on this node; its pid."
  def start_subscriber do
    pid = spawn(fn -> subscriber([]) end)
    :ok = ElixirScope.trace_process(pid)
    pid
  end

  @doc "What a subscriber received so far."
  def received(subscriber) do
    send(subscriber, {:received, self()})

    receive do
      {:received, list} -> Enum.reverse(list)
    after
      5_000 -> :timeout
    end
  end

  defp subscriber(got) do
    receive do
      {:received, from} ->
        send(from, {:received, got})
        subscriber(got)

      msg ->
        subscriber([msg | got])
    end
  end

  @doc """
  A request on this node: a traced process calls the inventory (`{:reserve, n}`), then
  broadcasts `{:stock, left}` to every subscriber. Returns the request process's pid
  once it is done.
  """
  def request(inventory, subscribers, n \\ 1) do
    traced(fn ->
      left = GenServer.call(inventory, {:reserve, n})
      for s <- subscribers, do: send(s, {:stock, left})
    end)
  end

  @doc """
  Traffic for the bench: a traced process that `rounds` times calls one of the
  inventories (`{:reserve, 0}`) and sends a plain `{:stock, node, i}` message to
  another. Returns its pid once it is done.
  """
  def traffic(inventories, rounds) do
    traced(fn ->
      servers = List.to_tuple(inventories)

      for i <- 1..rounds do
        GenServer.call(elem(servers, rem(i, tuple_size(servers))), {:reserve, 0})
        send(elem(servers, rem(i + 1, tuple_size(servers))), {:stock, node(), i})
      end
    end)
  end

  @doc "Stores `n` events of type `:bench` on this node (for the bench's pages)."
  def fill(n) do
    for i <- 1..n, do: :ok = ElixirScope.TraceDB.store_event(:bench, %{i: i})
    :ok
  end

  # Runs `fun` in a new process, traced from before it starts; its pid once it is done.
  defp traced(fun) do
    me = self()

    pid =
      spawn(fn ->
        receive do
          :go -> :ok
        end

        fun.()
        send(me, {:done, self()})
      end)

    :ok = ElixirScope.trace_process(pid)
    send(pid, :go)

    receive do
      {:done, ^pid} -> pid
    after
      120_000 -> raise "the traced process did not finish"
    end
  end

  @impl true
  def init(stock), do: {:ok, stock}

  @impl true
  def handle_call({:reserve, n}, _from, stock), do: {:reply, stock - n, stock - n}

  @impl true
  def handle_info(_note, stock), do: {:noreply, stock}
end
