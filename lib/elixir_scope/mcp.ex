defmodule ElixirScope.MCP do
  @moduledoc """
  An MCP (Model Context Protocol) server inside your application, so that Claude Code,
  Cursor or any MCP client can ask the running system about its processes: what is
  running, what a GenServer's state was and which message changed it, which calls are
  slow, what crashed and why.

      ElixirScope.setup(ai_integration: true)                      # http://127.0.0.1:4047/mcp
      ElixirScope.setup(ai_integration: true, mcp: [port: 5000])

  It serves the *Streamable HTTP* transport on OTP's own `:inets` web server, at
  `/mcp`: JSON-RPC requests by POST, answered with JSON; sessions (`Mcp-Session-Id`,
  issued by `initialize`, ended by DELETE); protocol `2025-11-25`, and `2025-06-18` and
  `2025-03-26` for older clients. The tools are listed in `ElixirScope.MCP.Tools`.

  ## Connecting a client

  Claude Code:

      claude mcp add --transport http elixir-scope http://127.0.0.1:4047/mcp

  Cursor (`.cursor/mcp.json`) and other clients that take a JSON configuration:

      {"mcpServers": {"elixir-scope": {"url": "http://127.0.0.1:4047/mcp"}}}

  With a token, add the header: `claude mcp add --transport http elixir-scope URL
  --header "Authorization: Bearer TOKEN"`, or `"headers": {"Authorization": "Bearer
  TOKEN"}` next to `"url"`.

  ## Options (`mcp: [...]`)

  | option | default | meaning |
  |---|---|---|
  | `:port` | `4047` | TCP port; `0` picks a free one (see `url/1`) |
  | `:bind` | `"127.0.0.1"` | address to listen on (`"::1"`, `"0.0.0.0"`, or a tuple) |
  | `:token` | `nil` | bearer token required from clients (at least 16 characters); mandatory when `:bind` is not a loopback address |
  | `:allowed_hosts` | `[]` | `Host` names accepted besides `localhost`, `127.0.0.1` and `::1` |
  | `:allowed_origins` | `[]` | browser `Origin`s accepted besides loopback ones, e.g. `"https://tools.example.com"` |
  | `:max_tokens` | `20_000` | the most an answer may hold, in tokens (counted as 3 bytes each, a cautious estimate); longer lists are cut and continue with a `cursor` |
  | `:max_body_bytes` | 1 MiB | larger requests are refused with 413 |
  | `:max_sessions` | `64` | sessions kept; the least recently used goes first |

  ## Security

  The server listens on loopback only unless told otherwise, and then only with a
  token. It checks `Host` and `Origin` on every request, so a web page the developer
  visits cannot reach it through DNS rebinding (403). It never creates an atom from a
  request: module and process names resolve only to atoms that already exist, and
  pids are parsed strictly (`"#PID<0.123.0>"` or `"<0.123.0>"`).

  When its port is taken (a second `iex -S mix`, `mix test` beside the running
  application), the server does not start and everything else does: `setup/1` returns
  `{:partial, [mcp: {:mcp_listen_failed, :eaddrinuse}]}` and one warning is logged.
  `port: 0` takes a free port.

  The server runs an instance of OTP's `:inets` web server of its own, standalone
  (linked to it, stopped with it). ElixirScope declares `:inets` as an application it
  needs, so Mix keeps it on the code path (Elixir 1.15+) and releases include it.
  """
  use GenServer

  alias ElixirScope.MCP.{HTTP, Sessions}
  alias ElixirScope.Web.Listener

  @defaults [
    port: 4047,
    bind: "127.0.0.1",
    token: nil,
    allowed_hosts: [],
    allowed_origins: [],
    max_tokens: 20_000,
    max_body_bytes: 1_048_576,
    max_sessions: 64
  ]

  # A session unused this long is dropped.
  @session_idle_ms 3_600_000

  @type option ::
          {:port, :inet.port_number()}
          | {:bind, String.t() | :inet.ip_address()}
          | {:token, String.t() | nil}
          | {:allowed_hosts, [String.t()]}
          | {:allowed_origins, [String.t()]}
          | {:max_tokens, pos_integer()}
          | {:max_body_bytes, pos_integer()}
          | {:max_sessions, pos_integer()}

  @doc "The default options."
  @spec defaults() :: keyword()
  def defaults, do: @defaults

  @doc """
  Starts the server, linked to the caller. Options as in the table above, plus
  `:name` (default `ElixirScope.MCP`). Raises `ArgumentError` for a bad option.
  """
  @spec start_link([option | {:name, atom()}]) :: GenServer.on_start()
  def start_link(opts \\ []) do
    {name, opts} = Keyword.pop(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, validate!(opts), name: name)
  end

  @doc false
  def child_spec(opts), do: %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}}

  @doc "The URL clients connect to, e.g. `\"http://127.0.0.1:4047/mcp\"`."
  @spec url(GenServer.server()) :: String.t()
  def url(server \\ __MODULE__), do: GenServer.call(server, :url)

  @doc false
  # Options over the defaults, checked; a map ready for the server.
  def validate!(opts) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "mcp options must be a keyword list, got: #{inspect(opts)}")

    config = Keyword.merge(@defaults, opts)
    Enum.each(config, &check!/1)
    Listener.finish!("mcp", config)
  end

  defp check!({:max_tokens, v}) when is_integer(v) and v in 1_000..1_000_000, do: :ok
  defp check!({:max_body_bytes, v}) when is_integer(v) and v in 1_024..67_108_864, do: :ok
  defp check!({:max_sessions, v}) when is_integer(v) and v in 1..100_000, do: :ok
  defp check!({:max_tokens, v}), do: bad(:max_tokens, "an integer in 1000..1000000", v)
  defp check!({:max_body_bytes, v}), do: bad(:max_body_bytes, "an integer in 1024..67108864", v)
  defp check!({:max_sessions, v}), do: bad(:max_sessions, "an integer in 1..100000", v)

  defp check!({key, _} = option) do
    if Listener.check!("mcp", option) == :unknown do
      raise ArgumentError,
            "unknown mcp option #{inspect(key)}; allowed: " <>
              Enum.map_join(Keyword.keys(@defaults), ", ", &inspect/1)
    end
  end

  defp bad(key, expected, v), do: Listener.bad("mcp", key, expected, v)

  ## Server

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    sessions = Sessions.new()
    config = Map.put(config, :sessions, sessions)

    httpd_options = [
      server_name: ~c"elixir_scope_mcp",
      max_body_size: config.max_body_bytes,
      max_uri_size: 2_048
    ]

    handler = {:elixir_scope_mcp, Map.drop(config, [:port])}

    case Listener.open(config, "MCP server", "/mcp", handler, [HTTP], httpd_options) do
      {:ok, httpd, port} ->
        :timer.send_interval(60_000, :sweep)
        {:ok, Map.merge(config, %{httpd: httpd, port: port})}

      {:error, reason} ->
        {:stop, {:mcp_listen_failed, reason}}
    end
  end

  defp url_of(%{bind: bind, port: port}), do: Listener.base_url(bind, port) <> "/mcp"

  @impl true
  def handle_call(:url, _from, state), do: {:reply, url_of(state), state}

  @impl true
  def handle_info(:sweep, state) do
    Sessions.sweep(state.sessions, @session_idle_ms)
    {:noreply, state}
  end

  def handle_info({:EXIT, httpd, reason}, %{httpd: httpd} = state),
    do: {:stop, {:httpd_exited, reason}, %{state | httpd: nil}}

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, %{httpd: httpd}) when is_pid(httpd), do: Listener.stop(httpd)

  def terminate(_reason, _state), do: :ok
end
