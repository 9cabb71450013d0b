defmodule ElixirScope.TimeWarpTest do
  # A time warp does not shift history: a store notes the runtime's time offset at each
  # change, so events before a warp keep their wall-clock times and those after it get
  # the new ones — in a VM under `+C multi_time_warp` (the default mode never changes
  # the offset) whose system clock jumps an hour ahead. The jump is libfaketime's
  # (Debian's libfaketime, from `make setup`), in that VM only: its monotonic clock runs
  # on, its system clock is read from a file we rewrite. The runtime notices the jump
  # when it next checks the system clock: within a second or two here while the clock
  # is being read, about a minute in an idle VM; the test waits up to two minutes.
  use ExUnit.Case, async: true

  @moduletag timeout: 150_000
  @hour_us 3_600_000_000

  @libfaketime Path.wildcard("/usr/lib/*/faketime/libfaketimeMT.so.1") |> List.first()
  if @libfaketime == nil do
    IO.puts(
      "libfaketime is not installed (make setup installs it): the time warp test is skipped"
    )

    @moduletag :skip
  end

  setup do
    file = Path.join(System.tmp_dir!(), "es_faketime_#{System.unique_integer([:positive])}")
    File.write!(file, "+0\n")
    on_exit(fn -> File.rm(file) end)
    ebin = :code.lib_dir(:elixir_scope) |> Path.join("ebin") |> to_charlist()

    elixir =
      for app <- [:elixir, :logger], do: :code.lib_dir(app) |> Path.join("ebin") |> to_charlist()

    {:ok, peer, _} =
      :peer.start_link(%{
        connection: :standard_io,
        args: Enum.flat_map([ebin | elixir], &[~c"-pa", &1]) ++ [~c"+C", ~c"multi_time_warp"],
        env: [
          {~c"LD_PRELOAD", to_charlist(@libfaketime)},
          {~c"FAKETIME_TIMESTAMP_FILE", to_charlist(file)},
          {~c"FAKETIME_NO_CACHE", ~c"1"},
          {~c"DONT_FAKE_MONOTONIC", ~c"1"}
        ],
        wait_boot: 60_000
      })

    on_exit(fn ->
      try do
        :peer.stop(peer)
      catch
        :exit, _ -> :ok
      end
    end)

    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:elixir])
    %{peer: peer, faketime: file}
  end

  defp call(peer, m, f, a), do: :peer.call(peer, m, f, a, 30_000)

  # An event stored in the peer, with the peer's OS time just before and after.
  defp record(peer, n) do
    before = call(peer, System, :os_time, [:microsecond])
    :ok = call(peer, ElixirScope.TraceDB, :store_event, [:note, %{n: n}])
    later = call(peer, System, :os_time, [:microsecond])
    [event] = call(peer, ElixirScope.TraceDB, :query_events, [[type: :note, where: [n: n]]])
    at = call(peer, ElixirScope, :wall_time, [event]) |> DateTime.to_unix(:microsecond)
    {event, before, at, later}
  end

  test "events keep the wall-clock times of before a warp; later ones get the new offset", ctx do
    %{peer: peer, faketime: file} = ctx
    assert call(peer, :erlang, :system_info, [:time_warp_mode]) == :multi_time_warp
    :ok = call(peer, ElixirScope, :setup, [[tracing_level: :off]])

    {first, before1, at1, after1} = record(peer, 1)
    assert at1 >= before1 - 1_000_000 and at1 <= after1 + 1_000_000

    # the system clock jumps an hour ahead; the runtime notices within about a minute
    File.write!(file, "+3600\n")

    warped =
      Enum.find_value(1..130, fn _ ->
        Process.sleep(1_000)
        offsets = call(peer, ElixirScope.TraceDB, :wall_offsets, [ElixirScope.TraceDB])
        length(offsets) >= 2 && offsets
      end)

    assert [{_, o1}, {_, o2}] = warped, "no time offset change seen in the peer"
    assert_in_delta o2 - o1, @hour_us * 1_000, 5_000_000_000

    {second, before2, at2, after2} = record(peer, 2)
    assert at2 >= before2 - 1_000_000 and at2 <= after2 + 1_000_000
    assert before2 - after1 >= @hour_us, "the peer's OS clock jumped"

    # the first event still tells the time it happened at
    again = call(peer, ElixirScope, :wall_time, [first]) |> DateTime.to_unix(:microsecond)
    assert again == at1

    # and a dump of the peer's recording tells both here
    path = Path.join(System.tmp_dir!(), "es_warp_#{System.unique_integer([:positive])}.esd")
    on_exit(fn -> File.rm(path) end)
    {:ok, _} = call(peer, ElixirScope, :dump, [path])
    name = :"warp_#{System.unique_integer([:positive])}"
    {:ok, _} = ElixirScope.load(path, name: name)
    on_exit(fn -> ElixirScope.Test.Stores.stop_all([name]) end)

    times =
      for e <- [first, second],
          do: ElixirScope.wall_time(e.timestamp, store: name) |> DateTime.to_unix(:microsecond)

    assert times == [at1, at2]
  end
end
