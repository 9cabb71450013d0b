defmodule ElixirScope.Phoenix.MCPTest do
  # The MCP tools about Phoenix, asked over HTTP of the MCP server that the real
  # application starts from its application.ex (ai_integration: true, port 0), as an
  # assistant would: the requests (by path, status, slowest), one request's timeline,
  # with the paging and budget rules of every listing.
  use ExUnit.Case, async: false

  alias ElixirScope.Test.MCPHTTP
  alias ElixirScope.Test.PhoenixApp, as: App

  @moduletag :phoenix_app
  @moduletag :capture_log
  @moduletag timeout: 180_000

  setup_all do
    app =
      App.start!(
        elixir_scope: [phoenix: true, ai_integration: true, mcp: [port: 0, max_tokens: 1_000]],
        trace_cart: true
      )

    on_exit(fn -> App.stop(app) end)
    url = App.call(app, ElixirScope.MCP, :url, [])
    {session, _} = MCPHTTP.initialize(url)

    for i <- 1..30,
        do: 201 = App.http(app, :post, "/cart/items", %{item: "i#{i}", price: i}).status

    201 = App.http(app, :post, "/cart/items", %{item: "slow", price: 1, delay_ms: 300}).status
    200 = App.http(app, :get, "/cart").status
    500 = App.http(app, :get, "/boom").status

    %{app: app, call: &MCPHTTP.call_tool(url, session, &1, &2)}
  end

  defp ids(text),
    do: Regex.scan(~r/^#(\d+) /m, text) |> Enum.map(fn [_, id] -> String.to_integer(id) end)

  defp cursor(text) do
    case Regex.run(~r/"cursor": "([^"]+)"/, text) do
      [_, cursor] -> cursor
      nil -> nil
    end
  end

  test "requests, newest first, by path and status", %{app: app, call: call} do
    {text, false} = call.("elixir_scope_phoenix_requests", %{limit: 5})
    assert text =~ "Requests, newest first:"
    assert [boom, get | _] = ids(text)
    assert text =~ "##{boom} " and text =~ "GET /boom → 500"

    assert get ==
             hd(App.call(app, ElixirScope.Phoenix, :requests, [[path: "/cart", method: "GET"]])).id

    {text, false} = call.("elixir_scope_phoenix_requests", %{status: "5xx"})
    assert [^boom] = ids(text)
    {text, false} = call.("elixir_scope_phoenix_requests", %{status: 500, path: "/bo"})
    assert [^boom] = ids(text)
    {text, false} = call.("elixir_scope_phoenix_requests", %{path: "/cart/items", limit: 100})
    assert length(ids(text)) <= 32
    refute text =~ "/boom"

    {text, true} = call.("elixir_scope_phoenix_requests", %{path: "/nowhere"})
    assert text =~ "No request under /nowhere"
    {text, true} = call.("elixir_scope_phoenix_requests", %{status: "nine"})
    assert text =~ "status must be"
  end

  test "the slowest requests first", %{app: app, call: call} do
    {text, false} = call.("elixir_scope_phoenix_requests", %{slowest: true, limit: 3})
    assert text =~ "The slowest requests, slowest first:"
    [slowest | _] = ids(text)
    assert %{params: %{"item" => "slow"}} = App.call(app, ElixirScope.TraceDB, :get, [slowest])

    # offset pages of the same ranking
    {first, false} = call.("elixir_scope_phoenix_requests", %{slowest: true, limit: 2})

    {second, false} =
      call.("elixir_scope_phoenix_requests", %{slowest: true, limit: 2, cursor: cursor(first)})

    assert ids(first) ++ ids(second) == Enum.take(ids(text), 3) ++ (ids(second) -- ids(text))
    assert MapSet.disjoint?(MapSet.new(ids(first)), MapSet.new(ids(second)))
  end

  test "pages continue with their cursor, and an answer stays within the budget", %{call: call} do
    # 1,000 tokens: far fewer lines than asked for
    {page, false} = call.("elixir_scope_phoenix_requests", %{limit: 500})
    assert byte_size(page) <= 3_000
    assert cursor = cursor(page)
    {next, false} = call.("elixir_scope_phoenix_requests", %{limit: 500, cursor: cursor})
    seen = ids(page) ++ ids(next)
    assert seen == Enum.uniq(seen)
    assert Enum.sort(seen, :desc) == seen
  end

  test "one request's timeline: what it caused in the cart", %{app: app, call: call} do
    [slow] = App.call(app, ElixirScope.Phoenix, :slowest_requests, [[limit: 1]])
    {text, false} = call.("elixir_scope_request_timeline", %{request_id: slow.id})
    assert text =~ "What request ##{slow.id} (POST /cart/items) caused"
    cart = inspect(App.call(app, Process, :whereis, [ScopeApp.Cart]))
    assert text =~ ~r/receive #PID<[\d.]+> → #{Regex.escape(cart)} \(received\) call \{:add/
    assert text =~ ~r/state #{Regex.escape(cart)} handle_call \{:add, "slow", 1, 300\}/
    assert text =~ "Phoenix.PubSub.broadcast/4"

    # paged
    {first, false} = call.("elixir_scope_request_timeline", %{request_id: slow.id, limit: 3})
    assert length(ids(first)) == 3

    {rest, false} =
      call.("elixir_scope_request_timeline", %{request_id: slow.id, cursor: cursor(first)})

    all = App.call(app, ElixirScope.Phoenix, :request_timeline, [slow])
    assert ids(first) ++ ids(rest) == Enum.map(all, & &1.id)

    [boom] = App.call(app, ElixirScope.Phoenix, :requests, [[status: 500]])
    {text, false} = call.("elixir_scope_request_timeline", %{request_id: boom.id})
    assert text =~ "boom requested"

    {text, true} = call.("elixir_scope_request_timeline", %{request_id: boom.id + 1})
    assert text =~ "is not a request" or text =~ "no event"
    {text, true} = call.("elixir_scope_request_timeline", %{})
    assert text =~ "request_id"
  end
end
