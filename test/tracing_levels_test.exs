defmodule ElixirScope.TracingLevelsTest.Sample do
  @moduledoc false
  def add(a, b), do: a + b
end

defmodule ElixirScope.TracingLevelsTest.Counter do
  @moduledoc false
  use GenServer

  def start_link(initial), do: GenServer.start_link(__MODULE__, initial)

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_call(:get, _from, s), do: {:reply, s, s}
  def handle_call({:add, k}, _from, s), do: {:reply, :ok, s + k}
end

defmodule ElixirScope.TracingLevelsTest do
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait

  alias ElixirScope.TraceDB
  alias ElixirScope.TracingLevelsTest.{Counter, Sample}

  @moduletag :capture_log

  @message_types [:send, :receive]
  @call_types [:call, :return, :exception]
  @lifecycle_types [:spawn, :link, :unlink, :register, :unregister]

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  ## Helpers

  defp await_events(filters, pred \\ &(&1 != [])) do
    case wait_until(fn ->
           events = TraceDB.query_events(filters)
           if pred.(events), do: {:ok, events}
         end) do
      {:ok, events} -> events
      nil -> TraceDB.query_events(filters)
    end
  end

  defp types, do: TraceDB.query_events([]) |> Enum.map(& &1.type) |> Enum.uniq()

  defp of_types(types), do: Enum.flat_map(types, &TraceDB.query_events(type: &1))

  defp echo_loop do
    receive do
      {:echo, to, x} ->
        send(to, {:echoed, x})
        echo_loop()

      {:spawn, to} ->
        send(to, {:child, spawn(fn -> :ok end)})
        echo_loop()

      {:exit, reason} ->
        exit(reason)
    end
  end

  defp echo(p, x) do
    send(p, {:echo, self(), x})
    assert_receive {:echoed, ^x}
  end

  defp stop_process(pid, reason) do
    ref = Process.monitor(pid)
    send(pid, {:exit, reason})
    assert_receive {:DOWN, ^ref, :process, ^pid, ^reason}
  end

  # Everything a level can record: a traced GenServer changing state, calls of a
  # traced module, messages, spawn, link/unlink, register/unregister, a normal exit
  # and a crash. Returns the pids involved, once all of it has happened.
  defp exercise(opts) do
    test_pid = self()
    gs = start_supervised!({Counter, 0})
    if opts[:genserver], do: assert(:ok = ElixirScope.trace_genserver(gs))
    :ok = ElixirScope.trace_module(Sample)

    worker =
      spawn(fn ->
        receive do
          :go -> :ok
        end

        3 = Sample.add(1, 2)
        child = spawn(fn -> Process.sleep(:infinity) end)
        Process.link(child)
        Process.unlink(child)
        Process.register(self(), :elixir_scope_levels_test_reg)
        Process.unregister(:elixir_scope_levels_test_reg)
        send(test_pid, {:done, self(), child})
        echo_loop()
      end)

    crasher = spawn(fn -> echo_loop() end)
    :ok = ElixirScope.trace_process(worker)
    :ok = ElixirScope.trace_process(crasher)

    send(worker, :go)
    assert_receive {:done, ^worker, child}
    :ok = GenServer.call(gs, {:add, 5})
    assert GenServer.call(gs, :get) == 5
    echo(crasher, :hi)
    stop_process(worker, :normal)
    stop_process(crasher, :boom)
    Process.exit(child, :kill)
    %{gs: gs, worker: worker, crasher: crasher, child: child}
  end

  ## Levels

  describe "tracing levels" do
    test ":full records messages, calls, states and lifecycle" do
      :ok = ElixirScope.setup(tracing_level: :full)
      %{gs: gs, worker: worker, crasher: crasher, child: child} = exercise(genserver: true)

      assert [_ | _] = await_events(type: :crash, pid: crasher)
      assert [%{reason: :normal}] = await_events(type: :exit, pid: worker)
      assert [%{parent: ^worker}] = TraceDB.query_events(type: :spawn, pid: child)
      assert [%{to_pid: ^child}] = TraceDB.query_events(type: :link, pid: worker)
      assert [%{to_pid: ^child}] = TraceDB.query_events(type: :unlink, pid: worker)
      assert [_] = TraceDB.query_events(type: :register, pid: worker)
      assert [_] = TraceDB.query_events(type: :unregister, pid: worker)
      assert [%{args: [1, 2]}] = TraceDB.query_events(type: :call, module: Sample)
      assert [%{result: 3}] = TraceDB.query_events(type: :return, module: Sample)

      assert [%{callback: :initial, state: 0}, %{callback: :handle_call, state: 5}] =
               TraceDB.query_events(type: :state, pid: gs)

      assert Enum.any?(TraceDB.query_events(type: :receive, pid: worker), &(&1.message == :go))
      assert [_ | _] = TraceDB.query_events(type: :send, from_pid: worker)
      assert [_ | _] = TraceDB.query_events(type: :receive, pid: gs)
    end

    test ":messages_only records messages and crashes, no calls, states or lifecycle" do
      :ok = ElixirScope.setup(tracing_level: :messages_only)
      %{gs: gs, worker: worker, crasher: crasher} = exercise(genserver: true)

      assert [%{reason: :boom}] = await_events(type: :crash, pid: crasher)
      assert Enum.any?(TraceDB.query_events(type: :receive, pid: worker), &(&1.message == :go))
      assert [%{to_pid: to} | _] = TraceDB.query_events(type: :send, from_pid: worker)
      assert to == self()
      assert [_ | _] = TraceDB.query_events(type: :receive, pid: gs)
      assert [_ | _] = TraceDB.query_events(type: :receive, pid: crasher)

      assert of_types(@call_types) == []
      assert of_types(@lifecycle_types) == []

      # no state changes (the :initial state is checked on its own below)
      assert Enum.reject(TraceDB.query_events(type: :state), &(&1.callback == :initial)) == []
    end

    test ":states_only records states and crashes, no messages, calls or lifecycle" do
      :ok = ElixirScope.setup(tracing_level: :states_only)
      %{gs: gs, crasher: crasher} = exercise(genserver: true)

      assert [%{reason: :boom}] = await_events(type: :crash, pid: crasher)

      assert [%{callback: :initial, state: 0}, %{callback: :handle_call, cause: {:add, 5}}] =
               TraceDB.query_events(type: :state, pid: gs)

      assert of_types(@message_types) == []
      assert of_types(@call_types) == []
      assert of_types(@lifecycle_types) == []
    end

    test ":minimal records lifecycle, crashes and states, no messages or calls" do
      :ok = ElixirScope.setup(tracing_level: :minimal)
      %{gs: gs, worker: worker, crasher: crasher, child: child} = exercise(genserver: true)

      assert [%{reason: :boom}] = await_events(type: :crash, pid: crasher)
      assert [%{reason: :normal}] = await_events(type: :exit, pid: worker)
      assert [%{parent: ^worker}] = TraceDB.query_events(type: :spawn, pid: child)
      assert [%{to_pid: ^child}] = TraceDB.query_events(type: :link, pid: worker)
      assert [%{to_pid: ^child}] = TraceDB.query_events(type: :unlink, pid: worker)
      assert [%{name: :elixir_scope_levels_test_reg}] = TraceDB.query_events(type: :register)
      assert [%{name: :elixir_scope_levels_test_reg}] = TraceDB.query_events(type: :unregister)

      assert [%{callback: :initial, state: 0}, %{callback: :handle_call, state: 5}] =
               TraceDB.query_events(type: :state, pid: gs)

      assert of_types(@message_types) == []
      assert of_types(@call_types) == []
    end

    test ":off records nothing new (processes, a module, a crash)" do
      :ok = ElixirScope.setup(tracing_level: :off)
      assert ElixirScope.tracing_info().level == :off
      %{crasher: crasher} = exercise(genserver: false)
      Process.sleep(20)

      assert TraceDB.query_events([]) == [],
             "at :off these were recorded: #{inspect(types())}"

      assert TraceDB.stats().appended == 0
      assert TraceDB.query_events(type: :crash, pid: crasher) == []

      # the store stays up for manual events
      assert :ok = TraceDB.store_event(:note, %{n: 1})
      assert [%{type: :note, n: 1}] = TraceDB.query_events([])
    end

    for level <- [:messages_only, :off] do
      test "trace_genserver/1 records no :state at #{inspect(level)}" do
        level = unquote(level)
        :ok = ElixirScope.setup(tracing_level: level)
        {:ok, gs} = Counter.start_link(1)
        assert :ok = ElixirScope.trace_genserver(gs)
        :ok = GenServer.call(gs, {:add, 1})
        assert GenServer.call(gs, :get) == 2
        Process.sleep(20)

        assert TraceDB.query_events(type: :state) == [],
               "at #{inspect(level)} trace_genserver/1 recorded " <>
                 inspect(TraceDB.query_events(type: :state))

        GenServer.stop(gs)
      end
    end

    for level <- [:messages_only, :states_only] do
      test "a normal exit (lifecycle) is not recorded at #{inspect(level)}; a crash is" do
        level = unquote(level)
        :ok = ElixirScope.setup(tracing_level: level)
        normal = spawn(fn -> echo_loop() end)
        crasher = spawn(fn -> echo_loop() end)
        :ok = ElixirScope.trace_process(normal)
        :ok = ElixirScope.trace_process(crasher)
        stop_process(normal, :normal)
        stop_process(crasher, :boom)

        # crashes are recorded at every level but :off...
        assert [%{reason: :boom}] = await_events(type: :crash, pid: crasher)

        # ...but a normal exit is lifecycle, which this level leaves out
        assert TraceDB.query_events(type: :exit) == [],
               "at #{inspect(level)} a normal exit was recorded: " <>
                 inspect(TraceDB.query_events(type: :exit))
      end
    end

    test "set_tracing_level/1 switches the level at runtime" do
      :ok = ElixirScope.setup(tracing_level: :full)
      :ok = ElixirScope.trace_module(Sample)
      p = spawn(fn -> echo_loop() end)
      :ok = ElixirScope.trace_process(p)

      count = fn filters -> length(TraceDB.query_events(filters)) end
      calls = fn -> count.(type: :call, module: Sample) end
      sends = fn -> count.(type: :send, from_pid: p) end

      Sample.add(1, 1)
      echo(p, 1)
      assert calls.() == 1
      assert sends.() == 1

      assert :ok = ElixirScope.set_tracing_level(:messages_only)
      assert ElixirScope.tracing_info().level == :messages_only
      Sample.add(2, 2)
      echo(p, 2)
      assert sends.() == 2
      assert calls.() == 1

      assert :ok = ElixirScope.set_tracing_level(:off)
      assert ElixirScope.tracing_info().level == :off
      n = TraceDB.stats().appended
      Sample.add(3, 3)
      echo(p, 3)
      assert TraceDB.stats().appended == n

      assert :ok = ElixirScope.set_tracing_level(:states_only)
      Sample.add(4, 4)
      echo(p, 4)
      assert TraceDB.stats().appended == n

      assert :ok = ElixirScope.set_tracing_level(:full)
      assert ElixirScope.tracing_info().level == :full
      Sample.add(5, 5)
      echo(p, 5)
      assert calls.() == 2
      assert sends.() == 3

      assert Enum.map(TraceDB.query_events(type: :call, module: Sample), & &1.args) == [
               [1, 1],
               [5, 5]
             ]

      assert Enum.map(TraceDB.query_events(type: :send, from_pid: p), & &1.message) == [
               {:echoed, 1},
               {:echoed, 2},
               {:echoed, 5}
             ]

      stop_process(p, :normal)
    end
  end

  ## Sampling

  describe "sampling" do
    test "sample_rate: 0.0 keeps no messages but keeps spawn, exit and crash" do
      :ok = ElixirScope.setup(sample_rate: 0.0)
      assert TraceDB.stats().sample_rate == 0.0
      p = spawn(fn -> echo_loop() end)
      crasher = spawn(fn -> echo_loop() end)
      :ok = ElixirScope.trace_process(p)
      :ok = ElixirScope.trace_process(crasher)

      for i <- 1..10, do: echo(p, i)
      out1 = TraceDB.stats().sampled_out
      assert out1 >= 20

      for i <- 1..10, do: echo(p, i)
      assert TraceDB.stats().sampled_out >= out1 + 20

      send(p, {:spawn, self()})
      assert_receive {:child, child}
      stop_process(p, :normal)
      stop_process(crasher, :boom)

      assert [%{parent: ^p}] = await_events(type: :spawn, pid: child)
      assert [%{reason: :normal}] = await_events(type: :exit, pid: p)
      assert [%{reason: :boom}] = await_events(type: :crash, pid: crasher)
      assert of_types(@message_types) == []
    end

    test "set_sample_rate/1 changes sampling at runtime" do
      :ok = ElixirScope.setup()
      p = spawn(fn -> echo_loop() end)
      :ok = ElixirScope.trace_process(p)
      sends = fn -> length(TraceDB.query_events(type: :send, from_pid: p)) end

      echo(p, 1)
      assert sends.() == 1
      out = TraceDB.stats().sampled_out

      assert :ok = ElixirScope.set_sample_rate(0.0)
      assert TraceDB.stats().sample_rate == 0.0
      for i <- 1..20, do: echo(p, i)
      assert sends.() == 1
      assert TraceDB.stats().sampled_out >= out + 40

      assert :ok = ElixirScope.set_sample_rate(1)
      assert TraceDB.stats().sample_rate == 1.0
      echo(p, :again)
      assert sends.() == 2

      assert :ok = ElixirScope.set_sample_rate(0.5)

      for i <- 1..1_000, do: echo(p, i)
      kept = sends.() - 2
      assert kept > 300 and kept < 700, "sample_rate 0.5 kept #{kept} of 1000 sends"
      stop_process(p, :normal)
    end
  end
end
