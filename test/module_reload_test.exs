defmodule ElixirScope.ModuleReloadTest do
  # A module loaded anew while traced (Phoenix's code reloader, IEx's recompile) comes
  # without the trace patterns of its old code: ElixirScope sets them again, on every
  # OTP, and records that it did.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import ElixirScope.Test.Wait

  alias ElixirScope.TraceDB
  alias ElixirScope.Test.TraceState

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  @module ElixirScope.ModuleReloadTest.Reloaded

  defp load(body) do
    Code.compiler_options(ignore_module_conflict: true)

    Code.compile_string("""
    defmodule #{inspect(@module)} do
      def f(x), do: #{body}
      def g(x), do: f(x) * 10
    end
    """)
  after
    Code.compiler_options(ignore_module_conflict: false)
  end

  defp results(function),
    do:
      TraceDB.query_events(type: :return, module: @module, function: function)
      |> Enum.map(& &1.result)

  test "a traced module recompiled with a change gets its patterns again, and that is recorded" do
    load("x + 1")
    on_exit(fn -> :code.purge(@module) && :code.delete(@module) && :code.purge(@module) end)

    log =
      capture_log(fn ->
        :ok = ElixirScope.setup(governor_interval: 20)
        :ok = ElixirScope.trace_module(@module)
        :ok = ElixirScope.trace_function({@module, :g, 1}, returns: false)
        assert apply(@module, :f, [1]) == 2
        assert wait_until(fn -> results(:f) == [2] end)

        load("x + 2")
        assert wait_until(fn -> TraceDB.query_events(type: :governor) != [] end)

        assert [%{reason: :module_reloaded, module: @module}] =
                 TraceDB.query_events(type: :governor)

        assert TraceState.match_spec({@module, :f, 1}) != false

        # the new code is traced as the old was: f with returns, g calls only
        assert apply(@module, :g, [1]) == 30
        assert wait_until(fn -> results(:f) == [2, 3] end)
        assert results(:g) == []
        assert [%{args: [1]}] = TraceDB.query_events(type: :call, module: @module, function: :g)
      end)

    assert log =~ "#{inspect(@module)} was reloaded; its trace patterns are set again"
  end

  test "the same code loaded again: its patterns come back too" do
    load("x + 1")
    on_exit(fn -> :code.purge(@module) && :code.delete(@module) && :code.purge(@module) end)

    capture_log(fn ->
      :ok = ElixirScope.setup(governor_interval: 20)
      :ok = ElixirScope.trace_module(@module)
      load("x + 1")

      assert wait_until(fn ->
               TraceDB.query_events(type: :governor) != [] and
                 TraceState.match_spec({@module, :f, 1}) != false
             end)

      assert apply(@module, :f, [1]) == 2
      assert wait_until(fn -> results(:f) == [2] end)

      # the md5 is the same: in ElixirScope's own session (OTP 27+) only a reload drops
      # patterns; before, the watchdog cannot tell it from another tool's clear
      reason = if TraceState.sessions?(), do: :module_reloaded, else: :tracing_removed
      assert [%{reason: ^reason}] = TraceDB.query_events(type: :governor)
    end)
  end

  defmodule Plain do
    @moduledoc false
    # A GenServer without handle_continue/2 or handle_info/2: patterns name them anyway.
    use GenServer
    def init(n), do: {:ok, n}
    def handle_call(:get, _from, n), do: {:reply, n, n}
  end

  test "nothing is recorded while nothing is reloaded (patterns on callbacks a module lacks included)" do
    :ok = ElixirScope.setup(governor_interval: 10)
    {:ok, gs} = GenServer.start_link(Plain, 1)
    :ok = ElixirScope.trace_genserver(gs)
    :ok = ElixirScope.trace_module(Plain)
    Process.sleep(100)
    assert TraceDB.query_events(type: :governor) == []
    assert GenServer.call(gs, :get) == 1
  end
end
