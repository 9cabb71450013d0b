defmodule ElixirScope.SystemMonitorTest do
  # The runtime's system monitor as events, opt-in, never displacing another holder.
  use ExUnit.Case, async: false

  alias ElixirScope.TraceDB
  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  @moduletag :capture_log
  setup :clean_slate

  setup do
    previous = :erlang.system_monitor()
    on_exit(fn -> restore(previous) end)
    restore(:undefined)
    :ok
  end

  defp restore(:undefined), do: :erlang.system_monitor(:undefined)
  defp restore({pid, opts}), do: :erlang.system_monitor(pid, opts)

  test "a process that allocates a large heap is recorded, and stop/0 clears the monitor" do
    :ok = ElixirScope.setup(system_monitor: [large_heap: 200_000, busy_port: true])
    me = Process.whereis(ElixirScope.SystemMonitor)
    assert {^me, opts} = :erlang.system_monitor()
    assert {:large_heap, 200_000} in opts and :busy_port in opts

    hog =
      spawn(fn ->
        big = Enum.to_list(1..400_000)
        receive do: (:stop -> length(big))
      end)

    assert wait_until(fn -> TraceDB.query_events(type: :system_monitor, pid: hog) != [] end)
    [event | _] = TraceDB.query_events(type: :system_monitor, pid: hog)
    assert %{kind: :large_heap, info: info} = event
    assert info[:heap_block_size] + info[:old_heap_block_size] >= 200_000
    assert inspect(ElixirScope.Event.wrap(event)) =~ "large_heap"
    send(hog, :stop)

    assert %{active: true, options: _, dropped: 0} = ElixirScope.status().system_monitor
    ElixirScope.stop()
    assert :erlang.system_monitor() == :undefined
  end

  test "another holder's system monitor is left in place, said so, and nothing is recorded" do
    holder = spawn(fn -> Process.sleep(:infinity) end)
    :erlang.system_monitor(holder, [{:long_gc, 500}])
    :ok = ElixirScope.setup(system_monitor: [large_heap: 200_000])
    assert {^holder, [{:long_gc, 500}]} = :erlang.system_monitor()
    assert %{active: false, held_by: ^holder} = ElixirScope.status().system_monitor

    assert [%{reason: :system_monitor_taken, held_by: ^holder}] =
             TraceDB.query_events(type: :governor, where: [reason: :system_monitor_taken])

    ElixirScope.stop()
    assert {^holder, _} = :erlang.system_monitor()
  end

  test "off unless asked, and the option is checked" do
    :ok = ElixirScope.setup()
    assert :erlang.system_monitor() == :undefined
    assert ElixirScope.status().system_monitor == nil
    ElixirScope.stop()

    for bad <- [:yes, [long_gc: 0], [large_heap: -1], [busy_port: :sometimes], [other: 1]] do
      assert_raise ArgumentError, ~r/:system_monitor must be/, fn ->
        ElixirScope.setup(system_monitor: bad)
      end
    end
  end
end
