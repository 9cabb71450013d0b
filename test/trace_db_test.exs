defmodule ElixirScope.TraceDBTest do
  # store_event/2 and log_state/3 always write to the default store
  # (ElixirScope.TraceDB), so every test here shares that name: not async.
  use ExUnit.Case, async: false

  alias ElixirScope.TraceDB

  @ms System.convert_time_unit(1, :millisecond, :native)

  # A store small enough to be cheap, big enough for every test here.
  defp start_store(opts \\ []) do
    opts = Keyword.merge([max_events: 200_000, max_bytes: 32 * 1024 * 1024], opts)
    start_supervised!({TraceDB, opts})
  end

  defp ids(events), do: Enum.map(events, & &1.id)

  defp sleeper, do: spawn(fn -> Process.sleep(:infinity) end)

  defp store!(type, event), do: :ok = TraceDB.store_event(type, event)

  describe "start_link/1" do
    test "starts a registered GenServer with the default configuration" do
      pid = start_supervised!({TraceDB, []})

      assert Process.whereis(TraceDB) == pid
      assert Process.alive?(pid)

      stats = TraceDB.stats()
      assert stats.max_events == 1_000_000
      assert stats.max_bytes == 256 * 1024 * 1024
      assert stats.max_payload_bytes == 65_536
      assert stats.sample_rate == 1.0
      assert stats.stored == 0
      assert stats.appended == 0
    end

    test "applies the given options" do
      start_store(max_events: 1234, max_bytes: 8192, max_payload_bytes: 2048, sample_rate: 0.25)

      stats = TraceDB.stats()
      assert stats.max_events == 1234
      assert stats.max_bytes == 8192
      assert stats.max_payload_bytes == 2048
      assert stats.sample_rate == 0.25
    end

    test "integer sample rates are accepted as floats" do
      start_store(sample_rate: 1)
      assert TraceDB.stats().sample_rate === 1.0
    end

    test "a second store under the same name is refused" do
      pid = start_store()
      assert {:error, {:already_started, ^pid}} = TraceDB.start_link(max_events: 100)
    end

    test "a named store is independent of the default one" do
      start_store()
      start_supervised!({TraceDB, name: :trace_db_test_other, max_events: 64})

      store!(:only_default, %{n: 1})

      assert [%{n: 1}] = TraceDB.query_events()
      assert TraceDB.query_events(store: :trace_db_test_other) == []
      assert TraceDB.stats(:trace_db_test_other).max_events == 64
      assert TraceDB.stats(:trace_db_test_other).appended == 0
      assert TraceDB.stats().appended == 1
    end

    test "stop/1 unregisters the store" do
      # temporary: the test supervisor would restart a permanent child that stopped
      Supervisor.child_spec({TraceDB, max_events: 1000}, restart: :temporary)
      |> start_supervised!()

      store!(:x, %{})
      assert :ok = TraceDB.stop()

      assert Process.whereis(TraceDB) == nil
      assert TraceDB.store_event(:x, %{}) == {:error, :not_running}
      assert_raise RuntimeError, ~r/is not running/, fn -> TraceDB.query_events() end
    end
  end

  describe "when no store is running" do
    test "store_event/2 and log_state/3 return {:error, :not_running}" do
      assert TraceDB.lookup(TraceDB) == nil
      assert TraceDB.store_event(:x, %{a: 1}) == {:error, :not_running}
      assert TraceDB.log_state(__MODULE__, self(), %{}) == {:error, :not_running}
    end

    test "every reader raises RuntimeError naming the store" do
      for fun <- [
            fn -> TraceDB.query_events() end,
            fn -> TraceDB.query_events(type: :x) end,
            fn -> TraceDB.get_state_history(self()) end,
            fn -> TraceDB.get_state_at(self(), 0) end,
            fn -> TraceDB.get_events_at(0, 10) end,
            fn -> TraceDB.next_event_after(0) end,
            fn -> TraceDB.prev_event_before(0) end,
            fn -> TraceDB.get_processes_at(0) end,
            fn -> TraceDB.clear() end,
            fn -> TraceDB.stats() end,
            fn -> TraceDB.set_sample_rate(0.5) end
          ] do
        assert_raise RuntimeError, ~r/ElixirScope.TraceDB is not running/, fun
      end
    end

    test "after the store stopped, writes are refused again" do
      start_store()
      assert :ok = TraceDB.store_event(:x, %{})
      :ok = stop_supervised(TraceDB)
      assert TraceDB.store_event(:x, %{}) == {:error, :not_running}
    end
  end

  describe "store_event/2" do
    setup do
      start_store()
      :ok
    end

    test "returns :ok and adds :id, :type and :timestamp" do
      before = System.monotonic_time()
      assert :ok = TraceDB.store_event(:custom, %{value: 42})
      later = System.monotonic_time()

      assert [event] = TraceDB.query_events()
      assert event.type == :custom
      assert event.value == 42
      assert is_integer(event.id) and event.id >= 1
      # Timestamps are in System.monotonic_time/0 native units.
      assert event.timestamp >= before
      assert event.timestamp <= later
      assert Map.keys(event) |> Enum.sort() == [:id, :timestamp, :type, :value]
    end

    # The clock reads the TSC once a rate has been measured over a second (see
    # c_src/core/clock.h), where the kernel keeps time with it: timestamps stay
    # System.monotonic_time/0 values either way.
    test "timestamps stay System.monotonic_time/0 values when read from the TSC" do
      ElixirScope.Native.calibrate_clock()
      Process.sleep(1050)
      {source, _offset} = ElixirScope.Native.calibrate_clock()

      kernel_tsc? =
        match?(
          {:ok, "tsc\n"},
          File.read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        )

      assert source == if(kernel_tsc?, do: :tsc, else: :clock_monotonic)

      brackets =
        for i <- 1..5000 do
          before = System.monotonic_time()
          store!(:tick, %{i: i})
          {before, System.monotonic_time()}
        end

      events = TraceDB.query_events(type: :tick, limit: 5000) |> Enum.sort_by(& &1.i)
      assert Enum.map(events, & &1.i) == Enum.to_list(1..5000)

      for {%{i: i, timestamp: ts}, {before, later}} <- Enum.zip(events, brackets) do
        assert before <= ts and ts <= later, "event #{i}: #{before} <= #{ts} <= #{later}"
      end

      # In the order they were stored, timestamps never go back.
      stamps = Enum.map(events, & &1.timestamp)
      assert stamps == Enum.sort(stamps)
    end

    test "keeps a caller-given timestamp, including negative ones" do
      store!(:a, %{timestamp: 123})
      store!(:b, %{timestamp: -77})
      store!(:c, %{timestamp: 0})

      assert [%{type: :b, timestamp: -77}, %{type: :c, timestamp: 0}, %{type: :a, timestamp: 123}] =
               TraceDB.query_events()
    end

    test "a :timestamp that is not a 64-bit integer is refused" do
      for bad <- [1.5, "1", nil, :now, [1], 2 ** 64, -(2 ** 63)] do
        assert_raise ArgumentError, ~r/event :timestamp must be an integer/, fn ->
          TraceDB.store_event(:bad_ts, %{timestamp: bad, x: 1})
        end
      end

      assert TraceDB.query_events() == []
      assert TraceDB.stats().appended == 0
      assert Map.get(TraceDB.stats().by_type, :bad_ts, 0) == 0
    end

    test "the store's :id and :type win over the caller's" do
      store!(:real, %{id: 999_999, type: :fake, other: 1})
      assert [%{type: :real, other: 1, id: id}] = TraceDB.query_events()
      assert id != 999_999
    end

    test "ids are unique and strictly increasing in append order" do
      for i <- 1..1000, do: store!(:seq, %{i: i})

      events = TraceDB.query_events()
      assert length(events) == 1000
      assert Enum.map(events, & &1.i) == Enum.to_list(1..1000)
      event_ids = ids(events)
      assert event_ids == Enum.sort(event_ids)
      assert event_ids == Enum.uniq(event_ids)

      assert Enum.chunk_every(event_ids, 2, 1, :discard) |> Enum.all?(fn [a, b] -> b > a end)
    end

    test "ids follow append order even when timestamps go backwards" do
      store!(:t, %{timestamp: 500, n: :first})
      store!(:t, %{timestamp: 100, n: :second})
      store!(:t, %{timestamp: 300, n: :third})

      events = TraceDB.query_events()
      assert Enum.map(events, & &1.n) == [:second, :third, :first]
      by_n = Map.new(events, &{&1.n, &1.id})
      assert by_n.first < by_n.second
      assert by_n.second < by_n.third
    end

    test "an event is queryable as soon as store_event returns" do
      pid = self()

      for i <- 1..300 do
        store!(:now, %{pid: pid, i: i})
        assert [%{i: ^i}] = TraceDB.query_events(type: :now, pid: pid, order: :desc, limit: 1)
        assert %{i: ^i} = TraceDB.prev_event_before(System.monotonic_time() + 1)
      end
    end

    test "an event stored by another process is visible once that process says so" do
      parent = self()

      for i <- 1..50 do
        spawn_link(fn ->
          :ok = TraceDB.store_event(:from_other, %{pid: self(), i: i})
          send(parent, {:stored, self(), i})
        end)

        assert_receive {:stored, writer, ^i}
        assert [%{i: ^i, pid: ^writer}] = TraceDB.query_events(pid: writer)
      end
    end
  end

  describe "query_events/1 filters" do
    setup do
      start_store()
      a = sleeper()
      b = sleeper()
      c = sleeper()

      store!(:call, %{pid: a, module: Alpha, function: :run, arity: 1, timestamp: 100, n: 1})
      store!(:call, %{pid: b, module: Alpha, function: :stop, arity: 0, timestamp: 200, n: 2})
      store!(:call, %{pid: a, module: Beta, function: :run, arity: 1, timestamp: 300, n: 3})
      store!(:message, %{from_pid: a, to_pid: b, message: :hi, timestamp: 400, n: 4})
      store!(:message, %{from_pid: b, to_pid: a, message: :ho, timestamp: 500, n: 5})
      store!(:message, %{from_pid: a, to_pid: c, message: :hey, timestamp: 600, n: 6})
      store!(:state, %{pid: c, module: Beta, state: %{}, timestamp: 700, n: 7})
      store!(:note, %{text: "no indexed fields", timestamp: 800, n: 8})

      %{a: a, b: b, c: c}
    end

    defp ns(events), do: Enum.map(events, & &1.n)

    test "no filters returns everything sorted by timestamp" do
      assert ns(TraceDB.query_events()) == [1, 2, 3, 4, 5, 6, 7, 8]
      assert ns(TraceDB.query_events(%{})) == [1, 2, 3, 4, 5, 6, 7, 8]
    end

    test ":type", _ do
      assert ns(TraceDB.query_events(type: :call)) == [1, 2, 3]
      assert ns(TraceDB.query_events(%{type: :message})) == [4, 5, 6]
      assert ns(TraceDB.query_events(type: :note)) == [8]
      assert TraceDB.query_events(type: :never_stored) == []
    end

    test ":pid matches :pid and :from_pid events", %{a: a, b: b, c: c} do
      assert ns(TraceDB.query_events(pid: a)) == [1, 3, 4, 6]
      assert ns(TraceDB.query_events(pid: b)) == [2, 5]
      assert ns(TraceDB.query_events(pid: c)) == [7]
      assert TraceDB.query_events(pid: sleeper()) == []
    end

    test ":from_pid", %{a: a, b: b} do
      assert ns(TraceDB.query_events(from_pid: a, type: :message)) == [4, 6]
      assert ns(TraceDB.query_events(%{from_pid: b, type: :message})) == [5]
      # The events come back with the field name they were stored under.
      assert [%{from_pid: ^b, to_pid: ^a, message: :ho} = ev] =
               TraceDB.query_events(from_pid: b, type: :message)

      refute Map.has_key?(ev, :pid)
    end

    test ":to_pid and the {from, to} pair", %{a: a, b: b, c: c} do
      assert ns(TraceDB.query_events(to_pid: b)) == [4]
      assert ns(TraceDB.query_events(to_pid: a)) == [5]
      assert ns(TraceDB.query_events(to_pid: c)) == [6]
      assert ns(TraceDB.query_events(from_pid: a, to_pid: c)) == [6]
      assert ns(TraceDB.query_events(pid: a, to_pid: b)) == [4]
      assert TraceDB.query_events(from_pid: c, to_pid: a) == []
      assert TraceDB.query_events(from_pid: b, to_pid: c) == []
    end

    test ":module and :function" do
      assert ns(TraceDB.query_events(module: Alpha)) == [1, 2]
      assert ns(TraceDB.query_events(module: Beta)) == [3, 7]
      assert ns(TraceDB.query_events(module: Alpha, function: :run)) == [1]
      assert ns(TraceDB.query_events(module: Beta, function: :run)) == [3]
      assert ns(TraceDB.query_events(module: Alpha, function: :stop)) == [2]
      assert TraceDB.query_events(module: Beta, function: :stop) == []
      assert TraceDB.query_events(module: Gamma) == []
      assert TraceDB.query_events(module: Alpha, function: :nope) == []
    end

    test "filters combine with and", %{a: a} do
      assert ns(TraceDB.query_events(type: :call, pid: a)) == [1, 3]
      assert ns(TraceDB.query_events(type: :call, pid: a, module: Beta)) == [3]
      assert ns(TraceDB.query_events(type: :state, module: Beta)) == [7]
      assert ns(TraceDB.query_events(type: :message, pid: a, timestamp_start: 450)) == [6]
      assert TraceDB.query_events(type: :message, module: Alpha) == []
      assert ns(TraceDB.query_events(pid: a, from_pid: a)) == [1, 3, 4, 6]
      assert TraceDB.query_events(pid: a, from_pid: sleeper()) == []
    end

    test ":timestamp_start and :timestamp_end are inclusive" do
      assert ns(TraceDB.query_events(timestamp_start: 300)) == [3, 4, 5, 6, 7, 8]
      assert ns(TraceDB.query_events(timestamp_start: 301)) == [4, 5, 6, 7, 8]
      assert ns(TraceDB.query_events(timestamp_end: 300)) == [1, 2, 3]
      assert ns(TraceDB.query_events(timestamp_end: 299)) == [1, 2]
      assert ns(TraceDB.query_events(timestamp_start: 200, timestamp_end: 400)) == [2, 3, 4]
      assert ns(TraceDB.query_events(timestamp_start: 201, timestamp_end: 399)) == [3]
      assert ns(TraceDB.query_events(timestamp_start: 500, timestamp_end: 500)) == [5]
      assert TraceDB.query_events(timestamp_start: 501, timestamp_end: 599) == []
      assert TraceDB.query_events(timestamp_start: 600, timestamp_end: 500) == []
      assert ns(TraceDB.query_events(timestamp_start: -1_000, timestamp_end: 100)) == [1]
      assert ns(TraceDB.query_events(timestamp_start: 800, timestamp_end: 10_000)) == [8]

      assert ns(TraceDB.query_events(type: :call, timestamp_start: 200, timestamp_end: 300)) ==
               [2, 3]
    end

    test ":limit and :order" do
      assert ns(TraceDB.query_events(limit: 3)) == [1, 2, 3]
      assert ns(TraceDB.query_events(order: :asc, limit: 2)) == [1, 2]
      assert ns(TraceDB.query_events(order: :desc)) == [8, 7, 6, 5, 4, 3, 2, 1]
      assert ns(TraceDB.query_events(order: :desc, limit: 3)) == [8, 7, 6]
      assert ns(TraceDB.query_events(type: :call, order: :desc, limit: 1)) == [3]
      assert ns(TraceDB.query_events(limit: 100)) == [1, 2, 3, 4, 5, 6, 7, 8]
      assert TraceDB.query_events(limit: 0) == []

      assert ns(TraceDB.query_events(timestamp_end: 500, order: :desc, limit: 2)) == [5, 4]
    end

    test ":after_id and :before_id are exclusive id bounds" do
      all = TraceDB.query_events()
      [id1, id2, id3, id4, id5 | _] = ids(all)

      assert ns(TraceDB.query_events(after_id: id3)) == [4, 5, 6, 7, 8]
      assert ns(TraceDB.query_events(before_id: id3)) == [1, 2]
      assert ns(TraceDB.query_events(after_id: id1, before_id: id5)) == [2, 3, 4]
      assert ns(TraceDB.query_events(after_id: id2, before_id: id4)) == [3]
      assert TraceDB.query_events(after_id: id2, before_id: id3) == []
      assert TraceDB.query_events(before_id: id1) == []
      assert TraceDB.query_events(before_id: 0) == []
      assert ns(TraceDB.query_events(after_id: 0)) == [1, 2, 3, 4, 5, 6, 7, 8]
      assert TraceDB.query_events(after_id: List.last(ids(all))) == []
    end

    test "paginating with :after_id and :limit visits every event once" do
      all = TraceDB.query_events()

      pages =
        Stream.unfold(0, fn after_id ->
          case TraceDB.query_events(after_id: after_id, limit: 3) do
            [] -> nil
            page -> {page, List.last(page).id}
          end
        end)
        |> Enum.to_list()

      assert Enum.map(pages, &length/1) == [3, 3, 2]
      assert List.flatten(pages) == all
    end

    test "keyword lists and maps give the same results", %{a: a} do
      filters = [type: :call, pid: a, timestamp_end: 300, order: :desc, limit: 5]
      assert TraceDB.query_events(filters) == TraceDB.query_events(Map.new(filters))
      assert ns(TraceDB.query_events(filters)) == [3, 1]
    end

    test "the :store option selects the store" do
      assert ns(TraceDB.query_events(store: TraceDB, type: :note)) == [8]
    end
  end

  describe "ordering" do
    setup do
      start_store()
      :ok
    end

    test "out-of-order timestamps come back sorted and ranges are exact" do
      store!(:ev, %{timestamp: 500, n: 500})
      store!(:ev, %{timestamp: 100, n: 100})
      store!(:ev, %{timestamp: 300, n: 300})
      store!(:ev, %{timestamp: 200, n: 200})
      store!(:ev, %{timestamp: 400, n: 400})

      assert Enum.map(TraceDB.query_events(), & &1.n) == [100, 200, 300, 400, 500]

      assert Enum.map(TraceDB.query_events(order: :desc), & &1.n) == [
               500,
               400,
               300,
               200,
               100
             ]

      assert Enum.map(TraceDB.query_events(timestamp_start: 200, timestamp_end: 400), & &1.n) ==
               [200, 300, 400]

      assert Enum.map(TraceDB.query_events(type: :ev, timestamp_start: 300), & &1.n) ==
               [300, 400, 500]

      assert Enum.map(TraceDB.query_events(timestamp_end: 300, limit: 1), & &1.n) == [100]

      assert Enum.map(TraceDB.query_events(timestamp_end: 300, order: :desc, limit: 1), & &1.n) ==
               [300]
    end

    test "equal timestamps are ordered by id" do
      for i <- 1..5, do: store!(:tie, %{timestamp: 42, i: i})
      store!(:tie, %{timestamp: 41, i: 0})
      store!(:tie, %{timestamp: 43, i: 6})

      asc = TraceDB.query_events()
      assert Enum.map(asc, & &1.i) == [0, 1, 2, 3, 4, 5, 6]
      assert Enum.map(TraceDB.query_events(order: :desc), & &1.i) == [6, 5, 4, 3, 2, 1, 0]

      assert Enum.map(
               TraceDB.query_events(timestamp_start: 42, timestamp_end: 42, limit: 2),
               & &1.i
             ) ==
               [1, 2]

      assert Enum.map(
               TraceDB.query_events(timestamp_start: 42, order: :desc, limit: 2, type: :tie),
               & &1.i
             ) == [6, 5]
    end

    test "randomised out-of-order events agree with a model of the store" do
      :rand.seed(:exsss, {2024, 11, 26})
      pids = for _ <- 1..3, do: sleeper()

      model =
        for i <- 1..1500 do
          ts = if rem(i, 7) == 0, do: :rand.uniform(50), else: i * 3 - :rand.uniform(400)
          type = Enum.random([:x, :y, :z])
          pid = Enum.random(pids)
          store!(type, %{timestamp: ts, pid: pid, i: i})
          %{i: i, timestamp: ts, type: type, pid: pid}
        end

      stored = TraceDB.query_events()
      assert length(stored) == 1500
      id_of = Map.new(stored, &{&1.i, &1.id})
      model = Enum.map(model, &Map.put(&1, :id, id_of[&1.i]))
      timestamps = Enum.map(model, & &1.timestamp)

      for _ <- 1..150 do
        filters =
          [
            timestamp_start: Enum.random(timestamps) + Enum.random(-1..1),
            timestamp_end: Enum.random(timestamps) + Enum.random(-1..1),
            limit: Enum.random(1..25),
            order: Enum.random([:asc, :desc]),
            type: Enum.random([:x, :y, :z]),
            pid: Enum.random(pids)
          ]
          |> Enum.filter(fn _ -> :rand.uniform(2) == 1 end)

        f = Map.new(filters)

        expected =
          model
          |> Enum.filter(fn e ->
            e.timestamp >= Map.get(f, :timestamp_start, e.timestamp) and
              e.timestamp <= Map.get(f, :timestamp_end, e.timestamp) and
              e.type == Map.get(f, :type, e.type) and e.pid == Map.get(f, :pid, e.pid)
          end)
          |> Enum.sort_by(&{&1.timestamp, &1.id})
          |> then(&if f[:order] == :desc, do: Enum.reverse(&1), else: &1)
          |> then(&if f[:limit], do: Enum.take(&1, f[:limit]), else: &1)
          |> Enum.map(& &1.i)

        assert Enum.map(TraceDB.query_events(filters), & &1.i) == expected,
               "filters: #{inspect(filters)}"
      end
    end

    # Timestamps are any integer in System.monotonic_time/0 units; the store only
    # refuses the smallest 64-bit integer. Events far apart on that scale must
    # still be found by a time-range query.
    test "time ranges are exact when timestamps span the whole 64-bit range" do
      high = 2 ** 62
      low = -(2 ** 62)
      store!(:far, %{timestamp: high, i: 0})
      for i <- 1..600, do: store!(:far, %{timestamp: low - i, i: i})

      assert length(TraceDB.query_events()) == 601
      assert length(TraceDB.query_events(timestamp_end: 0)) == 600
      assert length(TraceDB.query_events(timestamp_start: low - 600, timestamp_end: low)) == 600
      assert [%{i: 600}] = TraceDB.query_events(timestamp_start: low - 600, limit: 1)
    end
  end

  describe "log_state/3, get_state_history/1 and get_state_at/2" do
    setup do
      start_store()
      :ok
    end

    test "log_state stores a :state event with module, pid and state" do
      pid = sleeper()
      assert :ok = TraceDB.log_state(MyServer, pid, %{count: 1})

      assert [%{type: :state, module: MyServer, pid: ^pid, state: %{count: 1}}] =
               TraceDB.query_events(type: :state)
    end

    test "history is per pid, oldest first, even when stored out of order" do
      p1 = sleeper()
      p2 = sleeper()
      store!(:state, %{pid: p1, state: :c, timestamp: 300})
      store!(:state, %{pid: p1, state: :a, timestamp: 100})
      store!(:state, %{pid: p2, state: :other, timestamp: 150})
      store!(:call, %{pid: p1, timestamp: 160})
      store!(:state, %{pid: p1, state: :b, timestamp: 200})

      assert Enum.map(TraceDB.get_state_history(p1), & &1.state) == [:a, :b, :c]
      assert Enum.map(TraceDB.get_state_history(p2), & &1.state) == [:other]
      assert TraceDB.get_state_history(sleeper()) == []

      assert Enum.map(TraceDB.get_state_history(p1, order: :desc, limit: 2), & &1.state) ==
               [:c, :b]
    end

    test "get_state_at returns the last state at or before the timestamp" do
      pid = sleeper()
      store!(:state, %{pid: pid, state: %{v: 2}, timestamp: 200})
      store!(:state, %{pid: pid, state: %{v: 1}, timestamp: 100})
      store!(:state, %{pid: pid, state: %{v: 3}, timestamp: 300})
      store!(:state, %{pid: sleeper(), state: %{v: :other}, timestamp: 250})

      assert TraceDB.get_state_at(pid, 99) == {:error, :not_found}
      assert TraceDB.get_state_at(pid, -5) == {:error, :not_found}
      assert TraceDB.get_state_at(pid, 100) == {:ok, %{v: 1}}
      assert TraceDB.get_state_at(pid, 199) == {:ok, %{v: 1}}
      assert TraceDB.get_state_at(pid, 200) == {:ok, %{v: 2}}
      assert TraceDB.get_state_at(pid, 299) == {:ok, %{v: 2}}
      assert TraceDB.get_state_at(pid, 300) == {:ok, %{v: 3}}
      assert TraceDB.get_state_at(pid, 1_000_000) == {:ok, %{v: 3}}
      assert TraceDB.get_state_at(sleeper(), 1_000) == {:error, :not_found}
    end

    test "get_state_at picks the later event when two share a timestamp" do
      pid = sleeper()
      store!(:state, %{pid: pid, state: :first, timestamp: 10})
      store!(:state, %{pid: pid, state: :second, timestamp: 10})
      assert TraceDB.get_state_at(pid, 10) == {:ok, :second}
    end

    test "states that are falsy are still found" do
      pid = sleeper()
      store!(:state, %{pid: pid, state: nil, timestamp: 10})
      store!(:state, %{pid: pid, state: false, timestamp: 20})
      assert TraceDB.get_state_at(pid, 15) == {:ok, nil}
      assert TraceDB.get_state_at(pid, 25) == {:ok, false}
    end
  end

  defmodule Counter do
    use GenServer
    alias ElixirScope.TraceDB

    def start_link(initial), do: GenServer.start_link(__MODULE__, initial)

    @impl true
    def init(initial) do
      state = %{count: initial, log: []}
      :ok = TraceDB.log_state(__MODULE__, self(), state)
      {:ok, state}
    end

    @impl true
    def handle_call(:inc, _from, state) do
      state = %{state | count: state.count + 1, log: [:inc | state.log]}
      :ok = TraceDB.log_state(__MODULE__, self(), state)
      {:reply, state.count, state}
    end

    def handle_call(:get, _from, state), do: {:reply, state, state}

    @impl true
    def handle_cast({:add, n}, state) do
      state = %{state | count: state.count + n, log: [{:add, n} | state.log]}
      :ok = TraceDB.log_state(__MODULE__, self(), state)
      {:noreply, state}
    end
  end

  describe "a real GenServer logging its state" do
    setup do
      start_store()
      :ok
    end

    test "history and state-at-time follow the server's callbacks" do
      t0 = System.monotonic_time()
      {:ok, pid} = Counter.start_link(0)
      t1 = System.monotonic_time()
      assert GenServer.call(pid, :inc) == 1
      t2 = System.monotonic_time()
      GenServer.cast(pid, {:add, 10})
      # A call after the cast: the cast has been handled once it returns.
      assert %{count: 11} = GenServer.call(pid, :get)
      t3 = System.monotonic_time()
      assert GenServer.call(pid, :inc) == 12
      t4 = System.monotonic_time()

      history = TraceDB.get_state_history(pid)
      assert Enum.map(history, & &1.state.count) == [0, 1, 11, 12]
      assert Enum.all?(history, &(&1.module == Counter and &1.pid == pid and &1.type == :state))
      assert List.last(history).state.log == [:inc, {:add, 10}, :inc]

      assert TraceDB.get_state_at(pid, t0) == {:error, :not_found}
      assert {:ok, %{count: 0}} = TraceDB.get_state_at(pid, t1)
      assert {:ok, %{count: 1}} = TraceDB.get_state_at(pid, t2)
      assert {:ok, %{count: 11}} = TraceDB.get_state_at(pid, t3)
      assert {:ok, %{count: 12}} = TraceDB.get_state_at(pid, t4)

      # At each recorded timestamp exactly, and just before it.
      history
      |> Enum.chunk_every(2, 1, :discard)
      |> Enum.each(fn [prev, ev] ->
        assert TraceDB.get_state_at(pid, ev.timestamp) == {:ok, ev.state}
        assert TraceDB.get_state_at(pid, ev.timestamp - 1) == {:ok, prev.state}
      end)

      assert TraceDB.get_state_at(pid, hd(history).timestamp - 1) == {:error, :not_found}
      GenServer.stop(pid)
    end

    test "several servers running at once keep separate histories" do
      servers =
        for start <- [0, 100, 1000] do
          {:ok, pid} = Counter.start_link(start)
          {start, pid}
        end

      servers
      |> Enum.map(fn {_, pid} ->
        Task.async(fn -> for _ <- 1..50, do: GenServer.call(pid, :inc) end)
      end)
      |> Task.await_many()

      for {start, pid} <- servers do
        counts = Enum.map(TraceDB.get_state_history(pid), & &1.state.count)
        assert counts == Enum.to_list(start..(start + 50))
        assert {:ok, %{count: count}} = TraceDB.get_state_at(pid, System.monotonic_time())
        assert count == start + 50
      end

      assert length(TraceDB.query_events(type: :state, module: Counter)) == 3 * 51
    end
  end

  describe "get_events_at/2, next_event_after/1 and prev_event_before/1" do
    setup do
      start_store()
      :ok
    end

    test "get_events_at returns events within the window in ms, bounds included" do
      base = 1_000_000 * @ms
      for k <- -5..5, do: store!(:tick, %{k: k, timestamp: base + k * @ms})
      store!(:tick, %{k: :just_outside, timestamp: base + 2 * @ms + 1})

      ks = fn events -> Enum.map(events, & &1.k) end
      assert ks.(TraceDB.get_events_at(base, 2)) == [-2, -1, 0, 1, 2]
      assert ks.(TraceDB.get_events_at(base, 0)) == [0]
      assert ks.(TraceDB.get_events_at(base + @ms, 1)) == [0, 1, 2]

      assert ks.(TraceDB.get_events_at(base, 100)) == [
               -5,
               -4,
               -3,
               -2,
               -1,
               0,
               1,
               2,
               :just_outside,
               3,
               4,
               5
             ]

      assert TraceDB.get_events_at(base + 50 * @ms, 10) == []
      assert ks.(TraceDB.get_events_at(base, 2, type: :tick, limit: 2)) == [-2, -1]
    end

    test "get_events_at defaults to a 100 ms window" do
      base = 5_000_000 * @ms
      store!(:w, %{n: :before, timestamp: base - 100 * @ms - 1})
      store!(:w, %{n: :low, timestamp: base - 100 * @ms})
      store!(:w, %{n: :mid, timestamp: base})
      store!(:w, %{n: :high, timestamp: base + 100 * @ms})
      store!(:w, %{n: :after, timestamp: base + 100 * @ms + 1})

      assert Enum.map(TraceDB.get_events_at(base), & &1.n) == [:low, :mid, :high]
    end

    test "next_event_after and prev_event_before" do
      store!(:a, %{n: 300, timestamp: 300})
      store!(:a, %{n: 100, timestamp: 100})
      store!(:b, %{n: 200, timestamp: 200})

      assert %{n: 100} = TraceDB.next_event_after(99)
      assert %{n: 200} = TraceDB.next_event_after(100)
      assert %{n: 300} = TraceDB.next_event_after(299)
      assert TraceDB.next_event_after(300) == nil
      assert %{n: 300} = TraceDB.next_event_after(100, type: :a)

      assert %{n: 300} = TraceDB.prev_event_before(301)
      assert %{n: 200} = TraceDB.prev_event_before(300)
      assert %{n: 100} = TraceDB.prev_event_before(200, type: :a)
      assert %{n: 100} = TraceDB.prev_event_before(101)
      assert TraceDB.prev_event_before(100) == nil
    end

    test "both return nil on an empty store" do
      assert TraceDB.next_event_after(System.monotonic_time() - 1_000_000) == nil
      assert TraceDB.prev_event_before(System.monotonic_time()) == nil
    end

    test "ties on timestamp are broken by id" do
      store!(:t, %{n: :first, timestamp: 50})
      store!(:t, %{n: :second, timestamp: 50})
      assert %{n: :first} = TraceDB.next_event_after(49)
      assert %{n: :second} = TraceDB.prev_event_before(51)
    end
  end

  describe "get_processes_at/1" do
    setup do
      start_store()
      :ok
    end

    test "processes with a :spawn and no :exit at or before the timestamp" do
      p1 = sleeper()
      p2 = sleeper()
      p3 = sleeper()
      store!(:spawn, %{pid: p1, timestamp: 100})
      store!(:spawn, %{pid: p2, timestamp: 150})
      store!(:spawn, %{pid: p3, timestamp: 300})
      store!(:exit, %{pid: p1, reason: :normal, timestamp: 200})
      # Other events about a process do not make it live.
      store!(:call, %{pid: sleeper(), timestamp: 120})
      # An :exit without a :spawn neither.
      store!(:exit, %{pid: sleeper(), reason: :normal, timestamp: 130})

      at = fn ts -> TraceDB.get_processes_at(ts) |> Enum.sort() end
      assert at.(99) == []
      assert at.(100) == [p1]
      assert at.(149) == [p1]
      assert at.(150) == Enum.sort([p1, p2])
      assert at.(199) == Enum.sort([p1, p2])
      assert at.(200) == [p2]
      assert at.(299) == [p2]
      assert at.(300) == Enum.sort([p2, p3])
      assert at.(10_000) == Enum.sort([p2, p3])
      assert TraceDB.get_processes_at(10_000, store: TraceDB) |> Enum.sort() == at.(10_000)
    end

    test "follows real processes spawning and exiting" do
      parent = self()

      spawn_traced = fn ->
        pid = spawn(fn -> receive(do: (:stop -> :ok)) end)
        :ok = TraceDB.store_event(:spawn, %{pid: pid, parent: parent})
        pid
      end

      stop_traced = fn pid ->
        ref = Process.monitor(pid)
        send(pid, :stop)
        assert_receive {:DOWN, ^ref, :process, ^pid, reason}
        :ok = TraceDB.store_event(:exit, %{pid: pid, reason: reason})
      end

      t0 = System.monotonic_time()
      workers = for _ <- 1..5, do: spawn_traced.()
      t1 = System.monotonic_time()
      [w1, w2 | rest] = workers
      stop_traced.(w1)
      stop_traced.(w2)
      t2 = System.monotonic_time()

      assert TraceDB.get_processes_at(t0) == []
      assert Enum.sort(TraceDB.get_processes_at(t1)) == Enum.sort(workers)
      assert Enum.sort(TraceDB.get_processes_at(t2)) == Enum.sort(rest)
      Enum.each(rest, stop_traced)
      assert TraceDB.get_processes_at(System.monotonic_time()) == []
    end
  end

  describe "clear/0" do
    setup do
      start_store()
      :ok
    end

    test "forgets every event but keeps what was appended" do
      pid = sleeper()
      for i <- 1..10, do: store!(:x, %{pid: pid, i: i})
      store!(:spawn, %{pid: pid})
      last_id = List.last(TraceDB.query_events()).id

      assert :ok = TraceDB.clear()

      assert TraceDB.query_events() == []
      assert TraceDB.query_events(pid: pid) == []
      assert TraceDB.query_events(type: :x) == []
      assert TraceDB.get_state_history(pid) == []
      assert TraceDB.get_processes_at(System.monotonic_time()) == []
      assert TraceDB.next_event_after(-(2 ** 62)) == nil

      stats = TraceDB.stats()
      assert stats.stored == 0
      assert stats.appended == 11
      assert stats.pruned == 11
      assert stats.by_type == %{x: 10, spawn: 1}

      store!(:x, %{pid: pid, i: :after})
      assert [%{i: :after, id: id}] = TraceDB.query_events(pid: pid)
      assert id > last_id
      assert TraceDB.stats().stored == 1
      assert TraceDB.stats().appended == 12
    end

    test "clearing an empty store is fine" do
      assert :ok = TraceDB.clear()
      assert :ok = TraceDB.clear(TraceDB)
      assert TraceDB.stats().stored == 0
    end
  end

  describe "stats/0" do
    setup do
      start_store()
      :ok
    end

    test "counts what was stored" do
      empty = TraceDB.stats()
      assert empty.stored == 0
      assert empty.appended == 0
      assert empty.pruned == 0
      assert empty.sampled_out == 0
      assert empty.truncated == 0
      assert empty.bytes == 0
      assert empty.by_type == %{}
      assert empty.oldest_id == 0
      assert empty.newest_id == 0
      assert empty.unindexed == false
      assert empty.memory > 0

      for i <- 1..7, do: store!(:a, %{i: i})
      for i <- 1..3, do: store!(:b, %{i: i})

      events = TraceDB.query_events()
      stats = TraceDB.stats()
      assert stats.stored == 10
      assert stats.appended == 10
      assert stats.pruned == 0
      assert stats.by_type == %{a: 7, b: 3}
      assert stats.oldest_id == hd(events).id
      assert stats.newest_id == List.last(events).id
      assert stats.bytes > 0
      assert stats.memory >= stats.bytes
    end

    test "reports the whole configuration, :max_keys included" do
      start_supervised!({TraceDB, name: :stats_config_store, max_keys: 1024, max_events: 500})
      stats = TraceDB.stats(:stats_config_store)
      assert stats.max_events == 500
      assert stats.max_keys == 1024
    end

    test "unindexed turns true once :max_keys distinct pids were seen" do
      stop_supervised!(TraceDB)
      start_store(max_keys: 16)
      pids = for _ <- 1..20, do: sleeper()
      for {pid, i} <- Enum.with_index(pids), do: store!(:seen, %{pid: pid, i: i})

      assert TraceDB.stats().unindexed == true
      events = TraceDB.query_events()
      # Unindexed or not, every event and its pid come back.
      assert Enum.map(events, & &1.pid) == pids
      assert Enum.map(events, & &1.i) == Enum.to_list(0..19)
    end
  end

  describe "set_sample_rate/1" do
    setup do
      start_store()
      :ok
    end

    test "changes the share of non-critical events kept" do
      assert :ok = TraceDB.set_sample_rate(0.0)
      assert TraceDB.stats().sample_rate == 0.0
      for i <- 1..100, do: store!(:dropped, %{i: i})
      assert TraceDB.query_events() == []

      assert :ok = TraceDB.set_sample_rate(1)
      assert TraceDB.stats().sample_rate == 1.0
      for i <- 1..100, do: store!(:kept, %{i: i})
      assert length(TraceDB.query_events(type: :kept)) == 100

      assert :ok = TraceDB.set_sample_rate(0.5, TraceDB)
      assert TraceDB.stats().sample_rate == 0.5

      stats = TraceDB.stats()
      assert stats.sampled_out == 100
      assert stats.appended == 100
    end
  end

  describe "sampling" do
    test "sample_rate 0.0 keeps only critical events" do
      start_store(sample_rate: 0.0)
      pid = sleeper()

      for i <- 1..200, do: store!(:call, %{pid: pid, i: i})
      for i <- 1..50, do: store!(:message, %{from_pid: pid, i: i, critical: false})

      for type <- [:spawn, :exit, :crash, :error, :governor, :persist_error],
          do: store!(type, %{pid: pid})

      for i <- 1..5, do: store!(:call, %{pid: pid, i: i, critical: true})
      :ok = TraceDB.log_state(__MODULE__, pid, :dropped)

      events = TraceDB.query_events()

      assert Enum.map(events, & &1.type) ==
               [:spawn, :exit, :crash, :error, :governor, :persist_error] ++
                 List.duplicate(:call, 5)

      assert Enum.filter(events, &(&1.type == :call)) |> Enum.all?(&(&1.critical == true))

      stats = TraceDB.stats()
      assert stats.sampled_out == 251
      assert stats.appended == 11
      assert stats.stored == 11
    end

    test "sample_rate 1.0 keeps everything" do
      start_store(sample_rate: 1.0)
      for i <- 1..5_000, do: store!(:x, %{i: i})
      assert length(TraceDB.query_events()) == 5_000
      assert TraceDB.stats().sampled_out == 0
      assert TraceDB.stats().appended == 5_000
    end

    test "sample_rate 0.5 keeps about half, and the stats agree" do
      start_store(sample_rate: 0.5)
      n = 20_000
      for i <- 1..n, do: store!(:x, %{i: i})
      for _ <- 1..100, do: store!(:crash, %{})

      kept = TraceDB.query_events(type: :x)
      stats = TraceDB.stats()

      assert length(kept) >= 0.45 * n
      assert length(kept) <= 0.55 * n
      assert stats.sampled_out == n - length(kept)
      assert stats.appended == length(kept) + 100
      assert stats.stored == stats.appended
      assert length(TraceDB.query_events(type: :crash)) == 100
      # What is kept is spread over the whole run, not a prefix or suffix.
      is = Enum.map(kept, & &1.i)
      assert Enum.count(is, &(&1 <= n / 2)) >= 0.4 * length(kept)
      assert Enum.count(is, &(&1 > n / 2)) >= 0.4 * length(kept)
    end

    test "sample_rate 0.2 keeps about a fifth" do
      start_store(sample_rate: 0.2)
      n = 20_000
      for i <- 1..n, do: store!(:x, %{i: i})
      kept = TraceDB.stats().appended
      assert kept >= 0.17 * n and kept <= 0.23 * n
      assert TraceDB.stats().sampled_out == n - kept
    end
  end

  describe "pruning" do
    test "max_events keeps exactly the newest events" do
      start_store(max_events: 100)
      for i <- 1..1000, do: store!(:p, %{i: i})

      events = TraceDB.query_events()
      assert length(events) == 100
      assert Enum.map(events, & &1.i) == Enum.to_list(901..1000)
      assert length(TraceDB.query_events(type: :p)) == 100

      stats = TraceDB.stats()
      assert stats.stored == 100
      assert stats.appended == 1000
      assert stats.pruned == 900
      assert stats.oldest_id == hd(events).id
      assert stats.newest_id == List.last(events).id
      assert stats.by_type == %{p: 1000}
    end

    test "pruned events disappear from every index" do
      start_store(max_events: 16)
      old = sleeper()
      store!(:state, %{pid: old, module: Old, function: :f, state: :old, timestamp: 1})
      store!(:spawn, %{pid: old, timestamp: 1})
      for i <- 1..40, do: store!(:filler, %{i: i, timestamp: 100 + i})

      assert TraceDB.query_events(pid: old) == []
      assert TraceDB.query_events(module: Old) == []
      assert TraceDB.query_events(module: Old, function: :f) == []
      assert TraceDB.query_events(type: :state) == []
      assert TraceDB.get_state_at(old, 1_000) == {:error, :not_found}
      assert TraceDB.get_processes_at(1_000) == []
      assert TraceDB.query_events(timestamp_end: 100) == []
      assert length(TraceDB.query_events()) == 16
    end

    test "max_bytes prunes the oldest payloads first and bounds bytes" do
      start_store(max_bytes: 4096, max_payload_bytes: 1024)
      payload = fn i -> %{i: i, data: :binary.copy("p", 80)} end
      for i <- 1..200, do: store!(:b, payload.(i))

      events = TraceDB.query_events()
      is = Enum.map(events, & &1.i)
      stats = TraceDB.stats()

      # A contiguous run of the newest events survives.
      assert is != []
      assert List.last(is) == 200
      assert is == Enum.to_list(hd(is)..200)
      assert length(is) >= 25 and length(is) < 200
      assert Enum.all?(events, &(&1.data == :binary.copy("p", 80)))

      # Every payload holds at least its 80 data bytes.
      assert length(is) * 80 <= 4096
      assert stats.bytes <= 4096
      assert stats.bytes >= length(is) * 80
      assert stats.stored == length(events)
      assert stats.pruned == 200 - length(events)
      assert stats.appended == 200
      assert stats.oldest_id == hd(events).id
    end

    # The docs: ":max_bytes — payload bytes kept; the oldest are pruned first".
    test "byte pruning also removes older truncated markers first" do
      start_store(max_bytes: 4096, max_payload_bytes: 1024)
      store!(:big, %{data: :binary.copy("x", 2000)})
      for i <- 1..100, do: store!(:small, %{i: i, data: :binary.copy("y", 80)})

      events = TraceDB.query_events()
      event_ids = ids(events)
      assert TraceDB.stats().stored == length(events)
      assert event_ids == Enum.to_list(hd(event_ids)..List.last(event_ids))
      assert TraceDB.query_events(type: :big) == []
    end
  end

  describe "truncation" do
    test "a payload over max_payload_bytes becomes a marker" do
      start_store(max_payload_bytes: 100)
      pid = sleeper()
      data = :binary.copy("z", 1000)

      store!(:big, %{
        pid: pid,
        module: Big,
        function: :f,
        arity: 2,
        data: data,
        timestamp: 777
      })

      store!(:small, %{pid: pid, data: "tiny", timestamp: 778})

      assert [big] = TraceDB.query_events(type: :big)

      assert %{
               id: _,
               type: :big,
               timestamp: 777,
               pid: ^pid,
               module: Big,
               function: :f,
               arity: 2,
               truncated: true,
               payload_size: size
             } = big

      refute Map.has_key?(big, :data)
      assert size > 1000 and size < 1100

      assert Map.keys(big) |> Enum.sort() ==
               Enum.sort([
                 :id,
                 :type,
                 :timestamp,
                 :pid,
                 :module,
                 :function,
                 :arity,
                 :truncated,
                 :payload_size
               ])

      assert [%{data: "tiny"} = small] = TraceDB.query_events(type: :small)
      refute Map.has_key?(small, :truncated)

      # The marker stays queryable through its indexes.
      assert [^big, ^small] = TraceDB.query_events(pid: pid)
      assert [^big] = TraceDB.query_events(module: Big, function: :f)

      stats = TraceDB.stats()
      assert stats.truncated == 1
      assert stats.stored == 2
    end

    test "payloads up to max_payload_bytes are kept whole, larger ones become markers" do
      start_store(max_payload_bytes: 100)
      # Payload sizes grow by one byte per byte of :d, across the limit.
      for n <- 0..150, do: store!(:sized, %{n: n, d: :binary.copy("a", n)})

      events = TraceDB.query_events(type: :sized)
      assert length(events) == 151
      {kept, truncated} = Enum.split_while(events, &(not Map.has_key?(&1, :truncated)))

      assert kept != []
      assert truncated != []
      assert Enum.map(kept, & &1.n) == Enum.to_list(0..(length(kept) - 1))
      assert Enum.all?(kept, &(&1.d == :binary.copy("a", &1.n)))

      assert Enum.all?(truncated, &(&1.truncated == true and not Map.has_key?(&1, :d)))
      sizes = Enum.map(truncated, & &1.payload_size)
      # The first marker is one byte over the limit: the one before it was exactly at it.
      assert sizes == Enum.to_list(101..(100 + length(truncated)))
      assert TraceDB.stats().truncated == length(truncated)
    end

    test "max_payload_bytes: 0 truncates every non-empty payload" do
      start_store(max_payload_bytes: 0)
      store!(:empty, %{pid: self()})
      store!(:full, %{pid: self(), x: 1})

      assert [%{pid: _} = empty] = TraceDB.query_events(type: :empty)
      refute Map.has_key?(empty, :truncated)
      assert [%{truncated: true, payload_size: size}] = TraceDB.query_events(type: :full)
      assert size > 0
    end
  end

  describe "concurrency" do
    test "8 processes storing 5_000 events each: every event exactly once" do
      start_store()
      writers = 8
      per = 5_000

      tasks =
        for w <- 1..writers do
          Task.async(fn ->
            for s <- 1..per, do: :ok = TraceDB.store_event(:work, %{w: w, seq: s, pid: self()})
            self()
          end)
        end

      pids = Task.await_many(tasks, 30_000)

      all = TraceDB.query_events()
      assert length(all) == writers * per
      all_ids = ids(all)
      assert length(Enum.uniq(all_ids)) == writers * per
      assert Enum.sort(all_ids) == Enum.to_list(1..(writers * per))

      for {pid, w} <- Enum.with_index(pids, 1) do
        mine = TraceDB.query_events(pid: pid)
        assert Enum.all?(mine, &(&1.w == w))
        assert Enum.map(mine, & &1.seq) |> Enum.sort() == Enum.to_list(1..per)
        # One process appends in order, so its ids grow with its sequence.
        by_seq = Enum.sort_by(mine, & &1.seq) |> ids()
        assert by_seq == Enum.sort(by_seq)
      end

      stats = TraceDB.stats()
      assert stats.stored == writers * per
      assert stats.appended == writers * per
      assert stats.by_type == %{work: writers * per}
    end

    test "readers see consistent, sorted results while writers append" do
      start_store()

      writers =
        for w <- 1..4 do
          Task.async(fn ->
            for s <- 1..3_000, do: :ok = TraceDB.store_event(:rw, %{w: w, seq: s, pid: self()})
          end)
        end

      readers =
        for _ <- 1..2 do
          Task.async(fn ->
            Enum.reduce(1..40, 0, fn _, last_count ->
              events = TraceDB.query_events(type: :rw)
              keys = Enum.map(events, &{&1.timestamp, &1.id})
              assert keys == Enum.sort(keys)
              assert Enum.all?(events, &(is_integer(&1.seq) and &1.type == :rw))
              assert length(events) >= last_count
              length(events)
            end)
          end)
        end

      Task.await_many(writers ++ readers, 30_000)
      assert length(TraceDB.query_events(type: :rw)) == 12_000
    end

    # The docs: ":max_bytes — payload bytes kept; the oldest are pruned first".
    test "byte pruning after concurrent writers keeps the newest events, as stats say" do
      # Writers only interleave when the VM runs them on different schedulers at once,
      # so the scenario is repeated to make that (nearly) certain.
      for round <- 1..4 do
        start_supervised!(
          {TraceDB, max_events: 200_000, max_bytes: 1024 * 1024, max_payload_bytes: 1024}
        )

        1..8
        |> Enum.map(fn w ->
          Task.async(fn ->
            for s <- 1..10_000,
                do: :ok = TraceDB.store_event(:bytes, %{w: w, s: s, d: :binary.copy("d", 80)})
          end)
        end)
        |> Task.await_many(30_000)

        event_ids = TraceDB.query_events() |> ids() |> Enum.sort()
        stats = TraceDB.stats()
        assert stats.bytes <= 1024 * 1024
        assert List.last(event_ids) == 80_000

        assert {round, stats.stored, stats.oldest_id} ==
                 {round, length(event_ids), hd(event_ids)}

        assert event_ids == Enum.to_list(hd(event_ids)..80_000)
        stop_supervised!(TraceDB)
      end
    end

    test "concurrent writers into a small ring keep only the newest events" do
      start_store(max_events: 1000)

      1..8
      |> Enum.map(fn w ->
        Task.async(fn -> for s <- 1..2_000, do: TraceDB.store_event(:ring, %{w: w, seq: s}) end)
      end)
      |> Task.await_many(30_000)

      events = TraceDB.query_events()
      stats = TraceDB.stats()
      assert length(events) <= 1000
      assert length(events) >= 990
      assert Enum.all?(ids(events), &(&1 > 16_000 - 1000))
      assert length(Enum.uniq(ids(events))) == length(events)
      assert stats.stored == length(events)
    end
  end
end
