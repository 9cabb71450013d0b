defmodule ElixirScope.ProcessesTest.Counter do
  @moduledoc false
  use GenServer

  def start_link(opts),
    do: GenServer.start_link(__MODULE__, %{count: 0}, Keyword.take(opts, [:name]))

  def add(server, k), do: GenServer.call(server, {:add, k})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:add, k}, _from, s), do: {:reply, :ok, %{s | count: s.count + k}}
  def handle_call(:get, _from, s), do: {:reply, s, s}

  # A plain process spawned by the worker: it has no $ancestors.
  def handle_call(:spawn_helper, _from, s),
    do: {:reply, spawn(fn -> Process.sleep(:infinity) end), s}

  @impl true
  def handle_info({:add, k}, s), do: {:noreply, %{s | count: s.count + k}}
end

defmodule ElixirScope.ProcessesTest.Idle do
  @moduledoc false
  def idle, do: Process.sleep(:infinity)
end

defmodule ElixirScope.ProcessesTest do
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait

  alias ElixirScope.{Processes, TraceDB}
  alias ElixirScope.ProcessesTest.{Counter, Idle}

  @moduletag :capture_log

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  ## Helpers

  defp now, do: System.monotonic_time()

  defp kill_on_exit(pids) do
    on_exit(fn -> for pid <- List.wrap(pids), do: Process.exit(pid, :kill) end)
  end

  defp kill_and_wait(pid) do
    ref = Process.monitor(pid)
    Process.exit(pid, :kill)
    assert_receive {:DOWN, ^ref, :process, ^pid, _}, 1_000
  end

  defp await_event(type, pid) do
    wait_until(fn -> TraceDB.query_events(type: type, pid: pid) != [] end)
  end

  # The worker a one_for_one supervisor runs, once it is not `old`.
  defp await_child(sup, old) do
    wait_until(fn ->
      case Supervisor.which_children(sup) do
        [{_, pid, _, _}] when is_pid(pid) and pid != old -> pid
        _ -> nil
      end
    end)
  end

  # A process that is gone, never traced.
  defp dead_pid do
    pid = spawn(fn -> :ok end)
    ref = Process.monitor(pid)
    assert_receive {:DOWN, ^ref, :process, ^pid, _}
    pid
  end

  defp slow_loop do
    receive do
      _ -> Process.sleep(20)
    end

    slow_loop()
  end

  defp fast_loop do
    receive do
      _ -> fast_loop()
    end
  end

  ## process_info

  test "process_info of a live traced GenServer: live part, history, last state" do
    :ok = ElixirScope.setup()
    {:ok, pid} = Counter.start_link(name: :processes_test_counter)
    :ok = ElixirScope.trace_genserver(pid)
    :ok = Counter.add(pid, 1)
    :ok = Counter.add(pid, 2)

    info =
      wait_until(fn ->
        info = Processes.process_info(pid)
        if info.last_state && info.last_state.state == %{count: 3}, do: info
      end)

    assert %{pid: ^pid, alive: true, crash: nil} = info
    live = info.live
    assert live.registered_name == :processes_test_counter
    assert live.initial_call == {Counter, :init, 1}
    assert live.parent == self()
    assert self() in live.links
    assert live.monitors == []
    assert live.status in [:waiting, :running, :runnable]
    assert live.message_queue_len == 0
    assert live.memory > 0 and live.reductions > 0
    assert {_, _, _} = live.current_function

    assert %ElixirScope.Event{type: :state} = info.last_state
    assert info.last_state.callback == :handle_call
    # The initial state and two changes.
    assert info.history.by_type.state == 3
    assert info.history.events >= 3
    assert is_integer(info.history.first) and info.history.first <= info.history.last
  end

  test "process_info of a crashed process: no live part, the crash and its history" do
    :ok = ElixirScope.setup(trace_all: true)

    pid =
      spawn(fn ->
        receive do
          :boom -> exit(:kaboom)
        end
      end)

    ref = Process.monitor(pid)
    send(pid, :boom)
    assert_receive {:DOWN, ^ref, :process, ^pid, :kaboom}
    assert await_event(:crash, pid)

    info = Processes.process_info(pid)
    assert %{alive: false, live: nil, last_state: nil} = info
    assert %{type: :crash, reason: :kaboom, pid: ^pid} = info.crash
    assert info.history.by_type[:spawn] == 1
    assert info.history.by_type[:crash] == 1
  end

  test "process_info of a process never recorded" do
    start_supervised!(TraceDB)
    pid = dead_pid()

    assert Processes.process_info(pid) == %{
             pid: pid,
             alive: false,
             live: nil,
             history: %{events: 0, first: nil, last: nil, by_type: %{}},
             last_state: nil,
             crash: nil
           }

    # Alive but not recorded: live part only.
    info = Processes.process_info(self())
    assert info.alive and info.live.message_queue_len >= 0
    assert info.history.events == 0
  end

  ## find_processes

  test "find_processes: live and recorded processes of a module" do
    {:ok, before} = Counter.start_link([])
    :ok = ElixirScope.setup(trace_all: true)

    {:ok, traced} = Counter.start_link([])
    :ok = ElixirScope.trace_genserver(traced)
    :ok = Counter.add(traced, 1)

    {:ok, gone} = Counter.start_link([])
    :ok = ElixirScope.trace_genserver(gone)
    :ok = Counter.add(gone, 1)
    :ok = GenServer.stop(gone)

    idle = spawn(Idle, :idle, [])
    kill_on_exit(idle)
    dead_idle = spawn(Idle, :idle, [])
    kill_and_wait(dead_idle)
    assert await_event(:crash, dead_idle)

    found = Processes.find_processes(module: Counter)
    assert found == Enum.sort_by(found, & &1.pid)
    assert found == Enum.uniq_by(found, & &1.pid)
    by_pid = Map.new(found, &{&1.pid, &1})

    # Alive when tracing began: its :alive event has its $initial_call.
    assert by_pid[before] == %{pid: before, alive: true, source: [:live, :recorded]}
    assert by_pid[traced] == %{pid: traced, alive: true, source: [:live, :recorded]}
    assert by_pid[gone] == %{pid: gone, alive: false, source: [:recorded]}
    refute Map.has_key?(by_pid, idle)

    idles = Processes.find_processes(module: Idle)
    assert %{pid: idle, alive: true, source: [:live, :recorded]} in idles
    assert %{pid: dead_idle, alive: false, source: [:recorded]} in idles

    assert [_] = Processes.find_processes(module: Counter, limit: 1)
    assert Processes.find_processes(module: Counter, limit: 0) == []
    assert Processes.find_processes(module: NoSuchModule) == []
  end

  test "find_processes: walks every recorded spawn, also past many events sharing a timestamp" do
    start_supervised!(TraceDB)
    [other, same_ts, last] = for _ <- 1..3, do: dead_pid()
    spawn_event = &%{pid: &1, parent: nil, initial_call: {&2, :run, 0}, timestamp: &3}

    for _ <- 1..2_500, do: :ok = TraceDB.store_event(:spawn, spawn_event.(other, Other, 1_000))
    :ok = TraceDB.store_event(:spawn, spawn_event.(same_ts, Idle, 1_000))

    for i <- 1..2_500,
        do: :ok = TraceDB.store_event(:spawn, spawn_event.(other, Other, 1_000 + i))

    :ok = TraceDB.store_event(:spawn, spawn_event.(last, Idle, 9_999))

    assert Processes.find_processes(module: Idle) ==
             Enum.sort([
               %{pid: same_ts, alive: false, source: [:recorded]},
               %{pid: last, alive: false, source: [:recorded]}
             ])

    assert [%{pid: ^other}] = Processes.find_processes(module: Other)
  end

  test "find_processes: bad arguments" do
    start_supervised!(TraceDB)

    assert_raise ArgumentError, ~r/needs module:/, fn -> Processes.find_processes([]) end
    assert_raise ArgumentError, ~r/needs module:/, fn -> Processes.find_processes(limit: 3) end

    assert_raise ArgumentError, ~r/:module must be a module/, fn ->
      Processes.find_processes(module: "Counter")
    end

    assert_raise ArgumentError, ~r/:limit must be a non-negative integer/, fn ->
      Processes.find_processes(module: Counter, limit: -1)
    end

    assert_raise ArgumentError, ~r/unknown option :name/, fn ->
      Processes.find_processes(module: Counter, name: :x)
    end

    assert_raise ArgumentError, ~r/must be a keyword list/, fn ->
      Processes.find_processes(Counter)
    end
  end

  ## process_relationships

  test "process_relationships: a supervisor with a restarted child" do
    :ok = ElixirScope.setup(trace_all: true)
    {:ok, sup} = Supervisor.start_link([{Counter, []}], strategy: :one_for_one)
    old = await_child(sup, nil)
    kill_and_wait(old)
    new = await_child(sup, old)
    assert await_event(:spawn, new)

    rel = Processes.process_relationships(sup)
    assert rel.alive
    assert Enum.sort(rel.links) == Enum.sort([self(), new])
    # The live child, and the one it replaced (recorded spawn).
    assert rel.children == Enum.sort([old, new])
    assert rel.parent == self()
    assert rel.supervisor == nil

    child = Processes.process_relationships(new)
    assert %{alive: true, parent: ^sup, supervisor: ^sup, links: [^sup], children: []} = child

    dead = Processes.process_relationships(old)

    assert %{alive: false, parent: ^sup, supervisor: ^sup, monitors: [], monitored_by: []} = dead

    # Replayed from the recording: the supervisor linked it.
    assert dead.links == [sup]
  end

  test "process_relationships: the nearest supervisor through nested supervisors and plain spawns" do
    :ok = ElixirScope.setup(trace_all: true)

    inner = %{
      id: :inner,
      type: :supervisor,
      start: {Supervisor, :start_link, [[{Counter, []}], [strategy: :one_for_one]]}
    }

    {:ok, top} = Supervisor.start_link([inner], strategy: :one_for_one)
    [{:inner, inner_pid, :supervisor, _}] = Supervisor.which_children(top)
    worker = await_child(inner_pid, nil)

    assert %{parent: ^inner_pid, supervisor: ^inner_pid} = Processes.process_relationships(worker)

    assert %{parent: ^top, supervisor: ^top, children: [^worker]} =
             Processes.process_relationships(inner_pid)

    # No $ancestors: its parent comes from the runtime, the rest from the worker's.
    helper = GenServer.call(worker, :spawn_helper)
    kill_on_exit(helper)

    assert %{parent: ^worker, supervisor: ^inner_pid, links: []} =
             Processes.process_relationships(helper)

    assert await_event(:spawn, helper)
    assert helper in Processes.process_relationships(worker).children

    # Dead: found through the recorded spawn.
    kill_and_wait(helper)

    assert %{alive: false, parent: ^worker, supervisor: ^inner_pid} =
             Processes.process_relationships(helper)
  end

  test "process_relationships: links, monitors and message peers" do
    :ok = ElixirScope.setup(trace_all: true)
    me = self()
    target = spawn(fn -> fast_loop() end)

    watcher =
      spawn(fn ->
        Process.monitor(target)
        Process.link(target)
        send(me, :watching)
        Process.sleep(:infinity)
      end)

    kill_on_exit([target, watcher])
    assert_receive :watching

    for _ <- 1..3, do: send(target, :ping)
    other = spawn(fn -> send(target, :hello) end)

    rel =
      wait_until(fn ->
        rel = Processes.process_relationships(target)
        if length(rel.peers) == 2, do: rel
      end)

    assert rel.peers == [{me, 3}, {other, 1}]
    assert rel.links == [watcher]
    assert rel.monitors == []
    assert rel.monitored_by == [watcher]

    assert Processes.process_relationships(target, limit: 1).peers == [{me, 3}]
    assert Processes.process_relationships(target, limit: 0).peers == []

    w = Processes.process_relationships(watcher)
    assert w.monitors == [{:process, target}]
    assert w.links == [target]
    assert w.peers == [{me, 1}]

    # Dead: its links replayed from the link the watcher made.
    Process.unlink(watcher)
    Process.exit(watcher, :kill)
    wait_until(fn -> not Process.alive?(target) end)
    dead = Processes.process_relationships(target)
    refute dead.alive
    assert dead.monitored_by == []
    assert dead.links == []
  end

  test "process_relationships: bad arguments" do
    start_supervised!(TraceDB)

    assert_raise ArgumentError, ~r/expects a pid, got: :foo/, fn ->
      Processes.process_relationships(:foo)
    end

    assert_raise ArgumentError, ~r/:limit must be/, fn ->
      Processes.process_relationships(self(), limit: "ten")
    end
  end

  ## system_snapshot_at

  test "system_snapshot_at: names, states, links and supervisors of a traced system" do
    :ok = ElixirScope.setup(trace_all: true)

    {:ok, sup} =
      Supervisor.start_link([{Counter, [name: :processes_snapshot_counter]}],
        strategy: :one_for_one
      )

    worker = await_child(sup, nil)
    :ok = ElixirScope.trace_genserver(worker)
    :ok = Counter.add(worker, 5)
    assert await_event(:register, worker)
    Process.sleep(2)
    t1 = System.monotonic_time()
    Process.sleep(2)

    kill_and_wait(worker)
    new = await_child(sup, worker)
    assert await_event(:register, new)
    Process.sleep(2)
    t2 = System.monotonic_time()

    at_t1 = Map.new(Processes.system_snapshot_at(t1), &{&1.pid, &1})

    assert %{
             name: :processes_snapshot_counter,
             state: %{count: 5},
             links: [^sup],
             parent: ^sup,
             supervisor: ^sup
           } = at_t1[worker]

    refute Map.has_key?(at_t1, new)
    assert at_t1[sup].links == Enum.sort([self(), worker])
    assert at_t1[sup].parent == self()
    assert at_t1[sup].supervisor == nil
    # The test process was alive when tracing started.
    assert sup in at_t1[self()].links

    at_t2 = Map.new(Processes.system_snapshot_at(t2), &{&1.pid, &1})
    refute Map.has_key?(at_t2, worker)
    assert %{name: :processes_snapshot_counter, state: nil, supervisor: ^sup} = at_t2[new]
    assert at_t2[sup].links == Enum.sort([self(), new])

    snapshot = Processes.system_snapshot_at(t2, limit: 3)
    assert length(snapshot) == 3
    assert snapshot == Enum.sort_by(snapshot, & &1.pid)
  end

  test "system_snapshot_at: a GenServer traced after it started, and processes whose end was not seen" do
    # lifecycle of traced processes only, so that nothing else records spawns or exits
    :ok = ElixirScope.setup(tracing_level: :full, lifecycle: :traced)
    {:ok, counter} = Counter.start_link([])
    kill_on_exit(counter)
    :ok = Counter.add(counter, 1)
    :ok = ElixirScope.trace_genserver(counter)
    :ok = Counter.add(counter, 2)
    await_event(:state, counter)
    wait_until(fn -> match?({:ok, %{count: 3}}, TraceDB.get_state_at(counter, now())) end)

    # an untraced process that calls a traced function, then ends unseen
    :ok = ElixirScope.trace_function({Idle, :idle, 0})
    brief = spawn(fn -> catch_exit(Idle.idle()) end)
    await_event(:call, brief)
    t = now()
    kill_and_wait(brief)

    snapshot = Map.new(Processes.system_snapshot_at(t), &{&1.pid, &1})
    assert %{state: %{count: 3}, exit: nil} = snapshot[counter]
    assert %{exit: :unknown, state: nil} = snapshot[brief]
    assert Processes.system_snapshot_at(t - 1_000_000_000) |> Enum.all?(&(&1.pid != brief))
  end

  test "system_snapshot_at: replays hand-stored events" do
    start_supervised!(TraceDB)
    [sup, a, b] = for _ <- 1..3, do: dead_pid()

    events = [
      {:alive,
       %{
         pid: sup,
         name: :the_sup,
         initial_call: {:supervisor, Supervisor.Default, 1},
         parent: nil,
         timestamp: 100
       }},
      {:alive,
       %{pid: a, name: nil, initial_call: {Counter, :init, 1}, parent: sup, timestamp: 100}},
      {:state, %{pid: a, module: Counter, state: 1, timestamp: 150}},
      {:spawn, %{pid: b, parent: a, initial_call: {Idle, :idle, 0}, timestamp: 200}},
      {:register, %{pid: b, name: :bee, timestamp: 250}},
      {:link, %{pid: a, to_pid: b, timestamp: 300}},
      {:state, %{pid: a, module: Counter, state: 2, timestamp: 400}},
      {:unregister, %{pid: b, name: :bee, timestamp: 450}},
      {:unlink, %{pid: b, to_pid: a, timestamp: 500}},
      {:link, %{pid: b, to_pid: a, timestamp: 550}},
      {:exit, %{pid: b, reason: :normal, timestamp: 600}}
    ]

    for {type, event} <- events, do: :ok = TraceDB.store_event(type, event)

    assert Processes.system_snapshot_at(50) == []

    assert Processes.system_snapshot_at(350) ==
             Enum.sort_by(
               [
                 # dead now with no exit recorded: they may have ended before 350
                 %{
                   pid: sup,
                   name: :the_sup,
                   state: nil,
                   links: [],
                   parent: nil,
                   supervisor: nil,
                   exit: :unknown
                 },
                 %{
                   pid: a,
                   name: nil,
                   state: 1,
                   links: [b],
                   parent: sup,
                   supervisor: sup,
                   exit: :unknown
                 },
                 # its exit is recorded, at 600: alive at 350
                 %{
                   pid: b,
                   name: :bee,
                   state: nil,
                   links: [a],
                   parent: a,
                   supervisor: nil,
                   exit: nil
                 }
               ],
               & &1.pid
             )

    at = fn ts -> Map.new(Processes.system_snapshot_at(ts), &{&1.pid, &1}) end
    assert %{name: nil, links: [^a]} = at.(460)[b]
    assert at.(460)[a].state == 2
    assert at.(520)[a].links == []
    assert at.(560)[a].links == [b]
    # b exited: gone, and no longer a link of a.
    assert Map.keys(at.(600)) |> Enum.sort() == Enum.sort([sup, a])
    assert at.(600)[a].links == []

    assert [_] = Processes.system_snapshot_at(350, limit: 1)

    assert_raise ArgumentError, ~r/expects a timestamp .* or a DateTime/, fn ->
      Processes.system_snapshot_at(:now)
    end

    assert_raise ArgumentError, ~r/unknown option :window_ms/, fn ->
      Processes.system_snapshot_at(1, window_ms: 5)
    end
  end

  ## analyze_state_change

  test "analyze_state_change: the message that moved a traced GenServer between two states" do
    :ok = ElixirScope.setup()
    {:ok, pid} = Counter.start_link([])
    :ok = ElixirScope.trace_genserver(pid)
    :ok = Counter.add(pid, 1)
    :ok = Counter.add(pid, 2)
    send(pid, {:add, 10})
    assert %{count: 13} = GenServer.call(pid, :get)

    wait_until(fn -> length(TraceDB.get_state_history(pid)) == 4 end)

    assert {:ok, change} = Processes.analyze_state_change(pid, %{count: 1}, %{count: 3})
    assert %ElixirScope.Event{} = change.before
    assert change.before.state == %{count: 1}
    assert %ElixirScope.Event{} = change.after
    assert change.after.state == %{count: 3}
    assert change.callback == :handle_call
    assert change.cause == {:add, 2}
    assert change.diff == [{[:count], :changed, 1, 3}]

    assert Enum.all?(
             change.events_between,
             &(&1.id > change.before.id and &1.id < change.after.id)
           )

    assert Enum.all?(change.events_between, &(Map.get(&1, :pid, &1[:from_pid]) == pid))

    assert Enum.any?(
             change.events_between,
             &match?(%{type: :receive, message: {:"$gen_call", _, {:add, 2}}}, &1)
           )

    # Across several changes, from the initial state; intermediate states in between.
    assert {:ok, long} = Processes.analyze_state_change(pid, %{count: 0}, %{count: 13})
    assert long.before.callback == :initial
    assert long.callback == :handle_info
    assert long.cause == {:add, 10}

    assert [%{count: 1}, %{count: 3}] =
             for(%{type: :state, state: s} <- long.events_between, do: s)

    assert {:ok, %{events_between: [_]}} =
             Processes.analyze_state_change(pid, %{count: 0}, %{count: 13}, limit: 1)

    # The after state must come later.
    assert Processes.analyze_state_change(pid, %{count: 3}, %{count: 1}) == {:error, :not_found}
    assert Processes.analyze_state_change(pid, %{count: 99}, %{count: 3}) == {:error, :not_found}
    assert Processes.analyze_state_change(pid, %{count: 1}, %{count: 99}) == {:error, :not_found}
    assert Processes.analyze_state_change(dead_pid(), 1, 2) == {:error, :not_found}

    assert_raise ArgumentError, ~r/expects a pid/, fn ->
      Processes.analyze_state_change(:counter, 1, 2)
    end

    assert_raise ArgumentError, ~r/:store must be/, fn ->
      Processes.analyze_state_change(pid, 1, 2, store: "db")
    end
  end

  ## message_queue_analysis

  test "message_queue_analysis: a slow consumer's queue is flagged as growing" do
    # The sender and the fast consumer are traced; the slow consumer is not, so none of
    # its messages count as received. (A :receive event is recorded when a message
    # enters a traced process's queue, not when the process takes it out.)
    :ok = ElixirScope.setup()
    slow = spawn(fn -> slow_loop() end)
    fast = spawn(fn -> fast_loop() end)
    kill_on_exit([slow, fast])
    :ok = ElixirScope.trace_process(self())
    :ok = ElixirScope.trace_process(fast)

    for i <- 1..300 do
      send(slow, {:work, i})
      send(fast, {:work, i})
    end

    # The fast consumer has taken (and the tracer recorded) every message.
    assert wait_until(fn ->
             Process.info(fast, :message_queue_len) == {:message_queue_len, 0} and
               length(TraceDB.query_events(type: :receive, pid: fast)) == 300
           end)

    analysis = Processes.message_queue_analysis(window_ms: 2_000, limit: 100)
    assert analysis.window_ms == 2_000

    assert [%{message_queue_len: longest} | _] = analysis.top

    assert Enum.map(analysis.top, & &1.message_queue_len) |> Enum.sort(:desc) ==
             Enum.map(analysis.top, & &1.message_queue_len)

    assert %{name: nil, message_queue_len: queued, current_function: {_, _, _}} =
             Enum.find(analysis.top, &(&1.pid == slow))

    assert queued > 200 and longest >= queued
    refute Enum.any?(analysis.top, &(&1.pid == fast))

    traffic = Map.new(analysis.traffic, &{&1.pid, &1})

    assert %{inflow: 300, received: 0, growing: true, inflow_per_sec: 150.0} = traffic[slow]
    assert traffic[slow].message_queue_len == queued or traffic[slow].message_queue_len > 0

    assert %{inflow: 300, received: 300, growing: false, message_queue_len: 0} = traffic[fast]
    assert traffic[fast].received_per_sec == 150.0
    assert traffic[self()].sent >= 600
    assert traffic[self()].sent_per_sec == traffic[self()].sent / 2.0
    refute traffic[self()].growing

    inflows = Enum.map(analysis.traffic, & &1.inflow)
    assert inflows == Enum.sort(inflows, :desc)

    small = Processes.message_queue_analysis(window_ms: 2_000, limit: 1)
    assert [%{inflow: 300}] = small.traffic
    assert length(small.top) == 1

    # Outside the window nothing is counted.
    Process.sleep(30)
    late = Processes.message_queue_analysis(window_ms: 10).traffic
    refute Enum.any?(late, &(&1.pid in [slow, fast]))
  end

  test "message_queue_analysis: bad arguments" do
    start_supervised!(TraceDB)
    assert %{top: _, traffic: []} = Processes.message_queue_analysis()

    assert_raise ArgumentError, ~r/:window_ms must be a positive integer/, fn ->
      Processes.message_queue_analysis(window_ms: 0)
    end

    assert_raise ArgumentError, ~r/:limit must be/, fn ->
      Processes.message_queue_analysis(limit: :all)
    end

    assert_raise ArgumentError, ~r/must be a keyword list/, fn ->
      Processes.message_queue_analysis(%{limit: 1})
    end
  end

  ## No store

  test "every function raises a clear RuntimeError when the store is not running" do
    for fun <- [
          fn -> Processes.process_info(self()) end,
          fn -> Processes.find_processes(module: Counter) end,
          fn -> Processes.process_relationships(self()) end,
          fn -> Processes.system_snapshot_at(0) end,
          fn -> Processes.analyze_state_change(self(), 1, 2) end,
          fn -> Processes.message_queue_analysis() end
        ] do
      assert_raise RuntimeError, ~r/ElixirScope store ElixirScope.TraceDB is not running/, fun
    end

    start_supervised!(TraceDB)

    assert_raise RuntimeError, ~r/store :other_store is not running/, fn ->
      Processes.process_info(self(), store: :other_store)
    end
  end

  test "process_info: bad arguments" do
    start_supervised!(TraceDB)

    assert_raise ArgumentError, ~r/process_info\/2 expects a pid, got: "<0.1.0>"/, fn ->
      Processes.process_info("<0.1.0>")
    end

    assert_raise ArgumentError, ~r/unknown option :limit for process_info\/2/, fn ->
      Processes.process_info(self(), limit: 1)
    end
  end
end
