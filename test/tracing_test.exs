defmodule ElixirScope.TracingTest.Sample do
  @moduledoc false
  # Functions traced by the tests below. Never called by anything else.

  def add(a, b), do: a + b
  def mul(a, b), do: a * b

  def pub(x), do: priv(x) + 1
  defp priv(x), do: x * 2

  def fact(0), do: 1
  def fact(n) when n > 0, do: n * fact(n - 1)

  def down(0), do: 0
  def down(n), do: 1 + down(n - 1)

  def boom(x), do: raise(ArgumentError, "boom #{x}")
  def throws(x), do: throw({:thrown, x})
  def exits(x), do: exit({:exited, x})

  def idle, do: Process.sleep(:infinity)

  def echo(a, b, c), do: {c, b, a}
end

defmodule ElixirScope.TracingTest.Marker do
  @moduledoc false
  # A function traced on its own, called after code whose events must NOT be
  # recorded: once its :call is in the store, everything the same process did before
  # it has been recorded too (the tracer runs inside the traced process).
  def mark(tag), do: tag
end

defmodule ElixirScope.TracingTest.Counter do
  @moduledoc false
  use GenServer

  def start_link(opts) do
    GenServer.start_link(__MODULE__, Keyword.get(opts, :initial, 0), Keyword.take(opts, [:name]))
  end

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_call(:get, _from, s), do: {:reply, s, s}
  def handle_call({:add, k}, _from, s), do: {:reply, :ok, s + k}
  def handle_call({:add_then_double, k}, _from, s), do: {:reply, :ok, s + k, {:continue, :double}}

  @impl true
  def handle_cast({:add, k}, s), do: {:noreply, s + k}
  def handle_cast(:crash, _s), do: raise("counter crashed on purpose")

  @impl true
  def handle_info({:add, k}, s), do: {:noreply, s + k}
  def handle_info(_other, s), do: {:noreply, s}

  @impl true
  def handle_continue(:double, s), do: {:noreply, s * 2}
end

