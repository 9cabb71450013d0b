defmodule ElixirScope.MCPClientTest.Inventory do
  @moduledoc false
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{stock: %{}}, name: __MODULE__)
  def reserve(item, n), do: GenServer.call(__MODULE__, {:reserve, item, n})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:reserve, _item, n}, _from, _state) when n < 0, do: raise("negative stock")

  def handle_call({:reserve, item, n}, _from, state) do
    state = update_in(state.stock[item], &((&1 || 0) + n))
    {:reply, ElixirScope.MCPClientTest.Rules.check(state.stock[item]), state}
  end
end

defmodule ElixirScope.MCPClientTest.Rules do
  @moduledoc false
  def check(n) when n > 100, do: :too_many
  def check(_n), do: :ok
end

defmodule ElixirScope.MCPClientTest do
  @moduledoc """
  End to end with the official MCP client: the TypeScript SDK
  (`@modelcontextprotocol/sdk`, pinned in `test/mcp_client/package-lock.json`) connects
  to the server over HTTP, lists the tools, calls every one of them against a real
  traced GenServer that crashes, and ends its session; then the official conformance
  scenarios run against the same server. `make test` installs the Node packages
  (`npm ci` in `test/mcp_client`) before `mix test`.
  """
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  alias ElixirScope.MCPClientTest.Inventory
  alias ElixirScope.Test.JSON
  alias ElixirScope.TraceDB

  @moduletag :capture_log
  @moduletag timeout: 300_000

  @client_dir Path.expand("mcp_client", __DIR__)

  setup_all do
    node = System.find_executable("node")

    unless node && File.dir?(Path.join(@client_dir, "node_modules/@modelcontextprotocol/sdk")) do
      flunk(
        "the MCP client tests need Node.js >= 20 and `npm ci` in test/mcp_client (`make test` does both)"
      )
    end

    %{node: node}
  end

  setup :clean_slate

  setup do
    :ok = ElixirScope.setup(ai_integration: true, mcp: [port: 0])
    {:ok, inventory} = Inventory.start_link([])
    Process.unlink(inventory)
    on_exit(fn -> Process.exit(inventory, :kill) end)
    %{url: ElixirScope.MCP.url(), inventory: inventory}
  end

  defp run_client(ctx, plan, extra \\ []) do
    path = Path.join(System.tmp_dir!(), "mcp_plan_#{System.unique_integer([:positive])}.json")
    File.write!(path, ElixirScope.JSON.encode!(plan))
    on_exit(fn -> File.rm(path) end)

    {out, status} =
      System.cmd(ctx.node, [Path.join(@client_dir, "e2e.mjs"), ctx.url, path] ++ extra,
        stderr_to_stdout: true
      )

    assert status == 0, out
    JSON.decode!(out)
  end

  test "the official TypeScript client connects, lists and calls every tool, ends its session",
       ctx do
    pid = inspect(ctx.inventory)
    inventory = "ElixirScope.MCPClientTest.Inventory"
    rules = "ElixirScope.MCPClientTest.Rules"

    # The assistant's side: trace, let the application work, then ask.
    setup_plan = [
      %{tool: "elixir_scope_trace_named_process", arguments: %{process_name: inventory}},
      %{tool: "elixir_scope_trace_module", arguments: %{module_name: rules}}
    ]

    first = run_client(ctx, setup_plan)
    assert Enum.all?(first["results"], &(&1["ok"] and not &1["isError"])), inspect(first)

    assert Inventory.reserve(:apple, 5) == :ok
    assert Inventory.reserve(:apple, 200) == :too_many
    catch_exit(Inventory.reserve(:apple, -1))
    wait_until(fn -> TraceDB.query_events(type: :crash, pid: ctx.inventory) != [] end)
    [state | _] = TraceDB.query_events(type: :state, pid: ctx.inventory, order: :desc)

    plan = [
      {"elixir_scope_status", %{}, "Tracing: level full"},
      {"elixir_scope_get_state_timeline", %{pid_string: pid}, "[:stock, :apple]: 5 → 205"},
      {"elixir_scope_get_message_flow", %{from_pid: inspect(self()), to_pid: pid}, ":too_many"},
      {"elixir_scope_get_function_calls", %{module_name: rules}, "Rules.check/1"},
      {"elixir_scope_get_supervision_tree", %{limit: 5}, "More: call again"},
      {"elixir_scope_get_execution_path", %{pid_string: pid}, "{:reserve, :apple, 5}"},
      {"elixir_scope_analyze_state_changes", %{pid_string: pid}, "[:stock, :apple] ×2"},
      {"elixir_scope_list_processes", %{sort_by: "reductions", limit: 3}, "by reductions"},
      {"elixir_scope_find_processes", %{module_name: inventory}, pid},
      {"elixir_scope_process_info", %{pid_string: pid}, "Crashed"},
      {"elixir_scope_get_state_at", %{pid_string: pid, timestamp: "#{state.timestamp}"},
       "apple: 205"},
      {"elixir_scope_get_events_between", %{type: "crash", limit: 10}, "negative stock"},
      {"elixir_scope_system_snapshot", %{limit: 5}, "Processes alive at"},
      {"elixir_scope_slowest_calls", %{module_name: rules, limit: 2}, "Rules.check/1"},
      {"elixir_scope_performance_analysis", %{module_name: rules}, "check/1: 2 calls"},
      {"elixir_scope_message_queue_analysis", %{}, "Longest mailboxes now"},
      {"elixir_scope_recent_crashes", %{}, "last state: %{stock: %{apple: 205}}"},
      {"elixir_scope_trace_process", %{pid_string: "0.1.2"}, {:error, "neither a pid"}},
      {"elixir_scope_trace_module", %{module_name: "Not.Loaded"}, {:error, "is loaded"}},
      # (no Phoenix in this VM: test/phoenix/mcp_test.exs asks the real application)
      {"elixir_scope_phoenix_requests", %{}, {:error, "No request recorded"}},
      {"elixir_scope_request_timeline", %{request_id: state.id}, {:error, "is not a request"}},
      {"elixir_scope_live_view_timeline", %{}, {:error, "No LiveView recorded"}},
      {"elixir_scope_stop_tracing", %{}, "Stopped all tracing"}
    ]

    out =
      run_client(ctx, Enum.map(plan, fn {tool, args, _} -> %{tool: tool, arguments: args} end))

    assert out["serverInfo"]["name"] == "elixir_scope"
    assert out["protocolVersion"] == "2025-11-25"
    assert out["sessionId"] =~ ~r/^[0-9a-f]{32}$/
    assert out["listToolsError"] == nil
    assert out["transportErrors"] == []
    assert length(out["tools"]) == 24
    every_tool = Enum.map(plan, &elem(&1, 0)) ++ ["elixir_scope_trace_named_process"]
    assert Enum.sort(Enum.uniq(every_tool)) == Enum.sort(out["tools"])

    for {{tool, _args, expected}, result} <- Enum.zip(plan, out["results"]) do
      assert result["ok"], "#{tool}: #{result["error"]}"
      text = result["text"]

      case expected do
        {:error, expected} ->
          assert result["isError"], "#{tool} should fail: #{text}"
          assert text =~ expected, "#{tool}: #{text}"

        expected ->
          refute result["isError"], "#{tool}: #{text}"
          assert text =~ expected, "#{tool}: #{text}"
      end
    end

    # status declares an output schema: the SDK checked structuredContent against it.
    assert %{"tracing" => true, "level" => "full", "modules" => [^rules]} =
             hd(out["results"])["structuredContent"]

    # The SDK ends its session with DELETE (200); its GET for a stream got 405.
    assert out["terminated"]
    assert %{"method" => "DELETE", "status" => 200} in out["http"]
    assert Enum.all?(out["http"], &(&1["method"] != "GET" or &1["status"] == 405))
    refute ElixirScope.running?()
  end

  test "the official conformance scenarios pass", ctx do
    {output, status} =
      System.cmd("bash", [Path.join(@client_dir, "conformance.sh"), ctx.url],
        stderr_to_stdout: true
      )

    assert status == 0, output

    for scenario <- ~w(server-initialize ping tools-list dns-rebinding-protection),
        do: assert(output =~ "PASS #{scenario}", output)
  end
end
