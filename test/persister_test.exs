defmodule ElixirScope.PersisterTest do
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait
  alias ElixirScope.TraceDB
  alias ElixirScope.Test.Stores
  alias ElixirScope.Test.LongSchedule

  @moduletag :tmp_dir
  @moduletag :capture_log

  setup do
    Stores.stop_all([:loaded, :jobs])
    on_exit(fn -> Stores.stop_all([:loaded, :jobs]) end)
  end

  defp note(i), do: :ok = TraceDB.store_event(:note, %{i: i, pad: :binary.copy("p", 200)})

  # An OS process of its own running ElixirScope with this build, which records `n`
  # events and then halts with `halt` (code), long before its persister's first write.
  defp run_and_halt(dir, n, halt) do
    elixir = Path.expand("../../bin/elixir", :code.lib_dir(:elixir))
    ebin = Path.join(:code.lib_dir(:elixir_scope), "ebin")

    script = """
    :ok = ElixirScope.setup(tracing_level: :off, persist: true, persist_path: #{inspect(dir)},
                            persist_interval: 600_000)
    for i <- 1..#{n}, do: :ok = ElixirScope.TraceDB.store_event(:note, %{i: i})
    #{halt}
    """

    {out, status} = System.cmd(elixir, ["-pa", ebin, "-e", script], stderr_to_stdout: true)
    assert status == 0, out
  end

  # OTP 26+ (the NIF's on-halt callback); on OTP 25 what came after the last write is lost.
  @tag :halt_flush
  test "erlang:halt/0 skips every terminate callback, and the last events still reach disk",
       %{tmp_dir: dir} do
    path = Path.join(dir, "halted")
    run_and_halt(path, 1000, ":erlang.halt()")
    assert {:ok, %{events: 1000, skipped: []}} = ElixirScope.load(path, name: :loaded)
    assert Enum.map(TraceDB.query_events(store: :loaded), & &1.i) == Enum.to_list(1..1000)

    # without flushing nothing runs at halt: the file has no event (so it was the
    # callback that wrote them above)
    path = Path.join(dir, "not_flushed")
    run_and_halt(path, 1000, ":erlang.halt(0, flush: false)")
    assert ElixirScope.Persister.files(path) == []
  end

  test "events reach segment files while tracing, and all of them on stop", %{tmp_dir: dir} do
    path = Path.join(dir, "scope")

    :ok =
      ElixirScope.setup(
        tracing_level: :off,
        persist: true,
        persist_path: path,
        persist_interval: 50
      )

    assert Bitwise.band(File.stat!(path).mode, 0o777) == 0o700

    for i <- 1..100, do: note(i)
    assert wait_until(fn -> match?([_ | _], ElixirScope.Persister.files(path)) end)
    [file] = ElixirScope.Persister.files(path)
    assert Bitwise.band(File.stat!(file).mode, 0o777) == 0o600

    for i <- 101..150, do: note(i)
    recorded = TraceDB.query_events([])
    :ok = ElixirScope.stop(keep_data: false)

    assert {:ok, summary} = ElixirScope.load(path, name: :loaded)
    assert %{events: 150, files: 1, skipped: []} = summary
    assert TraceDB.query_events(store: :loaded) == recorded
  end

  test "persist_segment_bytes sets the segments' size", %{tmp_dir: dir} do
    # One write, on stop: ~300-byte records in 4 KiB segments.
    :ok =
      ElixirScope.setup(
        tracing_level: :off,
        persist: true,
        persist_path: dir,
        persist_interval: 60_000,
        persist_segment_bytes: 4096
      )

    for i <- 1..150, do: note(i)
    :ok = ElixirScope.stop(keep_data: false)

    assert {:ok, %{events: 150, segments: segments, skipped: []}} =
             ElixirScope.load(dir, name: :loaded)

    assert segments >= 10, "150 records of ~300 bytes in 4 KiB segments, got #{segments}"
  end

  test "a store started with persist: true persists itself, and once more on stop", %{
    tmp_dir: dir
  } do
    {:ok, store} =
      TraceDB.start_link(name: :jobs, persist: true, persist_path: dir, persist_interval: 30)

    Process.unlink(store)
    refute Process.whereis(ElixirScope.Persister), "not the persister of setup/1"
    for i <- 1..20, do: :ok = TraceDB.store_event(:note, %{i: i}, store: :jobs)
    assert wait_until(fn -> match?([_ | _], ElixirScope.Persister.files(dir)) end)
    for i <- 21..30, do: :ok = TraceDB.store_event(:note, %{i: i}, store: :jobs)
    recorded = TraceDB.query_events(store: :jobs)
    :ok = TraceDB.stop(:jobs)

    assert {:ok, %{events: 30, skipped: []}} = ElixirScope.load(dir, name: :loaded)
    assert TraceDB.query_events(store: :loaded) == recorded

    assert_raise ArgumentError, ~r/:persist_max_files must be a positive integer/, fn ->
      TraceDB.start_link(name: :jobs, persist_max_files: 0)
    end
  end

  test "files rotate at their size limit and the oldest go past max_files", %{tmp_dir: dir} do
    :ok =
      ElixirScope.setup(
        tracing_level: :off,
        persist: true,
        persist_path: dir,
        persist_interval: 20,
        persist_max_file_bytes: 2_000,
        persist_max_files: 3
      )

    for round <- 1..8 do
      for i <- 1..40, do: note(round * 1000 + i)
      n = length(TraceDB.query_events([]))
      # wait for this round to be written before the next, so each makes a file
      assert wait_until(fn ->
               ElixirScope.Persister.files(dir) |> Enum.map(&File.stat!(&1).size) |> Enum.sum() >
                 0
             end)

      Process.sleep(60)
      assert n == length(TraceDB.query_events([]))
    end

    files = ElixirScope.Persister.files(dir)
    assert length(files) <= 3
    assert List.last(files) =~ ~r/scope-\d{6}\.esd$/
    :ok = ElixirScope.stop(keep_data: false)

    # what is left loads: the newest events, none repeated
    assert {:ok, %{skipped: []} = summary} = ElixirScope.load(dir, name: :loaded)
    ids = TraceDB.query_events(store: :loaded) |> Enum.map(& &1.id)
    assert ids == Enum.sort(Enum.uniq(ids))
    assert summary.events == length(ids) and summary.events > 0
  end

  test "an unwritable directory is reported once and tracing goes on", %{tmp_dir: dir} do
    blocked = Path.join(dir, "file-not-dir")
    File.write!(blocked, "x")

    :ok =
      ElixirScope.setup(
        tracing_level: :off,
        persist: true,
        persist_path: Path.join(blocked, "sub"),
        persist_interval: 20
      )

    for i <- 1..10, do: note(i)
    Process.sleep(100)
    assert [%{type: :persist_error, reason: reason}] = TraceDB.query_events(type: :persist_error)
    assert is_binary(reason)
    assert length(TraceDB.query_events(type: :note)) == 10
  end

  test "writing never holds a normal scheduler (system_monitor long_schedule)", %{tmp_dir: dir} do
    :ok =
      ElixirScope.setup(
        tracing_level: :off,
        persist: true,
        persist_path: dir,
        persist_interval: 10
      )

    persister = Process.whereis(ElixirScope.Persister)

    long =
      LongSchedule.reports(
        fn ->
          for i <- 1..30_000, do: note(i)
          Process.sleep(200)
        end,
        [persister]
      )

    assert ElixirScope.Persister.files(dir) |> Enum.map(&File.stat!(&1).size) |> Enum.sum() >
             100_000

    assert long == [], "the persister held a normal scheduler: #{inspect(long)}"
  end

  test "persist: true needs a path" do
    assert_raise ArgumentError, ~r/persist_path/, fn -> ElixirScope.setup(persist: true) end

    assert_raise ArgumentError, ~r/persist_interval/, fn ->
      ElixirScope.setup(persist_interval: 0)
    end

    assert_raise ArgumentError, ~r/persist_segment_bytes must be an integer/, fn ->
      ElixirScope.setup(persist_segment_bytes: 1_073_741_824)
    end
  end
end
