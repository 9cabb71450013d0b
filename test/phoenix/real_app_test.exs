defmodule ElixirScope.Phoenix.RealAppTest do
  # ElixirScope inside the real Phoenix application of test/phoenix_app (Phoenix 1.7.21,
  # Bandit), set up from its application.ex, in a peer node.
  use ExUnit.Case, async: false

  alias ElixirScope.Test.PhoenixApp, as: App

  @moduletag :phoenix_app
  @moduletag timeout: 120_000

  setup_all do
    app = App.start!(elixir_scope: [phoenix: true], trace_cart: true)
    on_exit(fn -> App.stop(app) end)
    %{app: app}
  end

  test "JSON requests are listed with their method, path, route and status", %{app: app} do
    assert App.http(app, :get, "/cart").status == 200
    assert App.http(app, :post, "/cart/items", %{item: "pear", price: 4}).status == 201

    [add] =
      App.call(app, ElixirScope.Phoenix, :requests, [
        [path: "/cart/items", order: :desc, limit: 1]
      ])

    assert add.method == "POST"
    assert add.status == 201
    assert add.route == "/cart/items"

    assert [%{method: "GET", status: 200} | _] =
             App.call(app, ElixirScope.Phoenix, :requests, [[path: "/cart"]])
  end

  test "the traced GenServer behind the endpoint has its state history", %{app: app} do
    assert App.http(app, :post, "/cart/items", %{item: "fig", price: 7}).status == 201
    cart = App.call(app, Process, :whereis, [ScopeApp.Cart])
    states = App.call(app, ElixirScope, :state_timeline, [cart])
    assert Enum.any?(states, &match?(%{state: %{items: ["fig" | _]}}, &1))
  end

  test "a route that raises is recorded as a request exception", %{app: app} do
    assert App.http(app, :get, "/boom").status == 500

    [boom] =
      App.call(app, ElixirScope.Phoenix, :requests, [[path: "/boom", order: :desc, limit: 1]])

    assert boom.status == 500

    exceptions =
      App.call(app, ElixirScope.Phoenix, :events, [[kind: :router_dispatch, phase: :exception]])

    assert Enum.any?(exceptions, &(&1.path == "/boom"))
  end
end
