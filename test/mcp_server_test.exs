defmodule ElixirScope.MCPServerTest do
  @moduledoc """
  The MCP server's transport and protocol over real HTTP: handshake and version
  negotiation, sessions, status codes for bad requests, DNS-rebinding protection,
  the bearer token, budgets, and that no request can create an atom.
  """
  use ExUnit.Case, async: false

  import ElixirScope.Test.MCPHTTP
  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  alias ElixirScope.MCP

  @moduletag :capture_log

  setup_all do
    {:ok, _} = Application.ensure_all_started(:inets)
    :ok
  end

  setup :clean_slate

  defp start_server(opts \\ []) do
    name = :"mcp_test_#{System.unique_integer([:positive])}"
    pid = start_supervised!({MCP, [name: name, port: 0] ++ opts}, id: name)
    {MCP.url(name), pid}
  end

  describe "handshake" do
    test "initialize issues a session and negotiates the protocol version" do
      {url, _} = start_server()

      for {asked, agreed} <- [
            {"2025-11-25", "2025-11-25"},
            {"2025-06-18", "2025-06-18"},
            {"2025-03-26", "2025-03-26"},
            {"1999-01-01", "2025-11-25"}
          ] do
        {session, result} = initialize(url, asked)
        assert session =~ ~r/^[0-9a-f]{32}$/
        assert result["protocolVersion"] == agreed
        assert result["serverInfo"]["name"] == "elixir_scope"
        assert result["serverInfo"]["version"] == ElixirScope.version()
        assert result["capabilities"] == %{"tools" => %{"listChanged" => false}}
        assert is_binary(result["instructions"])
      end
    end

    test "ping answers exactly {}" do
      {url, _} = start_server()
      {session, _} = initialize(url)
      response = post(url, ~s({"jsonrpc":"2.0","id":7,"method":"ping"}), session(session))
      assert response.status == 200
      assert response.json == %{"jsonrpc" => "2.0", "id" => 7, "result" => %{}}
      assert response.body =~ ~s("result":{})
    end

    test "string ids come back as they were sent; notifications get 202 and no body" do
      {url, _} = start_server()
      {session, _} = initialize(url)
      response = post(url, ~s({"jsonrpc":"2.0","id":"a-1","method":"ping"}), session(session))
      assert response.json["id"] == "a-1"

      response =
        post(url, ~s({"jsonrpc":"2.0","method":"notifications/cancelled"}), session(session))

      assert {response.status, response.body} == {202, ""}
    end

    test "tools/list describes every tool with an object input schema" do
      {url, _} = start_server()
      {session, _} = initialize(url)
      %{"result" => %{"tools" => tools}} = rpc(url, session, "tools/list")
      names = Enum.map(tools, & &1["name"])

      for original <- ~w(get_state_timeline get_message_flow get_function_calls trace_module
                         trace_process trace_named_process get_supervision_tree
                         get_execution_path analyze_state_changes),
          do: assert(("elixir_scope_" <> original) in names)

      assert length(names) == length(Enum.uniq(names))

      for tool <- tools do
        assert tool["description"] =~ ~r/\w{3}/
        assert %{"type" => "object", "properties" => props} = tool["inputSchema"]
        assert is_map(props)
        for name <- tool["inputSchema"]["required"] || [], do: assert(Map.has_key?(props, name))
      end

      assert %{"error" => %{"code" => -32602}} =
               rpc(url, session, "tools/list", %{cursor: "nope"})
    end

    test "a batch (2025-03-26) gets the answers of its requests" do
      {url, _} = start_server()
      {session, _} = initialize(url, "2025-03-26")

      body =
        ~s([{"jsonrpc":"2.0","id":1,"method":"ping"},) <>
          ~s({"jsonrpc":"2.0","method":"notifications/progress"},) <>
          ~s({"jsonrpc":"2.0","id":2,"method":"nope"}])

      response = post(url, body, session(session, "2025-03-26"))

      assert [%{"id" => 1, "result" => %{}}, %{"id" => 2, "error" => %{"code" => -32601}}] =
               response.json
    end
  end

  describe "bad requests get the status codes of the specification" do
    setup do
      {url, _} = start_server()
      {session, _} = initialize(url)
      %{url: url, session: session}
    end

    test "JSON-RPC errors of well-formed requests travel with 200", %{url: url, session: s} do
      assert %{"error" => %{"code" => -32601}} = rpc(url, s, "resources/list")

      assert %{"error" => %{"code" => -32602, "message" => "Unknown tool: " <> _}} =
               rpc(url, s, "tools/call", %{name: "nope"})

      assert %{"error" => %{"code" => -32602}} =
               rpc(url, s, "tools/call", %{name: "elixir_scope_status", arguments: [1]})

      assert %{"error" => %{"code" => -32602}} = rpc(url, s, "tools/call", %{})
    end

    test "methods, media types and paths", %{url: url, session: s} do
      assert %{status: 405, headers: %{"allow" => "POST, DELETE"}} =
               request(:get, url, session(s))

      assert %{status: 405} = raw(:put, {to_charlist(url), [], ~c"text/plain", ""})

      assert %{status: 406} =
               post(
                 url,
                 ~s({"jsonrpc":"2.0","id":1,"method":"ping"}),
                 session(s) ++ [{"accept", "application/json"}]
               )

      assert %{status: 415} =
               post(
                 url,
                 ~s({"jsonrpc":"2.0","id":1,"method":"ping"}),
                 session(s) ++ [{"content-type", "text/plain"}]
               )

      assert %{status: 404} = post(String.replace(url, "/mcp", "/other"), %{}, session(s))
    end

    test "malformed bodies", %{url: url, session: s} do
      assert %{status: 400, json: %{"error" => %{"code" => -32700}, "id" => nil}} =
               post(url, ~s({"jsonrpc":"2.0",), session(s))

      assert %{status: 400, json: %{"error" => %{"code" => -32700}}} =
               post(url, ~s({"jsonrpc":"1.0","id":1,"method":"ping"}), session(s))

      assert %{status: 400, json: %{"error" => %{"code" => -32700}}} =
               post(url, ~s({"jsonrpc":"2.0","id":[1],"method":"ping"}), session(s))

      assert %{status: 400} = post(url, <<0xFF, 0xFE>>, session(s))
    end

    test "sessions", %{url: url, session: s} do
      ping = ~s({"jsonrpc":"2.0","id":1,"method":"ping"})
      assert %{status: 400, json: %{"error" => %{"code" => -32000}}} = post(url, ping)

      assert %{status: 404, json: %{"error" => %{"code" => -32001}}} =
               post(url, ping, session(String.duplicate("0", 32)))

      assert %{status: 400} = post(url, ping, session(s, "2020-01-01"))
      # A client that sends no version header speaks 2025-03-26.
      assert %{status: 200} = post(url, ping, [{"mcp-session-id", s}])

      init = ~s({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})
      assert %{status: 400, json: %{"error" => %{"code" => -32600}}} = post(url, init, session(s))

      assert %{status: 200} = request(:delete, url, session(s))
      assert %{status: 404} = post(url, ping, session(s))
      assert %{status: 404} = request(:delete, url, session(s))
      assert %{status: 400} = request(:delete, url, [])
    end

    test "a body over max_body_bytes is refused" do
      {url, _} = start_server(max_body_bytes: 2048)
      assert %{status: 413} = post(url, String.duplicate(" ", 4096) <> "{}")
    end
  end

  describe "security" do
    test "Host and Origin are checked against loopback names (DNS rebinding)" do
      {url, _} = start_server()
      port = URI.parse(url).port
      {session, _} = initialize(url)
      ping = ~s({"jsonrpc":"2.0","id":1,"method":"ping"})

      assert %{status: 403} = post(url, ping, session(session) ++ [{"host", "evil.example.com"}])

      assert %{status: 403} =
               post(url, ping, session(session) ++ [{"host", "evil.example.com:#{port}"}])

      assert %{status: 403} =
               post(url, ping, session(session) ++ [{"origin", "http://evil.example.com"}])

      assert %{status: 403} = post(url, ping, session(session) ++ [{"origin", "null"}])

      for host <- ["localhost:#{port}", "127.0.0.1:#{port}", "[::1]:#{port}", "LOCALHOST"],
          do: assert(%{status: 200} = post(url, ping, session(session) ++ [{"host", host}]))

      for origin <- ["http://localhost:3000", "https://127.0.0.1", "http://[::1]:8080"],
          do: assert(%{status: 200} = post(url, ping, session(session) ++ [{"origin", origin}]))
    end

    test "allowed_hosts and allowed_origins extend the loopback names" do
      {url, _} =
        start_server(allowed_hosts: ["dev.internal"], allowed_origins: ["https://tools.example"])

      {session, _} = initialize(url)
      ping = ~s({"jsonrpc":"2.0","id":1,"method":"ping"})
      assert %{status: 200} = post(url, ping, session(session) ++ [{"host", "dev.internal:1"}])

      assert %{status: 200} =
               post(url, ping, session(session) ++ [{"origin", "https://tools.example"}])

      assert %{status: 403} =
               post(url, ping, session(session) ++ [{"origin", "https://tools.example.evil"}])
    end

    test "a bearer token, when set, is required on every request" do
      token = "s3cret-token-0123456789"
      {url, _} = start_server(token: token)
      init = ~s({"jsonrpc":"2.0","id":0,"method":"initialize","params":{}})

      response = post(url, init)
      assert response.status == 401
      assert response.headers["www-authenticate"] == "Bearer"
      assert %{status: 401} = post(url, init, [{"authorization", "Bearer wrong"}])
      assert %{status: 401} = post(url, init, [{"authorization", "Basic " <> token}])

      {session, _} = initialize(url, "2025-11-25", [{"authorization", "Bearer " <> token}])
      ping = ~s({"jsonrpc":"2.0","id":1,"method":"ping"})
      assert %{status: 401} = post(url, ping, session(session))

      assert %{status: 200} =
               post(url, ping, session(session) ++ [{"authorization", "Bearer " <> token}])
    end

    test "options are validated; beyond loopback needs a token" do
      assert_raise ArgumentError, ~r/needs a :token/, fn -> MCP.validate!(bind: "0.0.0.0") end
      assert MCP.validate!(bind: "0.0.0.0", token: String.duplicate("t", 16)).bind == {0, 0, 0, 0}
      assert MCP.validate!(bind: "::1").bind == {0, 0, 0, 0, 0, 0, 0, 1}
      assert_raise ArgumentError, ~r/:token/, fn -> MCP.validate!(token: "short") end
      assert_raise ArgumentError, ~r/:port/, fn -> MCP.validate!(port: 70_000) end
      assert_raise ArgumentError, ~r/:bind/, fn -> MCP.validate!(bind: "nowhere") end
      assert_raise ArgumentError, ~r/unknown mcp option :prot/, fn -> MCP.validate!(prot: 1) end
      assert_raise ArgumentError, ~r/:max_tokens/, fn -> MCP.validate!(max_tokens: 10) end
      assert_raise ArgumentError, ~r/:allowed_hosts/, fn -> MCP.validate!(allowed_hosts: [1]) end
      assert_raise ArgumentError, ~r/mcp options/, fn -> ElixirScope.setup(mcp: :yes) end
    end

    test "100,000 requests naming unknown modules and processes create no atom" do
      ElixirScope.setup(tracing_level: :off)
      {url, _} = start_server()
      {session, _} = initialize(url)
      # A first round loads every module on the way (loading code adds its atoms).
      send_concurrently(url, session, 1..800)
      before = :erlang.system_info(:atom_count)
      send_concurrently(url, session, 1_001..101_000)
      assert :erlang.system_info(:atom_count) == before
    end
  end

  defp send_concurrently(url, session, range) do
    range
    |> Enum.chunk_every(div(Enum.count(range), 8))
    |> Task.async_stream(&send_unknown_names(url, session, &1), timeout: :infinity)
    |> Stream.run()
  end

  # Raw sockets with keep-alive: 100,000 requests through :httpc would take minutes.
  defp send_unknown_names(url, session, range) do
    %URI{port: port} = URI.parse(url)
    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])

    for i <- range do
      {tool, arguments} =
        case rem(i, 4) do
          0 -> {"elixir_scope_trace_module", ~s({"module_name":"No.Such.Module#{i}"})}
          1 -> {"elixir_scope_trace_named_process", ~s({"process_name":"no_such_name_#{i}"})}
          2 -> {"elixir_scope_get_function_calls", ~s({"module_name":":no_such_mod_#{i}"})}
          3 -> {"elixir_scope_find_processes", ~s({"name":"x#{i}","unknown_key_#{i}":1})}
        end

      body =
        ~s({"jsonrpc":"2.0","id":#{i},"method":"tools/call","params":{"name":"#{tool}",) <>
          ~s("arguments":#{arguments},"extra_#{i}":true}})

      :ok =
        :gen_tcp.send(socket, [
          "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n",
          "Accept: application/json, text/event-stream\r\nMcp-Session-Id: #{session}\r\n",
          "Content-Length: #{byte_size(body)}\r\n\r\n",
          body
        ])

      read_response(socket, i)
    end

    :gen_tcp.close(socket)
  end

  defp read_response(socket, id) do
    {head, body} = ElixirScope.Test.RawHTTP.read_response(socket)
    assert head =~ "200 OK"
    assert body =~ ~s("id":#{id},)
    assert body =~ ~s("isError":true)
  end
end
