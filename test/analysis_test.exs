defmodule ElixirScope.AnalysisTest do
  use ExUnit.Case, async: false

  defmodule Work do
    def fib(n) when n < 2, do: n
    def fib(n), do: fib(n - 1) + fib(n - 2)

    def slow(ms) do
      Process.sleep(ms)
      ms
    end

    def fail(x), do: raise(ArgumentError, "bad #{x}")
    def top, do: fib(3) + leaf()
    defp leaf, do: 1
  end

  setup do
    ElixirScope.stop(keep_data: false)
    :ok = ElixirScope.setup(max_events_per_sec: 10_000_000, max_bytes_per_sec: 10_000_000_000)
    :ok = ElixirScope.trace_module(Work)
    on_exit(fn -> ElixirScope.stop(keep_data: false) end)
  end

  defp wait_for(fun, tries \\ 100) do
    case fun.() do
      result when result in [nil, false, []] and tries > 0 ->
        Process.sleep(10)
        wait_for(fun, tries - 1)

      result ->
        result
    end
  end

  test "performance_analysis counts calls, returns and exceptions per function with percentiles" do
    for ms <- [1, 2, 3, 4, 20], do: Work.slow(ms)
    for x <- 1..3, do: catch_error(Work.fail(x))
    Work.fib(5)

    stats = wait_for(fn -> ElixirScope.performance_analysis(Work) end)
    slow = Enum.find(stats, &(&1.function == :slow))
    fail = Enum.find(stats, &(&1.function == :fail))
    fib = Enum.find(stats, &(&1.function == :fib))

    assert %{arity: 1, calls: 5, returns: 5, exceptions: 0} = slow
    ms = fn n -> System.convert_time_unit(n, :native, :millisecond) end
    assert ms.(slow.max) >= 20
    assert ms.(slow.total) >= 30
    assert slow.p50 <= slow.p90 and slow.p90 <= slow.p99 and slow.p99 <= slow.max
    # The nearest-rank p50 of five calls is the third shortest: at least the 3 ms slept
    # (no upper bound: a loaded machine oversleeps).
    assert ms.(slow.p50) >= 3
    assert slow.mean == div(slow.total, 5)
    assert %{calls: 3, returns: 0, exceptions: 3} = fail
    # fib(5) makes 15 calls, all returning.
    assert %{calls: 15, returns: 15} = fib
    # Sorted by total time, largest first.
    assert hd(stats).function == :slow
    assert ElixirScope.performance_analysis(NotTraced) == []
  end

  test "slowest_function_calls returns the longest calls first, with args, result and pid" do
    # Far apart, so that a loaded machine oversleeping does not reorder them.
    for ms <- [5, 100, 1, 40], do: Work.slow(ms)
    catch_error(Work.fail(:x))

    [first, second, third] = wait_for(fn -> ElixirScope.slowest_function_calls(limit: 3) end)
    assert %{function: :slow, args: [100], result: 100, pid: pid} = first
    assert pid == self()
    assert %{args: [40]} = second
    assert %{args: [5]} = third
    assert first.duration >= second.duration and second.duration >= third.duration

    only = ElixirScope.slowest_function_calls(limit: 100, module: Work)
    assert Enum.any?(only, &(&1.type == :exception and &1.args == [:x]))
    assert ElixirScope.slowest_function_calls(limit: 0) == []
    assert ElixirScope.slowest_function_calls(module: NotTraced) == []
  end

  test "call_tree nests calls, recursion included, with durations" do
    assert Work.top() == 3

    [top] = wait_for(fn -> ElixirScope.call_tree(self()) end)
    assert %{function: :top, args: [], result: 3} = top
    assert [fib3, leaf] = top.children
    assert %{function: :fib, args: [3], result: 2} = fib3
    assert %{function: :leaf, result: 1, children: []} = leaf
    assert [%{args: [2], children: [%{args: [1]}, %{args: [0]}]}, %{args: [1]}] = fib3.children
    assert top.duration >= fib3.duration + leaf.duration

    sub = ElixirScope.call_tree(fib3.call_id)
    assert sub.args == [3] and length(sub.children) == 2
    assert ElixirScope.call_tree(999_999_999) == nil
  end

  test "a call that has not returned stays in the tree as running" do
    parent = self()

    pid =
      spawn(fn ->
        Work.slow(0)
        send(parent, :started)
        Work.slow(10_000)
      end)

    assert_receive :started
    tree = wait_for(fn -> Enum.find(ElixirScope.call_tree(pid), &(&1.result == :running)) end)
    assert %{function: :slow, args: [10_000], duration: nil} = tree
    Process.exit(pid, :kill)
  end

  test "returns stored by hand count too, whatever the order of their fields" do
    alias ElixirScope.TraceDB

    for {d, extra} <- [{700, %{call_id: 5}}, {300, %{result: %{big: [1, {2}]}}}, {900, %{zzz: 1}}] do
      :ok =
        TraceDB.store_event(
          :return,
          Map.merge(%{pid: self(), module: Hand, function: :f, arity: 0, duration: d}, extra)
        )
    end

    assert [%{returns: 3, total: 1900, max: 900, p90: 900, p99: 900} = stats] =
             ElixirScope.performance_analysis(Hand)

    assert stats.p50 in 650..750

    assert [900, 700, 300] =
             Enum.map(ElixirScope.slowest_function_calls(module: Hand), & &1.duration)
  end

  test "bad arguments raise ArgumentError" do
    assert_raise ArgumentError, ~r/module/, fn -> ElixirScope.performance_analysis("Work") end
    assert_raise ArgumentError, ~r/limit/, fn -> ElixirScope.slowest_function_calls(limit: -1) end

    assert_raise ArgumentError, ~r/module/, fn ->
      ElixirScope.slowest_function_calls(module: "x")
    end

    assert_raise ArgumentError, ~r/pid or a :call event id/, fn -> ElixirScope.call_tree(:x) end
  end
end