defmodule ElixirScope.TracingTest do
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait

  alias ElixirScope.TraceDB
  alias ElixirScope.Test.TraceState
  alias ElixirScope.TracingTest.{Counter, Marker, Sample}

  @moduletag :capture_log

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  ## Helpers

  # The events matching `filters` once `pred` holds for them (or the last ones seen, so
  # that the assertion that follows fails with the actual events).
  defp await_events(filters, pred \\ &(&1 != []), timeout \\ 2_000) do
    wait_until(
      fn ->
        events = TraceDB.query_events(filters)
        if pred.(events), do: {:ok, events}
      end,
      timeout
    )
    |> case do
      {:ok, events} -> events
      nil -> TraceDB.query_events(filters)
    end
  end

  defp await_count(filters, n), do: await_events(filters, &(length(&1) >= n))

  # Calls Marker.mark/1 in this process and waits for its :call event.
  defp sync_marker(tag) do
    Marker.mark(tag)

    assert [_] =
             await_events(
               [type: :call, module: Marker, function: :mark],
               &Enum.any?(&1, fn e -> e.args == [tag] end)
             )
             |> Enum.filter(&(&1.args == [tag]))
  end

  defp sleeper, do: spawn(fn -> Process.sleep(:infinity) end)

  # A process that runs `fun` when it receives :go, then waits for :stop.
  defp worker(fun) do
    spawn(fn ->
      receive do
        :go -> fun.()
      end

      receive do
        :stop -> :ok
      end
    end)
  end

  defp kill(pid) do
    ref = Process.monitor(pid)
    Process.exit(pid, :kill)
    assert_receive {:DOWN, ^ref, _, _, _}
  end

  defp ours?(pid), do: TraceState.ours?(pid)

  defp states(pid), do: TraceDB.query_events(type: :state, pid: pid)

  # The :receive events of `pid` whose message is `message`, once there is one.
  defp received(pid, message) do
    await_events([type: :receive, pid: pid], &Enum.any?(&1, fn e -> e.message == message end))
    |> Enum.filter(&(&1.message == message))
  end

  ## Lifecycle

  describe "setup/1 and stop/1" do
    test "setup returns :ok and starts tracing; a second setup reports the running instance" do
      refute ElixirScope.running?()
      assert :ok = ElixirScope.setup()
      assert ElixirScope.running?()
      sup = Process.whereis(ElixirScope.Supervisor)
      assert is_pid(sup)
      assert {:error, {:already_started, ^sup}} = ElixirScope.setup()
      assert {:error, {:already_started, ^sup}} = ElixirScope.setup(tracing_level: :minimal)
      # the running instance was not changed by the refused setup
      assert ElixirScope.tracing_info().level == :full
    end

    test "setup is not linked to the caller: the caller exiting does not stop ElixirScope" do
      task = Task.async(fn -> ElixirScope.setup() end)
      assert :ok = Task.await(task)
      refute Process.alive?(task.pid)
      assert ElixirScope.running?()
    end

    test "stop/0 twice is :ok and stops tracing" do
      :ok = ElixirScope.setup()
      assert :ok = ElixirScope.stop()
      refute ElixirScope.running?()
      assert :ok = ElixirScope.stop()
      refute ElixirScope.running?()
      assert :ok = ElixirScope.stop(keep_data: false)
      assert :ok = ElixirScope.stop(keep_data: false)
      assert Process.whereis(ElixirScope.Supervisor) == nil
    end

    test "stop/0 on a never-started ElixirScope is :ok" do
      assert Process.whereis(ElixirScope.Supervisor) == nil
      assert :ok = ElixirScope.stop()
    end

    test "after stop/0 the recording stays queryable; setup/1 again starts empty" do
      :ok = ElixirScope.setup()
      p = worker(fn -> :ok end)
      :ok = ElixirScope.trace_process(p)
      send(p, :go)
      assert [%{message: :go}] = received(p, :go)

      :ok = ElixirScope.stop()
      refute ElixirScope.running?()
      # still there after stop
      before = TraceDB.query_events([])
      assert [%{message: :go}] = received(p, :go)
      assert TraceDB.stats().stored == length(before)

      # nothing is recorded any more
      send(p, :stop)
      Process.sleep(20)
      assert TraceDB.query_events([]) == before

      # a new recording: only the :alive snapshot of the processes running now (the
      # VM's time offset is noted beside the events, ElixirScope.WallClock)
      assert :ok = ElixirScope.setup()
      fresh = TraceDB.query_events([])
      assert fresh != [] and Enum.all?(fresh, &(&1.type == :alive))
      assert TraceDB.wall_offset(System.monotonic_time(), TraceDB) == System.time_offset()
      refute Enum.any?(fresh, &(&1[:message] == :go))
      assert TraceDB.stats().stored == length(fresh)
      assert TraceDB.stats().appended == length(fresh)
      assert ElixirScope.tracing_info().genservers == []
    end

    test "stop(keep_data: false) frees the store" do
      :ok = ElixirScope.setup()
      :ok = TraceDB.store_event(:note, %{n: 1})
      :ok = ElixirScope.stop(keep_data: false)
      assert Process.whereis(TraceDB) == nil
      assert Process.whereis(ElixirScope.Supervisor) == nil
      assert {:error, :not_running} = TraceDB.store_event(:note, %{n: 2})
    end

    test "{ElixirScope, opts} runs as a child of the caller's Supervisor" do
      {:ok, sup} =
        Supervisor.start_link([{ElixirScope, tracing_level: :minimal, max_events: 5_000}],
          strategy: :one_for_one
        )

      assert [{ElixirScope, es_sup, :supervisor, [ElixirScope]}] = Supervisor.which_children(sup)
      assert es_sup == Process.whereis(ElixirScope.Supervisor)
      assert ElixirScope.running?()
      assert ElixirScope.tracing_info().level == :minimal
      assert TraceDB.stats().max_events == 5_000
      assert {:error, {:already_started, ^es_sup}} = ElixirScope.setup()

      # it traces
      p = worker(fn -> Process.register(self(), :elixir_scope_tracing_test_child) end)
      :ok = ElixirScope.trace_process(p)
      send(p, :go)

      assert [%{name: :elixir_scope_tracing_test_child}] = await_events(type: :register, pid: p)

      # stopping the parent stops ElixirScope and removes its trace flags
      :ok = Supervisor.stop(sup)
      refute ElixirScope.running?()
      assert Process.whereis(ElixirScope.Supervisor) == nil
      assert TraceState.flags(p) == []
      refute ours?(p)
      kill(p)

      assert :ok = ElixirScope.setup()
      assert ElixirScope.tracing_info().level == :full
    end

    test "stop/1 stops an ElixirScope that runs under the caller's Supervisor" do
      {:ok, sup} =
        Supervisor.start_link([{ElixirScope, tracing_level: :minimal}], strategy: :one_for_one)

      # The supervisor is linked to the test process, which has exited by the time
      # on_exit runs: it may already be shutting down.
      on_exit(fn ->
        try do
          if Process.alive?(sup), do: Supervisor.stop(sup)
        catch
          :exit, _ -> :ok
        end
      end)

      assert :ok = ElixirScope.stop()
      refute ElixirScope.running?()

      assert :ok = ElixirScope.stop(keep_data: false)
      # give the caller's supervisor the time it would take to restart it
      Process.sleep(100)

      refute ElixirScope.running?(),
             "ElixirScope.stop(keep_data: false) returned :ok but the parent Supervisor " <>
               "restarted ElixirScope: tracing_info() = #{inspect(ElixirScope.tracing_info())}"
    end

    test "config :elixir_scope defaults are honoured; setup options override them" do
      old = Application.get_all_env(:elixir_scope)

      on_exit(fn ->
        for {k, _} <- Application.get_all_env(:elixir_scope),
            do: Application.delete_env(:elixir_scope, k)

        for {k, v} <- old, do: Application.put_env(:elixir_scope, k, v)
      end)

      Application.put_env(:elixir_scope, :tracing_level, :minimal)
      Application.put_env(:elixir_scope, :max_events, 4_321)
      Application.put_env(:elixir_scope, :sample_rate, 0.5)
      Application.put_env(:elixir_scope, :trace_all, false)

      :ok = ElixirScope.setup()
      info = ElixirScope.tracing_info()
      assert info.level == :minimal
      assert info.trace_all == false
      stats = TraceDB.stats()
      assert stats.max_events == 4_321
      assert stats.sample_rate == 0.5
      :ok = ElixirScope.stop(keep_data: false)

      :ok = ElixirScope.setup(tracing_level: :states_only, max_events: 1_000)
      assert ElixirScope.tracing_info().level == :states_only
      assert TraceDB.stats().max_events == 1_000
      assert TraceDB.stats().sample_rate == 0.5
      :ok = ElixirScope.stop(keep_data: false)

      # an invalid configured value is reported like an invalid option
      Application.put_env(:elixir_scope, :tracing_level, :loud)

      assert_raise ArgumentError, ~r/:tracing_level/, fn -> ElixirScope.setup() end
      refute ElixirScope.running?()
    end
  end

  ## Cleanliness

  describe "stop/0 leaves no trace flags or patterns" do
    defp trace_everything do
      p = worker(fn -> :ok end)
      :ok = ElixirScope.trace_process(p)
      gs = start_supervised!(Counter)
      :ok = ElixirScope.trace_genserver(gs)
      :ok = ElixirScope.trace_module(Sample)
      :ok = ElixirScope.trace_function({Marker, :mark, 1})
      :ok = ElixirScope.trace_process(self())

      # processes created after trace_module/1 get :call tracing too
      late = sleeper()

      # the flags and patterns are in place while tracing
      assert ours?(p) and ours?(gs) and ours?(late)
      flags = TraceState.flags(p)
      assert :send in flags and :receive in flags and :call in flags
      assert [_ | _] = TraceState.match_spec({Sample, :add, 2})
      assert [_ | _] = TraceState.match_spec({Marker, :mark, 1})
      assert [_ | _] = TraceState.match_spec({Counter, :handle_call, 3})
      assert [_ | _] = TraceState.flags(:new)

      send(p, :go)
      Sample.pub(1)
      GenServer.call(gs, {:add, 1})
      Marker.mark(:x)
      assert await_events(type: :receive, pid: p) != []

      %{p: p, gs: gs, late: late}
    end

    defp assert_clean(pids) do
      for pid <- pids do
        assert TraceState.flags(pid) == [], "flags left on #{inspect(pid)}"
        refute TraceState.ours?(pid)
      end

      for {f, a} <- Sample.module_info(:functions) do
        assert TraceState.match_spec({Sample, f, a}) == false,
               "pattern left on #{inspect({Sample, f, a})}"
      end

      for mfa <- [
            {Marker, :mark, 1},
            {Counter, :handle_call, 3},
            {Counter, :handle_cast, 2},
            {Counter, :handle_info, 2},
            {Counter, :handle_continue, 2}
          ] do
        assert TraceState.match_spec(mfa) == false, "pattern left on #{inspect(mfa)}"
      end

      assert TraceState.flags(:new) == []

      still_ours = for pid <- Process.list(), ours?(pid), do: pid
      assert still_ours == [], "processes still traced by ElixirScope: #{inspect(still_ours)}"
    end

    test "after tracing processes, a GenServer, a module and a function" do
      :ok = ElixirScope.setup()
      %{p: p, gs: gs, late: late} = trace_everything()

      assert :ok = ElixirScope.stop()
      assert_clean([p, gs, late, self()])

      # and nothing more is recorded
      n = TraceDB.stats().appended
      Sample.pub(2)
      GenServer.call(gs, {:add, 1})
      send(p, :stop)
      Process.sleep(20)
      assert TraceDB.stats().appended == n
      kill(late)
    end

    test "with trace_all: true" do
      :ok = ElixirScope.setup(trace_all: true)
      other = sleeper()
      assert ours?(other)
      %{p: p, gs: gs, late: late} = trace_everything()

      assert :ok = ElixirScope.stop()
      assert_clean([p, gs, late, other, self()])
      kill(late)
      kill(other)
    end

    test "with keep_data: false" do
      :ok = ElixirScope.setup()
      %{p: p, gs: gs, late: late} = trace_everything()
      assert :ok = ElixirScope.stop(keep_data: false)
      assert_clean([p, gs, late, self()])
      kill(late)
    end

    @tag :legacy_tracing
    test "a process traced by :dbg keeps its dbg tracer and flags through setup, trace_module and stop" do
      on_exit(fn -> :dbg.stop() end)
      dbg_traced = sleeper()
      {:ok, _} = :dbg.tracer()
      {:ok, _} = :dbg.p(dbg_traced, [:s, :r, :procs])
      {:tracer, dbg_tracer} = :erlang.trace_info(dbg_traced, :tracer)
      assert is_pid(dbg_tracer)
      {:flags, dbg_flags} = :erlang.trace_info(dbg_traced, :flags)
      assert Enum.sort(dbg_flags) == Enum.sort([:send, :receive, :procs])

      :ok = ElixirScope.setup()
      assert :erlang.trace_info(dbg_traced, :tracer) == {:tracer, dbg_tracer}
      :ok = ElixirScope.trace_module(Sample)
      :ok = ElixirScope.trace_function({Marker, :mark, 1})
      assert :erlang.trace_info(dbg_traced, :tracer) == {:tracer, dbg_tracer}
      assert :erlang.trace_info(dbg_traced, :flags) == {:flags, dbg_flags}

      :ok = ElixirScope.stop()
      assert :erlang.trace_info(dbg_traced, :tracer) == {:tracer, dbg_tracer}
      assert :erlang.trace_info(dbg_traced, :flags) == {:flags, dbg_flags}

      :ok = :dbg.stop()
      kill(dbg_traced)
    end

    @tag :legacy_tracing
    test "a process traced by :dbg keeps its dbg tracer with trace_all: true" do
      on_exit(fn -> :dbg.stop() end)
      dbg_traced = sleeper()
      {:ok, _} = :dbg.tracer()
      {:ok, _} = :dbg.p(dbg_traced, [:s, :r])
      {:tracer, dbg_tracer} = :erlang.trace_info(dbg_traced, :tracer)
      {:flags, dbg_flags} = :erlang.trace_info(dbg_traced, :flags)

      :ok = ElixirScope.setup(trace_all: true)
      :ok = ElixirScope.trace_module(Sample)
      assert :erlang.trace_info(dbg_traced, :tracer) == {:tracer, dbg_tracer}
      assert :erlang.trace_info(dbg_traced, :flags) == {:flags, dbg_flags}
      :ok = ElixirScope.stop(keep_data: false)
      assert :erlang.trace_info(dbg_traced, :tracer) == {:tracer, dbg_tracer}
      assert :erlang.trace_info(dbg_traced, :flags) == {:flags, dbg_flags}

      :ok = :dbg.stop()
      kill(dbg_traced)
    end

    @tag :legacy_tracing
    test "trace_process/1 and trace_genserver/1 refuse a process :dbg already traces" do
      on_exit(fn -> :dbg.stop() end)
      :ok = ElixirScope.setup()
      p = sleeper()
      gs = start_supervised!(Counter)
      {:ok, _} = :dbg.tracer()
      {:ok, _} = :dbg.p(p, [:s])
      {:ok, _} = :dbg.p(gs, [:s])
      {:tracer, dbg_tracer} = :erlang.trace_info(p, :tracer)

      assert {:error, {:traced_by_another_tool, ^dbg_tracer}} = ElixirScope.trace_process(p)
      assert {:error, {:traced_by_another_tool, ^dbg_tracer}} = ElixirScope.trace_genserver(gs)
      assert :erlang.trace_info(p, :tracer) == {:tracer, dbg_tracer}
      assert :erlang.trace_info(gs, :tracer) == {:tracer, dbg_tracer}
      assert ElixirScope.tracing_info().genservers == []

      :ok = :dbg.stop()
      kill(p)
    end
  end

  ## What is captured

  describe "messages" do
    test "send records from_pid, to_pid and message; receive records pid and message" do
      :ok = ElixirScope.setup()
      test_pid = self()

      p =
        worker(fn ->
          send(test_pid, {:hello, self()})
        end)

      :ok = ElixirScope.trace_process(p)
      send(p, :go)
      assert_receive {:hello, ^p}

      assert [recv] = received(p, :go)
      assert recv.message == :go
      assert recv.pid == p
      assert is_integer(recv.timestamp)

      assert [sent] = await_events(type: :send, from_pid: p)
      assert sent.from_pid == p
      assert sent.to_pid == test_pid
      assert sent.message == {:hello, p}
      assert sent.timestamp >= recv.timestamp
      assert sent.id > recv.id

      assert [^sent] = TraceDB.query_events(type: :send, to_pid: test_pid)
      # the test process is not traced: it recorded nothing
      assert TraceDB.query_events(type: :receive, pid: test_pid) == []
      kill(p)
    end

    test "a message to a process that is gone is a :send_to_dead event" do
      :ok = ElixirScope.setup()
      dead = spawn(fn -> :ok end)
      ref = Process.monitor(dead)
      assert_receive {:DOWN, ^ref, :process, ^dead, _}

      test_pid = self()

      loop = fn loop ->
        receive do
          {:go, n} ->
            send(dead, {:late, n})
            send(test_pid, {:sent, n})
            loop.(loop)
        end
      end

      p = spawn(fn -> loop.(loop) end)
      :ok = ElixirScope.trace_process(p)
      send(p, {:go, 1})
      assert_receive {:sent, 1}

      assert [lost] = await_events(type: :send_to_dead, from_pid: p)
      assert lost.to_pid == dead and lost.message == {:late, 1}
      # not a :send: that one is the loop's report to the test process
      assert [%{message: {:sent, 1}}] = TraceDB.query_events(type: :send, from_pid: p)
      # indexed like a send: by the pair of processes
      assert [^lost] = TraceDB.query_events(pid: p, to_pid: dead)
      assert inspect(ElixirScope.Event.wrap(lost)) =~ "(not running) {:late, 1}"

      # a level without messages records none; with them again, the next one is
      :ok = ElixirScope.set_tracing_level(:states_only)
      send(p, {:go, 2})
      assert_receive {:sent, 2}
      :ok = ElixirScope.set_tracing_level(:messages_only)
      send(p, {:go, 3})
      assert_receive {:sent, 3}
      await_events(type: :send_to_dead, from_pid: p, timestamp_start: lost.timestamp + 1)

      assert Enum.map(TraceDB.query_events(type: :send_to_dead), & &1.message) ==
               [{:late, 1}, {:late, 3}]

      Process.exit(p, :kill)
    end

    test "trace_process/1 on a plain process sends it nothing and returns promptly" do
      :ok = ElixirScope.setup()
      test_pid = self()

      # a process with a catch-all receive, as many plain processes have
      catch_all =
        spawn(fn ->
          receive do
            msg -> send(test_pid, {:got, msg})
          end
        end)

      {us, result} = :timer.tc(fn -> ElixirScope.trace_process(catch_all) end)
      assert result == :ok
      send(catch_all, :hello)
      assert_receive {:got, first}

      assert first == :hello,
             "trace_process/1 put #{inspect(first)} in the traced process's mailbox " <>
               "(it received that instead of :hello)"

      idle = sleeper()
      {us2, :ok} = :timer.tc(fn -> ElixirScope.trace_process(idle) end)
      assert Process.info(idle, :messages) == {:messages, []}
      assert TraceDB.query_events(type: :receive, pid: idle) == []

      assert us < 500_000 and us2 < 500_000,
             "trace_process/1 of a plain process took #{div(us, 1000)} ms and " <>
               "#{div(us2, 1000)} ms"

      kill(idle)
    end

    test "untrace_process/1 stops recording a process" do
      :ok = ElixirScope.setup()
      p = spawn(fn -> echo_loop() end)
      :ok = ElixirScope.trace_process(p)
      send(p, {:echo, self(), 1})
      assert_receive {:echoed, 1}
      assert [_] = await_events(type: :send, from_pid: p)

      assert :ok = ElixirScope.untrace_process(p)
      assert TraceState.flags(p) == []
      send(p, {:echo, self(), 2})
      assert_receive {:echoed, 2}
      Process.sleep(20)
      assert [%{message: {:echoed, 1}}] = TraceDB.query_events(type: :send, from_pid: p)
      kill(p)
    end

    test "trace_named_process/1 traces the registered process" do
      :ok = ElixirScope.setup()
      p = spawn(fn -> echo_loop() end)
      Process.register(p, :elixir_scope_tracing_test_named)
      assert :ok = ElixirScope.trace_named_process(:elixir_scope_tracing_test_named)
      send(p, {:echo, self(), :x})
      assert_receive {:echoed, :x}
      assert [%{to_pid: to}] = await_events(type: :send, from_pid: p)
      assert to == self()
      kill(p)
    end
  end

  defp echo_loop do
    receive do
      {:echo, to, x} ->
        send(to, {:echoed, x})
        echo_loop()
    end
  end

  describe "function calls" do
    test "a call records args; its return records result, duration and the call's id" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_module(Sample)
      assert Sample.add(1, 2) == 3

      assert [call] = await_events(type: :call, module: Sample, function: :add)
      assert call.pid == self()
      assert call.module == Sample
      assert call.function == :add
      assert call.arity == 2
      assert call.args == [1, 2]

      assert [ret] = await_events(type: :return, module: Sample, function: :add)
      assert ret.pid == self()
      assert ret.arity == 2
      assert ret.result == 3
      assert is_integer(ret.duration) and ret.duration >= 0
      assert ret.call_id == call.id
      assert ret.id > call.id
      assert ret.timestamp >= call.timestamp
    end

    test "args and results of every kind come back as they were" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_module(Sample)
      big = 2 ** 59
      pid = self()
      ref = make_ref()

      calls = [
        {0, :atom, []},
        {big - 1, -big, big},
        {-big - 1, 2 ** 70, -1},
        {[1 | 2], [:a, [:b, []]], "bin"},
        {{1, :two, [3]}, %{k: [1, 2]}, 1.5},
        {pid, ref, [pid | ref]}
      ]

      for {a, b, c} <- calls, do: Sample.echo(a, b, c)
      events = await_count([type: :return, module: Sample, function: :echo], length(calls))
      assert Enum.map(events, & &1.result) == Enum.map(calls, fn {a, b, c} -> {c, b, a} end)
      calls_back = TraceDB.query_events(type: :call, module: Sample, function: :echo)
      assert Enum.map(calls_back, & &1.args) == Enum.map(calls, &Tuple.to_list/1)
      assert Enum.all?(calls_back, &(&1.arity == 3))
    end

    test "exceptions record class and reason, paired with their call" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_module(Sample)

      assert_raise ArgumentError, "boom 7", fn -> Sample.boom(7) end
      assert catch_throw(Sample.throws(8)) == {:thrown, 8}
      assert catch_exit(Sample.exits(9)) == {:exited, 9}

      [boom_call] = await_events(type: :call, module: Sample, function: :boom)
      [throw_call] = await_events(type: :call, module: Sample, function: :throws)
      [exit_call] = await_events(type: :call, module: Sample, function: :exits)

      assert [boom] = await_events(type: :exception, module: Sample, function: :boom)
      assert boom.class == :error
      assert boom.reason == %ArgumentError{message: "boom 7"}
      assert boom.call_id == boom_call.id
      assert is_integer(boom.duration) and boom.duration >= 0
      refute Map.has_key?(boom, :result)

      assert [thrown] = await_events(type: :exception, module: Sample, function: :throws)
      assert thrown.class == :throw
      assert thrown.reason == {:thrown, 8}
      assert thrown.call_id == throw_call.id

      assert [exited] = await_events(type: :exception, module: Sample, function: :exits)
      assert exited.class == :exit
      assert exited.reason == {:exited, 9}
      assert exited.call_id == exit_call.id

      assert TraceDB.query_events(type: :return, module: Sample) == []
    end

    test "recursion: nested calls pair with their own returns; outer calls last longer" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_module(Sample)
      assert Sample.fact(6) == 720

      calls = await_count([type: :call, module: Sample, function: :fact], 7)
      returns = await_count([type: :return, module: Sample, function: :fact], 7)
      assert Enum.map(calls, & &1.args) == [[6], [5], [4], [3], [2], [1], [0]]
      assert length(returns) == 7

      calls_by_id = Map.new(calls, &{&1.id, &1})
      assert Enum.sort(Enum.map(returns, & &1.call_id)) == Enum.sort(Map.keys(calls_by_id))

      factorial = fn n -> Enum.reduce(1..max(n, 1)//1, 1, &(&1 * &2)) end

      pairs =
        for ret <- returns do
          call = Map.fetch!(calls_by_id, ret.call_id)
          [n] = call.args
          assert ret.result == factorial.(n), "fact(#{n}) returned #{inspect(ret.result)}"
          {n, call, ret}
        end
        |> Enum.sort_by(fn {n, _, _} -> n end)

      # innermost (n = 0) returns first
      assert Enum.map(returns, & &1.result) == [1, 1, 2, 6, 24, 120, 720]

      for [{_, inner_call, inner_ret}, {_, outer_call, outer_ret}] <-
            Enum.chunk_every(pairs, 2, 1, :discard) do
        assert outer_ret.duration >= inner_ret.duration
        assert outer_call.timestamp <= inner_call.timestamp
        assert outer_ret.timestamp >= inner_ret.timestamp
      end
    end

    test "deep recursion (100 levels) records every call and return" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_module(Sample)
      assert Sample.down(100) == 100

      calls = await_count([type: :call, module: Sample, function: :down], 101)
      returns = await_count([type: :return, module: Sample, function: :down], 101)
      assert length(calls) == 101, "#{length(calls)} :call events of 101 nested calls"
      assert length(returns) == 101, "#{length(returns)} :return events of 101 nested calls"
      assert Enum.sort(Enum.map(returns, & &1.call_id)) == Enum.map(calls, & &1.id)
    end

    test "trace_module/1 captures local (private) calls; stop_trace_module/1 stops capture" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_function({Marker, :mark, 1})
      :ok = ElixirScope.trace_module(Sample)
      assert ElixirScope.tracing_info().modules == [Sample]
      assert Sample.pub(5) == 11

      assert [pub_call] = await_events(type: :call, module: Sample, function: :pub)
      assert [priv_call] = await_events(type: :call, module: Sample, function: :priv)
      assert priv_call.args == [5]
      assert priv_call.arity == 1
      assert priv_call.id > pub_call.id

      assert [%{result: 10, call_id: priv_id}] =
               await_events(type: :return, module: Sample, function: :priv)

      assert priv_id == priv_call.id
      assert [%{result: 11}] = await_events(type: :return, module: Sample, function: :pub)

      assert :ok = ElixirScope.stop_trace_module(Sample)
      assert ElixirScope.tracing_info().modules == []
      assert TraceState.match_spec({Sample, :pub, 1}) == false
      assert Sample.pub(6) == 13
      sync_marker(:after_stop_trace_module)
      assert length(TraceDB.query_events(module: Sample)) == 4
    end

    test "trace_module/1 captures calls made by other processes (a Task)" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_module(Sample)
      task = Task.async(fn -> Sample.mul(6, 7) end)
      assert Task.await(task) == 42
      assert [call] = await_events(type: :call, module: Sample, function: :mul)
      assert call.pid == task.pid
      assert [%{result: 42, pid: pid}] = await_events(type: :return, module: Sample)
      assert pid == task.pid
    end

    test "trace_function/1 captures only that function" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_function({Sample, :add, 2})
      assert ElixirScope.tracing_info().functions == [{Sample, :add, 2}]
      :ok = ElixirScope.trace_function({Marker, :mark, 1})

      assert Sample.mul(2, 3) == 6
      assert Sample.pub(1) == 3
      assert Sample.add(2, 3) == 5
      assert Task.await(Task.async(fn -> Sample.add(4, 4) end)) == 8
      sync_marker(:after_calls)

      calls = await_count([type: :call, module: Sample], 2)
      assert Enum.map(calls, &{&1.function, &1.args}) == [{:add, [2, 3]}, {:add, [4, 4]}]
      assert Enum.map(TraceDB.query_events(type: :return, module: Sample), & &1.result) == [5, 8]
    end

    test "stop_trace_module/1 keeps functions traced with trace_function/1" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.trace_function({Sample, :add, 2})
      :ok = ElixirScope.trace_module(Sample)
      :ok = ElixirScope.stop_trace_module(Sample)
      assert ElixirScope.tracing_info().functions == [{Sample, :add, 2}]

      assert Sample.add(1, 1) == 2

      events = await_events(type: :call, module: Sample, function: :add)

      assert Enum.map(events, & &1.args) == [[1, 1]],
             "Sample.add/2 was traced with trace_function/1 (tracing_info lists it) but " <>
               "stop_trace_module(Sample) removed its trace pattern: " <>
               inspect(TraceState.match_spec({Sample, :add, 2}))
    end
  end

  describe "process lifecycle" do
    test "spawn records the child as pid, the parent and the initial call" do
      :ok = ElixirScope.setup()
      test_pid = self()

      p =
        worker(fn ->
          child = spawn(Sample, :idle, [])
          anon = spawn(fn -> Process.sleep(:infinity) end)
          send(test_pid, {:children, child, anon})
        end)

      :ok = ElixirScope.trace_process(p)
      send(p, :go)
      assert_receive {:children, child, anon}

      # (with lifecycle: :all, other processes' spawns are recorded too)
      spawns = Enum.filter(await_count([type: :spawn], 2), &(&1.parent == p))
      assert [s1, s2] = spawns
      assert s1.pid == child
      assert s1.parent == p
      assert s1.initial_call == {Sample, :idle, 0}
      assert s2.pid == anon
      assert s2.parent == p
      assert s2.initial_call == {:erlang, :apply, 2}
      assert [^s1] = TraceDB.query_events(type: :spawn, pid: child)

      # children are not traced themselves (no set_on_spawn; lifecycle: :all gives
      # every process :procs, nothing more)
      refute Enum.any?([:send, :receive, :call], &(&1 in TraceState.flags(child)))
      Enum.each([child, anon, p], &kill/1)
    end

    test "a Task started by a traced process is recorded as a spawn" do
      :ok = ElixirScope.setup()
      test_pid = self()

      p =
        worker(fn ->
          task = Task.async(fn -> :done end)
          send(test_pid, {:task, task.pid, Task.await(task)})
        end)

      :ok = ElixirScope.trace_process(p)
      send(p, :go)
      assert_receive {:task, task_pid, :done}
      assert [spawn] = await_events(type: :spawn, pid: task_pid)
      assert spawn.parent == p
      # Elixir 1.15+ spawns a Task at Task.Supervised directly, earlier ones through proc_lib.
      if Version.match?(System.version(), ">= 1.15.0"),
        do: assert({Task.Supervised, _, _} = spawn.initial_call),
        else: assert({:proc_lib, :init_p, _} = spawn.initial_call)

      kill(p)
    end

    test "a normal exit is :exit; {:shutdown, _} too; abnormal exits are :crash with the reason" do
      :ok = ElixirScope.setup()

      normal = worker(fn -> exit(:normal) end)
      shutdown = worker(fn -> exit({:shutdown, :bye}) end)
      boom = worker(fn -> exit(:boom) end)
      raiser = worker(fn -> raise "raised on purpose" end)
      killed = sleeper()

      for pid <- [normal, shutdown, boom, raiser, killed] do
        :ok = ElixirScope.trace_process(pid)
        Process.monitor(pid)
      end

      for pid <- [normal, shutdown, boom, raiser], do: send(pid, :go)
      Process.exit(killed, :kill)
      for _ <- 1..5, do: assert_receive({:DOWN, _, :process, _, _})

      assert [%{reason: :normal}] = await_events(type: :exit, pid: normal)
      assert [%{reason: {:shutdown, :bye}}] = await_events(type: :exit, pid: shutdown)
      assert [%{reason: :boom}] = await_events(type: :crash, pid: boom)
      assert [%{reason: :killed}] = await_events(type: :crash, pid: killed)

      assert [%{reason: {%RuntimeError{message: "raised on purpose"}, stack}}] =
               await_events(type: :crash, pid: raiser)

      assert is_list(stack)

      assert TraceDB.query_events(type: :crash, pid: normal) == []
      assert TraceDB.query_events(type: :crash, pid: shutdown) == []
      assert TraceDB.query_events(type: :exit, pid: boom) == []
      assert TraceDB.query_events(type: :exit, pid: raiser) == []
      assert TraceDB.query_events(type: :exit, pid: killed) == []
    end

    test "a crashing Task is recorded as :crash" do
      :ok = ElixirScope.setup()
      {:ok, task} = Task.start(fn -> receive(do: (:go -> raise "task failed on purpose")) end)
      :ok = ElixirScope.trace_process(task)
      ref = Process.monitor(task)
      send(task, :go)
      assert_receive {:DOWN, ^ref, _, _, _}

      assert [%{reason: {%RuntimeError{message: "task failed on purpose"}, _}}] =
               await_events(type: :crash, pid: task)
    end

    test "link and unlink record pid and to_pid" do
      :ok = ElixirScope.setup()
      other = sleeper()

      p =
        worker(fn ->
          Process.link(other)
          Process.unlink(other)
        end)

      :ok = ElixirScope.trace_process(p)
      send(p, :go)

      assert [link] = await_events(type: :link, pid: p)
      assert link.to_pid == other
      assert [unlink] = await_events(type: :unlink, pid: p)
      assert unlink.to_pid == other
      assert unlink.id > link.id
      Enum.each([p, other], &kill/1)
    end

    test "register and unregister record the name" do
      :ok = ElixirScope.setup()

      p =
        worker(fn ->
          Process.register(self(), :elixir_scope_tracing_test_reg)
          Process.unregister(:elixir_scope_tracing_test_reg)
        end)

      :ok = ElixirScope.trace_process(p)
      send(p, :go)

      assert [reg] = await_events(type: :register, pid: p)
      assert reg.name == :elixir_scope_tracing_test_reg
      assert [unreg] = await_events(type: :unregister, pid: p)
      assert unreg.name == :elixir_scope_tracing_test_reg
      assert unreg.id > reg.id
      kill(p)
    end

    test "trace_all: true records processes never traced explicitly" do
      existing = spawn(fn -> echo_loop() end)
      :ok = ElixirScope.setup(trace_all: true)
      assert ElixirScope.tracing_info().trace_all == true
      test_pid = self()

      fresh =
        spawn(fn ->
          receive do
            {:ping, from} -> send(from, {:pong, self()})
          end
        end)

      send(fresh, {:ping, test_pid})
      assert_receive {:pong, ^fresh}
      send(existing, {:echo, test_pid, :hi})
      assert_receive {:echoed, :hi}

      assert [%{message: {:ping, ^test_pid}}] = await_events(type: :receive, pid: fresh)

      assert [%{to_pid: ^test_pid, message: {:pong, ^fresh}}] =
               await_events(type: :send, from_pid: fresh)

      assert [%{message: {:echo, ^test_pid, :hi}}] = await_events(type: :receive, pid: existing)
      assert [%{message: {:echoed, :hi}}] = await_events(type: :send, from_pid: existing)
      assert [%{reason: :normal}] = await_events(type: :exit, pid: fresh)
      kill(existing)
    end
  end

  ## GenServer state

  describe "GenServer state causality" do
    test "initial state, then one :state per change, with its callback and cause" do
      :ok = ElixirScope.setup()
      gs = start_supervised!({Counter, initial: 10})
      # changes before tracing are not recorded, but show in the initial state
      :ok = GenServer.call(gs, {:add, 5})

      assert :ok = ElixirScope.trace_genserver(gs)
      assert ElixirScope.tracing_info().genservers == [gs]

      assert [initial] = await_events(type: :state, pid: gs)
      assert initial.callback == :initial
      assert initial.state == 15
      assert initial.module == Counter
      refute Map.has_key?(initial, :cause)

      :ok = GenServer.call(gs, {:add, 2})
      assert [_, s1] = await_count([type: :state, pid: gs], 2)
      assert %{callback: :handle_call, cause: {:add, 2}, state: 17, module: Counter} = s1

      GenServer.cast(gs, {:add, 3})
      assert GenServer.call(gs, :get) == 20
      assert [_, _, s2] = await_count([type: :state, pid: gs], 3)
      assert %{callback: :handle_cast, cause: {:add, 3}, state: 20} = s2

      send(gs, {:add, 4})
      assert GenServer.call(gs, :get) == 24
      assert [_, _, _, s3] = await_count([type: :state, pid: gs], 4)
      assert %{callback: :handle_info, cause: {:add, 4}, state: 24} = s3

      :ok = GenServer.call(gs, {:add_then_double, 1})
      assert GenServer.call(gs, :get) == 50
      assert [_, _, _, _, s4, s5] = await_count([type: :state, pid: gs], 6)
      assert %{callback: :handle_call, cause: {:add_then_double, 1}, state: 25} = s4
      assert %{callback: :handle_continue, cause: :double, state: 50} = s5

      # timestamps and ids follow the changes
      history = states(gs)
      assert history == Enum.sort_by(history, & &1.id)
      assert Enum.map(history, & &1.state) == [15, 17, 20, 24, 25, 50]
      assert TraceDB.get_state_history(gs) == history
      assert {:ok, 24} = TraceDB.get_state_at(gs, s3.timestamp)
    end

    test "callbacks that leave the state unchanged record no :state event" do
      :ok = ElixirScope.setup()
      gs = start_supervised!(Counter)
      :ok = ElixirScope.trace_genserver(gs)
      assert [%{callback: :initial, state: 0}] = await_events(type: :state, pid: gs)

      for _ <- 1..5, do: assert(GenServer.call(gs, :get) == 0)
      :ok = GenServer.call(gs, {:add, 0})
      GenServer.cast(gs, {:add, 0})
      send(gs, :ignored)
      assert GenServer.call(gs, :get) == 0
      # a real change afterwards: it is the second :state event
      :ok = GenServer.call(gs, {:add, 1})

      assert [%{callback: :initial}, %{callback: :handle_call, cause: {:add, 1}, state: 1}] =
               await_count([type: :state, pid: gs], 2)

      # the messages themselves were recorded
      receives = TraceDB.query_events(type: :receive, pid: gs)
      assert Enum.count(receives, &match?(%{message: {:"$gen_call", _, :get}}, &1)) == 6
    end

    test "a named GenServer, traced by name" do
      :ok = ElixirScope.setup()
      name = ElixirScope.TracingTest.NamedCounter
      start_supervised!({Counter, name: name, initial: 1})
      pid = Process.whereis(name)

      assert :ok = ElixirScope.trace_genserver(name)
      :ok = GenServer.call(name, {:add, 41})

      assert [%{callback: :initial, state: 1}, %{callback: :handle_call, state: 42}] =
               await_count([type: :state, pid: pid], 2)

      assert {:error, {:not_registered, :elixir_scope_no_such_name}} =
               ElixirScope.trace_genserver(:elixir_scope_no_such_name)
    end

    test "trace_process/1 on a GenServer records its states too" do
      :ok = ElixirScope.setup()
      gs = start_supervised!({Counter, initial: 3})
      assert :ok = ElixirScope.trace_process(gs)
      :ok = GenServer.call(gs, {:add, 1})

      assert [%{callback: :initial, state: 3}, %{callback: :handle_call, state: 4}] =
               await_count([type: :state, pid: gs], 2)
    end

    test "an Agent (Agent.Server)" do
      :ok = ElixirScope.setup()
      {:ok, agent} = Agent.start_link(fn -> %{} end)
      assert :ok = ElixirScope.trace_genserver(agent)

      assert [%{callback: :initial, state: %{}, module: Agent.Server}] =
               await_events(type: :state, pid: agent)

      :ok = Agent.update(agent, &Map.put(&1, :a, 1))
      assert %{a: 1} = Agent.get(agent, & &1)
      :ok = Agent.cast(agent, &Map.put(&1, :b, 2))
      assert Agent.get(agent, & &1) == %{a: 1, b: 2}

      assert [_, update, cast] = await_count([type: :state, pid: agent], 3)
      assert %{callback: :handle_call, state: %{a: 1}, cause: {:update, f1}} = update
      assert is_function(f1, 1)
      assert %{callback: :handle_cast, state: %{a: 1, b: 2}, cause: {:cast, f2}} = cast
      assert is_function(f2, 1)

      # Agent.get/2 changes nothing
      Agent.get(agent, & &1)
      assert length(states(agent)) == 3
      Agent.stop(agent)
    end

    test "trace_genserver/1 refuses a process that is not a GenServer" do
      :ok = ElixirScope.setup()
      p = sleeper()
      assert {:error, :not_a_gen_server} = ElixirScope.trace_genserver(p)
      {:ok, task} = Task.start(fn -> Process.sleep(:infinity) end)
      assert {:error, :not_a_gen_server} = ElixirScope.trace_genserver(task)
      assert ElixirScope.tracing_info().genservers == []
      Enum.each([p, task], &kill/1)
    end

    test "a GenServer restarted by its Supervisor: the crash is recorded for the old pid" do
      :ok = ElixirScope.setup()
      name = ElixirScope.TracingTest.SupervisedCounter

      sup =
        start_supervised!(%{
          id: :counter_sup,
          type: :supervisor,
          start:
            {Supervisor, :start_link,
             [[{Counter, name: name, initial: 0}], [strategy: :one_for_one]]}
        })

      old = Process.whereis(name)
      :ok = ElixirScope.trace_genserver(old)
      :ok = GenServer.call(name, {:add, 7})
      ref = Process.monitor(old)
      GenServer.cast(name, :crash)
      assert_receive {:DOWN, ^ref, :process, ^old, _}

      new = wait_until(fn -> (pid = Process.whereis(name)) && pid != old && pid end)
      assert is_pid(new)
      assert [{Counter, ^new, :worker, _}] = Supervisor.which_children(sup)

      assert [crash] = await_events(type: :crash, pid: old)
      assert {%RuntimeError{message: "counter crashed on purpose"}, stack} = crash.reason
      assert is_list(stack)
      assert TraceDB.query_events(type: :exit, pid: old) == []

      assert [%{callback: :initial, state: 0}, %{callback: :handle_call, state: 7}] = states(old)
      assert crash.id > List.last(states(old)).id

      # the restarted GenServer starts afresh and works; it is a new pid
      assert GenServer.call(name, :get) == 0
    end

    test "untrace_process/1 stops recording a GenServer's states" do
      :ok = ElixirScope.setup()
      gs = start_supervised!(Counter)
      :ok = ElixirScope.trace_genserver(gs)
      :ok = GenServer.call(gs, {:add, 1})
      assert [_, _] = await_count([type: :state, pid: gs], 2)

      :ok = ElixirScope.untrace_process(gs)
      assert ElixirScope.tracing_info().genservers == []
      :ok = GenServer.call(gs, {:add, 1})
      :ok = GenServer.call(gs, {:add, 1})
      Process.sleep(20)
      assert length(states(gs)) == 2
    end
  end
end
