defmodule ElixirScope.Phoenix do
  @moduledoc """
  Phoenix requests, LiveView callbacks, channels and PubSub broadcasts, joined to the
  timeline of the process that served them.

  Phoenix, Plug and LiveView report what they do through `:telemetry`; what the
  serving process did meanwhile (messages, calls, GenServer state changes) is what
  ElixirScope's tracer records. `setup(phoenix: true)` puts both in the same store, on
  the same pid, so one query shows a request or a LiveView event *and* everything its
  process did while handling it.

      ElixirScope.setup(phoenix: true)
      ElixirScope.trace_module(MyApp.Cart)          # calls, in whichever process serves
      ElixirScope.trace_genserver(lv_pid)           # a LiveView's states and messages

      [req | _] = ElixirScope.Phoenix.requests(path: "/cart", order: :desc, limit: 1)
      ElixirScope.Phoenix.request_timeline(req)     # everything the process did for it
      ElixirScope.Phoenix.live_view_timeline(lv)    # mounts, events, renders, states

  Request processes come and go (one per request with Cowboy, one per connection with
  Bandit): calls of traced modules and functions are recorded in every process, and
  `trace_all: true` records every process's messages as well.

  ## What is captured

  With `phoenix: true`, when `:telemetry` is loaded, a handler is attached to:

    * `[:phoenix, :endpoint, :start | :stop]` — a request (`kind: :endpoint`)
    * `[:phoenix, :router_dispatch, :start | :stop | :exception]` (`kind: :router_dispatch`)
    * `[:phoenix, :live_view | :live_component, callback, :start | :stop | :exception]`
      for `callback` in `:mount`, `:handle_params`, `:handle_event`, `:render` (and
      `:update` for components) (`kind: :live_view | :live_component`)
    * `[:phoenix, :channel_joined]`, `[:phoenix, :channel_handled_in]`,
      `[:phoenix, :socket_connected]` (`kind:` the event's last atom)

  Each becomes a `:phoenix` event whose `:pid` is the process that emitted it —
  telemetry runs handlers in that process, and it is the one that served the request
  or runs the LiveView. Its fields, when Phoenix gives them:

  | field | what |
  |---|---|
  | `kind`, `phase`, `callback` | which event (`phase`: `:start`, `:stop`, `:exception`) |
  | `duration` | native time units, on `:stop`/`:exception` and single events |
  | `method`, `path`, `status` | from the conn (never its headers, cookies or query string) |
  | `route`, `action`, `path_params` | from the router (`route` also on the endpoint `:stop`) |
  | `module` | the endpoint, the router's plug, the LiveView, the component, the channel or the user socket; indexed, so `TraceDB.query_events(type: :phoenix, module: MyLive)` is fast |
  | `view`, `event`, `uri`, `connected` | the LiveView module (`socket.view`), the event name, the URI, whether the socket is connected |
  | `params`, `session`, `assigns` | redacted (below); `assigns` on `:stop`, without `__changed__` |
  | `topic`, `result`, `transport`, `endpoint` | channels and sockets |
  | `class`, `error` | on `:exception`: the kind and a one-line message |

  Conns and sockets are never stored whole: only these fields are taken from them.
  LiveView inputs (`params`, `session`, `uri`) are kept on `:start` and `:exception`
  events, outputs (`assigns`, `duration`) on `:stop`; a request's `params`, parsed
  while it runs, and its `status` on the endpoint's `:stop`.

  PubSub broadcasts have no telemetry of their own: when `Phoenix.PubSub` is loaded,
  its broadcast functions are traced with `ElixirScope.trace_function/1`, so each
  broadcast is a `:call` event (module `Phoenix.PubSub`) of the process that
  broadcast, recorded at the `:full` tracing level; `broadcasts/1` lists them with
  their topic and message. Tracing them stops with `ElixirScope.stop/0`.

  ## Redaction

  `params`, `session` and `assigns` go through the `:redact` list of `setup/1`
  (default `["password", "token", "secret"]`): a map key or keyword key that contains
  one of these strings, whatever the case, has its value replaced by `"[REDACTED]"`,
  at any depth — as Phoenix's `:filter_parameters` does for its logs. The values never
  reach the store. Broadcast messages and traced messages are recorded as the tracer
  records any message or argument: they are not redacted.

  ## Cost and safety

  A handler extracts a few fields, redacts, and appends one event to the C store: no
  process, no message; copying and redacting `params` and `assigns` costs what their
  size does (a payload above `:max_payload_bytes` is stored truncated). The route of
  the request being served waits in the serving process's dictionary, under this
  module's own key, from the router's `:start` to the endpoint's `:stop` (whose conn
  has no route). A handler never raises into Phoenix (a raising handler would be
  detached by telemetry): whatever the metadata — missing keys, `nil`, not a map — it
  stores what it can or nothing. Phoenix events are recorded at every tracing level
  (they are like the events you store with `ElixirScope.TraceDB.store_event/2`) and
  are subject to `:sample_rate`.

  Without `:telemetry`, `phoenix: true` logs one warning and everything else runs.
  """

  use GenServer

  alias ElixirScope.{Event, Native, TraceDB}
  require Logger

  @handler_id __MODULE__
  @redacted "[REDACTED]"
  @pubsub Phoenix.PubSub
  # The broadcast functions of Phoenix.PubSub. Their shorter arities are
  # default-argument heads that call the longest one, which the tracer sees (local
  # calls are traced too): tracing only the longest records each broadcast once.
  @broadcasts [
    :broadcast,
    :broadcast_from,
    :local_broadcast,
    :local_broadcast_from,
    :direct_broadcast
  ]
  # Where the topic is among each one's arguments.
  @topic_at %{
    broadcast: 1,
    broadcast_from: 2,
    local_broadcast: 1,
    local_broadcast_from: 2,
    direct_broadcast: 2
  }
  @lv_callbacks [:mount, :handle_params, :handle_event, :render]
  @lc_callbacks @lv_callbacks ++ [:update]
  @phases [:start, :stop, :exception]
  @route_key {__MODULE__, :route}
  @page 256

  @query_keys [
    :pid,
    :module,
    :timestamp_start,
    :timestamp_end,
    :limit,
    :order,
    :after_id,
    :before_id,
    :store
  ]
  @event_keys [
    :kind,
    :phase,
    :callback,
    :view,
    :event,
    :topic,
    :method,
    :path,
    :status,
    :route
  ]

  @typedoc "A `:phoenix` event (or a request: the endpoint `:stop` event)."
  @type event :: Event.t()

  @doc "The telemetry events `setup(phoenix: true)` attaches to."
  @spec telemetry_events() :: [[atom()]]
  def telemetry_events do
    [
      [:phoenix, :endpoint, :start],
      [:phoenix, :endpoint, :stop],
      [:phoenix, :router_dispatch, :start],
      [:phoenix, :router_dispatch, :stop],
      [:phoenix, :router_dispatch, :exception],
      [:phoenix, :channel_joined],
      [:phoenix, :channel_handled_in],
      [:phoenix, :socket_connected]
    ] ++
      for(c <- @lv_callbacks, p <- @phases, do: [:phoenix, :live_view, c, p]) ++
      for c <- @lc_callbacks, p <- @phases, do: [:phoenix, :live_component, c, p]
  end

  ## Queries

  @doc """
  The `:phoenix` events matching `filters`, oldest first (newest first with
  `order: :desc`), as `ElixirScope.Event`s.

  Filters: those of `ElixirScope.TraceDB.query_events/1` that apply (`:pid`,
  `:module`, `:timestamp_start`, `:timestamp_end`, `:limit`, `:order`, `:after_id`,
  `:before_id`, `:store`), which the C store answers through its indexes, and fields
  of the events compared for equality: `:kind`, `:phase`, `:callback`, `:view`,
  `:event`, `:topic`, `:method`, `:path`, `:status`, `:route`.

      ElixirScope.Phoenix.events(kind: :channel_joined, topic: "room:lobby")

  Raises `ArgumentError` for an unknown filter or a value of the wrong kind.
  """
  @spec events(keyword()) :: [event()]
  def events(filters \\ []) do
    {query, match} = split_filters!(filters, "events/1")
    collect(query, fn e -> Enum.all?(match, fn {k, v} -> Map.get(e, k) == v end) end)
  end

  @doc """
  The requests recorded: one per endpoint `:stop` event, with `:method`, `:path`,
  `:status`, `:route`, `:params` (redacted), `:duration` (native units) and `:pid`,
  the process that served it. Takes the filters of `events/1`.

      ElixirScope.Phoenix.requests(status: 500, order: :desc, limit: 10)

  Pass one to `request_timeline/2`.
  """
  @spec requests(keyword()) :: [event()]
  def requests(filters \\ []) do
    {query, match} = split_filters!(filters, "requests/1")

    if Keyword.has_key?(match, :kind) or Keyword.has_key?(match, :phase),
      do: raise(ArgumentError, "requests/1 selects kind and phase itself; use events/1")

    match = [kind: :endpoint, phase: :stop] ++ match
    collect(query, fn e -> Enum.all?(match, fn {k, v} -> Map.get(e, k) == v end) end)
  end

  @doc """
  Everything the serving process of `request` did while serving it, oldest first:
  its `:phoenix` events from the endpoint `:start` to the endpoint `:stop` (or the
  router's `:stop`, which Phoenix emits after it) and, for the processes ElixirScope
  traces, its messages sent and received, calls and returns, PubSub broadcasts and
  state changes in between.

  `request` is one of `requests/1` (or any endpoint `:phoenix` event), or its id.
  Options: `:type`, `:limit`, `:order`, `:store`. Returns `[]` when the request is no
  longer in the store. Raises `ArgumentError` when it is not a request.
  """
  @spec request_timeline(event() | pos_integer(), keyword()) :: [event()]
  def request_timeline(request, opts \\ []) do
    opts = timeline_opts!(opts, [:type, :limit, :order, :store], "request_timeline/2")
    store = Keyword.get(opts, :store, TraceDB)

    case fetch(request, store) do
      nil ->
        []

      %{type: :phoenix, kind: :endpoint, pid: pid} = event when is_pid(pid) ->
        {first, last} = request_bounds(event, store)

        TraceDB.query_structs(
          [pid: pid, timestamp_start: elem(first, 0), timestamp_end: elem(last, 0)] ++ opts,
          Event
        )
        |> Enum.filter(&(key(&1) >= first and key(&1) <= last))

      other ->
        raise ArgumentError,
              "request_timeline/2 expects a request (an endpoint :phoenix event, as " <>
                "requests/1 returns) or its id, got: #{inspect(other)}"
    end
  end

  @doc """
  The life of a LiveView process, oldest first: its `:phoenix` events (mounts,
  `handle_params`, events, renders, components) and its `:state` events, each with
  `:diff` from the state before (`ElixirScope.TimeTravel.state_timeline/2`) — trace
  the process with `ElixirScope.trace_genserver/1` to have these. The `:stop` events
  that carry `:assigns` get `:diff` too: the change from the assigns of the previous
  such event in this listing (`nil` for the first).

  Options: `:limit`, `:order`, `:timestamp_start`, `:timestamp_end`, `:store`.
  """
  @spec live_view_timeline(pid(), keyword()) :: [event()]
  def live_view_timeline(pid, opts \\ [])

  def live_view_timeline(pid, opts) when is_pid(pid) do
    opts =
      timeline_opts!(
        opts,
        [:limit, :order, :timestamp_start, :timestamp_end, :store],
        "live_view_timeline/2"
      )

    phoenix = TraceDB.query_structs([type: :phoenix, pid: pid] ++ opts, Event)
    states = TraceDB.query_timeline([type: :state, pid: pid] ++ opts, Event)
    desc? = Keyword.get(opts, :order, :asc) == :desc

    merged =
      (phoenix ++ states)
      |> Enum.sort_by(&key/1, if(desc?, do: :desc, else: :asc))
      |> take(Keyword.get(opts, :limit))

    # assigns diffs are computed oldest first, whatever the order asked for
    merged
    |> then(&if(desc?, do: Enum.reverse(&1), else: &1))
    |> diff_assigns()
    |> then(&if(desc?, do: Enum.reverse(&1), else: &1))
  end

  def live_view_timeline(other, _opts),
    do: raise(ArgumentError, "live_view_timeline/2 expects a pid, got: #{inspect(other)}")

  @doc """
  The PubSub broadcasts recorded (`:call` events of `Phoenix.PubSub`'s broadcast
  functions, traced with `setup(phoenix: true)`), each with `:topic` and `:message`
  taken from its arguments. Filters: `:pid` (the broadcasting process), `:topic`,
  `:timestamp_start`, `:timestamp_end`, `:limit`, `:order`, `:after_id`,
  `:before_id`, `:store`.
  """
  @spec broadcasts(keyword()) :: [event()]
  def broadcasts(filters \\ []) do
    unless Keyword.keyword?(filters),
      do: raise(ArgumentError, "broadcasts/1 expects a keyword list, got: #{inspect(filters)}")

    {topic, query} = Keyword.pop(filters, :topic)

    if topic != nil and not is_binary(topic),
      do: raise(ArgumentError, "filter :topic must be a string, got: #{inspect(topic)}")

    allowed = @query_keys -- [:module]
    known_keys!(query, allowed, "broadcasts/1 filter", [:topic | allowed])

    collect([type: :call, module: @pubsub] ++ query, fn e ->
      e[:function] in @broadcasts and (topic == nil or e[:topic] == topic)
    end)
  end

  ## Collecting: pages of an indexed query, filtered on the way, up to the limit

  defp collect(filters, keep?) do
    filters = Keyword.put_new(filters, :type, :phoenix)
    {limit, filters} = Keyword.pop(filters, :limit)

    unless limit == nil or (is_integer(limit) and limit >= 0),
      do:
        raise(
          ArgumentError,
          "filter :limit must be a non-negative integer, got: #{inspect(limit)}"
        )

    order = Keyword.get(filters, :order, :asc)
    page(filters, order, nil, keep?, limit, @page, [])
  end

  defp page(_filters, _order, _cursor, _keep?, 0, _size, acc), do: Enum.reverse(acc)

  defp page(filters, order, cursor, keep?, left, size, acc) do
    events = TraceDB.query_structs(bounded(filters, order, cursor) ++ [limit: size], Event)
    fresh = if cursor, do: Enum.filter(events, &beyond?(&1, cursor, order)), else: events
    {acc, left} = take_matching(Enum.map(fresh, &enrich/1), keep?, acc, left)

    cond do
      left == 0 or length(events) < size -> Enum.reverse(acc)
      # a whole page at the cursor's timestamp: look further with a larger one
      fresh == [] -> page(filters, order, cursor, keep?, left, size * 4, acc)
      true -> page(filters, order, key(List.last(events)), keep?, left, @page, acc)
    end
  end

  defp bounded(filters, _order, nil), do: filters

  defp bounded(filters, :asc, {ts, _}),
    do:
      Keyword.put(filters, :timestamp_start, max(ts, Keyword.get(filters, :timestamp_start, ts)))

  defp bounded(filters, :desc, {ts, _}),
    do: Keyword.put(filters, :timestamp_end, min(ts, Keyword.get(filters, :timestamp_end, ts)))

  defp beyond?(event, cursor, :asc), do: key(event) > cursor
  defp beyond?(event, cursor, :desc), do: key(event) < cursor

  defp take_matching([], _keep?, acc, left), do: {acc, left}
  defp take_matching(_events, _keep?, acc, 0), do: {acc, 0}

  defp take_matching([e | rest], keep?, acc, left) do
    if keep?.(e),
      do: take_matching(rest, keep?, [e | acc], decrement(left)),
      else: take_matching(rest, keep?, acc, left)
  end

  defp decrement(nil), do: nil
  defp decrement(n), do: n - 1

  # Broadcast calls get their topic and message.
  defp enrich(%{type: :call, module: @pubsub, function: f, args: args} = e)
       when is_list(args) do
    at = Map.get(@topic_at, f, 1)

    Map.merge(e, %{
      topic: Enum.at(args, at),
      message: Enum.at(args, at + 1)
    })
  end

  defp enrich(e), do: e

  defp key(%{timestamp: ts, id: id}), do: {ts, id}

  defp take(list, nil), do: list
  defp take(list, n), do: Enum.take(list, n)

  ## Request bounds

  defp fetch(id, store) when is_integer(id) and id > 0,
    do: store |> TraceDB.store!() |> Native.get(id)

  defp fetch(%{id: id}, store) when is_integer(id) and id > 0, do: fetch(id, store)

  defp fetch(other, _store),
    do:
      raise(
        ArgumentError,
        "request_timeline/2 expects a request (as requests/1 returns) or its id, " <>
          "got: #{inspect(other)}"
      )

  # {first, last} as {timestamp, id}: from the endpoint :start to the endpoint :stop,
  # or to the router's :stop/:exception that follows it before the next request.
  defp request_bounds(%{phase: :start, pid: pid} = start, store) do
    stop =
      first_after(start, pid, store, fn e ->
        e[:kind] == :endpoint or
          (e[:kind] == :router_dispatch and e[:phase] in [:stop, :exception])
      end)

    case stop do
      %{kind: :endpoint, phase: :stop} = stop -> {key(start), key(router_end(stop, store))}
      %{kind: :router_dispatch} = rd -> {key(start), key(rd)}
      # the next request, or none yet: everything up to it, or up to now
      %{} = next -> {key(start), {next.timestamp - 1, next.id}}
      nil -> {key(start), {System.monotonic_time(), :infinity}}
    end
  end

  defp request_bounds(%{pid: pid} = stop, store) do
    start =
      collect(
        [pid: pid, timestamp_end: stop.timestamp, order: :desc, limit: 1, store: store],
        fn e -> e[:kind] == :endpoint and e[:phase] == :start and key(e) < key(stop) end
      )

    first =
      case {start, stop[:duration]} do
        {[start], _} -> key(start)
        {[], duration} when is_integer(duration) -> {stop.timestamp - duration, 0}
        {[], _} -> key(stop)
      end

    {first, key(router_end(stop, store))}
  end

  defp router_end(stop, store) do
    case first_after(stop, stop.pid, store, &(&1[:kind] in [:endpoint, :router_dispatch])) do
      %{kind: :router_dispatch, phase: phase} = rd when phase in [:stop, :exception] -> rd
      _ -> stop
    end
  end

  defp first_after(event, pid, store, pred) do
    [pid: pid, timestamp_start: event.timestamp, limit: 1, store: store]
    |> collect(fn e -> key(e) > key(event) and pred.(e) end)
    |> List.first()
  end

  ## LiveView assigns diffs

  defp diff_assigns(events) do
    {events, _} =
      Enum.map_reduce(events, :none, fn
        %{type: :phoenix, assigns: assigns} = e, prev when is_map(assigns) ->
          diff = if prev == :none, do: nil, else: Native.diff(prev, assigns)
          {Map.put(e, :diff, diff), assigns}

        e, prev ->
          {e, prev}
      end)

    events
  end

  ## Filter validation

  defp split_filters!(filters, what) do
    unless Keyword.keyword?(filters),
      do: raise(ArgumentError, "#{what} expects a keyword list, got: #{inspect(filters)}")

    Enum.split_with(filters, fn
      {k, _} when k in @query_keys ->
        true

      {k, v} when k in @event_keys ->
        check_event_filter!(k, v)
        false

      {k, _} ->
        raise ArgumentError,
              "unknown #{what} filter #{inspect(k)}; allowed: " <>
                Enum.map_join(@query_keys ++ @event_keys, ", ", &inspect/1)
    end)
  end

  defp check_event_filter!(k, v) when k in [:kind, :phase, :callback, :view] and is_atom(v),
    do: :ok

  defp check_event_filter!(k, v) when k in [:topic, :method, :path, :route] and is_binary(v),
    do: :ok

  defp check_event_filter!(:status, v) when is_integer(v), do: :ok
  defp check_event_filter!(:event, _v), do: :ok

  defp check_event_filter!(k, v) do
    expected =
      cond do
        k in [:kind, :phase, :callback, :view] -> "an atom"
        k == :status -> "an integer"
        true -> "a string"
      end

    raise ArgumentError, "filter #{inspect(k)} must be #{expected}, got: #{inspect(v)}"
  end

  defp timeline_opts!(opts, allowed, what) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "#{what} expects a keyword list, got: #{inspect(opts)}")

    known_keys!(opts, allowed, "#{what} option", allowed)
    opts
  end

  # Raises for the first key of opts not in allowed, naming those that are (`shown`).
  defp known_keys!(opts, allowed, what, shown) do
    for {k, _} <- opts,
        k not in allowed,
        do:
          raise(
            ArgumentError,
            "unknown #{what} #{inspect(k)}; allowed: " <> Enum.map_join(shown, ", ", &inspect/1)
          )

    :ok
  end

  ## The handler (runs in the process that emits the event: keep it cheap, never raise)

  @doc false
  def handle_event(event, measurements, metadata, config) do
    metadata = as_map(metadata)

    case ui_request?(event, metadata) || fields(event, as_map(measurements), metadata, config) do
      fields when is_map(fields) -> TraceDB.store_event(:phoenix, Map.put(fields, :pid, self()))
      _ -> :ok
    end

    :ok
  catch
    _kind, _reason -> :ok
  end

  # Requests to ElixirScope's own web UI mounted in the application
  # (ElixirScope.UI.Plug) are not recorded: looking at a recording must not add to it.
  defp ui_request?([:phoenix, kind, _phase], meta) when kind in [:endpoint, :router_dispatch],
    do: ElixirScope.UI.own_path?(get(meta[:conn], :request_path))

  defp ui_request?(_event, _meta), do: false

  # (a struct would not answer m[key])
  defp as_map(m) when is_map(m), do: Map.delete(m, :__struct__)
  defp as_map(_), do: %{}

  defp fields([:phoenix, :endpoint, phase], m, meta, config) when phase in [:start, :stop] do
    conn = meta[:conn]
    base = conn_fields(%{kind: :endpoint, phase: phase}, conn)

    case phase do
      :start ->
        Process.delete(@route_key)
        put(base, :module, endpoint_of(conn))

      :stop ->
        {route, view} = Process.delete(@route_key) || {nil, nil}

        base
        |> put(:module, endpoint_of(conn))
        |> put(:status, int(get(conn, :status)))
        |> put(:params, params(get(conn, :params), config))
        |> put(:duration, int(m[:duration]))
        |> put(:route, route)
        |> put(:view, view)
    end
  end

  defp fields([:phoenix, :router_dispatch, phase], m, meta, config) when phase in @phases do
    conn = meta[:conn]
    route = string(meta[:route])
    view = live_view_of(meta[:phoenix_live_view])
    # The endpoint :stop comes before the router's :stop, and its conn has no route:
    # the serving process keeps it until then (under our own key, cleared at the next
    # endpoint :start or :stop).
    if phase == :start, do: Process.put(@route_key, {route, view})

    %{kind: :router_dispatch, phase: phase}
    |> conn_fields(conn)
    |> put(:route, route)
    |> put(:module, atom(meta[:plug]))
    |> put(:action, atom(meta[:plug_opts]))
    |> put(:view, view)
    |> put(:path_params, if(phase == :start, do: params(meta[:path_params], config)))
    |> put(:status, if(phase == :stop, do: int(get(conn, :status))))
    |> put(:duration, int(m[:duration]))
    |> exception(phase, meta)
  end

  defp fields([:phoenix, kind, callback, phase], m, meta, config)
       when kind in [:live_view, :live_component] and callback in @lc_callbacks and
              phase in @phases do
    socket = meta[:socket]
    view = atom(get(socket, :view))
    component = atom(meta[:component])
    inputs? = phase in [:start, :exception]

    %{kind: kind, callback: callback, phase: phase}
    |> put(:module, if(kind == :live_component, do: component, else: view))
    |> put(:view, view)
    |> put(:connected, connected(socket))
    |> put(:event, name(meta[:event]))
    |> put(:params, if(inputs?, do: params(meta[:params], config)))
    |> put(:session, if(inputs?, do: params(meta[:session], config)))
    |> put(:uri, if(inputs?, do: string(meta[:uri])))
    |> put(:assigns, if(phase == :stop and callback != :render, do: assigns(socket, config)))
    |> put(:changed, bool(meta[:changed?]))
    |> put(:force, bool(meta[:force?]))
    |> put(:duration, int(m[:duration]))
    |> exception(phase, meta)
  end

  defp fields([:phoenix, kind], m, meta, config)
       when kind in [:channel_joined, :channel_handled_in] do
    socket = meta[:socket]

    %{kind: kind}
    |> put(:module, atom(get(socket, :channel)))
    |> put(:topic, string(get(socket, :topic)))
    |> put(:event, name(meta[:event]))
    |> put(:result, atom(meta[:result]))
    |> put(:params, params(meta[:params], config))
    |> put(:transport, atom(get(socket, :transport)))
    |> put(:endpoint, atom(get(socket, :endpoint)))
    |> put(:assigns, if(kind == :channel_joined, do: params(get(socket, :assigns), config)))
    |> put(:duration, int(m[:duration]))
  end

  defp fields([:phoenix, :socket_connected], m, meta, config) do
    %{kind: :socket_connected}
    |> put(:module, atom(meta[:user_socket]))
    |> put(:result, atom(meta[:result]))
    |> put(:params, params(meta[:params], config))
    |> put(:transport, atom(meta[:transport]))
    |> put(:endpoint, atom(meta[:endpoint]))
    |> put(:vsn, string(meta[:vsn]))
    |> put(:duration, int(m[:duration]))
  end

  defp fields(_event, _m, _meta, _config), do: nil

  defp conn_fields(acc, conn) do
    acc
    |> put(:method, string(get(conn, :method)))
    |> put(:path, string(get(conn, :request_path)))
  end

  defp exception(acc, :exception, meta) do
    {class, reason} = unwrap(meta[:kind], meta[:reason])

    acc
    |> put(:class, atom(class))
    |> put(:error, banner(class, reason))
  end

  defp exception(acc, _phase, _meta), do: acc

  # Plug wraps errors raised in a request in a Plug.Conn.WrapperError, which holds
  # the conn: keep the error, never the conn.
  defp unwrap(_kind, %{__struct__: Plug.Conn.WrapperError, kind: kind, reason: reason}),
    do: {kind, reason}

  defp unwrap(kind, reason), do: {kind, reason}

  defp banner(class, reason) when class in [:error, :exit, :throw] do
    text = Exception.format_banner(class, reason)
    if byte_size(text) > 500, do: binary_part(text, 0, 500) <> "...", else: text
  rescue
    _ -> nil
  end

  defp banner(_class, _reason), do: nil

  defp put(acc, _key, nil), do: acc
  defp put(acc, key, value), do: Map.put(acc, key, value)

  defp get(term, key) when is_map(term), do: Map.get(term, key)
  defp get(_term, _key), do: nil

  defp string(v) when is_binary(v), do: v
  defp string(_), do: nil

  defp name(v) when is_binary(v) or (is_atom(v) and v != nil), do: v
  defp name(_), do: nil

  defp int(v) when is_integer(v), do: v
  defp int(_), do: nil

  defp bool(v) when is_boolean(v), do: v
  defp bool(_), do: nil

  defp atom(v) when is_atom(v) and v not in [nil, true, false], do: v
  defp atom(_), do: nil

  defp endpoint_of(conn), do: conn |> get(:private) |> get(:phoenix_endpoint) |> atom()

  # phoenix_live_view metadata of live routes: {view, action, opts, live_session}
  defp live_view_of(t) when is_tuple(t) and tuple_size(t) >= 1, do: atom(elem(t, 0))
  defp live_view_of(_), do: nil

  defp connected(socket) do
    case get(socket, :transport_pid) do
      pid when is_pid(pid) -> true
      _ -> if is_map(socket) and Map.has_key?(socket, :transport_pid), do: false
    end
  end

  # Plain maps only: Plug.Conn.Unfetched and other structs say nothing about params.
  defp params(%{__struct__: _}, _config), do: nil
  defp params(p, config) when is_map(p) or is_list(p), do: redact(p, config.redact)
  defp params(_, _config), do: nil

  defp assigns(socket, config) do
    case get(socket, :assigns) do
      %{} = a -> a |> Map.delete(:__changed__) |> redact(config.redact)
      _ -> nil
    end
  end

  ## Redaction

  @doc false
  # Redacts `term` with the (lowercase) patterns: the value under any map key,
  # keyword key or {key, value} pair whose key contains a pattern, any case.
  def redact(term, []), do: term

  def redact(%{__struct__: s} = struct, patterns) do
    struct |> Map.delete(:__struct__) |> redact(patterns) |> Map.put(:__struct__, s)
  end

  def redact(map, patterns) when is_map(map) do
    Map.new(map, fn {k, v} ->
      if secret?(k, patterns), do: {k, @redacted}, else: {k, redact(v, patterns)}
    end)
  end

  def redact([_ | _] = list, patterns), do: redact_list(list, patterns)

  def redact({k, v}, patterns) when is_atom(k) or is_binary(k) do
    if secret?(k, patterns), do: {k, @redacted}, else: {k, redact(v, patterns)}
  end

  def redact(tuple, patterns) when is_tuple(tuple) do
    tuple |> Tuple.to_list() |> redact_list(patterns) |> List.to_tuple()
  end

  def redact(term, _patterns), do: term

  # any list, improper ones included
  defp redact_list([h | t], patterns), do: [redact(h, patterns) | redact_list(t, patterns)]
  defp redact_list([], _patterns), do: []
  defp redact_list(tail, patterns), do: redact(tail, patterns)

  defp secret?(k, patterns) when is_atom(k), do: secret?(Atom.to_string(k), patterns)

  defp secret?(k, patterns) when is_binary(k) do
    k = if String.valid?(k), do: String.downcase(k), else: String.downcase(k, :ascii)
    :binary.match(k, patterns) != :nomatch
  end

  defp secret?(_k, _patterns), do: false

  ## The owner of the telemetry handler and of the PubSub trace patterns

  @doc false
  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @doc false
  # The module that provides telemetry's API. Only tests change it (to a module that
  # does not exist, to see how ElixirScope does without telemetry).
  def telemetry_module, do: Application.get_env(:elixir_scope, :telemetry_module, :telemetry)

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)
    patterns = Enum.map(config.redact, &String.downcase/1)
    telemetry = telemetry_module()

    attached =
      if Code.ensure_loaded?(telemetry) and function_exported?(telemetry, :attach_many, 4) do
        attach(telemetry, %{redact: patterns})
      else
        Logger.warning(
          "ElixirScope: phoenix: true, but :telemetry is not loaded: Phoenix, Plug and " <>
            "LiveView events are not recorded" <>
            if(Code.ensure_loaded?(@pubsub),
              do: " (PubSub broadcasts are)",
              else: ""
            )
        )

        false
      end

    traced = trace_pubsub()
    {:ok, %{telemetry: telemetry, attached: attached, pubsub: traced}}
  end

  @impl true
  def terminate(_reason, %{attached: true, telemetry: telemetry}) do
    detach(telemetry)
    :ok
  end

  def terminate(_reason, _state), do: :ok

  defp attach(telemetry, config) do
    # a handler left over by an instance that could not detach it goes first
    detach(telemetry)

    case apply(telemetry, :attach_many, [
           @handler_id,
           telemetry_events(),
           &__MODULE__.handle_event/4,
           config
         ]) do
      :ok ->
        true

      error ->
        Logger.warning("ElixirScope: could not attach to Phoenix telemetry: #{inspect(error)}")
        false
    end
  catch
    # e.g. the module is there but the :telemetry application is not started
    kind, reason ->
      Logger.warning(
        "ElixirScope: could not attach to Phoenix telemetry: " <>
          Exception.format_banner(kind, reason)
      )

      false
  end

  defp detach(telemetry) do
    apply(telemetry, :detach, [@handler_id])
  catch
    _, _ -> :ok
  end

  defp trace_pubsub do
    if Code.ensure_loaded?(@pubsub) do
      for name <- @broadcasts,
          arity <- [broadcast_arity(name)],
          arity != nil,
          ElixirScope.trace_function({@pubsub, name, arity}) == :ok,
          do: {@pubsub, name, arity}
    else
      []
    end
  end

  defp broadcast_arity(name) do
    Enum.find(6..3//-1, &function_exported?(@pubsub, name, &1))
  end
end
