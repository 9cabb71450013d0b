defmodule ElixirScope.UI do
  @moduledoc """
  A web UI inside your application: the time-travel viewer of what ElixirScope
  records, served on OTP's own `:inets` web server.

      ElixirScope.setup(ui: true)                    # http://127.0.0.1:4048/
      ElixirScope.setup(ui: [port: 0])               # a free port: ElixirScope.UI.url()
      ElixirScope.UI.url()                           #=> "http://127.0.0.1:4048/"

  On a recording made elsewhere (post-mortem), load it and start the UI on its own:

      ElixirScope.load("scope.esd")
      ElixirScope.UI.start()

  Views, each at its own URL (a link can be shared or reloaded): processes; a
  GenServer's state timeline (a slider, ←/→ or j/k, the callback and message behind
  each step, the diff from the step before, the state as a tree); messages between
  chosen processes as a sequence diagram over a window you brush; a process's calls
  as an icicle chart with a per-function latency table; crashes with their
  stacktrace, last states and last messages; Phoenix requests and LiveViews; a live
  tail of new events; exports (Chrome trace for Perfetto, Mermaid). Times show as
  wall-clock times with microseconds, and as offsets from an event you pick; the raw
  monotonic value is a click away (copy) for queries.

  The page is static files in `priv/ui` (hand-written ES modules and a vendored
  Preact + htm, no build step); everything it shows comes from a small JSON API,
  `ElixirScope.UI.API`. Inside a Phoenix application, behind your own
  authentication, mount `ElixirScope.UI.Plug` instead.

  ## Options (`ui: [...]`)

  | option | default | meaning |
  |---|---|---|
  | `:port` | `4048` | TCP port; `0` picks a free one (see `url/0`) |
  | `:bind` | `"127.0.0.1"` | address to listen on (`"::1"`, `"0.0.0.0"`, or a tuple) |
  | `:token` | `nil` | a secret of at least 16 characters needed for every page and API call; mandatory when `:bind` is not a loopback address |
  | `:allowed_hosts` | `[]` | `Host` names accepted besides `localhost`, `127.0.0.1` and `::1` |
  | `:allowed_origins` | `[]` | browser `Origin`s accepted besides loopback ones |

  With a token, open the URL once with `?token=...`: the server answers with an
  HttpOnly, SameSite=Strict cookie and the same page without the token in its
  address. Scripts can send `Authorization: Bearer ...` instead.

  ## Security

  As the MCP server (`ElixirScope.MCP`): loopback by default, beyond loopback only
  with a token; `Host` and `Origin` checked on every request (DNS-rebinding
  protection); no atom is ever created from a request. Every answer carries
  `cache-control: no-store` and a Content-Security-Policy that allows only the page's
  own scripts, styles and requests — no inline script, nothing from the internet.
  The UI reads; the only requests that change anything (trace or stop tracing a
  process or a module) are POSTs that must be same-origin and carry the page's CSRF
  token.

  The server is an instance of OTP's `:inets` web server of its own, standalone
  (linked to it, stopped with it); ElixirScope declares `:inets` as an application it
  needs, so releases include it.
  """
  use GenServer

  alias ElixirScope.UI.HTTP
  alias ElixirScope.Web.Listener

  @defaults [port: 4048, bind: "127.0.0.1", token: nil, allowed_hosts: [], allowed_origins: []]

  @doc "The default options."
  @spec defaults() :: keyword()
  def defaults, do: @defaults

  @doc """
  Starts the UI server linked to the caller (what `setup(ui: ...)` does under
  ElixirScope's supervisor). Options as in the table above. Raises `ArgumentError`
  for a bad option.
  """
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ []),
    do: GenServer.start_link(__MODULE__, validate!(opts), name: __MODULE__)

  @doc """
  Starts the UI server on its own, not linked to the caller: for a recording opened
  with `ElixirScope.load/1`, or a store started with `ElixirScope.TraceDB.start_link/1`.
  Returns `{:ok, url}`. Stop it with `stop/0`.
  """
  @spec start(keyword()) :: {:ok, String.t()} | {:error, term()}
  def start(opts \\ []) do
    config = validate!(opts)

    case GenServer.start(__MODULE__, config, name: __MODULE__) do
      {:ok, _pid} -> {:ok, url()}
      {:error, reason} -> {:error, reason}
    end
  end

  @doc "Stops the UI server started by `start/1`. Safe to call when none runs."
  @spec stop() :: :ok
  def stop do
    case Process.whereis(__MODULE__) do
      nil -> :ok
      pid -> GenServer.stop(pid)
    end
  catch
    :exit, _ -> :ok
  end

  @doc false
  def child_spec(opts), do: %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}}

  @doc """
  The URL of the UI, e.g. `"http://127.0.0.1:4048/"`, or `nil` when it is not running.
  With a token, open it once as `url <> "?token=" <> token`.
  """
  @spec url() :: String.t() | nil
  def url do
    case Process.whereis(__MODULE__) do
      nil -> nil
      pid -> GenServer.call(pid, :url)
    end
  end

  @doc false
  # Options over the defaults, checked; a map ready for the server.
  def validate!(true), do: validate!([])

  def validate!(opts) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "ui options must be true or a keyword list, got: #{inspect(opts)}")

    config = Keyword.merge(@defaults, opts)

    for {key, _} = option <- config, Listener.check!("ui", option) == :unknown do
      raise ArgumentError,
            "unknown ui option #{inspect(key)}; allowed: " <>
              Enum.map_join(Keyword.keys(@defaults), ", ", &inspect/1)
    end

    Listener.finish!("ui", config)
  end

  @doc false
  # The CSRF token the page sends with its POSTs: one per VM, shared by the UI server
  # and `ElixirScope.UI.Plug`.
  def csrf_token do
    case :persistent_term.get({__MODULE__, :csrf}, nil) do
      nil ->
        token = Base.url_encode64(:crypto.strong_rand_bytes(24), padding: false)
        :persistent_term.put({__MODULE__, :csrf}, token)
        token

      token ->
        token
    end
  end

  @doc false
  # Notes where ElixirScope.UI.Plug is mounted ("/scope"), so that the Phoenix handler
  # leaves the UI's own requests out of the recording.
  def note_mount(prefix) do
    mounts = :persistent_term.get({__MODULE__, :mounts}, [])
    unless prefix in mounts, do: :persistent_term.put({__MODULE__, :mounts}, [prefix | mounts])
    :ok
  end

  @doc false
  # Whether a request path is one of the UI's, under a mount of ElixirScope.UI.Plug.
  def own_path?(path) when is_binary(path) do
    Enum.any?(:persistent_term.get({__MODULE__, :mounts}, []), fn prefix ->
      path == prefix or String.starts_with?(path, prefix <> "/")
    end)
  end

  def own_path?(_path), do: false

  ## Server

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    # The token cookie's name carries the port: cookies are shared by every port of
    # a host, and two UIs on one machine must not take each other's.
    handler = fn port ->
      Map.merge(config, %{check_host: true, csrf: csrf_token(), cookie: "elixir_scope_ui_#{port}"})
    end

    httpd_options = [server_name: ~c"elixir_scope_ui", max_body_size: 65_536]

    case Listener.open(config, "web UI", "/", {:elixir_scope_ui, handler}, [HTTP], httpd_options) do
      {:ok, httpd, port} ->
        warm_up()
        {:ok, Map.merge(config, %{httpd: httpd, port: port})}

      {:error, reason} ->
        {:stop, {:ui_listen_failed, reason}}
    end
  end

  # The page's files read and gzipped, and the code that answers loaded, before the
  # first visitor comes (outside a release, modules load when first called).
  defp warm_up do
    ElixirScope.UI.Assets.sizes()

    Enum.each(
      [
        ElixirScope.UI.Router,
        ElixirScope.UI.API,
        ElixirScope.UI.API.Meta,
        ElixirScope.UI.API.Processes,
        ElixirScope.UI.API.Shape,
        ElixirScope.UI.TermJSON,
        ElixirScope.UI.Source,
        ElixirScope.UI.Params,
        ElixirScope.JSON
      ],
      &Code.ensure_loaded/1
    )
  end

  defp url_of(%{bind: bind, port: port}), do: Listener.base_url(bind, port) <> "/"

  @impl true
  def handle_call(:url, _from, state), do: {:reply, url_of(state), state}

  @impl true
  def handle_info({:EXIT, httpd, reason}, %{httpd: httpd} = state),
    do: {:stop, {:httpd_exited, reason}, %{state | httpd: nil}}

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, %{httpd: httpd}) when is_pid(httpd), do: Listener.stop(httpd)
  def terminate(_reason, _state), do: :ok
end
