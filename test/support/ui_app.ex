defmodule ElixirScope.Test.UIApp do
  @moduledoc """
  The application the web UI tests (API and browser) look at, run for real: a cart
  GenServer whose state changes with every request, the pricing module it calls
  (traced, so its calls, returns and one exception are recorded), a client process
  that talks to the cart, and a worker that crashes on a bad job. Not a stand-in:
  every event the UI shows comes from ElixirScope tracing these processes.

  `start/0` needs ElixirScope running (`ElixirScope.setup/1`) and returns the pids;
  `stop/1` ends them.
  """

  import ElixirScope.Test.Wait

  defmodule Pricing do
    @moduledoc false
    def quote(:bomb, _qty), do: raise(ArgumentError, "no price for a bomb")
    def quote(item, qty), do: base(item) * qty

    defp base(:apple), do: 3
    defp base(:pear), do: 5
    defp base(_), do: 7
  end

  defmodule Cart do
    @moduledoc false
    use GenServer

    def start(owner), do: GenServer.start(__MODULE__, owner)

    @impl true
    def init(owner), do: {:ok, %{owner: owner, items: %{}, total: 0, log: []}}

    @impl true
    def handle_call({:add, item, qty}, _from, state) do
      price = Pricing.quote(item, qty)

      state = %{
        state
        | items: Map.update(state.items, item, qty, &(&1 + qty)),
          total: state.total + price,
          log: [{item, qty} | state.log]
      }

      {:reply, {:ok, price}, state}
    rescue
      e in ArgumentError -> {:reply, {:error, Exception.message(e)}, state}
    end

    def handle_call(:total, _from, state), do: {:reply, state.total, state}

    @impl true
    def handle_cast(:clear, state), do: {:noreply, %{state | items: %{}, total: 0}}
  end

  @items [:apple, :pear, :plum]

  @doc "Starts the processes, traces them, and drives them until their events are stored."
  def start do
    {:ok, cart} = Cart.start(self())
    :ok = ElixirScope.trace_genserver(cart)
    :ok = ElixirScope.trace_module(Pricing)
    parent = self()

    client =
      spawn(fn ->
        receive do: (:go -> :ok)

        for i <- 1..12, do: GenServer.call(cart, {:add, Enum.at(@items, rem(i, 3)), i})
        GenServer.call(cart, {:add, :bomb, 1})
        GenServer.cast(cart, :clear)
        GenServer.call(cart, {:add, :apple, 2})
        send(parent, :client_done)
        receive do: (:stop -> :ok)
      end)

    :ok = ElixirScope.trace_process(client)
    send(client, :go)
    receive do: (:client_done -> :ok), after: (5_000 -> raise "the client did not finish")

    worker =
      spawn(fn ->
        worker_loop(0)
      end)

    :ok = ElixirScope.trace_process(worker)
    ref = Process.monitor(worker)
    for n <- 1..3, do: send(worker, {:job, n})
    send(worker, {:job, :bad})
    receive do: ({:DOWN, ^ref, _, _, _} -> :ok), after: (5_000 -> raise "no crash")

    # 15 states after the initial one: 12 adds, the clear, one more add (the bomb
    # leaves the state as it was, and an unchanged state is not stored again).
    wait_until(fn -> length(ElixirScope.TraceDB.get_state_history(cart)) == 15 end) ||
      raise "the cart's states were not all recorded"

    wait_until(fn -> ElixirScope.TraceDB.query_events(type: :crash, pid: worker) != [] end) ||
      raise "the worker's crash was not recorded"

    %{cart: cart, client: client, worker: worker}
  end

  defp worker_loop(done) do
    receive do
      {:job, :bad} -> raise "bad job after #{done} good ones"
      {:job, _n} -> worker_loop(done + 1)
    end
  end

  @doc """
  Post-mortem: dumps the recording to a file, stops ElixirScope, loads the file and
  starts the UI on it alone (all undone when the test exits). Returns
  `%{path: dump, url: the UI's URL}`.
  """
  def reload_as_recording! do
    path = Path.join(System.tmp_dir!(), "ui_app_#{System.unique_integer([:positive])}.esd")
    ExUnit.Callbacks.on_exit(fn -> File.rm(path) end)
    {:ok, _} = ElixirScope.dump(path)
    :ok = ElixirScope.stop(keep_data: false)
    {:ok, _} = ElixirScope.load(path)
    {:ok, url} = ElixirScope.UI.start(port: 0)

    ExUnit.Callbacks.on_exit(fn ->
      ElixirScope.UI.stop()
      ElixirScope.Test.Stores.stop_all([ElixirScope.TraceDB])
    end)

    %{path: path, url: url}
  end

  @doc "Ends the app's processes."
  def stop(%{cart: cart, client: client}) do
    send(client, :stop)
    Process.exit(cart, :kill)
    :ok
  end
end
