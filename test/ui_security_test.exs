defmodule ElixirScope.UISecurityTest do
  @moduledoc """
  Every security rule of the web UI, over real HTTP: the bind rule, DNS-rebinding
  protection (`Host`, `Origin`), the token (cookie from `?token=`, bearer), the
  headers of every answer (no-store, a CSP without inline script or third-party
  origin), paths that reach nothing but the UI's files, and that no request creates
  an atom.
  """
  use ExUnit.Case, async: false

  import ElixirScope.Test.UIHTTP
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  alias ElixirScope.Test.RawHTTP
  alias ElixirScope.UI

  @moduletag :capture_log
  @token "a-secret-of-more-than-16-chars"

  setup_all do
    {:ok, _} = Application.ensure_all_started(:inets)
    :ok
  end

  setup :clean_slate

  defp start(opts \\ []) do
    :ok = ElixirScope.setup(tracing_level: :off, ui: [port: 0] ++ opts)
    UI.url()
  end

  describe "binding" do
    test "loopback by default; beyond loopback only with a token" do
      assert UI.validate!([]).bind == {127, 0, 0, 1}
      assert_raise ArgumentError, ~r/needs a :token/, fn -> UI.validate!(bind: "0.0.0.0") end
      assert UI.validate!(bind: "0.0.0.0", token: @token).bind == {0, 0, 0, 0}
      assert_raise ArgumentError, ~r/ui option :token/, fn -> UI.validate!(token: "short") end
      assert_raise ArgumentError, ~r/unknown ui option :prot/, fn -> UI.validate!(prot: 1) end
      assert_raise ArgumentError, ~r/ui options must be/, fn -> ElixirScope.setup(ui: :yes) end
      assert UI.validate!(true).port == 4048
    end

    test "port 0 picks a free port, and url/0 names it" do
      url = start()
      assert url =~ ~r{^http://127\.0\.0\.1:\d+/$}
      refute url =~ ":4048/"
      assert get(url, "").status == 200
      :ok = ElixirScope.stop()
      assert UI.url() == nil
    end
  end

  describe "DNS-rebinding protection" do
    test "403 for a foreign Host, on pages and on the API" do
      url = start()

      for path <- ["", "api/meta", "js/app.js"] do
        response = get(url, path, [], [{"host", "attacker.example:4048"}])
        assert response.status == 403 and response.body =~ "invalid Host header"
      end

      assert get(url, "api/meta", [], [{"host", "localhost:4048"}]).status == 200
    end

    test "403 for a foreign Origin; allowed_hosts and allowed_origins widen the lists" do
      url = start(allowed_hosts: ["scope.internal"], allowed_origins: ["https://tools.example"])
      assert get(url, "api/meta", [], [{"origin", "https://attacker.example"}]).status == 403
      assert get(url, "api/meta", [], [{"origin", "null"}]).status == 403
      assert get(url, "api/meta", [], [{"origin", "https://tools.example"}]).status == 200
      assert get(url, "api/meta", [], [{"origin", "http://localhost:1234"}]).status == 200
      assert get(url, "api/meta", [], [{"host", "scope.internal"}]).status == 200
    end
  end

  describe "the token" do
    test "401 without it, on every page and API call" do
      url = start(token: @token)

      for path <- ["", "index.html", "api/meta", "api/processes", "js/app.js", "style.css"] do
        assert get(url, path).status == 401, path
      end

      # the page says how to get in, without any script
      page = get(url, "")
      assert page.body =~ ~s(<form method="get") and not (page.body =~ "<script")
      assert get(url, "api/meta").headers["www-authenticate"] == "Bearer"

      assert get(url, "api/meta", [], [{"authorization", "Bearer wrong-token-of-the-size!!"}]).status ==
               401

      assert get(url, "", token: "wrong").status == 401
    end

    test "?token= sets an HttpOnly SameSite=Strict cookie and redirects to the page without it" do
      url = start(token: @token)
      response = get(url, "", token: @token)
      assert response.status == 303
      assert response.headers["location"] == "./"
      cookie = response.headers["set-cookie"]
      %URI{port: port} = URI.parse(url)
      assert cookie =~ ~r/^elixir_scope_ui_#{port}=#{@token};/
      assert cookie =~ "HttpOnly" and cookie =~ "SameSite=Strict"

      [pair | _] = String.split(cookie, ";")
      assert get(url, "api/meta", [], [{"cookie", "other=1; " <> pair}]).status == 200
      assert get(url, "", [], [{"cookie", pair}]).status == 200
      assert get(url, "api/meta", [], [{"cookie", "elixir_scope_ui_#{port}=nope"}]).status == 401
    end

    test "a bearer token works for scripts" do
      url = start(token: @token)
      assert get(url, "api/meta", [], [{"authorization", "Bearer " <> @token}]).status == 200
    end
  end

  describe "every answer" do
    test "no-store and a CSP that allows only this origin's own scripts, styles, requests" do
      url = start()

      for {path, params} <- [
            {"", []},
            {"api/meta", []},
            {"api/processes", [sort: "zzz"]},
            {"js/app.js", []},
            {"nowhere", []}
          ] do
        h = get(url, path, params).headers
        assert h["cache-control"] == "no-store", path
        csp = h["content-security-policy"]
        assert csp =~ "default-src 'none'" and csp =~ "script-src 'self';", path
        assert csp =~ "connect-src 'self'" and csp =~ "frame-ancestors 'none'", path
        refute csp =~ "unsafe-inline" or csp =~ "http" or csp =~ "*", path
        assert h["x-content-type-options"] == "nosniff"
      end
    end

    test "the page has no inline script and loads nothing from elsewhere" do
      url = start()
      page = get(url, "").body
      scripts = Regex.scan(~r/<script([^>]*)>(.*?)<\/script>/s, page)
      assert scripts != []
      for [_, attrs, body] <- scripts, do: assert(attrs =~ ~s(src=") and String.trim(body) == "")
      refute page =~ ~r/(src|href)="(https?:)?\/\//
      refute page =~ ~r/ on[a-z]+=/
    end

    test "paths reach the UI's files and nothing else" do
      url = start()
      assert get(url, "js/app.js").headers["content-type"] =~ "javascript"
      assert get(url, "vendor/preact.mjs").status == 200

      for path <- [
            "../mix.exs",
            "%2e%2e/mix.exs",
            "js/%2e%2e/%2e%2e/mix.exs",
            "elixir_scope_nif.so",
            "ui/index.html",
            "%00"
          ] do
        assert get(url, path).status in [400, 404], path
      end

      assert request(:delete, url <> "api/meta", []).status == 405
      assert request(:delete, url, []).status == 405
    end

    test "gzip when the browser takes it" do
      url = start()
      response = get(url, "vendor/preact.mjs", [], [{"accept-encoding", "gzip, deflate"}])
      assert response.headers["content-encoding"] == "gzip"

      assert :zlib.gunzip(response.body) ==
               File.read!(Path.join(ElixirScope.UI.Assets.root(), "vendor/preact.mjs"))
    end
  end

  describe "atoms" do
    test "100,000 junk requests create no atom" do
      url = start()
      # A first round loads every module on the way (loading code adds its atoms).
      send_concurrently(url, 1..800)
      before = :erlang.system_info(:atom_count)
      send_concurrently(url, 1_001..101_000)
      assert :erlang.system_info(:atom_count) == before
    end
  end

  defp send_concurrently(url, range) do
    range
    |> Enum.chunk_every(div(Enum.count(range), 8))
    |> Task.async_stream(&send_junk(url, &1), timeout: :infinity)
    |> Stream.run()
  end

  # Raw sockets with keep-alive: 100,000 requests through :httpc would take minutes.
  # Names of modules, processes, event types, sort keys, views, parameters and paths
  # that exist nowhere, in every request.
  defp send_junk(url, range) do
    %URI{port: port} = URI.parse(url)
    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])

    for i <- range do
      path =
        case rem(i, 8) do
          0 -> "/api/performance?module=No.Such.Module#{i}"
          1 -> "/api/processes?sort=junk_sort_#{i}&view=junk_view_#{i}&q=x#{i}"
          2 -> "/api/tail?types=junk_type_#{i}&pid=%3C0.1.#{i}%3E"
          3 -> "/api/junk_endpoint_#{i}?junk_param_#{i}=1"
          4 -> "/junk_file_#{i}.js"
          5 -> "/api/slowest?module=:no_such_mod_#{i}"
          6 -> "/api/state?pid=junk_name_#{i}&id=#{i}"
          7 -> "/api/phoenix/junk_#{i}?tab=junk_tab_#{i}"
        end

      :ok =
        :gen_tcp.send(socket, [
          "GET #{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk-#{i}: junk_header_#{i}\r\n",
          "Cookie: junk_cookie_#{i}=1\r\n\r\n"
        ])

      {head, _body} = RawHTTP.read_response(socket)
      assert head =~ ~r/^HTTP\/1.1 (400|404)/
    end

    :gen_tcp.close(socket)
  end
end
