defmodule ElixirScope.StateRecorderTest do
  # Uses the default (node-wide) store: not async.
  use ExUnit.Case, async: false

  alias ElixirScope.TraceDB

  defmodule Counter do
    use GenServer
    use ElixirScope.StateRecorder

    def start_link(n), do: GenServer.start_link(__MODULE__, n)

    @impl true
    def init(n), do: {:ok, %{count: n, loaded: false}, {:continue, :load}}

    @impl true
    def handle_continue(:load, state), do: {:noreply, %{state | loaded: true}}

    @impl true
    def handle_call(:get, _from, state), do: {:reply, state.count, state}
    def handle_call(:inc, _from, state), do: {:reply, :ok, %{state | count: state.count + 1}}

    def handle_call({:set, n}, _from, state) when is_integer(n),
      do: {:reply, :ok, %{state | count: n}}

    @impl true
    def handle_cast({:add, n}, state), do: {:noreply, %{state | count: state.count + n}}

    @impl true
    def handle_info(:tick, state), do: {:noreply, %{state | count: state.count * 10}}
    def handle_info(_other, state), do: {:noreply, state}
  end

  # Every return shape a GenServer may give, chosen by the request.
  defmodule Shapes do
    use ElixirScope.StateRecorder
    use GenServer

    def start(arg), do: GenServer.start(__MODULE__, arg)

    @impl true
    def init(:ignore), do: :ignore
    def init(:stop), do: {:stop, :nope}
    def init(:throw), do: throw({:ok, :thrown_init})
    def init(:timeout), do: {:ok, 0, 5_000}
    def init(n), do: {:ok, n}

    @impl true
    def handle_call(:reply_hibernate, _from, s), do: {:reply, :hib, s + 1, :hibernate}

    def handle_call(:noreply, from, s) do
      GenServer.reply(from, :later)
      {:noreply, s + 1}
    end

    def handle_call(:noreply_timeout, from, s) do
      GenServer.reply(from, :later)
      {:noreply, s + 1, 5_000}
    end

    def handle_call(:throw, _from, s), do: throw({:reply, :thrown, s + 1})
    def handle_call(:stop_reply, _from, s), do: {:stop, :normal, :bye, s + 1}
    def handle_call(:stop_noreply, _from, s), do: {:stop, :normal, s + 1}
    def handle_call(:raise, _from, _s), do: raise("boom")

    @impl true
    def handle_cast(:stop, s), do: {:stop, :normal, s + 1}
  end

  # Defines only init/1: the defaults of `use GenServer` stay in place.
  defmodule Minimal do
    use GenServer
    use ElixirScope.StateRecorder

    @impl true
    def init(state), do: {:ok, state}
  end

  defp history(pid) do
    for e <- TraceDB.query_events(type: :state, pid: pid), do: {e.callback, e.cause, e.state}
  end

  describe "with the store running" do
    setup do
      # The default store (queried without `store:`), kept small: creating one with
      # the default sizes takes over a second.
      start_supervised!({TraceDB, max_events: 10_000, max_bytes: 16_777_216, max_keys: 1024})
      :ok
    end

    test "records the initial state and every change, with callback and cause" do
      {:ok, pid} = Counter.start_link(1)

      assert GenServer.call(pid, :inc) == :ok
      GenServer.cast(pid, {:add, 5})
      send(pid, :tick)
      assert GenServer.call(pid, :get) == 70

      assert history(pid) == [
               {:init, 1, %{count: 1, loaded: false}},
               {:handle_continue, :load, %{count: 1, loaded: true}},
               {:handle_call, :inc, %{count: 2, loaded: true}},
               {:handle_cast, {:add, 5}, %{count: 7, loaded: true}},
               {:handle_info, :tick, %{count: 70, loaded: true}}
             ]

      [event | _] = TraceDB.query_events(type: :state, pid: pid)
      assert event.module == Counter
      assert event.pid == pid
    end

    test "an unchanged state is not recorded again" do
      {:ok, pid} = Counter.start_link(3)

      assert GenServer.call(pid, :get) == 3
      # equal, though built anew
      assert GenServer.call(pid, {:set, 3}) == :ok
      GenServer.cast(pid, {:add, 0})
      send(pid, :unknown)
      assert GenServer.call(pid, :get) == 3

      assert Enum.map(history(pid), &elem(&1, 0)) == [:init, :handle_continue]

      assert GenServer.call(pid, {:set, 4}) == :ok
      assert List.last(history(pid)) == {:handle_call, {:set, 4}, %{count: 4, loaded: true}}
    end

    test "the state history is in the store's time order" do
      {:ok, pid} = Counter.start_link(0)
      for _ <- 1..20, do: GenServer.call(pid, :inc)

      counts = for {_, _, %{count: c}} <- history(pid), do: c
      assert counts == [0, 0] ++ Enum.to_list(1..20)
      assert TraceDB.get_state_history(pid) |> length() == 22
    end

    test "every return shape is passed through untouched and its state recorded" do
      assert Shapes.start(:ignore) == :ignore
      assert Shapes.start(:stop) == {:error, :nope}

      {:ok, pid} = Shapes.start(0)
      assert GenServer.call(pid, :reply_hibernate) == :hib
      assert GenServer.call(pid, :noreply) == :later
      assert GenServer.call(pid, :noreply_timeout) == :later
      assert GenServer.call(pid, :throw) == :thrown

      assert history(pid) == [
               {:init, 0, 0},
               {:handle_call, :reply_hibernate, 1},
               {:handle_call, :noreply, 2},
               {:handle_call, :noreply_timeout, 3},
               {:handle_call, :throw, 4}
             ]

      ref = Process.monitor(pid)
      assert GenServer.call(pid, :stop_reply) == :bye
      assert_receive {:DOWN, ^ref, :process, ^pid, :normal}
      assert List.last(history(pid)) == {:handle_call, :stop_reply, 5}

      {:ok, pid} = Shapes.start(10)
      ref = Process.monitor(pid)
      catch_exit(GenServer.call(pid, :stop_noreply))
      assert_receive {:DOWN, ^ref, :process, ^pid, :normal}
      assert history(pid) == [{:init, 10, 10}, {:handle_call, :stop_noreply, 11}]

      {:ok, pid} = Shapes.start(20)
      ref = Process.monitor(pid)
      GenServer.cast(pid, :stop)
      assert_receive {:DOWN, ^ref, :process, ^pid, :normal}
      assert history(pid) == [{:init, 20, 20}, {:handle_cast, :stop, 21}]

      {:ok, pid} = Shapes.start(:timeout)
      assert history(pid) == [{:init, :timeout, 0}]
      GenServer.stop(pid)

      {:ok, pid} = Shapes.start(:throw)
      assert history(pid) == [{:init, :throw, :thrown_init}]
      GenServer.stop(pid)
    end

    test "a raising callback still crashes the server as before, recording nothing" do
      {:ok, pid} = Shapes.start(0)
      ref = Process.monitor(pid)

      ExUnit.CaptureLog.capture_log(fn ->
        assert {{%RuntimeError{message: "boom"}, _}, _} = catch_exit(GenServer.call(pid, :raise))
        assert_receive {:DOWN, ^ref, :process, ^pid, {%RuntimeError{}, _}}
      end)

      assert history(pid) == [{:init, 0, 0}]
    end

    test "the defaults of `use GenServer` are kept and record nothing" do
      {:ok, pid} = GenServer.start(Minimal, :s)

      ExUnit.CaptureLog.capture_log(fn ->
        send(pid, :unexpected)
        :sys.get_state(pid)
      end)

      assert Process.alive?(pid)
      assert history(pid) == [{:init, :s, :s}]
      GenServer.stop(pid)
    end

    test "events of different servers are kept apart" do
      {:ok, a} = Counter.start_link(1)
      {:ok, b} = Counter.start_link(100)
      GenServer.call(a, :inc)
      GenServer.call(b, {:set, 7})

      assert List.last(history(a)) == {:handle_call, :inc, %{count: 2, loaded: true}}
      assert List.last(history(b)) == {:handle_call, {:set, 7}, %{count: 7, loaded: true}}
    end
  end

  describe "without the store" do
    test "the server works exactly the same and nothing is raised" do
      assert TraceDB.store_event(:state, %{}) == {:error, :not_running}

      {:ok, pid} = Counter.start_link(1)
      assert GenServer.call(pid, :inc) == :ok
      GenServer.cast(pid, {:add, 2})
      send(pid, :tick)
      assert GenServer.call(pid, :get) == 40
      assert :sys.get_state(pid) == %{count: 40, loaded: true}

      {:ok, pid} = Shapes.start(0)
      assert GenServer.call(pid, :throw) == :thrown
      assert GenServer.call(pid, :stop_reply) == :bye
    end

    test "the wrapped callbacks return what the originals return" do
      state = %{count: 1, loaded: true}

      assert Counter.init(1) == {:ok, %{count: 1, loaded: false}, {:continue, :load}}
      assert Counter.handle_call(:inc, nil, state) == {:reply, :ok, %{state | count: 2}}
      assert Counter.handle_call(:get, nil, state) == {:reply, 1, state}
      assert Counter.handle_cast({:add, 2}, state) == {:noreply, %{state | count: 3}}
      assert Counter.handle_info(:tick, state) == {:noreply, %{state | count: 10}}
      assert Counter.handle_continue(:load, %{state | loaded: false}) == {:noreply, state}
      assert Shapes.init(:ignore) == :ignore
      assert Shapes.init(:stop) == {:stop, :nope}
      assert catch_throw(Shapes.init(:throw)) == {:ok, :thrown_init}
      assert Shapes.handle_call(:stop_noreply, nil, 1) == {:stop, :normal, 2}
      assert_raise FunctionClauseError, fn -> Counter.handle_call({:set, :x}, nil, state) end
    end

    test "stays cheap: a thousand calls do not depend on a store" do
      {:ok, pid} = Counter.start_link(0)
      for _ <- 1..1000, do: GenServer.call(pid, :inc)
      assert GenServer.call(pid, :get) == 1000
    end
  end
end
