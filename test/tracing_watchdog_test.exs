defmodule ElixirScope.TracingWatchdogTest.Shared do
  @moduledoc false
  def add(a, b), do: a + b
  def mul(a, b), do: a * b
end

defmodule ElixirScope.TracingWatchdogTest do
  # OTP < 27: another tool's cleanup removes ElixirScope's flags and patterns (the
  # runtime's tracing state is shared). The watchdog notices, says so once and re-arms
  # what is still free.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import ElixirScope.Test.Wait

  alias ElixirScope.{TraceDB, Tracing}
  alias ElixirScope.Test.TraceState
  alias ElixirScope.TracingWatchdogTest.Shared

  @moduletag :legacy_tracing

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  defp sleeper, do: spawn(fn -> Process.sleep(:infinity) end)

  # What recon_trace:clear/0, redbug's stop and :dbg.stop_clear/0 do, between two
  # watchdog ticks (on a loaded machine a tick can fall between its three calls, and
  # the watchdog then rightly reports two losses).
  defp clear_all_tracing do
    :sys.suspend(Tracing)
    clear_all_tracing_now()
    :sys.resume(Tracing)
  end

  defp clear_all_tracing_now do
    :erlang.trace(:all, false, [:all])
    :erlang.trace_pattern({:_, :_, :_}, false, [:local, :meta, :call_count, :call_time])
    :erlang.trace_pattern({:_, :_, :_}, false, [])
  end

  defp removals, do: ElixirScope.tracing_info().watchdog.removals

  defp watchdog_events,
    do: Enum.filter(TraceDB.query_events(type: :governor), &(&1.reason == :tracing_removed))

  test "another tool's cleanup: recorded and logged once, re-armed, reported in tracing_info" do
    log =
      capture_log(fn ->
        :ok = ElixirScope.setup(governor_interval: 20)
        p = sleeper()
        :ok = ElixirScope.trace_process(p)
        :ok = ElixirScope.trace_module(Shared)
        assert TraceState.ours?(p) and TraceState.ours?(:new)
        assert [_ | _] = TraceState.match_spec({Shared, :add, 2})

        clear_all_tracing()
        refute TraceState.ours?(p)
        assert wait_until(fn -> removals() == 1 and TraceState.ours?(p) end)

        # everything is back: the process, new processes (trace_module traces calls
        # everywhere), every function of the module
        assert TraceState.ours?(:new)
        assert [_ | _] = TraceState.match_spec({Shared, :add, 2})
        assert [_ | _] = TraceState.match_spec({Shared, :mul, 2})

        assert Task.await(Task.async(fn -> Shared.mul(6, 7) end)) == 42

        assert wait_until(fn ->
                 TraceDB.query_events(type: :return, module: Shared, function: :mul) != []
               end)

        assert [event] = watchdog_events()
        assert %{processes: 1, new_processes: true, rearmed: true, taken: []} = event
        assert event.patterns == length(Shared.module_info(:functions)) - 2

        assert %{removals: 1, rearm: true, last: %{rearmed: true, processes: 1}} =
                 ElixirScope.tracing_info().watchdog

        # and in the MCP server's status tool
        {text, structured} = ElixirScope.MCP.Tools.Control.status(%{}, %{})

        assert text =~
                 "Removed by another tool: 1 time(s), last #{event.patterns} patterns, 1 processes, new processes; re-armed"

        assert structured["tracingRemovedByOtherTools"] == 1

        # quiet once re-armed: no second event
        Process.sleep(100)
        assert removals() == 1
      end)

    assert length(String.split(log, "another tool removed part of its tracing")) == 2, log
  end

  test "rearm: false reports the loss once and leaves it" do
    log =
      capture_log(fn ->
        :ok = ElixirScope.setup(governor_interval: 20, rearm: false)
        p = sleeper()
        :ok = ElixirScope.trace_process(p)
        :ok = ElixirScope.trace_function({Shared, :add, 2})

        clear_all_tracing()
        assert wait_until(fn -> removals() == 1 end)
        Process.sleep(100)
        assert removals() == 1
        refute TraceState.ours?(p)
        assert TraceState.match_spec({Shared, :add, 2}) == false
        assert [%{rearmed: false, processes: 1, patterns: 1}] = watchdog_events()
      end)

    assert log =~ "not re-armed (rearm: false)"
  end

  test "a process another tool traces since, and a pattern it set since, are left to it and reported" do
    # (:dbg.stop_clear/0 is deprecated on OTP 27, where this test does not run)
    on_exit(fn -> apply(:dbg, :stop_clear, []) end)

    capture_log(fn ->
      :ok = ElixirScope.setup(governor_interval: 20)
      p = sleeper()
      q = sleeper()
      :ok = ElixirScope.trace_process(p)
      :ok = ElixirScope.trace_process(q)
      :ok = ElixirScope.trace_module(Shared)

      # between two ticks: the cleanup, then the other tool takes p and Shared.add/2
      :sys.suspend(Tracing)
      clear_all_tracing_now()
      {:ok, _} = :dbg.tracer()
      {:ok, _} = :dbg.p(p, [:s])
      {:ok, _} = :dbg.tpl(Shared, :add, 2, [])
      :sys.resume(Tracing)

      assert wait_until(fn -> removals() == 1 end)
      {:tracer, dbg_tracer} = :erlang.trace_info(p, :tracer)
      assert is_pid(dbg_tracer)
      assert :erlang.trace_info({Shared, :add, 2}, :match_spec) == {:match_spec, []}
      # what was free is ElixirScope's again
      assert TraceState.ours?(q)
      assert [_ | _] = TraceState.match_spec({Shared, :mul, 2})

      assert [%{taken: taken, processes: 1}] = watchdog_events()
      assert p in taken and {Shared, :add, 2} in taken
      assert ElixirScope.tracing_info().watchdog.last.taken == taken
    end)
  end
end
