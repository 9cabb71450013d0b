defmodule ElixirScope.Phoenix.RealAppTest do
  # ElixirScope inside the real Phoenix application of test/phoenix_app (Phoenix 1.7.21,
  # Bandit), set up from its application.ex, in a peer node, asked over HTTP (:httpc):
  # requests, what a request caused in the GenServer it called, the login form's
  # secrets, the raising route, PubSub broadcasts on meta trace patterns.
  use ExUnit.Case, async: false

  alias ElixirScope.Test.PhoenixApp, as: App
  alias ElixirScope.Test.TraceState

  @moduletag :phoenix_app
  @moduletag timeout: 180_000

  setup_all do
    app = App.start!(elixir_scope: [phoenix: true], trace_cart: true)
    on_exit(fn -> App.stop(app) end)
    %{app: app}
  end

  defp px(app, fun, args), do: App.call(app, ElixirScope.Phoenix, fun, args)

  defp last_request(app, path),
    do: hd(px(app, :requests, [[path: path, order: :desc, limit: 1]]))

  defp cart(app), do: App.call(app, Process, :whereis, [ScopeApp.Cart])

  # Every stored event, as bytes: where a secret would show if it were stored.
  defp store_bytes(app),
    do: :erlang.term_to_binary(App.call(app, ElixirScope.TraceDB, :query_events, [[]]))

  # {type, callback | function} of the cart's events in a timeline
  defp cart_shape(timeline, cart) do
    for e <- timeline, actor(e) == cart do
      case e.type do
        :state -> {:state, e.callback}
        :call -> {:call, e.function}
        :return -> {:return, e.function}
        :receive when is_tuple(e.message) -> {:receive, elem(e.message, 0)}
        :receive -> {:receive, e.message}
        :send -> {:send, e.to_pid}
        type -> {type, nil}
      end
    end
  end

  defp actor(e), do: e[:pid] || e[:from_pid]

  test "JSON requests are listed with their method, path, route and status", %{app: app} do
    assert App.http(app, :get, "/cart").status == 200
    assert App.http(app, :post, "/cart/items", %{item: "pear", price: 4}).status == 201

    add = last_request(app, "/cart/items")
    assert add.method == "POST"
    assert add.status == 201
    assert add.route == "/cart/items"
    assert add.params == %{"item" => "pear", "price" => 4}
    assert is_integer(add.duration) and add.duration > 0

    assert [%{method: "GET", status: 200} | _] = px(app, :requests, [[path: "/cart"]])
    assert [] = px(app, :requests, [[path: "/cart", status: {:>=, 500}]])
  end

  test "the traced GenServer behind the endpoint has its state history", %{app: app} do
    assert App.http(app, :post, "/cart/items", %{item: "fig", price: 7}).status == 201
    states = App.call(app, ElixirScope, :state_timeline, [cart(app)])
    assert Enum.any?(states, &match?(%{state: %{items: ["fig" | _]}}, &1))
  end

  test "a request's timeline shows what it caused in the GenServer it called, without tracing the serving process",
       %{app: app} do
    assert App.http(app, :post, "/cart/items", %{item: "kiwi", price: 3}).status == 201
    req = last_request(app, "/cart/items")
    cart = cart(app)
    timeline = px(app, :request_timeline, [req])

    # the serving process is not traced: its own events are Phoenix's
    assert req.pid not in App.call(app, ElixirScope, :tracing_info, []).genservers
    assert Enum.all?(timeline, &(actor(&1) in [req.pid, cart]))

    assert [
             {:phoenix, :endpoint, :start},
             {:phoenix, :router_dispatch, :start}
             | _
           ] = Enum.map(Enum.take(timeline, 2), &{&1.type, &1.kind, &1.phase})

    # the cart's receive of the call, the broadcast it made, its new state, its reply
    assert cart_shape(timeline, cart) == [
             {:receive, :"$gen_call"},
             {:call, :broadcast},
             {:return, :broadcast},
             {:state, :handle_call},
             {:send, req.pid}
           ]

    [received] = Enum.filter(timeline, &(&1.type == :receive))
    assert {:"$gen_call", {pid, _tag}, {:add, "kiwi", 3, 0}} = received.message
    assert pid == req.pid
    [state] = Enum.filter(timeline, &(&1.type == :state))
    assert %{items: ["kiwi" | _]} = state.state
    assert state.cause == {:add, "kiwi", 3, 0}

    assert %{kind: :router_dispatch, phase: :stop} = List.last(timeline)
    ids = Enum.map(timeline, & &1.id)
    assert ids == Enum.sort(ids) or timeline == Enum.sort_by(timeline, &{&1.timestamp, &1.id})

    # types, order and limit apply to it
    assert [%{type: :state}] = px(app, :request_timeline, [req.id, [type: :state]])

    assert [%{kind: :router_dispatch, phase: :stop}] =
             px(app, :request_timeline, [req, [order: :desc, limit: 1]])
  end

  test "requests one connection serves one after the other have their own timelines",
       %{app: app} do
    # :httpc keeps the connection: one Bandit process serves both
    assert App.http(app, :get, "/cart").status == 200
    assert App.http(app, :post, "/cart/items", %{item: "lime", price: 1}).status == 201
    get = last_request(app, "/cart")
    add = last_request(app, "/cart/items")
    assert get.pid == add.pid
    cart = cart(app)

    get_line = px(app, :request_timeline, [get])
    add_line = px(app, :request_timeline, [add])
    assert cart_shape(get_line, cart) == [{:receive, :"$gen_call"}, {:send, get.pid}]
    assert {:state, :handle_call} in cart_shape(add_line, cart)
    assert MapSet.disjoint?(MapSet.new(get_line, & &1.id), MapSet.new(add_line, & &1.id))
  end

  test "calls of concurrent requests to one GenServer are told apart by their tags",
       %{app: app} do
    # three clients on three connections; each add takes 150 ms, so the later calls wait
    # in the cart's mailbox while the first is handled
    items = ~w(one two three)

    items
    |> Enum.map(fn item ->
      Task.async(fn ->
        App.http(app, :post, "/cart/items", %{item: item, price: 1, delay_ms: 150}, [
          {"connection", "close"}
        ])
      end)
    end)
    |> Enum.each(&assert(Task.await(&1, 30_000).status == 201))

    cart = cart(app)
    requests = px(app, :requests, [[path: "/cart/items", order: :desc, limit: 3]])
    assert requests |> Enum.map(& &1.pid) |> Enum.uniq() |> length() == 3

    received =
      for req <- requests do
        timeline = px(app, :request_timeline, [req])

        # (:timeout: the tracer's receive event of a receive...after that timed out,
        # the add's sleep)
        assert cart_shape(timeline, cart) == [
                 {:receive, :"$gen_call"},
                 {:receive, :timeout},
                 {:call, :broadcast},
                 {:return, :broadcast},
                 {:state, :handle_call},
                 {:send, req.pid}
               ]

        [receive] = Enum.filter(timeline, &match?(%{type: :receive, message: {_, _, _}}, &1))
        {:"$gen_call", {from, tag}, {:add, item, 1, 150}} = receive.message
        assert from == req.pid
        [state] = Enum.filter(timeline, &(&1.type == :state))
        assert hd(state.state.items) == item
        [reply] = Enum.filter(timeline, &(&1.type == :send))
        assert elem(reply.message, 0) == tag
        item
      end

    assert Enum.sort(received) == Enum.sort(items)
  end

  test "a route that raises is recorded as a request exception", %{app: app} do
    assert App.http(app, :get, "/boom").status == 500
    boom = last_request(app, "/boom")
    assert boom.status == 500

    exceptions = px(app, :events, [[kind: :router_dispatch, phase: :exception]])
    assert exc = Enum.find(exceptions, &(&1.path == "/boom"))
    assert exc.class == :error
    assert exc.error =~ "boom requested"

    # the router's :exception comes before the endpoint's :stop (which renders the error)
    assert exc.id in Enum.map(px(app, :request_timeline, [boom]), & &1.id)
  end

  test "the login form's password never reaches the store", %{app: app} do
    form = App.http(app, :get, "/login")
    assert form.status == 200
    [_, token] = Regex.run(~r/name="_csrf_token" value="([^"]+)"/, form.body)
    # the session cookie the CSRF token belongs to
    [cookie | _] = String.split(form.headers["set-cookie"], ";")

    response =
      App.http(
        app,
        :post,
        "/login",
        [
          _csrf_token: token,
          "user[email]": "ann@example.com",
          "user[password]": "wrong-horse-battery"
        ],
        [{"cookie", cookie}]
      )

    assert response.status == 401
    login = last_request(app, "/login")
    assert login.method == "POST"
    assert login.params["user"] == %{"email" => "ann@example.com", "password" => "[REDACTED]"}
    assert :binary.match(store_bytes(app), "wrong-horse-battery") == :nomatch
  end

  test "Phoenix's own filter_parameters are redacted too", %{app: app} do
    # config :phoenix, :filter_parameters, ["password", "card_number"] (test/phoenix_app)
    assert App.http(app, :post, "/cart/items", %{item: "pen", price: 2, card_number: "4111-7"}).status ==
             201

    assert last_request(app, "/cart/items").params["card_number"] == "[REDACTED]"
    assert :binary.match(store_bytes(app), "4111-7") == :nomatch
  end

  test "PubSub broadcasts are recorded once each, with no process's trace flags set",
       %{app: app} do
    before = length(px(app, :broadcasts, [[topic: "cart"]]))
    assert App.http(app, :post, "/cart/items", %{item: "nut", price: 2}).status == 201
    broadcasts = px(app, :broadcasts, [[topic: "cart"]])
    assert length(broadcasts) == before + 1
    last = List.last(broadcasts)
    assert last.message == {:cart_changed, List.last(broadcasts).message |> elem(1)}
    assert last.pid == cart(app)

    assert App.call(app, TraceState, :traced, [{Phoenix.PubSub, :broadcast, 4}]) == false
    info = App.call(app, ElixirScope, :tracing_info, [])
    assert {Phoenix.PubSub, :broadcast, 4} in info.meta

    # no process has ElixirScope's call flag but the traced cart (on OTP 27+, with
    # lifecycle: :all, every process has :procs in ElixirScope's own session)
    calls =
      for pid <- App.call(app, Process, :list, []),
          :call in App.call(app, TraceState, :flags, [pid]),
          do: pid

    assert calls == [cart(app)]
  end
end
