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
  require Logger

  alias ElixirScope.MCP.{HTTP, Sessions}

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
    config = config |> Map.new() |> Map.update!(:bind, &address!/1)

    if config.token == nil and not loopback?(config.bind) do
      raise ArgumentError,
            "mcp: binding to #{:inet.ntoa(config.bind)} (beyond loopback) needs a :token"
    end

    config
  end

  defp check!({:port, v}) when is_integer(v) and v in 0..65_535, do: :ok
  defp check!({:bind, v}) when is_binary(v) or is_tuple(v), do: :ok
  defp check!({:token, nil}), do: :ok

  defp check!({:token, v}) when is_binary(v) and byte_size(v) >= 16 do
    if v =~ ~r/^[\x21-\x7e]+$/,
      do: :ok,
      else: bad(:token, "printable ASCII without spaces", "(hidden)")
  end

  defp check!({key, v}) when key in [:allowed_hosts, :allowed_origins] and is_list(v) do
    if Enum.all?(v, &(is_binary(&1) and &1 != "")),
      do: :ok,
      else: bad(key, "a list of strings", v)
  end

  defp check!({:max_tokens, v}) when is_integer(v) and v in 1_000..1_000_000, do: :ok
  defp check!({:max_body_bytes, v}) when is_integer(v) and v in 1_024..67_108_864, do: :ok
  defp check!({:max_sessions, v}) when is_integer(v) and v in 1..100_000, do: :ok
  defp check!({:port, v}), do: bad(:port, "an integer in 0..65535", v)
  defp check!({:bind, v}), do: bad(:bind, "an IP address string or tuple", v)

  defp check!({:token, _}),
    do: bad(:token, "nil or a string of at least 16 characters", "(hidden)")

  defp check!({:max_tokens, v}), do: bad(:max_tokens, "an integer in 1000..1000000", v)
  defp check!({:max_body_bytes, v}), do: bad(:max_body_bytes, "an integer in 1024..67108864", v)
  defp check!({:max_sessions, v}), do: bad(:max_sessions, "an integer in 1..100000", v)
  defp check!({key, v}) when key in [:allowed_hosts, :allowed_origins], do: bad(key, "a list", v)

  defp check!({key, _}) do
    raise ArgumentError,
          "unknown mcp option #{inspect(key)}; allowed: " <>
            Enum.map_join(Keyword.keys(@defaults), ", ", &inspect/1)
  end

  defp bad(key, expected, v),
    do: raise(ArgumentError, "mcp option #{inspect(key)} must be #{expected}, got: #{inspect(v)}")

  defp address!("localhost"), do: {127, 0, 0, 1}

  defp address!(text) when is_binary(text) do
    case :inet.parse_strict_address(String.to_charlist(text)) do
      {:ok, address} -> address
      {:error, _} -> bad(:bind, "an IP address", text)
    end
  end

  defp address!(tuple) do
    if :inet.is_ip_address(tuple), do: tuple, else: bad(:bind, "an IP address", tuple)
  end

  @doc false
  def loopback?({127, _, _, _}), do: true
  def loopback?({0, 0, 0, 0, 0, 0, 0, 1}), do: true
  def loopback?(_), do: false

  ## Server

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    unless Code.ensure_loaded?(:httpd) do
      raise "OTP's :inets is not available: a release needs it in its applications"
    end

    sessions = Sessions.new()
    config = Map.put(config, :sessions, sessions)

    case start_httpd(config, 5) do
      {:ok, httpd, port} ->
        :timer.send_interval(60_000, :sweep)
        state = Map.merge(config, %{httpd: httpd, port: port})
        Logger.info("ElixirScope: MCP server at #{url_of(state)}")
        {:ok, state}

      {:error, reason} ->
        {:stop, {:mcp_listen_failed, listen_error(reason)}}
    end
  end

  # httpd nests the socket's error in its supervisors' start errors: the posix reason
  # (:eaddrinuse, :eacces, ...) is what tells what to do.
  defp listen_error({:listen, posix}) when is_atom(posix), do: posix

  defp listen_error(reason) when is_tuple(reason) do
    reason
    |> Tuple.to_list()
    |> Enum.find_value(reason, fn part ->
      case listen_error(part) do
        ^part -> nil
        posix -> posix
      end
    end)
  end

  defp listen_error(reason), do: reason

  # Standalone httpd: linked to this process, so it never outlives it. Port 0 is
  # resolved here (a standalone httpd cannot report the port it got): a free port is
  # taken and released just before httpd binds it, retried if another program wins.
  defp start_httpd(config, tries) do
    port = if config.port == 0, do: free_port(config.bind), else: config.port

    httpd_config = [
      port: port,
      bind_address: config.bind,
      ipfamily: if(tuple_size(config.bind) == 8, do: :inet6, else: :inet),
      server_name: ~c"elixir_scope_mcp",
      server_root: String.to_charlist(System.tmp_dir!()),
      document_root: String.to_charlist(System.tmp_dir!()),
      modules: [HTTP],
      max_body_size: config.max_body_bytes,
      max_header_size: 16_384,
      max_uri_size: 2_048,
      max_clients: 64,
      keep_alive_timeout: 60,
      minimum_bytes_per_second: 100,
      elixir_scope_mcp: Map.drop(config, [:port])
    ]

    case :inets.start(:httpd, httpd_config, :stand_alone) do
      {:ok, pid} ->
        {:ok, pid, port}

      {:error, _} when config.port == 0 and tries > 1 ->
        start_httpd(config, tries - 1)

      {:error, reason} ->
        {:error, reason}
    end
  end

  defp free_port(bind) do
    {:ok, socket} = :gen_tcp.listen(0, ip: bind, reuseaddr: true)
    {:ok, port} = :inet.port(socket)
    :gen_tcp.close(socket)
    port
  end

  defp url_of(%{bind: bind, port: port}) do
    host =
      case bind do
        {0, 0, 0, 0} -> "127.0.0.1"
        {0, 0, 0, 0, 0, 0, 0, 0} -> "[::1]"
        {_, _, _, _} -> List.to_string(:inet.ntoa(bind))
        _ -> "[#{:inet.ntoa(bind)}]"
      end

    "http://#{host}:#{port}/mcp"
  end

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
  def terminate(_reason, %{httpd: httpd}) when is_pid(httpd) do
    :inets.stop(:stand_alone, httpd)
  catch
    _, _ -> :ok
  end

  def terminate(_reason, _state), do: :ok
end
