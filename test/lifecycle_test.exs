defmodule ElixirScope.LifecycleTest do
  # lifecycle: :all — spawn, exit and links of every process, traced or not. On by
  # default on OTP 27+ (ElixirScope's own trace session), asked for before (it takes
  # every process's one tracer slot there).
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait

  alias ElixirScope.TraceDB
  alias ElixirScope.Test.TraceState

  @moduletag :capture_log

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  # A process ElixirScope was never told about: it links to `to`, then exits.
  defp short_lived(to, reason) do
    pid =
      spawn(fn ->
        receive do
          :go ->
            Process.link(to)
            Process.unlink(to)
            exit(reason)
        end
      end)

    ref = Process.monitor(pid)
    send(pid, :go)
    assert_receive {:DOWN, ^ref, _, _, ^reason}
    pid
  end

  defp lifecycle_of(pid), do: TraceDB.query_events(pid: pid) |> Enum.map(& &1.type)

  test "lifecycle: :all records the spawn, links and exit of processes nobody traces" do
    :ok = ElixirScope.setup(lifecycle: :all)
    assert ElixirScope.tracing_info().lifecycle == :all
    peer = spawn(fn -> Process.sleep(:infinity) end)

    p = short_lived(peer, :kaboom)
    assert wait_until(fn -> lifecycle_of(p) == [:spawn, :link, :unlink, :crash] end)
    assert [%{reason: :kaboom}] = TraceDB.query_events(type: :crash, pid: p)
    assert [%{parent: parent}] = TraceDB.query_events(type: :spawn, pid: p)
    assert parent == self()

    q = short_lived(peer, :normal)
    assert wait_until(fn -> lifecycle_of(q) == [:spawn, :link, :unlink, :exit] end)

    # only lifecycle: no messages or calls of those processes
    assert TraceDB.query_events(type: :send, from_pid: p) == []
    refute Enum.any?([:send, :receive, :call], &(&1 in TraceState.flags(peer)))

    # ElixirScope's own processes are not traced
    for name <- [ElixirScope.Supervisor, ElixirScope.Tracing, ElixirScope.Governor, TraceDB] do
      pid = Process.whereis(name)
      refute TraceState.ours?(pid), "#{inspect(name)} is traced"
      assert TraceDB.query_events(pid: pid) |> Enum.reject(&(&1.type == :alive)) == []
    end

    Process.exit(peer, :kill)
  end

  test "the default: :all on OTP 27+, :traced (only processes ElixirScope traces) before" do
    :ok = ElixirScope.setup()
    peer = spawn(fn -> Process.sleep(:infinity) end)
    p = short_lived(peer, :kaboom)

    if TraceState.sessions?() do
      assert ElixirScope.tracing_info().lifecycle == :all
      assert wait_until(fn -> lifecycle_of(p) == [:spawn, :link, :unlink, :crash] end)
    else
      assert ElixirScope.tracing_info().lifecycle == :traced
      Process.sleep(50)
      assert lifecycle_of(p) == []
      refute TraceState.ours?(peer)
    end

    Process.exit(peer, :kill)
    assert_raise ArgumentError, ~r/lifecycle/, fn -> ElixirScope.setup(lifecycle: :some) end
  end

  @tag :legacy_tracing
  test "OTP < 27: lifecycle: :all takes the tracer slot of every process another tool has not" do
    # (:dbg.stop_clear/0 is deprecated on OTP 27, where this test does not run)
    on_exit(fn -> apply(:dbg, :stop_clear, []) end)
    dbg_traced = spawn(fn -> Process.sleep(:infinity) end)
    {:ok, _} = :dbg.tracer()
    {:ok, _} = :dbg.p(dbg_traced, [:procs])
    {:tracer, dbg_tracer} = :erlang.trace_info(dbg_traced, :tracer)

    :ok = ElixirScope.setup(lifecycle: :all)
    assert :erlang.trace_info(dbg_traced, :tracer) == {:tracer, dbg_tracer}

    # a process started now is ElixirScope's: another tool cannot trace it any more
    later = spawn(fn -> Process.sleep(:infinity) end)
    assert TraceState.ours?(later)
    assert {:ok, [{:matched, _, 0, _}]} = :dbg.p(later, [:s])

    Enum.each([dbg_traced, later], &Process.exit(&1, :kill))
  end

  @tag :trace_sessions
  test "OTP 27+: with lifecycle: :all every process stays free for other tools" do
    on_exit(fn -> :dbg.stop() end)
    test_pid = self()

    forward = fn msg, n ->
      send(test_pid, {:dbg, msg})
      n + 1
    end

    :ok = ElixirScope.setup()
    later = spawn(fn -> receive(do: (:go -> exit(:bye))) end)
    assert TraceState.ours?(later)

    {:ok, _} = :dbg.tracer(:process, {forward, 0})
    assert {:ok, [{:matched, _, 1}]} = :dbg.p(later, [:procs])
    send(later, :go)

    assert_receive {:dbg, {:trace, ^later, :exit, :bye}}
    assert wait_until(fn -> TraceDB.query_events(type: :crash, pid: later) != [] end)
  end
end
