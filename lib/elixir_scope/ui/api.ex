defmodule ElixirScope.UI.API do
  @moduledoc """
  The JSON API behind the web UI (`ElixirScope.UI`), under `/api/`. Every page is
  drawn from these answers; they are documented here for whoever wants to script
  against them.

  Reads are `GET`s with query parameters; the only writes, which change what is
  traced, are `POST /api/trace` with a JSON body, the CSRF token of `/api/meta` in an
  `x-csrf-token` header and a same-origin `Origin`. Answers are JSON objects; an error
  is `{"error": message}` with status 400 (a bad parameter), 404 (nothing there) or
  409 (ElixirScope cannot do it now).

  Timestamps (`ts`, `from`, `to`, ...) are the recording's raw monotonic timestamps
  (native units) written as strings of digits; `/api/meta` gives the time offset
  (`clock.offset`, null when a loaded recording has none) and `clock.per_second` to
  turn them into wall-clock times. Pids are written `<0.123.0>`. Terms (states,
  messages, arguments) are tagged JSON (`ElixirScope.UI.TermJSON`). Listings are
  paged: `limit`, and `next` in the answer is the cursor to pass back.

  In a cluster (`ElixirScope.Cluster`), every request takes `node=` (a member's name,
  as `/api/meta`'s `nodes` lists them): the member answers it, as its own UI would.

  | endpoint | answers |
  |---|---|
  | `GET /api/meta` | version, node and the cluster's nodes, live or loaded recording, what is traced, store counts, clock, CSRF token |
  | `GET /api/processes?view=live\\|exited&sort=&dir=&q=&offset=&limit=` | processes, live (or alive at the end of a loaded recording) or exited |
  | `GET /api/process?pid=` | one process: live info, recorded history, relationships, crash |
  | `GET /api/states?pid=&after=&before=&limit=` | the ids of a process's recorded states (the slider) |
  | `GET /api/state?pid=&id=` | one state: callback, cause, state, diff from the one before, size |
  | `GET /api/messages?pids=&from=&to=&limit=` | messages among the pids in a window, their exits and crashes, and the density over time |
  | `GET /api/peers?pid=` | the processes a process exchanged messages with |
  | `GET /api/calls?pid=&from=&to=&limit=` | a process's call tree over a window |
  | `GET /api/call?id=` | one call whole: arguments, result or exception, nested calls |
  | `GET /api/modules` | modules with recorded calls |
  | `GET /api/performance?module=` | per-function latency: calls, p50/p90/p99, max, exceptions |
  | `GET /api/slowest?module=&limit=` | the slowest calls |
  | `GET /api/crashes?before=&limit=` | crashes, newest first, with last states and messages |
  | `GET /api/phoenix/requests?before=&limit=` | Phoenix requests, newest first |
  | `GET /api/phoenix/request?id=` | everything the serving process did for one request |
  | `GET /api/phoenix/live_views?limit=` | LiveView processes |
  | `GET /api/phoenix/live_view?pid=` | a LiveView's mounts, events, renders, states and assigns diffs |
  | `GET /api/tail?after=&types=&pid=&limit=` | events after a cursor, newest kept |
  | `GET /api/event?id=` | one event whole |
  | `GET /api/export/chrome?pids=&from=&to=` | a Chrome trace (Perfetto) file |
  | `GET /api/export/mermaid?pids=&from=&to=` | a Mermaid sequence diagram file |
  | `POST /api/trace` | `{"action": "trace_process" \\| "trace_genserver" \\| "untrace_process" \\| "trace_module" \\| "stop_trace_module", "pid" \\| "module": ...}` |
  """

  alias ElixirScope.UI.API.{Actions, Calls, Crashes, Events, Exports, Meta, Phoenix}
  alias ElixirScope.UI.API.{Processes, States}
  alias ElixirScope.UI.Params

  @routes %{
    ["meta"] => {Meta, :meta},
    ["processes"] => {Processes, :list},
    ["process"] => {Processes, :one},
    ["states"] => {States, :ids},
    ["state"] => {States, :step},
    ["messages"] => {Events, :messages},
    ["peers"] => {Events, :peers},
    ["tail"] => {Events, :tail},
    ["event"] => {Events, :event},
    ["calls"] => {Calls, :tree},
    ["call"] => {Calls, :call},
    ["modules"] => {Calls, :modules},
    ["performance"] => {Calls, :performance},
    ["slowest"] => {Calls, :slowest},
    ["crashes"] => {Crashes, :list},
    ["phoenix", "requests"] => {Phoenix, :requests},
    ["phoenix", "request"] => {Phoenix, :request},
    ["phoenix", "live_views"] => {Phoenix, :live_views},
    ["phoenix", "live_view"] => {Phoenix, :live_view},
    ["export", "chrome"] => {Exports, :chrome},
    ["export", "mermaid"] => {Exports, :mermaid}
  }

  @doc false
  # The answer to one API request, past the transport's checks: `path` is what follows
  # /api/, `params` the decoded query, `ctx` has the request's `:body` and the
  # server's `:csrf` token. Returns {status, json_term} or
  # {:download, filename, content_type, binary}.
  def handle(method, path, params, ctx) do
    {node, params} = Map.pop(params, "node")

    case ElixirScope.Cluster.member_named(node) do
      nil ->
        answer(method, path, params, ctx)

      member ->
        member
        |> ElixirScope.Cluster.Remote.forward({__MODULE__, :handle}, [method, path, params, ctx])
        |> cluster_nodes(path)
    end
  rescue
    e in ArgumentError -> {400, %{"error" => Exception.message(e)}}
  end

  defp answer(method, path, params, ctx) do
    case {method, path} do
      {"POST", ["trace"]} ->
        Actions.trace(ctx)

      {"GET", path} when is_map_key(@routes, path) ->
        {module, fun} = Map.fetch!(@routes, path)
        reply(apply(module, fun, [params, ctx]))

      {_, path} when is_map_key(@routes, path) or path == ["trace"] ->
        {405, %{"error" => "method not allowed"}}

      _ ->
        {404, %{"error" => "no such API endpoint"}}
    end
  rescue
    e in Params.Error -> {400, %{"error" => e.message}}
    e in ArgumentError -> {400, %{"error" => Exception.message(e)}}
    e in RuntimeError -> {409, %{"error" => not_running(Exception.message(e))}}
  end

  # A member knows only itself: the page's node selector lists the coordinator's nodes.
  defp cluster_nodes({200, %{"nodes" => _} = meta}, ["meta"]),
    do: {200, %{meta | "nodes" => Enum.map(ElixirScope.Cluster.nodes(:all), &Atom.to_string/1)}}

  defp cluster_nodes(answer, _path), do: answer

  defp reply({:download, _, _, _} = download), do: download
  defp reply({status, body}) when is_integer(status), do: {status, body}
  defp reply(body), do: {200, body}

  defp not_running(message) do
    if message =~ "not running",
      do:
        "ElixirScope's store is not running: start it with ElixirScope.setup/1 or load a recording",
      else: message
  end
end
