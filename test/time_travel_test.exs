defmodule ElixirScope.TimeTravelTest.Server do
  @moduledoc false
  # The GenServer whose messages and states the tests below follow.
  use GenServer

  def start_link(initial), do: GenServer.start_link(__MODULE__, initial)

  @impl true
  def init(initial), do: {:ok, initial}

  @impl true
  def handle_call(:get, _from, s), do: {:reply, s, s}

  def handle_call({:push, x}, _from, s),
    do: {:reply, :ok, %{s | count: s.count + 1, items: s.items ++ [x]}}

  def handle_call({:push_then_clear, x}, _from, s),
    do: {:reply, :ok, %{s | count: s.count + 1, items: s.items ++ [x]}, {:continue, :clear_meta}}

  @impl true
  def handle_cast({:put_meta, k, v}, s), do: {:noreply, %{s | meta: Map.put(s.meta, k, v)}}

  @impl true
  def handle_info({:incr, n}, s), do: {:noreply, %{s | count: s.count + n}}

  def handle_info({:ping, from}, s) do
    send(from, :pong)
    {:noreply, s}
  end

  def handle_info(_other, s), do: {:noreply, s}

  @impl true
  def handle_continue(:clear_meta, s), do: {:noreply, %{s | meta: %{}}}
end

defmodule ElixirScope.TimeTravelTest.Traced do
  @moduledoc false
  # Traced with trace_module/1 by the tests below.
  def double(x), do: x * 2
end

defmodule ElixirScope.TimeTravelTest.Point do
  @moduledoc false
  defstruct x: 0, y: 0
end

defmodule ElixirScope.TimeTravelTest.Point3 do
  @moduledoc false
  defstruct x: 0, y: 0, z: 0
end

