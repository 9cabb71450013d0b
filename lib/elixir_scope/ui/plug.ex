defmodule ElixirScope.UI.Plug do
  @moduledoc """
  The web UI inside a Phoenix (or any Plug) application, behind its own
  authentication, instead of on a port of its own:

      # router.ex
      pipeline :admins_only do
        plug :require_admin        # your authentication
      end

      scope "/" do
        pipe_through :admins_only
        forward "/scope", ElixirScope.UI.Plug
      end

  Then open `/scope/`. The UI reads the store of `ElixirScope.setup/1` (start it
  without `ui:`; the Plug needs no server of its own). Your pipeline decides who gets
  in: the Plug checks no token, and leaves `Host` to your endpoint. It keeps the rest
  of `ElixirScope.UI`'s rules: tracing actions only as same-origin POSTs with the
  page's CSRF token, `cache-control: no-store` and the UI's Content-Security-Policy
  on every answer (its own, for its own pages), no atom from request data.

  The module calls Plug only at run time (it has no compile-time dependency on
  Plug, so it compiles whatever order a project's dependencies build in); it needs
  Plug loaded to serve, as any Plug application has.
  """

  # Plug.Conn is called at run time only: ElixirScope does not depend on Plug.
  @compile {:no_warn_undefined, [Plug.Conn]}

  alias ElixirScope.UI
  alias ElixirScope.UI.Router

  # The largest POST body read (the tracing actions are a few bytes).
  @max_body 65_536

  @doc false
  def init(opts) do
    unless Code.ensure_loaded?(Plug.Conn),
      do: raise(ArgumentError, "ElixirScope.UI.Plug needs Plug (a Phoenix or Plug application)")

    unless opts == [],
      do: raise(ArgumentError, "ElixirScope.UI.Plug takes no options, got: #{inspect(opts)}")

    :ok
  end

  @doc false
  def call(%{path_info: [], request_path: path} = conn, _opts) do
    # The page's assets are relative to it: /scope must be /scope/.
    if String.ends_with?(path, "/"),
      do: serve(conn),
      else: redirect(conn, path <> "/" <> query(conn))
  end

  def call(conn, _opts), do: serve(conn)

  # The UI's own requests are left out of the recording: the Phoenix handler skips
  # paths under this mount, and the serving process is not traced while it answers.
  defp serve(conn) do
    UI.note_mount("/" <> Enum.join(conn.script_name, "/"))
    ElixirScope.Tracing.untraced(fn -> answer(conn) end)
  end

  defp answer(conn) do
    {body, conn} = body(conn)

    request = %{
      method: conn.method,
      path: conn.path_info,
      query: conn.query_string,
      headers: Map.new(conn.req_headers),
      body: body
    }

    config = %{token: nil, check_host: false, csrf: UI.csrf_token(), cookie: nil}
    {status, headers, body} = Router.handle(request, config)

    headers
    |> Enum.reduce(conn, fn {name, value}, conn ->
      Plug.Conn.put_resp_header(conn, name, value)
    end)
    |> Plug.Conn.send_resp(status, body)
    |> Plug.Conn.halt()
  end

  # The endpoint's Plug.Parsers may have read a JSON body already: its params are that
  # JSON, written again for the Router.
  defp body(%{method: "POST", body_params: %{} = params} = conn)
       when not is_struct(params) and map_size(params) > 0,
       do: {ElixirScope.JSON.encode!(params), conn}

  defp body(%{method: "POST"} = conn) do
    case Plug.Conn.read_body(conn, length: @max_body) do
      {:ok, body, conn} -> {body, conn}
      {_more_or_error, _, conn} -> {"", conn}
      {:error, _} -> {"", conn}
    end
  end

  defp body(conn), do: {"", conn}

  defp query(%{query_string: ""}), do: ""
  defp query(%{query_string: q}), do: "?" <> q

  defp redirect(conn, to) do
    conn
    |> Plug.Conn.put_resp_header("location", to)
    |> Plug.Conn.put_resp_header("cache-control", "no-store")
    |> Plug.Conn.send_resp(301, "")
    |> Plug.Conn.halt()
  end
end
