defmodule ElixirScope.Phoenix.LiveViewTest do
  # The real application's LiveView, channel and login form used in Debian's chromium
  # (test/ui_browser/live_view.mjs, playwright-core): the LiveView process is traced
  # with trace_genserver/1 once its websocket is up, as a developer would in IEx; then
  # its states are its assigns, a change made in handle_info is a step of its own with
  # the message that caused it, and what its forms sent is redacted everywhere.
  use ExUnit.Case, async: false

  alias ElixirScope.Test.{Browser, MCPHTTP, PhoenixApp}

  @moduletag :phoenix_app
  @moduletag :capture_log
  @moduletag timeout: 240_000

  setup_all do
    if reason = Browser.missing(), do: flunk("the browser tests cannot run: #{reason}")

    app =
      PhoenixApp.start!(
        elixir_scope: [phoenix: true, ai_integration: true, mcp: [port: 0]],
        trace_cart: true
      )

    on_exit(fn -> PhoenixApp.stop(app) end)

    me = self()

    steps =
      Browser.steps("live_view.mjs", [app.url], fn
        %{"step" => "connected"} ->
          # the LiveView process: the connected mount's
          mounts = events(app, kind: :live_view, callback: :mount, phase: :stop)
          %{pid: lv} = Enum.find(mounts, & &1[:connected])
          send(me, {:live_view, lv})
          assert :ok = PhoenixApp.call(app, ElixirScope, :trace_genserver, [lv])

        _ ->
          :ok
      end)

    assert_received {:live_view, lv}
    %{app: app, lv: lv, steps: Map.new(steps, &{&1["step"], &1})}
  end

  defp events(app, filters), do: PhoenixApp.call(app, ElixirScope.Phoenix, :events, [filters])

  defp store_bytes(app),
    do: :erlang.term_to_binary(PhoenixApp.call(app, ElixirScope.TraceDB, :query_events, [[]]))

  test "the browser did what the page shows", %{steps: steps} do
    assert steps["clicked"]["count"] == "4"
    assert steps["clicked"]["status"] == 201
    assert steps["saved"]["saved"] == "remember the milk"
    assert steps["channel"]["pong"] == %{"n" => 1}
    assert steps["login"]["body"] == "welcome ann@example.com"
    for step <- Map.values(steps), do: assert(step["problems"] in [nil, []], inspect(step))
  end

  test "trace_genserver/1 on a LiveView records its assigns, with what changed them",
       %{app: app, lv: lv} do
    info = PhoenixApp.call(app, ElixirScope, :tracing_info, [])
    assert lv in info.genservers

    states = PhoenixApp.call(app, ElixirScope, :state_timeline, [lv])
    assert [%{callback: :initial, state: initial} | changes] = states
    # the assigns, not the channel's state; without LiveView's change tracking
    assert %{count: 0, cart_total: 0, saved: nil} = initial
    refute Map.has_key?(initial, :__changed__)
    refute Map.has_key?(initial, :socket)

    counts = for %{state: %{count: c}} <- states, do: c
    assert Enum.dedup(counts) == [0, 1, 2, 3, 4]
    assert Enum.all?(changes, &(&1.callback == :handle_info))

    # the cart's broadcast, heard in handle_info: a step of its own, with its message
    assert [from_cart] = Enum.filter(changes, &match?({:cart_changed, _}, &1.cause))
    assert from_cart.cause == {:cart_changed, 5}
    assert from_cart.diff == [{[:cart_total], :changed, 0, 5}]

    # a click: the websocket's message for the event, and only the count changed
    click = Enum.find(changes, &(&1.state.count == 1))
    assert %{__struct__: Phoenix.Socket.Message, event: "event"} = click.cause
    assert click.cause.payload["event"] == "inc"
    assert click.diff == [{[:count], :changed, 0, 1}]
  end

  test "live_view_timeline/1: telemetry and states in order, each change once, where it was made",
       %{app: app, lv: lv} do
    timeline = PhoenixApp.call(app, ElixirScope.Phoenix, :live_view_timeline, [lv])
    assert Enum.all?(timeline, &(&1.pid == lv))
    kinds = Enum.map(timeline, &{&1.type, &1[:callback], &1[:phase]})
    assert {:phoenix, :handle_event, :stop} in kinds
    assert {:phoenix, :render, :stop} in kinds
    assert {:state, :handle_info, nil} in kinds

    # the handle_event after the cart's broadcast is credited with its own change only
    stops =
      Enum.filter(timeline, &match?(%{type: :phoenix, callback: :handle_event, phase: :stop}, &1))

    last_inc = Enum.find(stops, &(&1.event == "inc" and &1.assigns.count == 4))
    assert last_inc.diff == [{[:count], :changed, 3, 4}]

    # the component's own event, with its module
    assert Enum.any?(timeline, &match?(%{kind: :live_component, callback: :handle_event}, &1))

    [component] =
      events(app, kind: :live_component, callback: :handle_event, phase: :stop)
      |> Enum.filter(&(&1.pid == lv))

    assert component.module == ScopeAppWeb.BadgeComponent
    assert component.event == "toggle"
  end

  test "what a LiveView form sends is redacted in its events, states and their causes",
       %{app: app, lv: lv} do
    [save] = events(app, kind: :live_view, event: "save", phase: :start)
    assert save.params["note"] == "remember the milk"
    assert save.params["password"] == "[REDACTED]"
    # Phoenix's own filter_parameters of the application (card_number)
    assert save.params["card_number"] == "[REDACTED]"

    states = PhoenixApp.call(app, ElixirScope, :state_timeline, [lv])
    saved = Enum.find(states, &(&1.state.saved == "remember the milk"))
    # LiveView sends a form's fields url-encoded: redacted by their names there too
    assert saved.cause.payload["type"] == "form"

    assert saved.cause.payload["value"] ==
             "note=remember+the+milk&password=%5BREDACTED%5D&card_number=%5BREDACTED%5D"

    bytes = store_bytes(app)

    for secret <- ["lv-secret-pw", "4111111111111111", "chan-token-secret", "correct horse"],
        do: assert(:binary.match(bytes, secret) == :nomatch, "#{secret} reached the store")
  end

  test "a channel: the socket's connection, the join and a message", %{app: app} do
    # (the LiveView's own socket connects too: Phoenix.LiveView.Socket)
    assert [connected] =
             events(app, kind: :socket_connected)
             |> Enum.filter(&(&1.module == ScopeAppWeb.UserSocket))

    assert connected.result == :ok

    assert [joined] = events(app, kind: :channel_joined, topic: "room:lobby")
    assert joined.module == ScopeAppWeb.RoomChannel
    assert joined.params == %{"nick" => "ann", "token" => "[REDACTED]"}

    assert [pinged] = events(app, kind: :channel_handled_in, event: "ping")
    assert pinged.params == %{"n" => 1}
  end

  test "the login form posted over HTTP, and the raising LiveView event", %{app: app} do
    [login] =
      PhoenixApp.call(app, ElixirScope.Phoenix, :requests, [[path: "/login", method: "POST"]])

    assert login.status == 200
    assert login.params["user"]["password"] == "[REDACTED]"

    [crash] = events(app, kind: :live_view, callback: :handle_event, phase: :exception)
    assert crash.event == "crash"
    assert crash.class == :error
    assert crash.error =~ "crash requested"
  end

  test "an assistant finds the LiveView and reads its timeline over MCP", %{app: app, lv: lv} do
    url = PhoenixApp.call(app, ElixirScope.MCP, :url, [])
    {session, _} = MCPHTTP.initialize(url)
    call = &MCPHTTP.call_tool(url, session, "elixir_scope_live_view_timeline", &1)

    {list, false} = call.(%{})
    assert list =~ "LiveViews recorded (connected mounts), newest first:"
    assert list =~ "#{inspect(lv)} ScopeAppWeb.CounterLive"

    {text, false} = call.(%{pid_string: inspect(lv), limit: 500})
    assert text =~ "The life of LiveView #{inspect(lv)}"
    # the change made in handle_info, with its message and diff
    assert text =~ "state #{inspect(lv)} handle_info {:cart_changed, 5}"
    assert text =~ "cause: {:cart_changed, 5}\n  [:cart_total]: 0 → 5"
    refute text =~ "lv-secret-pw"

    {first, false} = call.(%{pid_string: inspect(lv), limit: 2})
    assert [_, cursor] = Regex.run(~r/"cursor": "([^"]+)"/, first)
    {next, false} = call.(%{pid_string: inspect(lv), limit: 2, cursor: cursor})
    refute next == first

    {text, true} = call.(%{pid_string: "#PID<0.1.0>"})
    assert text =~ "Nothing recorded"
  end
end
