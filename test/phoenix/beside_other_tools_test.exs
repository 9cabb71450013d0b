defmodule ElixirScope.Phoenix.BesideOtherToolsTest do
  # setup(phoenix: true) in the real Phoenix application takes nothing from other tracing
  # tools: PubSub broadcasts are recorded with meta trace patterns (or in ElixirScope's
  # own session, OTP 27+), so :dbg can still trace every process; a broadcast that is
  # also traced by trace_module/1 is recorded once.
  use ExUnit.Case, async: false

  alias ElixirScope.Test.PhoenixApp, as: App
  alias ElixirScope.Test.TraceState

  @moduletag :phoenix_app
  @moduletag timeout: 180_000

  setup do
    app = App.start!(elixir_scope: [phoenix: true])
    on_exit(fn -> App.stop(app) end)
    %{app: app}
  end

  defp add(app, item),
    do: assert(App.http(app, :post, "/cart/items", %{item: item, price: 1}).status == 201)

  defp broadcasts(app),
    do: App.call(app, ElixirScope.Phoenix, :broadcasts, [[topic: "cart"]])

  test ":dbg can trace every process while phoenix: true is on", %{app: app} do
    add(app, "pear")
    assert [_] = broadcasts(app)
    processes = length(App.call(app, Process, :list, []))
    {:ok, _} = App.call(app, :dbg, :tracer, [])
    # every process (ElixirScope's tracer holds none), and the cart's messages
    {:ok, [{:matched, _, matched}]} = App.call(app, :dbg, :p, [:all, [:procs]])
    assert matched >= processes
    cart = App.call(app, Process, :whereis, [ScopeApp.Cart])
    assert {:ok, [{:matched, _, 1}]} = App.call(app, :dbg, :p, [cart, [:m]])
    # and ElixirScope still records the broadcasts
    add(app, "fig")
    assert [_, _] = broadcasts(app)
    App.call(app, :dbg, :stop, [])
  end

  test "a broadcast also traced by trace_module/1 is recorded once", %{app: app} do
    add(app, "one")
    assert :ok = App.call(app, ElixirScope, :trace_module, [Phoenix.PubSub])
    # the module's own pattern only, meanwhile
    assert App.call(app, TraceState, :traced, [{Phoenix.PubSub, :broadcast, 4}]) == :local
    add(app, "two")
    assert :ok = App.call(app, ElixirScope, :stop_trace_module, [Phoenix.PubSub])
    assert App.call(app, TraceState, :traced, [{Phoenix.PubSub, :broadcast, 4}]) == false
    add(app, "three")

    totals = for b <- broadcasts(app), do: elem(b.message, 1)
    assert totals == [1, 2, 3]
    # each call of broadcast/4 with its return, once (broadcast/3, its default-argument
    # head, is a call of its own while the whole module is traced)
    for type <- [:call, :return] do
      events =
        App.call(app, ElixirScope.TraceDB, :query_events, [
          [type: type, module: Phoenix.PubSub, function: :broadcast]
        ])

      assert events |> Enum.filter(&(&1.arity == 4)) |> length() == 3
      assert events |> Enum.filter(&(&1.arity == 3)) |> length() == 1
    end
  end

  test "stop/0 detaches the handler and removes the meta patterns", %{app: app} do
    meta = fn -> App.call(app, :erlang, :trace_info, [{Phoenix.PubSub, :broadcast, 4}, :meta]) end
    unless TraceState.sessions?(), do: assert({:meta, {ElixirScope.Native, _}} = meta.())
    assert [_ | _] = App.call(app, :telemetry, :list_handlers, [[:phoenix, :endpoint]]) |> ours()
    :ok = App.call(app, ElixirScope, :stop, [])
    assert meta.() == {:meta, false}
    assert App.call(app, :telemetry, :list_handlers, [[:phoenix, :endpoint]]) |> ours() == []
    add(app, "after")
    assert broadcasts(app) == []
  end

  defp ours(handlers), do: Enum.filter(handlers, &(&1.id == ElixirScope.Phoenix.Capture))
end
