defmodule ElixirScope.OptionalPartsTest do
  # A part tracing does not need (the MCP server, the web UI) that cannot start never switches
  # tracing off: its port taken by another program — a second `iex -S mix`, `mix test`
  # beside the running application — leaves the store and the tracer running, says
  # which part did not start and why, and logs one warning.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  setup :clean_slate

  # A port another program listens on.
  defp taken_port do
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    on_exit(fn -> :gen_tcp.close(socket) end)
    {:ok, port} = :inet.port(socket)
    port
  end

  defp traced_agent do
    {:ok, agent} = Agent.start_link(fn -> 0 end)
    :ok = ElixirScope.trace_genserver(agent)
    :ok = Agent.update(agent, &(&1 + 1))
    assert wait_until(fn -> length(ElixirScope.state_timeline(agent)) == 2 end)
  end

  defp warnings(log), do: Regex.scan(~r/\[warning\].*/, log)

  test "setup/1: tracing runs, {:partial, ...} says what did not start, one warning" do
    port = taken_port()

    log =
      capture_log(fn ->
        assert {:partial, [mcp: {:mcp_listen_failed, :eaddrinuse}]} =
                 ElixirScope.setup(ai_integration: true, mcp: [port: port])
      end)

    assert [[warning]] = warnings(log)
    assert warning =~ "the MCP server did not start"
    assert warning =~ "port: 0"

    assert ElixirScope.running?()
    refute Process.whereis(ElixirScope.MCP)
    traced_agent()
    assert ElixirScope.tracing_info().not_started == [mcp: {:mcp_listen_failed, :eaddrinuse}]

    # a setup that starts everything forgets it
    :ok = ElixirScope.stop()
    assert :ok = ElixirScope.setup(ai_integration: true, mcp: [port: 0])
    assert ElixirScope.tracing_info().not_started == []
    assert ElixirScope.MCP.url() =~ ~r{^http://127\.0\.0\.1:\d+/mcp$}
  end

  test "{ElixirScope, opts} in a supervision tree starts without the part, and says so" do
    port = taken_port()

    log =
      capture_log(fn ->
        start_supervised!({ElixirScope, ai_integration: true, mcp: [port: port]})
      end)

    assert length(warnings(log)) == 1
    children = Supervisor.which_children(ElixirScope.Supervisor)
    assert {ElixirScope.MCP, :undefined, :worker, _} = List.keyfind(children, ElixirScope.MCP, 0)
    assert ElixirScope.running?()
    traced_agent()
    assert [mcp: {:mcp_listen_failed, :eaddrinuse}] = ElixirScope.tracing_info().not_started
  end

  test "the web UI's port taken, and both servers': tracing runs, each part named" do
    port = taken_port()

    log =
      capture_log(fn ->
        assert {:partial, [ui: {:ui_listen_failed, :eaddrinuse}]} =
                 ElixirScope.setup(ui: [port: port])
      end)

    assert [[warning]] = warnings(log)
    assert warning =~ "the web UI did not start"
    assert ElixirScope.running?()
    assert ElixirScope.UI.url() == nil
    traced_agent()
    :ok = ElixirScope.stop()

    log =
      capture_log(fn ->
        assert {:partial, not_started} =
                 ElixirScope.setup(ai_integration: true, mcp: [port: port], ui: [port: port])

        assert Enum.sort(not_started) == [
                 mcp: {:mcp_listen_failed, :eaddrinuse},
                 ui: {:ui_listen_failed, :eaddrinuse}
               ]
      end)

    assert length(warnings(log)) == 2
    assert ElixirScope.running?()
  end

  test "in the test environment: port 0 from the configuration" do
    # config/test.exs: config :elixir_scope, mcp: [port: 0] — the application's own
    # setup (its application.ex) then takes a free port, never the running one's
    Application.put_env(:elixir_scope, :mcp, port: 0)
    on_exit(fn -> Application.delete_env(:elixir_scope, :mcp) end)

    assert :ok = ElixirScope.setup(ai_integration: true)
    [_, port] = Regex.run(~r{:(\d+)/mcp$}, ElixirScope.MCP.url())
    refute port == "4047"
  end
end
