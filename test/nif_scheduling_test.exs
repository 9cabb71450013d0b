defmodule ElixirScope.NifSchedulingTest do
  @moduledoc """
  NIF calls must not hold a normal scheduler for more than about a millisecond:
  queries with large answers move to a dirty scheduler. `:erlang.system_monitor/2`
  with `long_schedule` reports any process that ran longer than 1 ms without yielding.
  """
  use ExUnit.Case, async: false

  alias ElixirScope.Test.LongSchedule
  alias ElixirScope.TraceDB

  setup do
    start_supervised!({TraceDB, max_events: 300_000})
    pids = for _ <- 1..50, do: spawn(fn -> Process.sleep(:infinity) end)

    for i <- 1..200_000 do
      :ok = TraceDB.store_event(:tick, %{pid: Enum.at(pids, rem(i, 50)), module: Tick, i: i})
    end

    on_exit(fn -> Enum.each(pids, &Process.exit(&1, :kill)) end)
    %{pids: pids}
  end

  test "large queries, stats and clear stay within a normal scheduler's slice", %{pids: [p | _]} do
    long =
      LongSchedule.reports(fn ->
        assert length(TraceDB.query_events(type: :tick)) == 200_000
        assert length(TraceDB.query_events(pid: p)) == 4000
        assert length(TraceDB.query_events(module: Tick, limit: 50_000)) == 50_000
        now = System.monotonic_time()
        assert length(TraceDB.query_events(timestamp_end: now)) == 200_000
        assert TraceDB.stats().stored == 200_000
        assert TraceDB.get_processes_at(now) == []
        TraceDB.clear()
      end)

    assert long == [], "the test process held a scheduler too long: #{inspect(long)}"
  end
end
