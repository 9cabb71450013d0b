defmodule ElixirScope.Test.PhoenixApp do
  @moduledoc """
  The real Phoenix application of `test/phoenix_app` (Phoenix 1.7.21, LiveView 0.20.17,
  Bandit, from `../shared/phoenix`), run in a peer node for the Phoenix integration tests and
  benchmarks.

  `make phoenix-app` compiles it (with ElixirScope as a path dependency, as an application
  that uses ElixirScope has it) when `../shared/phoenix` is there; `available?/0` says whether
  that build exists. `start!/1` boots a fresh peer node on its code paths — ElixirScope's
  own from this VM, so the peer runs the code under test and its test helpers (such as
  `ElixirScope.Test.TraceState`) —, configures the application as its `config/config.exs`
  says, with ElixirScope started from its `application.ex` when `elixir_scope:` options
  are given, and returns a handle with the port Bandit listens on. Everything ElixirScope
  recorded is then asked for with `call/4` inside that node, and requests go to it with
  `http/4` (`:httpc`).

  The peer is connected over standard I/O (no distribution, no epmd) and dies with the test
  process that started it.
  """

  @root Path.expand("../phoenix_app", __DIR__)

  defstruct [:peer, :port, :url]

  @type t :: %__MODULE__{peer: pid(), port: :inet.port_number(), url: String.t()}

  @doc "The folder of the compiled application: `make phoenix-app` builds one per OTP release."
  def build_path,
    do: Path.expand("../../build/otp#{:erlang.system_info(:otp_release)}/scope_app", __DIR__)

  @doc "Whether the application was built (`../shared/phoenix` was there)."
  def available?, do: File.dir?(Path.join(build_path(), "lib/scope_app/ebin"))

  @doc "The line printed when the Phoenix tests are skipped."
  def skip_reason,
    do:
      "the real Phoenix application is not built (../shared/phoenix is absent, " <>
        "or `make phoenix-app` was not run): Phoenix integration tests skipped"

  @doc """
  Boots the application in a fresh peer node. Options:

    * `:elixir_scope` — options for `ElixirScope.setup/1`, called from the application's
      `application.ex` (omit to run without ElixirScope);
    * `:trace_cart` — also `ElixirScope.trace_genserver(ScopeApp.Cart)` there;
    * `:env` — more application environment, `[{app, key, value}]`;
    * `:logger_level` — the peer's Logger level (default `:warning`).
  """
  @spec start!(keyword()) :: t()
  def start!(opts \\ []) do
    # The application and Phoenix from their build; ElixirScope as this VM runs it (the
    # code under test, with its test helpers, never a copy `make phoenix-app` compiled
    # before the last change); Elixir's own applications from this VM (the same
    # toolchain).
    paths =
      Path.join(build_path(), "lib/*/ebin")
      |> Path.wildcard()
      |> Enum.reject(&(Path.basename(Path.dirname(&1)) == "elixir_scope"))
      |> Enum.map(&to_charlist/1)

    elixir_paths =
      for app <- [:elixir, :logger, :eex, :mix, :elixir_scope],
          dir = :code.lib_dir(app),
          is_list(dir),
          do: Path.join(dir, "ebin") |> to_charlist()

    args = Enum.flat_map(elixir_paths ++ paths, &[~c"-pa", &1])

    {:ok, peer, _nonode} =
      :peer.start_link(%{
        connection: :standard_io,
        args: args ++ [~c"-kernel", ~c"logger_level", ~c"warning"],
        wait_boot: 60_000
      })

    config = Config.Reader.read!(Path.join(@root, "config/config.exs"))

    scope =
      for key <- [:elixir_scope, :trace_cart], Keyword.has_key?(opts, key), do: {key, opts[key]}

    level = Keyword.get(opts, :logger_level, :warning)

    env =
      config
      |> Keyword.update(:scope_app, scope, &Keyword.merge(&1, scope))
      |> Keyword.update(:logger, [level: level], &Keyword.put(&1, :level, level))

    # Loaded first: loading an application sets its defaults over what was put before,
    # where a release's configuration would win.
    extra = Keyword.get(opts, :env, [])

    for app <- Enum.uniq(Keyword.keys(env) ++ Enum.map(extra, &elem(&1, 0))),
        do: :peer.call(peer, Application, :load, [app])

    :ok = :peer.call(peer, Application, :put_all_env, [env])

    for {app, key, value} <- extra,
        do: :ok = :peer.call(peer, Application, :put_env, [app, key, value])

    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:scope_app], 60_000)

    {:ok, {_ip, port}} = :peer.call(peer, ScopeAppWeb.Endpoint, :server_info, [:http])
    %__MODULE__{peer: peer, port: port, url: "http://127.0.0.1:#{port}"}
  end

  @doc "Stops the peer node."
  def stop(%__MODULE__{peer: peer}) do
    :peer.stop(peer)
  catch
    :exit, _ -> :ok
  end

  @doc "Calls `module.fun(args...)` in the application's node (raising there raises here)."
  def call(%__MODULE__{peer: peer}, module, fun, args \\ [], timeout \\ 30_000),
    do: :peer.call(peer, module, fun, args, timeout)

  @doc """
  An HTTP request to the application with `:httpc`: `%{status:, headers:, body:}`.
  `body` is sent as JSON when it is a map, form-encoded when it is a keyword list.
  """
  def http(%__MODULE__{url: url}, method, path, body \\ nil, headers \\ []) do
    {:ok, _} = Application.ensure_all_started(:inets)
    headers = Enum.map(headers, fn {k, v} -> {to_charlist(k), to_charlist(v)} end)
    target = to_charlist(url <> path)

    request =
      case body do
        nil ->
          {target, headers}

        %{} = map ->
          {target, headers, ~c"application/json", ElixirScope.JSON.encode!(map)}

        kv when is_list(kv) ->
          {target, headers, ~c"application/x-www-form-urlencoded", URI.encode_query(kv)}
      end

    {:ok, {{_, status, _}, resp_headers, resp_body}} =
      :httpc.request(method, request, [timeout: 30_000], body_format: :binary)

    %{
      status: status,
      headers: Map.new(resp_headers, fn {k, v} -> {to_string(k), to_string(v)} end),
      body: resp_body
    }
  end
end
