defmodule ElixirScope.WallClockTest.Box do
  @moduledoc false
  use GenServer

  def start_link(n), do: GenServer.start_link(__MODULE__, n)

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_call({:put, n}, _from, _old), do: {:reply, :ok, n}
end

defmodule ElixirScope.WallClockTest do
  # Human times: every event tells its wall-clock time, functions that take a timestamp
  # take a DateTime, and recordings keep their offsets (issue 13, points 6 and 9).
  use ExUnit.Case, async: false

  alias ElixirScope.{TraceDB, WallClock}
  alias ElixirScope.WallClockTest.Box
  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  import ElixirScope.Test.Wait

  @moduletag :capture_log
  setup :clean_slate

  doctest ElixirScope.WallClock

  defp fixture(name), do: Path.join([__DIR__, "fixtures", name])

  test "an event's wall-clock time is when it happened, by System.os_time" do
    start_supervised!(TraceDB)
    before = System.os_time(:microsecond)
    :ok = TraceDB.store_event(:note, %{n: 1})
    later = System.os_time(:microsecond)
    [event] = TraceDB.query_events(type: :note)

    at = ElixirScope.wall_time(event) |> DateTime.to_unix(:microsecond)
    # the runtime's system time follows the OS's (no_time_warp corrects it slowly):
    # a second either way covers that
    assert at >= before - 1_000_000 and at <= later + 1_000_000
    assert %DateTime{microsecond: {_, 6}} = ElixirScope.wall_time(event.timestamp)
    assert ElixirScope.wall_time(event, store: :no_such_store) == nil
    assert_raise ArgumentError, fn -> ElixirScope.wall_time(:now) end
  end

  test "every function that takes a timestamp takes a DateTime" do
    :ok = ElixirScope.setup(lifecycle: :traced)
    box = start_supervised!({Box, 0})
    :ok = ElixirScope.trace_genserver(box)
    :ok = GenServer.call(box, {:put, 1})
    wait_until(fn -> match?({:ok, 1}, TraceDB.get_state_at(box, System.monotonic_time())) end)
    Process.sleep(5)
    middle = DateTime.utc_now()
    Process.sleep(5)
    :ok = GenServer.call(box, {:put, 2})
    wait_until(fn -> match?({:ok, 2}, TraceDB.get_state_at(box, System.monotonic_time())) end)
    t = WallClock.timestamp(middle)

    assert ElixirScope.get_state_at(box, middle) == {:ok, 1}
    assert TraceDB.get_state_at(box, middle) == ElixirScope.get_state_at(box, t)

    assert ElixirScope.get_events_between(middle, DateTime.utc_now(), pid: box) ==
             ElixirScope.get_events_between(t, System.monotonic_time(), pid: box)

    assert ElixirScope.next_event(middle, pid: box) == ElixirScope.next_event(t, pid: box)
    assert ElixirScope.prev_event(middle, pid: box) == ElixirScope.prev_event(t, pid: box)
    assert TraceDB.next_event_after(middle) == TraceDB.next_event_after(t)
    assert TraceDB.get_processes_at(middle) == TraceDB.get_processes_at(t)
    assert TraceDB.get_events_at(middle, 1) == TraceDB.get_events_at(t, 1)
    assert ElixirScope.system_snapshot_at(middle) == ElixirScope.system_snapshot_at(t)

    assert ElixirScope.Query.run(type: :state, pid: box, timestamp_start: middle) ==
             ElixirScope.Query.run(type: :state, pid: box, timestamp_start: t)

    assert [%{state: 2}] = TraceDB.query_events(type: :state, pid: box, timestamp_start: middle)

    # the MCP tools take the ISO 8601 time their listings show
    assert ElixirScope.MCP.Args.timestamp(%{"t" => DateTime.to_iso8601(middle)}, "t") == t

    assert_raise ArgumentError, ~r/or a DateTime/, fn -> ElixirScope.get_state_at(box, "now") end
  end

  test "IEx shows an event on one line with its time and a call's request; limit: :infinity shows it whole" do
    :ok = ElixirScope.setup(lifecycle: :traced)
    box = start_supervised!({Box, 0})
    :ok = ElixirScope.trace_genserver(box)
    :ok = GenServer.call(box, {:put, {:deposit, 30, String.duplicate("x", 200)}})

    received =
      wait_until(fn ->
        box
        |> ElixirScope.execution_path(type: :receive)
        |> Enum.find(&match?({:"$gen_call", _, {:put, _}}, &1.message))
      end)

    # as IEx prints it
    line = inspect(received, IEx.Config.inspect_opts())
    refute line =~ "\n"
    time = received |> ElixirScope.wall_time() |> DateTime.to_time() |> Time.to_iso8601()
    assert line =~ "#Event<#{received.id} #{time} receive "
    assert line =~ "call {:put, {:deposit, 30,", "the request comes first: #{line}"

    whole = inspect(received, IEx.Config.inspect_opts() ++ [limit: :infinity])
    assert whole =~ "at #{DateTime.to_iso8601(ElixirScope.wall_time(received))}"
    assert whole =~ String.duplicate("x", 200), "the whole message: #{whole}"
    assert whole =~ ":\"$gen_call\"" and whole =~ "timestamp: #{received.timestamp}"
  end

  test "dumps keep the offsets: a loaded recording tells the same wall-clock times" do
    path = Path.join(System.tmp_dir!(), "es_wall_#{System.unique_integer([:positive])}.esd")
    on_exit(fn -> File.rm(path) end)
    on_exit(fn -> ElixirScope.Test.Stores.stop_all([:loaded]) end)
    start_supervised!(TraceDB)
    for n <- 1..3, do: TraceDB.store_event(:note, %{n: n})
    events = TraceDB.query_events(type: :note)
    {:ok, _} = ElixirScope.dump(path)

    {:ok, _} = ElixirScope.load(path, name: :loaded)
    loaded = TraceDB.query_events(type: :note, store: :loaded)

    assert Enum.map(loaded, &ElixirScope.wall_time(&1, store: :loaded)) ==
             Enum.map(events, &ElixirScope.wall_time/1)

    assert TraceDB.wall_offsets(:loaded) == TraceDB.wall_offsets(TraceDB)
    <<"ESCOPE", 0, 1, version::little-32, _::binary>> = File.read!(path)
    assert version == 2
  end

  test "recordings of format version 1 load: times from a :clock event, or none" do
    on_exit(fn -> ElixirScope.Test.Stores.stop_all([:v1, :main_v1]) end)

    assert {:ok, %{events: events, skipped: []}} =
             ElixirScope.load(fixture("query_v1.esd"), name: :v1)

    assert events > 20
    [clock] = TraceDB.query_events(type: :clock, store: :v1)
    # the :clock event's own time, by its offset, is the system time it noted
    assert DateTime.to_unix(ElixirScope.wall_time(clock, store: :v1), :microsecond) ==
             System.convert_time_unit(clock.timestamp + clock.time_offset, :native, :microsecond)

    # ... and the original vocabulary and crashes of that file read as such
    assert [%{type: :process, event: :crash}, %{type: :crash}] =
             ElixirScope.recent_crashes(store: :v1)
             |> Enum.map(& &1.event)
             |> Enum.sort_by(& &1.type, :desc)

    assert {:ok, %{skipped: []}} = ElixirScope.load(fixture("main_v1.esd"), name: :main_v1)
    [first | _] = TraceDB.query_events(store: :main_v1)
    assert ElixirScope.wall_time(first, store: :main_v1) == nil
    assert TraceDB.wall_offsets(:main_v1) == []
  end

  test "exports carry wall-clock times" do
    dir = Path.join(System.tmp_dir!(), "es_wall_export_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    start_supervised!(TraceDB)
    [a, b] = for _ <- 1..2, do: spawn(fn -> :ok end)
    :ok = TraceDB.store_event(:send, %{from_pid: a, to_pid: b, message: :hello})
    [sent] = TraceDB.query_events(type: :send)
    at = ElixirScope.wall_time(sent)

    {:ok, _} = ElixirScope.export(Path.join(dir, "t.json"))
    chrome = ElixirScope.JSON.decode!(File.read!(Path.join(dir, "t.json")))
    send_slice = Enum.find(chrome["traceEvents"], &(&1["name"] == "send"))
    assert send_slice["args"]["wall_time"] == DateTime.to_iso8601(at)

    {:ok, _} = ElixirScope.export(Path.join(dir, "f.mmd"), format: :mermaid, pids: [a, b])
    assert File.read!(Path.join(dir, "f.mmd")) =~ at |> DateTime.to_time() |> Time.to_iso8601()
  end
end
