defmodule ElixirScope.TraceSessionTest.Shared do
  @moduledoc false
  # Traced by ElixirScope and by another tool at the same time.
  def add(a, b), do: a + b
end

defmodule ElixirScope.TraceSessionTest do
  # OTP 27+: ElixirScope traces through a trace session of its own, beside :dbg (which
  # has its own session there) and the legacy :erlang.trace/3 API (the runtime's system
  # session). Never async: ElixirScope is a singleton.
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait

  alias ElixirScope.{TraceDB, Tracing}
  alias ElixirScope.Test.TraceState
  alias ElixirScope.TraceSessionTest.Shared

  @moduletag :trace_sessions
  @moduletag :capture_log
  # (compiled on every OTP, run on 27+)
  @compile {:no_warn_undefined, :trace}

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  @return_trace [{:_, [], [{:return_trace}]}]

  # A process that, on {:work, x, to}, calls Shared.add(x, 1) and sends the result to `to`.
  defp worker do
    spawn(fn -> work_loop() end)
  end

  defp work_loop do
    receive do
      {:work, x, to} ->
        send(to, {:done, Shared.add(x, 1)})
        work_loop()
    end
  end

  defp work(p, x) do
    send(p, {:work, x, self()})
    y = x + 1
    assert_receive {:done, ^y}
  end

  # What ElixirScope recorded of p's work on x: the receive, the call and its return,
  # the send.
  defp recorded(p, x) do
    wait_until(fn ->
      events = TraceDB.query_events(pid: p)

      got =
        Enum.flat_map(events, fn
          %{type: :receive, message: {:work, ^x, _}} -> [:receive]
          %{type: :call, function: :add, args: [^x, 1]} -> [:call]
          %{type: :return, function: :add, result: r} when r == x + 1 -> [:return]
          _ -> []
        end)

      sent =
        TraceDB.query_events(type: :send, from_pid: p)
        |> Enum.any?(&(&1.message == {:done, x + 1}))

      all = Enum.sort(if sent, do: [:send | got], else: got)
      if all == [:call, :receive, :return, :send], do: all
    end) || :incomplete
  end

  # The trace messages a process tracer got, in order.
  defp collector do
    spawn(fn -> collect([]) end)
  end

  defp collect(acc) do
    receive do
      {:get, to} ->
        send(to, {:collected, Enum.reverse(acc)})
        collect(acc)

      msg ->
        collect([msg | acc])
    end
  end

  defp collected(c) do
    send(c, {:get, self()})
    assert_receive {:collected, msgs}
    msgs
  end

  defp other_tool_saw(msgs, p, x) do
    y = x + 1

    Enum.count(msgs, fn
      {:trace, ^p, :call, {Shared, :add, [^x, 1]}} -> true
      {:trace, ^p, :return_from, {Shared, :add, 2}, ^y} -> true
      {:trace, ^p, :send, {:done, ^y}, _} -> true
      _ -> false
    end)
  end

  test ":dbg and ElixirScope trace the same process and function, each seeing its own events; stopping :dbg leaves ElixirScope's tracing" do
    on_exit(fn -> :dbg.stop() end)
    test_pid = self()
    p = worker()

    forward = fn msg, n ->
      send(test_pid, {:dbg, msg})
      n + 1
    end

    {:ok, _} = :dbg.tracer(:process, {forward, 0})
    {:ok, _} = :dbg.p(p, [:s, :c])
    {:ok, _} = :dbg.tpl(Shared, :add, 2, @return_trace)

    :ok = ElixirScope.setup()
    # no {:error, {:traced_by_another_tool, _}}: a process has one tracer per session
    assert :ok = ElixirScope.trace_process(p)
    assert :ok = ElixirScope.trace_function({Shared, :add, 2})

    work(p, 1)
    assert recorded(p, 1) == [:call, :receive, :return, :send]
    assert_receive {:dbg, {:trace, ^p, :call, {Shared, :add, [1, 1]}}}
    assert_receive {:dbg, {:trace, ^p, :return_from, {Shared, :add, 2}, 2}}
    assert_receive {:dbg, {:trace, ^p, :send, {:done, 2}, ^test_pid}}
    # :dbg has its own session: ElixirScope's patterns and flags are not in it, and
    # its are not in ElixirScope's
    assert dbg_match_spec() == @return_trace
    assert [_ | _] = TraceState.match_spec({Shared, :add, 2})

    :ok = :dbg.stop()
    work(p, 2)
    assert recorded(p, 2) == [:call, :receive, :return, :send]
    refute_receive {:dbg, _}, 50
    assert TraceState.ours?(p)
    assert TraceState.traced({Shared, :add, 2}) == :local
  end

  # The match spec in :dbg's session (found by its name).
  defp dbg_match_spec do
    case Enum.find(:trace.session_info(:all), &match?({:dbg, _}, &1)) do
      nil -> nil
      s -> elem(:trace.info(s, {Shared, :add, 2}, :match_spec), 1)
    end
  end

  test "the legacy :erlang.trace/3 API and ElixirScope trace the same process and function; the legacy cleanup that recon and redbug run leaves ElixirScope's tracing" do
    c = collector()
    p = worker()
    1 = :erlang.trace(p, true, [:send, :call, {:tracer, c}])
    :erlang.trace_pattern({Shared, :add, 2}, @return_trace, [:local])

    :ok = ElixirScope.setup()
    assert :ok = ElixirScope.trace_process(p)
    assert :ok = ElixirScope.trace_function({Shared, :add, 2})
    # each tool's view of the process is its own
    assert {:tracer, ^c} = :erlang.trace_info(p, :tracer)
    assert :call in TraceState.flags(p) and :receive in TraceState.flags(p)

    work(p, 1)
    assert recorded(p, 1) == [:call, :receive, :return, :send]
    assert wait_until(fn -> other_tool_saw(collected(c), p, 1) == 3 end)

    # what recon_trace:clear/0, redbug's stop and :dbg.stop_clear/0 do before OTP 27
    :erlang.trace(:all, false, [:all])
    :erlang.trace_pattern({:_, :_, :_}, false, [:local, :meta, :call_count, :call_time])
    :erlang.trace_pattern({:_, :_, :_}, false, [])

    work(p, 2)
    assert recorded(p, 2) == [:call, :receive, :return, :send]
    assert other_tool_saw(collected(c), p, 2) == 0
    assert TraceState.ours?(p)
    assert TraceState.traced({Shared, :add, 2}) == :local
    Process.exit(c, :kill)
  end

  test "the session belongs to the Tracing process: it ends with it, and with stop/0" do
    :ok = ElixirScope.setup(tracing_level: :full, trace_all: true)
    assert [{:elixir_scope, id}] = ours()

    # garbage collection is never traced from the session (erlang/otp#11624)
    refute :garbage_collection in TraceState.flags(worker())
    refute :garbage_collection in TraceState.flags(:new)

    # the supervisor restarts Tracing: a new session, the old one gone with its handle
    ref = Process.monitor(Process.whereis(Tracing))
    Process.exit(Process.whereis(Tracing), :kill)
    assert_receive {:DOWN, ^ref, _, _, _}
    assert wait_until(fn -> match?([{:elixir_scope, new}] when new != id, ours()) end)

    :ok = ElixirScope.stop()
    assert ours() == []
  end

  defp ours, do: Enum.filter(:trace.session_info(:all), &match?({:elixir_scope, _}, &1))
end
