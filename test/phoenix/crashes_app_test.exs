defmodule ElixirScope.Phoenix.CrashesAppTest do
  # What a crash is in a real Phoenix application (test/phoenix_app: Phoenix 1.7.21 on
  # Bandit, every process traced): request exceptions are listed by recent_crashes, and
  # connection processes ending because a client went away, or because the server shut
  # down, are recorded but not listed as crashes (issue 14, point 5).
  use ExUnit.Case, async: false

  alias ElixirScope.Test.PhoenixApp, as: App

  @moduletag :phoenix_app
  @moduletag timeout: 120_000

  setup do
    app = App.start!(elixir_scope: [phoenix: true, trace_all: true, lifecycle: :all])

    on_exit(fn -> App.stop(app) end)
    %{app: app}
  end

  # A raw connection: what it sends, how long it stays, and how it goes (a close, or a
  # reset: SO_LINGER 0 makes close/1 send RST).
  defp raw(app, data, wait_ms, how \\ :close) do
    opts = [:binary, active: false] ++ if(how == :reset, do: [linger: {true, 0}], else: [])
    {:ok, s} = :gen_tcp.connect(~c"127.0.0.1", app.port, opts)
    if data, do: :ok = :gen_tcp.send(s, data)
    Process.sleep(wait_ms)
    :gen_tcp.close(s)
  end

  defp ends(app),
    do: App.call(app, ElixirScope.TraceDB, :query_events, [[type: [:exit, :crash]]])

  test "a request exception is listed with method, path, exception and stacktrace", %{app: app} do
    assert App.http(app, :get, "/boom").status == 500

    assert [%{kind: :request} = boom | _] =
             wait_for(fn -> App.call(app, ElixirScope, :recent_crashes, [[limit: 5]]) end)

    assert %{method: "GET", path: "/boom", reason: %ArgumentError{message: "boom requested"}} =
             boom

    assert [{ScopeAppWeb.CartController, :boom, 2, _} | _] = boom.stacktrace
  end

  test "clients going away and a server shutdown are no crashes", %{app: app} do
    get = "GET /cart HTTP/1.1\r\nhost: localhost\r\n\r\n"
    for _ <- 1..3, do: assert(App.http(app, :get, "/cart").status == 200)
    # connect and leave; a half-sent request; a whole one, gone before the answer;
    # keep-alive after an answer; garbage; resets
    raw(app, nil, 20)
    raw(app, "GET /cart HTTP/1.1\r\nhost: x\r\n", 50)
    raw(app, get, 0)
    raw(app, get, 100)
    raw(app, "not http\r\n\r\n", 100)
    raw(app, get, 100, :reset)
    raw(app, "GET /cart HTTP/1.1\r\n", 50, :reset)
    # websockets of the channel socket, the client gone without a close frame
    upgrade =
      "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\n" <>
        "connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n" <>
        "sec-websocket-version: 13\r\n\r\n"

    raw(app, upgrade, 100)
    raw(app, upgrade, 100, :reset)
    # connections still open when the server shuts down
    held =
      for _ <- 1..3 do
        {:ok, s} = :gen_tcp.connect(~c"127.0.0.1", app.port, [:binary, active: false])
        :ok = :gen_tcp.send(s, get)
        s
      end

    Process.sleep(300)
    assert length(App.call(app, ElixirScope.Phoenix, :events, [[kind: :socket_connected]])) == 2
    :ok = App.call(app, Supervisor, :stop, [ScopeApp.Supervisor])
    Enum.each(held, &:gen_tcp.close/1)
    Process.sleep(500)

    # What Bandit 1.6 / ThousandIsland end these processes with (on OTP 25 and 27 alike):
    # :normal, {:shutdown, :peer_closed}, {:shutdown, :local_closed}, and :shutdown for
    # those the server's shutdown ended.
    reasons = ends(app) |> Enum.map(&{&1.type, &1.reason}) |> Enum.uniq()
    assert {:exit, {:shutdown, :peer_closed}} in reasons
    assert {:exit, {:shutdown, :local_closed}} in reasons
    assert {:exit, :shutdown} in reasons

    crashes = App.call(app, ElixirScope, :recent_crashes, [[limit: 50]])

    assert crashes == [],
           "listed as crashes: #{inspect(Enum.map(crashes, &{&1.pid, &1.reason, &1.event}))}"
  end

  defp wait_for(fun) do
    ElixirScope.Test.Wait.wait_until(fn ->
      case fun.() do
        [] -> nil
        list -> list
      end
    end) || []
  end
end
