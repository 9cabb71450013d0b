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
        assert wait_until(fn -> TraceState.match_spec({@module, :f, 1}) != false end)

        assert [%{reason: :module_reloaded, module: @module}] =
                 TraceDB.query_events(type: :governor)

        # the new code is traced as the old was: f with returns, g calls only
        assert apply(@module, :g, [1]) == 30
        assert wait_until(fn -> results(:f) == [2, 3] end)
        assert results(:g) == []
        assert [%{args: [1]}] = TraceDB.query_events(type: :call, module: @module, function: :g)
      end)

    assert log =~ "#{inspect(@module)} was reloaded; its trace patterns are set again"
  end
end
