defmodule ElixirScope.FlightRecorderTest do
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait
  alias ElixirScope.TraceDB
  alias ElixirScope.Test.Stores

  @moduletag :tmp_dir
  @moduletag :capture_log

  defmodule Box do
    use GenServer
    def init(n), do: {:ok, n}
    def handle_call(:crash, _from, _n), do: raise("boom")
    def handle_cast({:set, n}, _), do: {:noreply, n}
  end

  setup do
    Stores.stop_all([:flight])
    on_exit(fn -> Stores.stop_all([:flight]) end)
  end

  test "a crash writes the last seconds, and the crashed process's last state", %{tmp_dir: dir} do
    :ok = ElixirScope.setup(flight_recorder: [window: 0.3, dir: dir, min_interval: 0])
    {:ok, box} = GenServer.start(Box, 0)
    :ok = ElixirScope.trace_genserver(box)
    GenServer.cast(box, {:set, 42})
    assert wait_until(fn -> match?([_, _ | _], TraceDB.get_state_history(box)) end)
    # the state change is now older than the window
    Process.sleep(400)
    :ok = TraceDB.store_event(:note, %{text: "just before"})
    catch_exit(GenServer.call(box, :crash))

    [file] =
      wait_until(fn ->
        Path.wildcard(Path.join(dir, "flight-*.esd")) |> then(&(&1 != [] && &1))
      end)

    assert wait_until(fn -> File.stat!(file).size > 16 end)
    assert {:ok, %{events: n}} = ElixirScope.load(file, name: :flight)
    loaded = TraceDB.query_events(store: :flight)
    assert n == length(loaded)
    assert Enum.any?(loaded, &(&1.type == :crash and &1.pid == box))
    assert Enum.any?(loaded, &(&1.type == :note and &1.text == "just before"))

    assert Enum.any?(loaded, &(&1.type == :state and &1.state == 42)),
           "the last state, older than the window"

    refute Enum.any?(loaded, &(&1.type == :alive)), "the start-up snapshot is outside the window"
  end

  test "dumps are rate-limited: a crash loop makes one file", %{tmp_dir: dir} do
    :ok = ElixirScope.setup(flight_recorder: [window: 1, dir: dir, min_interval: 60_000])

    for _ <- 1..5 do
      {:ok, box} = GenServer.start(Box, 0)
      :ok = ElixirScope.trace_process(box)
      catch_exit(GenServer.call(box, :crash))
    end

    assert wait_until(fn -> length(TraceDB.query_events(type: :crash)) == 5 end)
    Process.sleep(300)
    assert [_one] = Path.wildcard(Path.join(dir, "flight-*.esd"))
  end

  test "dump/0 writes the last window on demand", %{tmp_dir: dir} do
    assert_raise RuntimeError, ~r/flight recorder is not running/, fn ->
      ElixirScope.FlightRecorder.dump()
    end

    :ok = ElixirScope.setup(flight_recorder: [window: 0.2, dir: dir, min_interval: 60_000])
    :ok = TraceDB.store_event(:note, %{i: :old})
    Process.sleep(400)
    for i <- 1..3, do: :ok = TraceDB.store_event(:note, %{i: i})

    assert {:ok, path} = ElixirScope.FlightRecorder.dump()
    assert String.starts_with?(Path.basename(path), "flight-now-")
    assert {:ok, _} = ElixirScope.load(path, name: :flight)
    notes = for %{type: :note, i: i} <- TraceDB.query_events(store: :flight), do: i
    assert notes == [1, 2, 3], "the window's notes, not the older one"
  end

  test "options are checked" do
    assert_raise ArgumentError, ~r/needs :dir/, fn ->
      ElixirScope.setup(flight_recorder: [window: 1])
    end

    assert_raise ArgumentError, ~r/window/, fn ->
      ElixirScope.setup(flight_recorder: [window: -1, dir: "x"])
    end
  end
end
