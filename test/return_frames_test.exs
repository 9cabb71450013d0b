defmodule ElixirScope.ReturnFramesTest.Loop do
  @moduledoc false
  # A tail-recursive loop that keeps the largest stack size it saw (every 10,000
  # iterations, from a function that is not traced).
  def loop(0, max), do: max
  def loop(n, max), do: loop(n - 1, sample(n, max))

  defp sample(n, max) when rem(n, 10_000) == 0 do
    {:stack_size, s} = Process.info(self(), :stack_size)
    max(s, max)
  end

  defp sample(_n, max), do: max
end

defmodule ElixirScope.ReturnFramesTest do
  # Tail recursion under return tracing: the bound on the frames ElixirScope leaves on
  # a traced process's stack, the switch to calls only, and returns: false.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import ElixirScope.Test.Wait

  alias ElixirScope.{TraceDB, Tracing}
  alias ElixirScope.ReturnFramesTest.Loop

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  @bound Tracing.max_frame_words()
  # The loops record about a million events a second: the governor's caps are lifted,
  # or its own steps would drop calls.
  @no_caps [max_events_per_sec: 1_000_000_000, max_bytes_per_sec: 1_000_000_000_000]
  # The stack the loop has untraced (its frame, the Task's) is a few dozen words.
  @slack 200

  defp run_loop(n) do
    Task.async(fn -> Loop.loop(n, 0) end) |> Task.await(120_000)
  end

  test "a tail-recursive loop traced for 1M iterations: the stack stays within 100,000 words, the function goes to calls only once, with a :governor event and one log line" do
    log =
      capture_log(fn ->
        :ok = ElixirScope.setup(@no_caps)
        :ok = ElixirScope.trace_function({Loop, :loop, 2})
        max = run_loop(1_000_000)

        # the frames were there (the bound was reached for real), and bounded
        assert max > @bound / 4
        assert max <= @bound + @slack

        assert [event] = TraceDB.query_events(type: :governor)
        assert %{reason: :return_frames, mfa: {Loop, :loop, 2}} = event
        assert event.frames * event.words_per_frame <= @bound
        assert event.max_frames * event.words_per_frame <= @bound
        assert ElixirScope.tracing_info().calls_only == [{Loop, :loop, 2}]
        {text, _} = ElixirScope.MCP.Tools.Control.status(%{}, %{})

        assert text =~
                 "Calls only (return frames bounded): ElixirScope.ReturnFramesTest.Loop.loop/2"

        # every call is recorded but those the tracer had to discard while the
        # process held as many frames as it may (counted) before the switch
        calls = TraceDB.stats().by_type[:call]
        assert calls + ElixirScope.tracing_info().discarded_calls == 1_000_001
        assert calls > event.frames

        # a second run stays flat: no frame at all any more (and no second switch:
        # one log line, below)
        assert run_loop(100_000) < @slack
      end)

    assert length(String.split(log, "return frames of")) == 2, log
  end

  test "the bound holds without the switch to calls only (the Tracing process held up)" do
    capture_log(fn ->
      :ok = ElixirScope.setup(@no_caps)
      :ok = ElixirScope.trace_function({Loop, :loop, 2})
      :sys.suspend(Tracing)
      max = run_loop(200_000)
      assert max > @bound / 2
      assert max <= @bound + @slack
      assert TraceDB.query_events(type: :governor) == []

      :sys.resume(Tracing)
      assert wait_until(fn -> TraceDB.query_events(type: :governor) != [] end)

      # the calls past the bound were not recorded (and counted); the returns of the
      # frames pushed all came back
      calls = TraceDB.stats().by_type[:call]
      returns = TraceDB.stats().by_type[:return]
      assert calls < 200_000 and calls == returns
      assert calls + ElixirScope.tracing_info().discarded_calls == 200_001
    end)
  end

  test "returns: false records calls only, with no frame on the stack" do
    :ok = ElixirScope.setup(@no_caps)
    :ok = ElixirScope.trace_function({Loop, :loop, 2}, returns: false)
    assert run_loop(200_000) < @slack
    assert TraceDB.stats().by_type[:call] == 200_001
    assert TraceDB.query_events(type: :return) == []
    assert TraceDB.query_events(type: :governor) == []

    :ok = ElixirScope.trace_module(Loop, returns: false)
    assert run_loop(50_000) < @slack
    assert TraceDB.query_events(type: :return) == []

    assert_raise ArgumentError, ~r/returns: boolean/, fn ->
      ElixirScope.trace_module(Loop, returns: :no)
    end

    assert_raise ArgumentError, ~r/returns: boolean/, fn ->
      ElixirScope.trace_function({Loop, :loop, 2}, ret: false)
    end
  end
end
