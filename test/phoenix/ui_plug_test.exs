defmodule ElixirScope.Phoenix.UIPlugTest do
  @moduledoc """
  `ElixirScope.UI.Plug` in the real Phoenix application of `test/phoenix_app`
  (`forward "/scope", ElixirScope.UI.Plug` behind the application's basic
  authentication), in a peer node: over HTTP (the app's authentication in front, the
  UI's headers and CSRF rules kept, the API answering from the app's recording), then
  in Debian's chromium (the Phoenix view showing the requests and a LiveView used in
  the browser).
  """
  use ExUnit.Case, async: false

  alias ElixirScope.Test.PhoenixApp, as: App

  @moduletag :phoenix_app
  @moduletag :capture_log
  @moduletag timeout: 180_000

  @auth {"authorization", "Basic " <> Base.encode64("admin:scope-admin-password")}
  @browser Path.expand("../ui_browser", __DIR__)

  setup_all do
    app = App.start!(elixir_scope: [phoenix: true], trace_cart: true)
    on_exit(fn -> App.stop(app) end)
    assert App.http(app, :get, "/cart").status == 200
    assert App.http(app, :post, "/cart/items", %{item: "pear", price: 4}).status == 201
    assert App.http(app, :get, "/boom").status == 500
    %{app: app}
  end

  defp json(response), do: ElixirScope.Test.JSON.decode!(response.body)

  test "behind the application's own authentication", %{app: app} do
    assert App.http(app, :get, "/scope/").status == 401
    assert App.http(app, :get, "/scope/api/meta").status == 401
    assert App.http(app, :get, "/scope/", nil, [@auth]).status == 200
  end

  test "/scope redirects to /scope/, whose page and API keep the UI's headers", %{app: app} do
    redirect = App.http(app, :get, "/scope?x=1", nil, [@auth])
    # :httpc follows the redirect itself: the page came from /scope/
    assert redirect.status == 200 and redirect.body =~ ~s(<script type="module" src="js/app.js">)

    for path <- ["/scope/", "/scope/api/meta", "/scope/js/app.js"] do
      h = App.http(app, :get, path, nil, [@auth]).headers
      assert h["cache-control"] == "no-store"
      assert h["content-security-policy"] =~ "script-src 'self'"
    end

    assert App.http(app, :get, "/scope/../mix.exs", nil, [@auth]).status in [400, 404]
  end

  test "the API answers from the application's recording", %{app: app} do
    meta = json(App.http(app, :get, "/scope/api/meta", nil, [@auth]))
    assert meta["mode"] == "live"

    cart =
      App.call(app, Process, :whereis, [ScopeApp.Cart])
      |> :erlang.pid_to_list()
      |> List.to_string()

    assert cart in meta["tracing"]["genservers"]

    requests = json(App.http(app, :get, "/scope/api/phoenix/requests", nil, [@auth]))["items"]
    paths = Enum.map(requests, & &1["path"])
    assert "/cart" in paths and "/cart/items" in paths and "/boom" in paths
    assert Enum.find(requests, &(&1["path"] == "/boom"))["status"] == 500

    expected = App.call(app, ElixirScope.Phoenix, :requests, [[order: :desc, limit: 50]])
    assert Enum.map(requests, & &1["id"]) == Enum.map(expected, & &1.id)
  end

  test "a tracing action needs the CSRF token and the same origin", %{app: app} do
    csrf = json(App.http(app, :get, "/scope/api/meta", nil, [@auth]))["csrf"]
    body = %{action: "trace_module", module: "ScopeApp.Cart"}
    origin = {"origin", app.url}

    assert App.http(app, :post, "/scope/api/trace", body, [@auth, origin]).status == 403

    assert App.http(app, :post, "/scope/api/trace", body, [@auth, {"x-csrf-token", csrf}]).status ==
             403

    assert App.http(app, :post, "/scope/api/trace", body, [@auth, origin, {"x-csrf-token", csrf}]).status ==
             200

    assert ScopeApp.Cart in App.call(app, ElixirScope, :tracing_info, []).modules
  end

  test "in the browser: requests, a request's timeline, a LiveView's events and diffs", %{
    app: app
  } do
    node = System.find_executable("node")

    assert node && File.dir?(Path.join(@browser, "node_modules/playwright-core")),
           "the browser tests need Node.js and `npm ci` in test/ui_browser (`make test` does both)"

    cart =
      App.call(app, Process, :whereis, [ScopeApp.Cart])
      |> :erlang.pid_to_list()
      |> List.to_string()

    plan = Path.join(System.tmp_dir!(), "ui_phoenix_#{System.unique_integer([:positive])}.json")

    shots = Path.expand("../../_build/ui_screenshots", __DIR__)

    File.write!(
      plan,
      ElixirScope.JSON.encode!(%{
        app: app.url,
        user: "admin",
        password: "scope-admin-password",
        shots: shots,
        cart: cart
      })
    )

    on_exit(fn -> File.rm(plan) end)

    {out, status} =
      System.cmd(node, [Path.join(@browser, "phoenix.mjs"), plan],
        stderr_to_stdout: true,
        cd: @browser
      )

    assert status == 0, "the browser run failed:\n#{out}"
    seen = out |> String.split("\n", trim: true) |> List.last() |> ElixirScope.Test.JSON.decode!()

    assert seen["problems"] == []
    assert seen["count"] >= 3
    assert seen["url"] == app.url <> "/scope/"
    assert "/cart/items" in seen["paths"] and "/boom" in seen["paths"]
    assert "500" in seen["statuses"]
    assert seen["request"]["title"] =~ "POST /cart/items → 201"
    assert "phoenix" in seen["request"]["types"]
    assert Enum.any?(seen["live_views"], &(&1 =~ "ScopeAppWeb.CounterLive"))
    assert Enum.any?(seen["live_view"]["kinds"], &(&1 =~ "handle_event stop"))
    assert Enum.any?(seen["live_view"]["diffs"], &(&1 =~ ".count"))
    assert seen["states_position"] =~ ~r/step \d+ of \d+/
  end
end
