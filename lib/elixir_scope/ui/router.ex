defmodule ElixirScope.UI.Router do
  @moduledoc false
  # One UI request, whatever carries it (the UI's own httpd, `ElixirScope.UI.HTTP`, or
  # a Phoenix app through `ElixirScope.UI.Plug`): the security checks, then the page,
  # a static file or the API. Returns {status, headers, body}; headers are
  # [{lowercase name, value}] strings.
  #
  # In order:
  #   1. `Host` and `Origin` (DNS-rebinding protection, `ElixirScope.Web.Guard`), when
  #      the server is ours (`check_host: true`): a Phoenix app checks its own;
  #   2. the token, when one is set: from `Authorization: Bearer`, or the cookie that
  #      `?token=` sets (HttpOnly, SameSite=Strict) before redirecting to the same
  #      page without it;
  #   3. a POST (the tracing actions) must be same-origin, JSON, and carry the CSRF
  #      token that `/api/meta` gives the page;
  #   4. the answer, with `cache-control: no-store` and a Content-Security-Policy that
  #      allows only this origin's own scripts, styles and requests: no inline script,
  #      nothing from anywhere else.
  #
  # `request`: %{method: "GET", path: [segments], query: "a=1", headers: %{lowercase
  # name => value}, body: binary}. `config`: %{token, allowed_hosts, allowed_origins,
  # check_host, cookie (the token cookie's name), csrf}.

  alias ElixirScope.JSON
  alias ElixirScope.UI.{API, Assets, Params}
  alias ElixirScope.Web.Guard

  @csp "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " <>
         "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

  @security_headers [
    {"cache-control", "no-store"},
    {"content-security-policy", @csp},
    {"x-content-type-options", "nosniff"},
    {"x-frame-options", "DENY"},
    {"referrer-policy", "no-referrer"},
    {"cross-origin-resource-policy", "same-origin"}
  ]

  @doc false
  def handle(request, config) do
    {status, headers, body} =
      try do
        with :ok <- check_host(request, config),
             :ok <- check_origin(request, config),
             {:ok, params} <- query(request.query),
             :ok <- check_token(request, params, config) do
          route(request, params, config)
        end
      rescue
        e -> json(500, %{"error" => "internal error: " <> Exception.message(e)})
      end

    {status, headers ++ @security_headers, body}
  end

  @doc false
  # A request the transport could not read (a malformed path): 400, with the headers
  # of every answer.
  def bad_request(why) do
    {status, headers, body} = text(400, "Bad Request: " <> why)
    {status, headers ++ @security_headers, body}
  end

  ## Checks

  defp check_host(_request, %{check_host: false}), do: :ok

  defp check_host(request, config) do
    case Guard.check_host(request.headers["host"], config.allowed_hosts) do
      :ok -> :ok
      {:error, why} -> text(403, "Forbidden: " <> why)
    end
  end

  defp check_origin(_request, %{check_host: false}), do: :ok

  defp check_origin(request, config) do
    case Guard.check_origin(request.headers["origin"], config.allowed_origins) do
      :ok -> :ok
      {:error, why} -> text(403, "Forbidden: " <> why)
    end
  end

  defp query(query) do
    {:ok, Params.parse_query(query)}
  rescue
    e in Params.Error -> json(400, %{"error" => e.message})
  end

  defp check_token(_request, _params, %{token: nil}), do: :ok

  defp check_token(request, params, config) do
    cond do
      # ?token= on a page: remember it in a cookie, then the same page without it.
      Map.has_key?(params, "token") and request.method == "GET" and page?(request.path) ->
        if Guard.token_matches?(params["token"], config.token),
          do: {303, [{"location", page_url(request)}, {"set-cookie", cookie(config)}], ""},
          else: unauthorized(request)

      Guard.token_matches?(bearer(request.headers["authorization"]), config.token) ->
        :ok

      Guard.token_matches?(cookie_value(request.headers["cookie"], config.cookie), config.token) ->
        :ok

      true ->
        unauthorized(request)
    end
  end

  defp bearer("Bearer " <> token), do: token
  defp bearer(_), do: nil

  defp cookie_value(nil, _name), do: nil

  defp cookie_value(header, name) do
    header
    |> String.split(";")
    |> Enum.find_value(fn pair ->
      case String.split(String.trim(pair), "=", parts: 2) do
        [^name, value] -> value
        _ -> nil
      end
    end)
  end

  defp cookie(config),
    do: "#{config.cookie}=#{config.token}; Path=/; HttpOnly; SameSite=Strict"

  # The page the request asked for, relative (it may be served under a prefix).
  defp page_url(request) do
    case request.path do
      [] -> "./"
      path -> List.last(path)
    end
  end

  defp page?([]), do: true
  defp page?(["index.html"]), do: true
  defp page?(_), do: false

  defp unauthorized(request) do
    if page?(request.path) do
      {401, [{"content-type", "text/html; charset=utf-8"}], login_page()}
    else
      {status, headers, body} =
        json(401, %{"error" => "a token is needed: open the UI's URL with ?token=..."})

      {status, [{"www-authenticate", "Bearer"} | headers], body}
    end
  end

  # No script: a form that sends ?token= back to the same page.
  defp login_page do
    """
    <!doctype html><html><head><meta charset="utf-8"><title>ElixirScope</title></head>
    <body><h1>ElixirScope</h1><p>This UI needs its token (the <code>ui: [token: ...]</code>
    given to <code>ElixirScope.setup/1</code>).</p>
    <form method="get" action="./"><input name="token" type="password" autofocus>
    <button type="submit">Open</button></form></body></html>
    """
  end

  ## Routing

  defp route(%{method: method, path: ["api" | path]} = request, params, config) do
    with :ok <- check_post(request, config) do
      case API.handle(method, path, params, %{body: request.body, csrf: config.csrf}) do
        {:download, filename, type, body} ->
          {200,
           [
             {"content-type", type},
             {"content-disposition", ~s(attachment; filename="#{filename}")}
           ], body}

        {status, term} ->
          json(status, term)
      end
    end
  end

  defp route(%{method: method} = request, _params, _config) when method in ["GET", "HEAD"] do
    path = if request.path == [], do: ["index.html"], else: request.path

    case Assets.fetch(path) do
      nil ->
        text(404, "Not Found")

      {type, body, gz} ->
        if gz && String.contains?(request.headers["accept-encoding"] || "", "gzip"),
          do:
            {200,
             [{"content-type", type}, {"content-encoding", "gzip"}, {"vary", "accept-encoding"}],
             gz},
          else: {200, [{"content-type", type}, {"vary", "accept-encoding"}], body}
    end
  end

  defp route(_request, _params, _config),
    do: {405, [{"allow", "GET, HEAD"}, {"content-type", "text/plain"}], "Method Not Allowed\n"}

  # A POST changes tracing: only from this origin's own page (same-origin Origin, the
  # CSRF token it read from /api/meta, a JSON body a plain form cannot send).
  defp check_post(%{method: "POST"} = request, config) do
    h = request.headers

    cond do
      not same_origin?(h["origin"], h["host"]) ->
        json(403, %{"error" => "Forbidden: a POST must come from this UI's own page"})

      not Guard.token_matches?(h["x-csrf-token"], config.csrf) ->
        json(403, %{"error" => "Forbidden: missing or wrong CSRF token"})

      not String.starts_with?(h["content-type"] || "", "application/json") ->
        json(415, %{"error" => "Content-Type must be application/json"})

      true ->
        :ok
    end
  end

  defp check_post(_request, _config), do: :ok

  defp same_origin?(origin, host) when is_binary(origin) and is_binary(host),
    do: origin in ["http://" <> host, "https://" <> host]

  defp same_origin?(_origin, _host), do: false

  ## Responses

  defp json(status, term),
    do: {status, [{"content-type", "application/json"}], JSON.encode!(term)}

  defp text(status, body),
    do: {status, [{"content-type", "text/plain; charset=utf-8"}], body <> "\n"}
end