defmodule ElixirScope.TimeTravelTest do
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  alias ElixirScope.{TimeTravel, TraceDB}
  alias ElixirScope.TimeTravelTest.{Point, Point3, Server, Traced}
  import ElixirScope.Test.Wait

  @moduletag :capture_log

  @initial %{count: 0, items: [:seed], meta: %{}}

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  ## Helpers

  # Calls `query` until `pred` holds for its result; returns the last result either way.
  defp await(query, pred) do
    wait_until(fn ->
      result = query.()
      pred.(result) && {:ok, result}
    end)
    |> case do
      {:ok, result} -> result
      _ -> query.()
    end
  end

  # A process that runs the functions it is sent, one at a time, and replies.
  defp actor do
    spawn_link(fn -> actor_loop() end)
  end

  defp actor_loop do
    receive do
      {:run, fun, ref, caller} ->
        send(caller, {ref, fun.()})
        actor_loop()

      :stop ->
        :ok
    end
  end

  defp run(actor, fun) do
    ref = make_ref()
    send(actor, {:run, fun, ref, self()})

    receive do
      {^ref, result} -> result
    after
      1_000 -> flunk("actor #{inspect(actor)} did not answer")
    end
  end

  defp ordered?(events) do
    keys = Enum.map(events, &{&1.timestamp, &1.id})
    keys == Enum.sort(keys)
  end

  defp now, do: System.monotonic_time()

  ## message_flow/3

  describe "message_flow/3" do
    setup do
      :ok = ElixirScope.setup(tracing_level: :full)
      srv = start_supervised!({Server, @initial})
      client = actor()
      third = actor()
      :ok = ElixirScope.trace_process(srv)
      :ok = ElixirScope.trace_process(client)
      :ok = ElixirScope.trace_process(third)
      %{srv: srv, client: client, third: third}
    end

    test "both directions, in timestamp order, and nothing from a third process",
         %{srv: srv, client: client, third: third} do
      :ok = run(client, fn -> GenServer.call(srv, {:push, :a}) end)

      :pong =
        run(client, fn ->
          send(srv, {:ping, self()})

          receive do
            :pong -> :pong
          after
            1_000 -> :no_pong
          end
        end)

      :ok =
        run(third, fn ->
          send(srv, {:note, :third})
          send(client, :hello_from_third)
          GenServer.call(srv, {:push, :third})
        end)

      run(client, fn -> send(srv, {:note, :client}) end)

      flow = await(fn -> ElixirScope.message_flow(client, srv) end, &(length(&1) >= 5))

      # the call, its reply (sent to the call's alias), then plain sends both ways
      assert [
               {:"$gen_call", {^client, _}, {:push, :a}},
               {[:alias | _], :ok},
               {:ping, ^client},
               :pong,
               {:note, :client}
             ] = Enum.map(flow, & &1.message)

      for e <- flow do
        assert e.type == :send
        assert {e.from_pid, e.to_pid} in [{client, srv}, {srv, client}]
      end

      # both directions
      assert Enum.any?(flow, &(&1.from_pid == client))
      assert Enum.any?(flow, &(&1.from_pid == srv and &1.to_pid == client))

      assert ordered?(flow)

      # nothing from the third process, nor anything it caused
      refute Enum.any?(flow, &(&1.from_pid == third or &1.to_pid == third))
      refute Enum.any?(flow, &(&1.message == :hello_from_third))
      refute Enum.any?(flow, &match?({:note, :third}, &1.message))

      # the pair is unordered; the delegate answers the same
      assert ElixirScope.message_flow(srv, client) == flow
      assert TimeTravel.message_flow(client, srv) == flow

      # the third process has a flow of its own with each of them
      third_srv = ElixirScope.message_flow(third, srv)
      assert {:note, :third} in Enum.map(third_srv, & &1.message)
      assert Enum.all?(third_srv, &({&1.from_pid, &1.to_pid} in [{third, srv}, {srv, third}]))

      assert Enum.any?(
               third_srv,
               &(&1.from_pid == srv and match?({[:alias | _], :ok}, &1.message))
             )

      assert [%{message: :hello_from_third}] = ElixirScope.message_flow(third, client)
    end

    test "replies to GenServer.call (sent to an alias) are part of the flow",
         %{srv: srv, client: client} do
      :ok = run(client, fn -> GenServer.call(srv, {:push, :a}) end)

      # both sends were recorded in their senders before the call returned
      flow = ElixirScope.message_flow(client, srv)

      messages = Enum.map(flow, & &1.message)

      reply =
        TraceDB.query_events(type: :send, from_pid: srv)
        |> Enum.filter(&match?({_, :ok}, &1.message))

      assert match?([{:"$gen_call", {^client, _}, {:push, :a}}, {_ref, :ok}], messages),
             "message_flow(client, server) lacks the server's reply to GenServer.call: " <>
               "#{inspect(messages)}; the reply's :send event: #{inspect(reply)}"
    end

    test "limit:, order: :desc, after_id: and timestamps narrow the flow",
         %{srv: srv, client: client} do
      run(client, fn ->
        for i <- 1..4, do: send(srv, {:note, i})

        send(srv, {:ping, self()})

        receive do
          :pong -> :ok
        end
      end)

      flow = await(fn -> ElixirScope.message_flow(client, srv) end, &(length(&1) >= 6))

      assert [{:note, 1}, {:note, 2}, {:note, 3}, {:note, 4}, {:ping, _}, :pong] =
               Enum.map(flow, & &1.message)

      assert ElixirScope.message_flow(client, srv, limit: 2) == Enum.take(flow, 2)
      assert ElixirScope.message_flow(client, srv, order: :desc) == Enum.reverse(flow)

      assert ElixirScope.message_flow(client, srv, order: :desc, limit: 2) ==
               flow |> Enum.reverse() |> Enum.take(2)

      assert ElixirScope.message_flow(client, srv, limit: 0) == []

      [first, second | _] = flow
      assert ElixirScope.message_flow(client, srv, after_id: first.id) == tl(flow)

      assert ElixirScope.message_flow(client, srv, timestamp_start: second.timestamp) ==
               Enum.drop(flow, 1)
    end

    test "bad arguments raise ArgumentError", %{srv: srv, client: client} do
      assert_raise ArgumentError, fn -> ElixirScope.message_flow(:client, srv) end
      assert_raise ArgumentError, fn -> ElixirScope.message_flow(client, "srv") end
      assert_raise ArgumentError, fn -> TimeTravel.message_flow(nil, nil) end
      assert_raise ArgumentError, fn -> ElixirScope.message_flow(client, srv, limit: -1) end
      assert_raise ArgumentError, fn -> ElixirScope.message_flow(client, srv, limit: :ten) end
      assert_raise ArgumentError, fn -> ElixirScope.message_flow(client, srv, order: :up) end
      assert_raise ArgumentError, fn -> ElixirScope.message_flow(client, srv, bogus: 1) end
      assert_raise ArgumentError, fn -> ElixirScope.message_flow(client, srv, [:limit]) end
    end
  end

  ## state_timeline/2 and get_state_at/3

  describe "state_timeline/2" do
    setup do
      :ok = ElixirScope.setup(tracing_level: :full)
      :ok
    end

    test "starts at :initial with diff nil; then cause, callback and diff of each change" do
      srv = start_supervised!({Server, @initial})
      :ok = ElixirScope.trace_genserver(srv)

      :ok = GenServer.call(srv, {:push, :a})
      # unchanged state: no entry
      _ = GenServer.call(srv, :get)
      GenServer.cast(srv, {:put_meta, :k, 1})
      send(srv, {:incr, 5})
      _ = GenServer.call(srv, :get)
      :ok = GenServer.call(srv, {:push_then_clear, :b})
      _ = GenServer.call(srv, :get)

      timeline = await(fn -> ElixirScope.state_timeline(srv) end, &(length(&1) >= 6))

      assert Enum.map(timeline, & &1.callback) ==
               [
                 :initial,
                 :handle_call,
                 :handle_cast,
                 :handle_info,
                 :handle_call,
                 :handle_continue
               ]

      assert Enum.map(timeline, & &1.state) == [
               @initial,
               %{count: 1, items: [:seed, :a], meta: %{}},
               %{count: 1, items: [:seed, :a], meta: %{k: 1}},
               %{count: 6, items: [:seed, :a], meta: %{k: 1}},
               %{count: 7, items: [:seed, :a, :b], meta: %{k: 1}},
               %{count: 7, items: [:seed, :a, :b], meta: %{}}
             ]

      [initial | changes] = timeline
      assert initial.diff == nil
      refute Map.has_key?(initial, :cause)

      assert Enum.map(changes, & &1.cause) ==
               [{:push, :a}, {:put_meta, :k, 1}, {:incr, 5}, {:push_then_clear, :b}, :clear_meta]

      for {prev, entry} <- Enum.zip(timeline, changes) do
        assert entry.diff == ElixirScope.diff(prev.state, entry.state)
      end

      assert Enum.map(changes, & &1.diff) == [
               [{[:count], :changed, 0, 1}, {[:items, 1], :added, nil, :a}],
               [{[:meta, :k], :added, nil, 1}],
               [{[:count], :changed, 1, 6}],
               [{[:count], :changed, 6, 7}, {[:items, 2], :added, nil, :b}],
               [{[:meta, :k], :removed, 1, nil}]
             ]

      for e <- timeline do
        assert e.type == :state
        assert e.pid == srv
        assert e.module == Server
      end

      assert ordered?(timeline)
      assert TimeTravel.state_timeline(srv) == timeline

      # options narrow the listing; diffs are still against the previous recorded state
      assert [%{callback: :initial, diff: nil}, %{callback: :handle_call} = second] =
               ElixirScope.state_timeline(srv, limit: 2)

      assert second.diff == Enum.at(timeline, 1).diff

      [_, _, third | rest] = timeline
      after_second = ElixirScope.state_timeline(srv, after_id: second.id)
      assert Enum.map(after_second, & &1.id) == Enum.map([third | rest], & &1.id)
      # the first entry listed is diffed against the state recorded before it
      assert hd(after_second).diff == third.diff
      assert tl(after_second) == rest
    end

    test "with order: :desc each entry still carries the change from its previous state" do
      srv = start_supervised!({Server, @initial})
      :ok = ElixirScope.trace_genserver(srv)
      :ok = GenServer.call(srv, {:push, :a})
      :ok = GenServer.call(srv, {:push, :b})

      asc = ElixirScope.state_timeline(srv)
      assert length(asc) == 3
      desc = ElixirScope.state_timeline(srv, order: :desc)

      assert Enum.map(desc, & &1.id) == Enum.map(Enum.reverse(asc), & &1.id)

      assert Enum.map(desc, & &1.diff) == Enum.map(Enum.reverse(asc), & &1.diff),
             "state_timeline(pid, order: :desc) diffs each state against the NEXT (newer) " <>
               "one: #{inspect(Enum.map(desc, & &1.diff))}"
    end

    test "a GenServer restarted by its Supervisor has its own timeline under its new pid" do
      sup =
        start_supervised!(%{
          id: :time_travel_sup,
          start: {Supervisor, :start_link, [[{Server, @initial}], [strategy: :one_for_one]]},
          type: :supervisor
        })

      [{Server, old, :worker, _}] = Supervisor.which_children(sup)
      :ok = ElixirScope.trace_genserver(old)
      :ok = GenServer.call(old, {:push, :before_crash})

      ref = Process.monitor(old)
      Process.exit(old, :kill)
      assert_receive {:DOWN, ^ref, :process, ^old, :killed}

      new =
        wait_until(fn ->
          case Supervisor.which_children(sup) do
            [{Server, pid, :worker, _}] when is_pid(pid) and pid != old -> pid
            _ -> nil
          end
        end)

      assert is_pid(new)
      :ok = ElixirScope.trace_genserver(new)
      :ok = GenServer.call(new, {:push, :after_restart})

      old_timeline = ElixirScope.state_timeline(old)
      new_timeline = ElixirScope.state_timeline(new)

      assert [
               %{callback: :initial, state: @initial, diff: nil},
               %{callback: :handle_call, cause: {:push, :before_crash}}
             ] = old_timeline

      # the restarted child starts from init/1 again, not from the killed one's state
      assert [
               %{callback: :initial, state: @initial, diff: nil},
               %{
                 callback: :handle_call,
                 cause: {:push, :after_restart},
                 state: %{items: [:seed, :after_restart], count: 1},
                 diff: [{[:count], :changed, 0, 1}, {[:items, 1], :added, nil, :after_restart}]
               }
             ] = new_timeline

      assert Enum.all?(old_timeline, &(&1.pid == old))
      assert Enum.all?(new_timeline, &(&1.pid == new))
      assert hd(new_timeline).timestamp > List.last(old_timeline).timestamp

      # the kill is in the old process's path
      path =
        await(
          fn -> ElixirScope.execution_path(old) end,
          &Enum.any?(&1, fn e -> e.type == :crash end)
        )

      assert Enum.any?(path, &(&1.type == :crash and &1.reason == :killed))
    end

    test "get_state_at/3 answers the state at a timestamp" do
      srv = start_supervised!({Server, @initial})
      t0 = now()
      :ok = ElixirScope.trace_genserver(srv)
      t1 = now()
      :ok = GenServer.call(srv, {:push, :a})
      t2 = now()
      :ok = GenServer.call(srv, {:push, :b})
      t3 = now()

      s1 = %{@initial | count: 1, items: [:seed, :a]}
      s2 = %{@initial | count: 2, items: [:seed, :a, :b]}

      assert ElixirScope.get_state_at(srv, t0) == {:error, :not_found}
      assert ElixirScope.get_state_at(srv, t1) == {:ok, @initial}
      assert ElixirScope.get_state_at(srv, t2) == {:ok, s1}
      assert ElixirScope.get_state_at(srv, t3) == {:ok, s2}
      assert TimeTravel.get_state_at(srv, t2) == {:ok, s1}

      # inclusive at an entry's own timestamp; the previous state just before it
      [_, e1, _] = ElixirScope.state_timeline(srv)
      assert ElixirScope.get_state_at(srv, e1.timestamp) == {:ok, s1}
      assert ElixirScope.get_state_at(srv, e1.timestamp - 1) == {:ok, @initial}

      # another process has no states
      assert ElixirScope.get_state_at(self(), t3) == {:error, :not_found}

      assert_raise ArgumentError, fn -> ElixirScope.get_state_at(:srv, t1) end
      assert_raise ArgumentError, fn -> ElixirScope.get_state_at(srv, 1.5) end
    end

    test "a registered name stands for its process, now and after it died" do
      name = :time_travel_named_server
      {:ok, srv} = GenServer.start(Server, @initial, name: name)
      # a fresh recording, whose :alive snapshot names the server
      :ok = ElixirScope.stop()
      :ok = ElixirScope.setup(tracing_level: :full)
      :ok = ElixirScope.trace_genserver(name)
      :ok = GenServer.call(name, {:push, :named})

      by_pid = ElixirScope.state_timeline(srv)
      assert [%{callback: :initial}, %{cause: {:push, :named}}] = by_pid
      assert ElixirScope.state_timeline(name) == by_pid
      assert ElixirScope.execution_path(name) == ElixirScope.execution_path(srv)
      assert ElixirScope.message_flow(self(), name) == ElixirScope.message_flow(self(), srv)

      # once it is gone, the recording still knows whose name it was
      GenServer.stop(srv)
      refute Process.whereis(name)
      assert ElixirScope.state_timeline(name) == by_pid

      assert_raise ArgumentError, ~r/no process is registered as :never_registered/, fn ->
        ElixirScope.state_timeline(:never_registered)
      end
    end

    test "bad arguments raise ArgumentError" do
      assert_raise ArgumentError, fn -> ElixirScope.state_timeline(:not_a_pid) end
      assert_raise ArgumentError, fn -> TimeTravel.state_timeline("pid") end
      assert_raise ArgumentError, fn -> ElixirScope.state_timeline(self(), order: :sideways) end
    end
  end

  ## execution_path/2

  describe "execution_path/2" do
    test "a process's calls, returns, sends and receives, in order, and only its own" do
      # (lifecycle: :all, the default on OTP 27+, would add the processes' spawns)
      :ok = ElixirScope.setup(tracing_level: :full, lifecycle: :traced)
      :ok = ElixirScope.trace_module(Traced)
      test_pid = self()

      peer =
        spawn_link(fn ->
          receive do
            {:result, r, from} -> send(from, {:ack, r})
          end
        end)

      p =
        spawn_link(fn ->
          receive do
            :go -> :ok
          end

          r = Traced.double(21)
          send(peer, {:result, r, self()})

          receive do
            {:ack, x} -> send(test_pid, {:done, Traced.double(x)})
          end

          receive do
            :stop -> :ok
          end
        end)

      other = spawn_link(fn -> Traced.double(1000) end)

      :ok = ElixirScope.trace_process(p)
      send(p, :go)
      assert_receive {:done, 84}, 1_000

      path = await(fn -> ElixirScope.execution_path(p) end, &(length(&1) >= 8))

      assert [
               {:receive, :go},
               {:call, {Traced, :double, 1, [21]}},
               {:return, {Traced, :double, 42}},
               {:send, {^peer, {:result, 42, ^p}}},
               {:receive, {:ack, 42}},
               {:call, {Traced, :double, 1, [42]}},
               {:return, {Traced, :double, 84}},
               {:send, {^test_pid, {:done, 84}}}
             ] =
               Enum.map(path, fn
                 %{type: :call} = e -> {:call, {e.module, e.function, e.arity, e.args}}
                 %{type: :return} = e -> {:return, {e.module, e.function, e.result}}
                 %{type: :send} = e -> {:send, {e.to_pid, e.message}}
                 %{type: :receive} = e -> {:receive, e.message}
                 e -> {e.type, e}
               end)

      for e <- path do
        owner = if e.type == :send, do: e.from_pid, else: e.pid
        assert owner == p, "event of another process in the path: #{inspect(e)}"
      end

      assert ordered?(path)
      assert Enum.uniq(Enum.map(path, & &1.type)) -- [:receive, :call, :return, :send] == []

      # each return is paired with its call
      [c1, c2] = Enum.filter(path, &(&1.type == :call))
      [r1, r2] = Enum.filter(path, &(&1.type == :return))
      assert r1.call_id == c1.id and r2.call_id == c2.id
      assert is_integer(r1.duration) and r1.duration >= 0

      # the other process's call is in its own path, not in p's
      refute Enum.any?(path, &(&1[:args] == [1000]))

      assert [%{type: :call, args: [1000]}, %{type: :return, result: 2000}] =
               await(fn -> ElixirScope.execution_path(other) end, &(length(&1) >= 2))
               |> Enum.filter(&(&1.type in [:call, :return]))

      # filters and ordering
      assert ElixirScope.execution_path(p, type: :call) == [c1, c2]
      assert ElixirScope.execution_path(p, limit: 3) == Enum.take(path, 3)
      assert ElixirScope.execution_path(p, order: :desc) == Enum.reverse(path)
      assert TimeTravel.execution_path(p) == path

      send(p, :stop)
    end

    test "bad arguments raise ArgumentError" do
      :ok = ElixirScope.setup(tracing_level: :full)
      assert_raise ArgumentError, fn -> ElixirScope.execution_path(:nope) end
      assert_raise ArgumentError, fn -> TimeTravel.execution_path(123) end
      assert_raise ArgumentError, fn -> ElixirScope.execution_path(self(), type: "call") end
    end
  end

  ## get_events_between/3

  describe "get_events_between/3" do
    test "the events between two timestamps taken around actions, with filters" do
      :ok = ElixirScope.setup(tracing_level: :full)
      :ok = ElixirScope.trace_module(Traced)
      me = self()

      t0 = now()
      2 = Traced.double(1)
      t1 = now()
      4 = Traced.double(2)
      t2 = now()
      :ok = TraceDB.store_event(:note, %{pid: me, n: 1})
      t3 = now()

      assert [
               %{type: :call, pid: ^me, function: :double, args: [1]},
               %{type: :return, pid: ^me, function: :double, result: 2}
             ] = ElixirScope.get_events_between(t0, t1)

      assert [%{type: :call, args: [2]}, %{type: :return, result: 4}] =
               ElixirScope.get_events_between(t1, t2)

      all = ElixirScope.get_events_between(t0, t3)
      assert Enum.map(all, & &1.type) == [:call, :return, :call, :return, :note]
      assert Enum.all?(all, &(&1.timestamp >= t0 and &1.timestamp <= t3))
      assert ordered?(all)
      assert TimeTravel.get_events_between(t0, t3) == all

      # filters
      assert [%{result: 2}, %{result: 4}] = ElixirScope.get_events_between(t0, t3, type: :return)
      assert [%{result: 4}] = ElixirScope.get_events_between(t1, t3, type: :return)
      assert [%{type: :note, n: 1}] = ElixirScope.get_events_between(t0, t3, type: :note)

      assert ElixirScope.get_events_between(t0, t3, module: Traced, function: :double) ==
               Enum.take(all, 4)

      assert ElixirScope.get_events_between(t0, t3, pid: me) == all
      assert ElixirScope.get_events_between(t0, t3, limit: 2) == Enum.take(all, 2)
      assert ElixirScope.get_events_between(t0, t3, order: :desc) == Enum.reverse(all)

      # inclusive bounds; an empty or reversed range
      [e | _] = all
      assert e in ElixirScope.get_events_between(e.timestamp, e.timestamp)
      assert ElixirScope.get_events_between(t3, t0) == []
      assert ElixirScope.get_events_between(t3 + 1, now()) |> Enum.filter(&(&1[:pid] == me)) == []

      assert_raise ArgumentError, fn -> ElixirScope.get_events_between(1.0, t1) end
      assert_raise ArgumentError, fn -> ElixirScope.get_events_between(t0, :later) end
      assert_raise ArgumentError, fn -> ElixirScope.get_events_between(t0, t1, type: "x") end
    end
  end

  ## next_event/2, prev_event/2 and events_around/3

  describe "next_event/2 and prev_event/2" do
    setup do
      # nothing is traced: the store holds only the events stored here
      :ok = ElixirScope.setup(tracing_level: :off)
      :ok = TraceDB.clear()
      :ok
    end

    defp put(type, ts, tag) do
      :ok = TraceDB.store_event(type, %{timestamp: ts, tag: tag})

      [e] =
        TraceDB.query_events(
          type: type,
          timestamp_start: ts,
          timestamp_end: ts,
          order: :desc,
          limit: 1
        )

      assert e.tag == tag
      # the time-travel functions return events as ElixirScope.Event
      ElixirScope.Event.wrap(e)
    end

    test "step through events in timestamp order, same timestamps by id, nil at both ends" do
      base = 1_000_000
      a = put(:tick, base, :a)
      b = put(:tick, base + 10, :b)
      c = put(:tock, base + 10, :c)
      d = put(:tick, base + 10, :d)
      e = put(:tock, base + 20, :e)
      # stored later, but earlier in time / later at the same time
      f = put(:tick, base + 5, :f)
      g = put(:tick, base + 10, :g)

      assert TraceDB.query_events([]) |> length() == 7
      expected = [a, f, b, c, d, g, e]

      forward =
        Stream.iterate(a, &ElixirScope.next_event/1) |> Enum.take_while(& &1) |> Enum.to_list()

      assert Enum.map(forward, & &1.tag) == Enum.map(expected, & &1.tag)
      assert forward == expected

      backward = Stream.iterate(e, &ElixirScope.prev_event/1) |> Enum.take_while(& &1)
      assert Enum.to_list(backward) == Enum.reverse(expected)

      assert ElixirScope.next_event(e) == nil
      assert ElixirScope.prev_event(a) == nil
      assert TimeTravel.next_event(c) == d
      assert TimeTravel.prev_event(c) == b

      # from a timestamp: strictly after / before it
      assert ElixirScope.next_event(base - 1) == a
      assert ElixirScope.next_event(base) == f
      assert ElixirScope.next_event(base + 9) == b
      assert ElixirScope.next_event(base + 10) == e
      assert ElixirScope.next_event(base + 20) == nil
      assert ElixirScope.prev_event(base + 21) == e
      assert ElixirScope.prev_event(base + 11) == g
      assert ElixirScope.prev_event(base + 10) == f
      assert ElixirScope.prev_event(base) == nil

      # with filters
      assert ElixirScope.next_event(a, type: :tock) == c
      assert ElixirScope.next_event(c, type: :tock) == e
      assert ElixirScope.next_event(e, type: :tock) == nil
      assert ElixirScope.prev_event(e, type: :tock) == c
      assert ElixirScope.prev_event(c, type: :tock) == nil
      assert ElixirScope.prev_event(g, type: :tick) == d
      assert ElixirScope.next_event(base + 10, type: :tick) == nil
      assert ElixirScope.prev_event(base + 10, type: :tock) == nil

      assert_raise ArgumentError, fn -> ElixirScope.next_event(:first) end
      assert_raise ArgumentError, fn -> ElixirScope.prev_event("last") end
      assert_raise ArgumentError, fn -> ElixirScope.next_event(%{id: a.id}) end
      assert_raise ArgumentError, fn -> ElixirScope.next_event(a, type: "tick") end
    end

    test "many events sharing one timestamp are stepped through one by one, by id" do
      base = 5_000_000
      first = put(:tick, base - 1, :first)
      same = for i <- 1..40, do: put(:tick, base, i)
      last = put(:tick, base + 1, :last)
      expected = [first | same] ++ [last]

      forward = Stream.iterate(first, &ElixirScope.next_event/1) |> Enum.take_while(& &1)
      assert Enum.map(forward, & &1.tag) == Enum.map(expected, & &1.tag)

      backward = Stream.iterate(last, &ElixirScope.prev_event/1) |> Enum.take_while(& &1)
      assert Enum.map(backward, & &1.tag) == Enum.map(Enum.reverse(expected), & &1.tag)

      assert ElixirScope.next_event(base - 1) == hd(same)
      assert ElixirScope.prev_event(base + 1) == List.last(same)
    end
  end

  describe "events_around/3" do
    test "the events within the window either side of an event; [] for an unknown id" do
      :ok = ElixirScope.setup(tracing_level: :off)
      :ok = TraceDB.clear()
      ms = System.convert_time_unit(1, :millisecond, :native)
      base = 10_000 * ms

      store = fn tag, ts ->
        :ok = TraceDB.store_event(:mark, %{timestamp: ts, tag: tag})
      end

      store.(:far_before, base - 150 * ms)
      store.(:before_50, base - 50 * ms)
      store.(:before_3, base - 3 * ms)
      store.(:center, base)
      store.(:after_5, base + 5 * ms)
      store.(:after_10, base + 10 * ms)
      store.(:after_10_and_1, base + 10 * ms + 1)
      store.(:far_after, base + 200 * ms)

      [center] = Enum.filter(TraceDB.query_events(type: :mark), &(&1.tag == :center))
      tags = fn events -> Enum.map(events, & &1.tag) end

      assert tags.(ElixirScope.events_around(center.id, 10)) ==
               [:before_3, :center, :after_5, :after_10]

      assert ElixirScope.events_around(center.id, 0) == [ElixirScope.Event.wrap(center)]

      # default window: 100 ms
      assert tags.(ElixirScope.events_around(center.id)) ==
               [:before_50, :before_3, :center, :after_5, :after_10, :after_10_and_1]

      assert TimeTravel.events_around(center.id, 10) == ElixirScope.events_around(center.id, 10)
      assert ElixirScope.events_around(center.id, 10, type: :other) == []
      assert tags.(ElixirScope.events_around(center.id, 10, limit: 2)) == [:before_3, :center]

      unknown = TraceDB.stats().newest_id + 1_000
      assert ElixirScope.events_around(unknown, 10) == []

      assert_raise ArgumentError, fn -> ElixirScope.events_around(0, 10) end
      assert_raise ArgumentError, fn -> ElixirScope.events_around(:center, 10) end
      assert_raise ArgumentError, fn -> ElixirScope.events_around(center.id, -1) end

      # an event no longer stored
      :ok = TraceDB.clear()
      assert ElixirScope.events_around(center.id, 10) == []
    end
  end

  ## diff/2

  describe "diff/2" do
    test "maps: changed, removed and added keys, exact {path, op, old, new} entries" do
      assert ElixirScope.diff(%{a: 1, b: 2, c: 3}, %{a: 1, b: 20, d: 4}) == [
               {[:b], :changed, 2, 20},
               {[:c], :removed, 3, nil},
               {[:d], :added, nil, 4}
             ]

      assert ElixirScope.diff(%{"k" => 1, {1, 2} => :x}, %{"k" => 2, {1, 2} => :x}) ==
               [{["k"], :changed, 1, 2}]

      # the documented example
      assert ElixirScope.diff(%{a: 1, b: [1, 2]}, %{a: 2, b: [1, 2, 3]}) ==
               [{[:a], :changed, 1, 2}, {[:b, 2], :added, nil, 3}]

      assert TimeTravel.diff(%{a: 1}, %{a: 2}) == [{[:a], :changed, 1, 2}]
    end

    test "keys in Erlang term order, whatever order the runtime iterates the maps in" do
      # Atoms made in reverse order: OTP 26+ iterates a small map of atom keys in the
      # order its atoms were made.
      [z, m, a] =
        for s <- ~w(z m a),
            do: String.to_atom("diff_key_order_#{s}_#{System.unique_integer([:positive])}")

      assert ElixirScope.diff(%{z => 1, m => 2}, %{z => 0, a => 3, m => 2, :zz => 4}) ==
               [{[z], :changed, 1, 0}, {[a], :added, nil, 3}, {[:zz], :added, nil, 4}]

      # More than 32 keys: hash maps, iterated in hash order on every OTP.
      old = Map.new(1..100, &{&1, &1})
      new = Map.new(51..150, &{&1, -&1})

      assert ElixirScope.diff(old, new) ==
               Enum.map(1..50, &{[&1], :removed, &1, nil}) ++
                 Enum.map(51..100, &{[&1], :changed, &1, -&1}) ++
                 Enum.map(101..150, &{[&1], :added, nil, -&1})

      # Keys that term order calls equal: the integer first.
      assert ElixirScope.diff(%{1.0 => :f, 1 => :i}, %{}) ==
               [{[1], :removed, :i, nil}, {[1.0], :removed, :f, nil}]

      # Keyword lists key by key, in the same order.
      assert ElixirScope.diff([b: 1, a: 1], b: 2, a: 2) ==
               [{[:a], :changed, 1, 2}, {[:b], :changed, 1, 2}]
    end

    test "nested maps give the path from the root" do
      old = %{user: %{name: "ann", tags: %{x: 1}, age: 30}, v: 1}
      new = %{user: %{name: "bob", tags: %{x: 1, y: 2}, age: 30}, v: 1}

      assert ElixirScope.diff(old, new) == [
               {[:user, :name], :changed, "ann", "bob"},
               {[:user, :tags, :y], :added, nil, 2}
             ]

      assert ElixirScope.diff(%{a: %{b: %{c: 1}}}, %{a: %{b: %{}}}) ==
               [{[:a, :b, :c], :removed, 1, nil}]

      # a map replaced by something else is :changed at its path
      assert ElixirScope.diff(%{a: %{b: 1}}, %{a: [b: 1]}) ==
               [{[:a], :changed, %{b: 1}, [b: 1]}]
    end

    test "structs are compared field by field" do
      assert ElixirScope.diff(%Point{x: 1, y: 2}, %Point{x: 1, y: 3}) == [{[:y], :changed, 2, 3}]

      assert ElixirScope.diff(%Point{x: 1, y: 2}, %Point3{x: 1, y: 2, z: 0}) == [
               {[:__struct__], :changed, Point, Point3},
               {[:z], :added, nil, 0}
             ]

      assert ElixirScope.diff(%{p: %Point{}}, %{p: %Point{x: 5}}) == [{[:p, :x], :changed, 0, 5}]
    end

    test "keyword lists are compared key by key" do
      assert ElixirScope.diff([a: 1, b: 2], b: 3, a: 1, c: 4) ==
               [{[:b], :changed, 2, 3}, {[:c], :added, nil, 4}]

      assert ElixirScope.diff([a: 1, b: 2], a: 1) == [{[:b], :removed, 2, nil}]
      assert ElixirScope.diff([a: 1, b: 2], b: 2, a: 1) == []

      assert ElixirScope.diff(%{opts: [timeout: 5, retry: true]}, %{
               opts: [timeout: 10, retry: true]
             }) ==
               [{[:opts, :timeout], :changed, 5, 10}]

      # repeated keys: not a keyword list for the diff, compared position by position
      assert ElixirScope.diff([a: 1, a: 2], a: 1, a: 3) == [{[1, 1], :changed, 2, 3}]
    end

    test "lists of different lengths: extra elements :added or :removed at their index" do
      assert ElixirScope.diff([1, 2, 3], [1, 5]) ==
               [{[1], :changed, 2, 5}, {[2], :removed, 3, nil}]

      assert ElixirScope.diff([1], [1, 2, 3]) ==
               [{[1], :added, nil, 2}, {[2], :added, nil, 3}]

      # equal elements at the front and the back are skipped: only the middle differs
      assert ElixirScope.diff([:a, :b], [:b]) == [{[0], :removed, :a, nil}]
      assert ElixirScope.diff([1, 2, 3], [2, 3]) == [{[0], :removed, 1, nil}]
      assert ElixirScope.diff([1, 2, 3], [1, 9, 2, 3]) == [{[1], :added, nil, 9}]

      assert ElixirScope.diff([1, 2, 3, 4], [1, 7, 8, 4]) ==
               [{[1], :changed, 2, 7}, {[2], :changed, 3, 8}]

      assert ElixirScope.diff([%{a: 1}], [%{a: 2}, :x]) ==
               [{[0, :a], :changed, 1, 2}, {[1], :added, nil, :x}]
    end

    test "an empty list against a non-empty one is element by element too" do
      assert ElixirScope.diff([], [1, 2]) == [{[0], :added, nil, 1}, {[1], :added, nil, 2}]
      assert ElixirScope.diff([1], []) == [{[0], :removed, 1, nil}]
      assert ElixirScope.diff(%{items: []}, %{items: [:a]}) == [{[:items, 0], :added, nil, :a}]
    end

    test "tuples: same size position by position, other sizes :changed" do
      assert ElixirScope.diff({1, 2, 3}, {1, 4, 3}) == [{[1], :changed, 2, 4}]
      assert ElixirScope.diff({:ok, %{a: 1}}, {:ok, %{a: 2}}) == [{[1, :a], :changed, 1, 2}]
      assert ElixirScope.diff({1, 2}, {1, 2, 3}) == [{[], :changed, {1, 2}, {1, 2, 3}}]
      assert ElixirScope.diff(%{t: {}}, %{t: {1}}) == [{[:t], :changed, {}, {1}}]
    end

    test "improper lists: the tail is compared after the last index" do
      assert ElixirScope.diff([1 | 2], [1 | 3]) == [{[:tail], :changed, 2, 3}]
      assert ElixirScope.diff([1, 2 | :t], [1, 3 | :t]) == [{[1], :changed, 2, 3}]
      assert ElixirScope.diff([1, 2 | :t], [1, 2 | :t]) == []

      assert ElixirScope.diff([1 | 2], [1, 2]) ==
               [{[1], :added, nil, 2}, {[:tail], :changed, 2, []}]

      assert ElixirScope.diff([a: 1] ++ :x, [a: 2] ++ :x) == [{[0, 1], :changed, 1, 2}]
    end

    test "identical terms give []; scalars that differ are :changed at the root" do
      term = %{a: [1, {2, %{b: [c: 3]}}], s: "x", p: self()}
      assert ElixirScope.diff(term, term) == []
      assert ElixirScope.diff(%{a: [1, 2]}, %{a: [1, 2]}) == []
      assert ElixirScope.diff([], []) == []
      assert ElixirScope.diff(%{}, %{}) == []
      assert ElixirScope.diff({}, {}) == []
      assert ElixirScope.diff(:a, :a) == []
      assert ElixirScope.diff(:a, :b) == [{[], :changed, :a, :b}]
      assert ElixirScope.diff(1, 1.0) == [{[], :changed, 1, 1.0}]
      assert ElixirScope.diff("a", "b") == [{[], :changed, "a", "b"}]
    end

    test "every entry is {path, op, old, new}" do
      old = %{a: 1, b: [1, 2, 3], c: {1, 2}, d: %{e: 1}, k: [x: 1], gone: :y}
      new = %{a: 2, b: [1, 9], c: {1, 3}, d: %{e: 1, f: 2}, k: [x: 2], new: :z}
      entries = ElixirScope.diff(old, new)
      assert length(entries) == 8

      for entry <- entries do
        assert {path, op, old_v, new_v} = entry
        assert is_list(path) and path != []
        assert op in [:added, :removed, :changed]
        if op == :added, do: assert(old_v == nil)
        if op == :removed, do: assert(new_v == nil)
      end

      assert Enum.sort(entries) ==
               Enum.sort([
                 {[:a], :changed, 1, 2},
                 {[:b, 1], :changed, 2, 9},
                 {[:b, 2], :removed, 3, nil},
                 {[:c, 1], :changed, 2, 3},
                 {[:d, :f], :added, nil, 2},
                 {[:k, :x], :changed, 1, 2},
                 {[:gone], :removed, :y, nil},
                 {[:new], :added, nil, :z}
               ])
    end

    test "a difference deeper than 100 levels is reported once, as :changed" do
      nest = fn leaf -> Enum.reduce(1..150, leaf, fn _, acc -> {acc} end) end
      assert [{path, :changed, _, _}] = ElixirScope.diff(nest.(1), nest.(2))
      assert length(path) in 100..102
    end
  end
end
