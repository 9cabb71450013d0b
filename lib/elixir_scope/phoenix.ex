defmodule ElixirScope.Phoenix do
  @moduledoc """
  Phoenix requests, LiveView callbacks, channels and PubSub broadcasts, joined to the
  timeline of the process that served them.

  Phoenix, Plug and LiveView report what they do through `:telemetry`; what processes
  did meanwhile (messages, calls, GenServer state changes) is what ElixirScope's tracer
  records. `setup(phoenix: true)` puts both in the same store, so one query shows a
  request and what it caused.

      ElixirScope.setup(phoenix: true)
      ElixirScope.trace_genserver(MyApp.Cart)       # the GenServer a controller calls
      ElixirScope.trace_module(MyApp.Pricing)       # calls, in whichever process serves

      [req | _] = ElixirScope.Phoenix.requests(path: "/cart", order: :desc, limit: 1)
      ElixirScope.Phoenix.request_timeline(req)     # what the request caused
      ElixirScope.Phoenix.slowest_requests(limit: 5)

      ElixirScope.trace_genserver(live_view_pid)    # its assigns, after every change
      ElixirScope.Phoenix.live_view_timeline(live_view_pid)

  The process that serves a request need not be traced: `request_timeline/2` finds
  what the request caused in the traced processes it talked to (the GenServers it
  called: their receive of the call, what they did for it, their reply). Request
  processes come and go (one per request with Cowboy, one per connection with Bandit);
  `trace_all: true` would trace them all, at the cost of recording everything they
  read and write, raw socket data included.

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
  | `class`, `error`, `reason`, `stacktrace` | on `:exception`: the kind, a one-line message, the exception itself and its stacktrace (these two left out past 16 KiB) |

  Conns and sockets are never stored whole: only these fields are taken from them.
  LiveView inputs (`params`, `session`, `uri`) are kept on `:start` and `:exception`
  events, outputs (`assigns`, `duration`) on `:stop`; a request's `params`, parsed
  while it runs, and its `status` on the endpoint's `:stop`.

  PubSub broadcasts have no telemetry of their own: when `Phoenix.PubSub` is loaded,
  its broadcast functions get meta trace patterns (ElixirScope's own trace session on
  OTP 27+), which report their calls in every process without setting any process's
  trace flags: on OTP 25/26, where a process has one tracer, `phoenix: true` takes no
  process's from `:dbg`, recon or any other tool. Each broadcast is a `:call` event
  (module `Phoenix.PubSub`) of the process that broadcast, with its `:return`,
  recorded at the `:full` tracing level; `broadcasts/1` lists them with their topic and
  message. While `ElixirScope.trace_module(Phoenix.PubSub)` traces the whole module,
  its own patterns replace the meta ones, so a broadcast is recorded once.
  `ElixirScope.stop/0` removes them.

  ## LiveViews

  A LiveView process runs `Phoenix.LiveView.Channel` (its `$initial_call` names the
  LiveView, `{MyLive, :mount, 3}`, for observers). `ElixirScope.trace_genserver/1` on
  it records its assigns (not the channel's whole state; without `__changed__`) after
  every change, each with the callback and message that caused it — browser events
  arrive as `handle_info` of a `Phoenix.Socket.Message` —, and redacts states and causes
  as params are (a form's url-encoded fields by their names). Its messages are not
  traced: they carry the same params. See `live_view_timeline/2`.

  ## Redaction

  `params`, `session` and `assigns` go through the `:redact` list of `setup/1`
  (default `["password", "token", "secret"]`), to which the application's own
  `config :phoenix, :filter_parameters` is added: a map key or keyword key that
  contains one of these strings, whatever the case, has its value replaced by
  `"[REDACTED]"`, at any depth — as Phoenix's `:filter_parameters` does for its logs.
  With `filter_parameters: {:keep, keys}`, `params` keep only the values under those
  keys, as in Phoenix's logs (`:redact` still applies within them). The values never
  reach the store; a traced LiveView's states and their causes are redacted the same
  way. Broadcast messages and the messages and arguments of traced processes are
  recorded as the tracer records any message or argument: they are not redacted.

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

  alias ElixirScope.{Event, Query, TraceDB}
  alias ElixirScope.Phoenix.Capture

  @pubsub Phoenix.PubSub
  # The broadcast functions of Phoenix.PubSub, with where the topic is among each one's
  # arguments. Their shorter arities are default-argument heads that call the longest
  # one, which the tracer sees (local calls are traced too): tracing only the longest
  # records each broadcast once.
  @topic_at [
    broadcast: 1,
    broadcast_from: 2,
    local_broadcast: 1,
    local_broadcast_from: 2,
    direct_broadcast: 2
  ]

  # The keys of ElixirScope.Query these listings take (and :nodes, for a cluster); the
  # others they set themselves.
  @query_keys [:nodes | Query.keys()] --
                [
                  :type,
                  :from_pid,
                  :to_pid,
                  :between,
                  :function,
                  :where,
                  :select,
                  :group_by,
                  :measure
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
  defdelegate telemetry_events, to: Capture

  @doc false
  # The broadcast functions of Phoenix.PubSub that setup(phoenix: true) traces.
  def broadcast_functions, do: Keyword.keys(@topic_at)

  ## Queries

  @doc """
  The `:phoenix` events matching `filters`, oldest first (newest first with
  `order: :desc`), as `ElixirScope.Event`s: one query of the C store.

  Filters: those of `ElixirScope.Query` that apply (`:pid`, `:module`,
  `:timestamp_start`, `:timestamp_end`, `:limit`, `:order`, `:after_id`, `:before_id`,
  `:after`, `:before`, `:store`), which the store answers through its indexes, and
  fields of the events: `:kind`, `:phase`, `:callback`, `:view`, `:event`, `:topic`,
  `:method`, `:path`, `:status`, `:route`, each a value to be equal to or a test of
  `ElixirScope.Query` (`status: {:>=, 500}`, `path: {:prefix, "/cart"}`), tested in C
  on the stored events.

  In a cluster (`ElixirScope.Cluster`), `nodes:` (`:all`, a node or a list) lists the
  events of those nodes merged on the cluster's time line, each with its `:node` (a
  listing in ascending order; `{:partial, events, [{node, reason}]}` when a node did
  not answer). Without it, this node's events.

      ElixirScope.Phoenix.events(kind: :channel_joined, topic: "room:lobby")

  Raises `ArgumentError` for an unknown filter or a value of the wrong kind.
  """
  @spec events(keyword()) :: [event()] | {:partial, [event()], [{node(), term()}]}
  def events(filters \\ []) do
    {query, where} = split_filters!(filters, "events/1")
    phoenix(query, where)
  end

  @doc """
  The requests recorded: one per endpoint `:stop` event, with `:method`, `:path`,
  `:status`, `:route`, `:params` (redacted), `:duration` (native units) and `:pid`,
  the process that served it. Takes the filters of `events/1`.

      ElixirScope.Phoenix.requests(status: 500, order: :desc, limit: 10)
      ElixirScope.Phoenix.requests(status: {:>=, 500}, path: {:prefix, "/cart"})

  Pass one to `request_timeline/2` (on its node). `nodes:` as for `events/1`.
  """
  @spec requests(keyword()) :: [event()] | {:partial, [event()], [{node(), term()}]}
  def requests(filters \\ []) do
    {query, where} = split_filters!(filters, "requests/1")

    if Keyword.has_key?(where, :kind) or Keyword.has_key?(where, :phase),
      do: raise(ArgumentError, "requests/1 selects kind and phase itself; use events/1")

    phoenix(query, [kind: :endpoint, phase: :stop] ++ where)
  end

  @doc """
  The slowest requests recorded, slowest first: `requests/1`'s filters but those of
  order and position, and `:limit` (10 by default, at most 10,000). One aggregate of the
  C store over the requests the filters select.

      ElixirScope.Phoenix.slowest_requests(path: {:prefix, "/cart"}, limit: 5)
  """
  @spec slowest_requests(keyword()) :: [event()]
  def slowest_requests(filters \\ []) do
    {query, where} = split_filters!(filters, "slowest_requests/1")

    for k <- [:kind, :phase, :order, :after, :before, :after_id, :before_id, :nodes],
        Keyword.has_key?(filters, k),
        do: raise(ArgumentError, "slowest_requests/1 orders by duration itself: no #{inspect(k)}")

    query = Keyword.put_new(query, :limit, 10)

    TraceDB.top(
      [type: :phoenix, where: [kind: :endpoint, phase: :stop] ++ where] ++ query,
      :duration,
      Event
    )
  end

  defp phoenix(query, where) do
    case Keyword.pop(query, :nodes) do
      {nil, query} ->
        TraceDB.query_structs([type: :phoenix, where: where] ++ query, Event)

      {nodes, query} ->
        %ElixirScope.Cluster.Result{events: events, missing: missing} =
          ElixirScope.Cluster.query([type: :phoenix, where: where] ++ query, nodes: nodes)

        events = Enum.map(events, &Map.put(&1, :__struct__, Event))
        if missing == [], do: events, else: {:partial, events, missing}
    end
  end

  @doc """
  What `request` caused, oldest first, from its endpoint `:start` to its endpoint
  `:stop` (or the router's `:stop`, which Phoenix emits after it), without tracing the
  serving process:

    * the serving process's own events: its `:phoenix` events, and, when it is traced
      (`trace_all: true`), its messages, calls and state changes;
    * the events other traced processes recorded with it as their peer: messages they
      sent it (replies, broadcasts to a subscriber), links;
    * for each `GenServer.call` it made to a traced process, that process's receive of
      the call and what the call caused there, told apart from other clients' calls by
      the call's tag: the `handle_call` (when its module is traced with
      `ElixirScope.trace_module/1`), the calls, broadcasts and messages it made, its
      state change (`ElixirScope.trace_genserver/1`) and its reply — or, when it never
      replied within the request, how far it got and whether it died.

  The callee's messages are recorded when it is traced at a level that records
  messages (`:full` or `:messages_only`). One query of the C store
  (`c_src/core/cause.h`): it reads the events of the request's window, whatever the store
  holds besides.

  `request` is one of `requests/1` (or any endpoint `:phoenix` event), or its id.
  Options: `:type` (a type or a list), `:limit`, `:order`, `:store`, and `:after` /
  `:before` (cursors of `ElixirScope.Query`, or events) to page within the request.
  Returns `[]` when the request is no longer in the store. Raises `ArgumentError` when
  it is not a request.
  """
  @spec request_timeline(event() | pos_integer(), keyword()) :: [event()]
  def request_timeline(request, opts \\ []) do
    opts =
      timeline_opts!(
        opts,
        [:type, :limit, :order, :store, :after, :before],
        "request_timeline/2"
      )

    store = Keyword.get(opts, :store, TraceDB)
    {_, native} = Query.normalize!(Keyword.delete(opts, :store))

    case fetch(request, store) do
      nil ->
        []

      %{type: :phoenix, kind: :endpoint, pid: pid} = event when is_pid(pid) ->
        {first, last} = request_bounds(event, store)
        window = Map.new([from(first), to(last)])
        TraceDB.request_timeline(pid, window, Map.put(native, :struct, Event), store)

      other ->
        raise ArgumentError,
              "request_timeline/2 expects a request (an endpoint :phoenix event, as " <>
                "requests/1 returns) or its id, got: #{inspect(other)}"
    end
  end

  @doc """
  The life of a LiveView process, oldest first: its `:phoenix` events (mounts,
  `handle_params`, events, renders, components) and, once it is traced with
  `ElixirScope.trace_genserver/1`, its `:state` events: its assigns after every change,
  each with the callback and the message that caused it (`:cause`) and `:diff` from the
  assigns before — a change made in `handle_info` (a PubSub broadcast, a timer) is a
  step of its own, with the message that caused it.

  The LiveView process runs `Phoenix.LiveView.Channel`, whose callbacks receive
  everything: a browser event arrives as `handle_info` of a `Phoenix.Socket.Message`
  whose payload holds the event's params. Tracing it records its assigns (without
  LiveView's change tracking, `__changed__`) rather than the channel's whole state, and
  redacts them and their causes as `redact:` redacts params; its messages, which carry
  the same params, are not traced.

  The `:stop` events that carry `:assigns` get `:diff` too: the change from the assigns
  before them in this listing, those of a `:stop` or of a `:state` (`nil` for the
  first), so a change made in between is not credited to them.

  Options: `:limit`, `:order`, `:timestamp_start`, `:timestamp_end`, `:after`,
  `:before` (cursors of `ElixirScope.Query`), `:store`.
  """
  @spec live_view_timeline(pid(), keyword()) :: [event()]
  def live_view_timeline(pid, opts \\ [])

  def live_view_timeline(pid, opts) when is_pid(pid) do
    opts =
      timeline_opts!(
        opts,
        [:limit, :order, :timestamp_start, :timestamp_end, :after, :before, :store],
        "live_view_timeline/2"
      )

    desc? = Keyword.get(opts, :order, :asc) == :desc

    # One query: both types of the process, merged in C, states diffed there too; the
    # assigns diffs are computed oldest first, whatever the order asked for.
    [type: [:phoenix, :state], pid: pid]
    |> Kernel.++(opts)
    |> TraceDB.query_structs(Event, diff: true)
    |> then(&if(desc?, do: Enum.reverse(&1), else: &1))
    |> diff_assigns()
    |> then(&if(desc?, do: Enum.reverse(&1), else: &1))
  end

  def live_view_timeline(other, _opts),
    do: raise(ArgumentError, "live_view_timeline/2 expects a pid, got: #{inspect(other)}")

  @doc """
  The PubSub broadcasts recorded (`:call` events of `Phoenix.PubSub`'s broadcast
  functions, traced with `setup(phoenix: true)`), each with `:topic` and `:message`
  taken from its arguments. Filters: `:pid` (the broadcasting process), `:topic` (a
  string, or a test of `ElixirScope.Query`), `:timestamp_start`, `:timestamp_end`,
  `:limit`, `:order`, `:after_id`, `:before_id`, `:after`, `:before`, `:store`.
  """
  @spec broadcasts(keyword()) :: [event()]
  def broadcasts(filters \\ []) do
    unless Keyword.keyword?(filters),
      do: raise(ArgumentError, "broadcasts/1 expects a keyword list, got: #{inspect(filters)}")

    {topic, query} = Keyword.pop(filters, :topic)

    if topic != nil and not (is_binary(topic) or is_tuple(topic)),
      do: raise(ArgumentError, "filter :topic must be a string, got: #{inspect(topic)}")

    allowed = @query_keys -- [:module, :nodes]
    known_keys!(query, allowed, "broadcasts/1 filter", [:topic | allowed])
    # With Phoenix.PubSub traced whole (trace_module/1), a broadcast is also the call of
    # its default-argument head: twice the events, of which the longest arity's count.
    {limit, query} = Keyword.pop(query, :limit)
    query = if limit, do: [limit: 2 * limit] ++ query, else: query
    base = [type: :call, module: @pubsub] ++ query

    if topic == nil do
      TraceDB.query_structs([function: broadcast_functions()] ++ base, Event)
    else
      # The topic is the second or the third argument: one query per position, merged.
      @topic_at
      |> Enum.group_by(&elem(&1, 1), &elem(&1, 0))
      |> Enum.flat_map(fn {at, functions} ->
        TraceDB.query_structs(
          [function: functions, where: [{{:args, at}, topic}]] ++ base,
          Event
        )
      end)
      |> Enum.sort_by(&key/1, if(query[:order] == :desc, do: :desc, else: :asc))
    end
    |> Enum.filter(&longest_arity?/1)
    |> take(limit)
    |> Enum.map(&enrich/1)
  end

  defp longest_arity?(%{function: f, arity: arity}) do
    case ElixirScope.Phoenix.Capture.broadcast_arity(f) do
      nil -> true
      longest -> arity == longest
    end
  end

  defp longest_arity?(_call), do: true

  # Broadcast calls get their topic and message.
  defp enrich(%{type: :call, module: @pubsub, function: f, args: args} = e)
       when is_list(args) do
    at = Keyword.get(@topic_at, f, 1)
    Map.merge(e, %{topic: Enum.at(args, at), message: Enum.at(args, at + 1)})
  end

  defp enrich(e), do: e

  defp key(%{timestamp: ts, id: id}), do: {ts, id}

  defp take(list, nil), do: list
  defp take(list, n), do: Enum.take(list, n)

  ## Request bounds

  defp fetch(id, store) when is_integer(id) and id > 0, do: TraceDB.get(id, store)
  defp fetch(%{id: id}, store) when is_integer(id) and id > 0, do: fetch(id, store)

  defp fetch(other, _store),
    do:
      raise(
        ArgumentError,
        "request_timeline/2 expects a request (as requests/1 returns) or its id, " <>
          "got: #{inspect(other)}"
      )

  # {first, last} as {timestamp, id} positions, both included (an id of :infinity: the
  # whole timestamp): from the endpoint :start to the endpoint :stop, or to the router's
  # :stop/:exception that follows it before the next request.
  defp request_bounds(%{phase: :start, pid: pid} = start, store) do
    stop =
      [
        first_after(start, pid, store, kind: :endpoint),
        first_after(start, pid, store, kind: :router_dispatch, phase: {:in, [:stop, :exception]})
      ]
      |> Enum.reject(&is_nil/1)
      |> Enum.min_by(&key/1, fn -> nil end)

    case stop do
      %{kind: :endpoint, phase: :stop} = stop -> {key(start), key(router_end(stop, store))}
      %{kind: :router_dispatch} = rd -> {key(start), key(rd)}
      # the next request, or none yet: everything up to it, or up to now
      %{} = next -> {key(start), {next.timestamp - 1, :infinity}}
      nil -> {key(start), {System.monotonic_time(), :infinity}}
    end
  end

  defp request_bounds(%{pid: pid} = stop, store) do
    start =
      phoenix([pid: pid, before: stop, order: :desc, limit: 1, store: store],
        kind: :endpoint,
        phase: :start
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
    case first_after(stop, stop.pid, store, kind: {:in, [:endpoint, :router_dispatch]}) do
      %{kind: :router_dispatch, phase: phase} = rd when phase in [:stop, :exception] -> rd
      _ -> stop
    end
  end

  defp first_after(event, pid, store, where),
    do: List.first(phoenix([pid: pid, after: event, limit: 1, store: store], where))

  # Inclusive bounds as a bound of the native spec: an id of 0 or :infinity takes the
  # whole timestamp.
  defp from({ts, 0}), do: {:timestamp_start, ts}
  defp from({ts, id}), do: {:after, {ts, id - 1}}
  defp to({ts, :infinity}), do: {:timestamp_end, ts}
  defp to({ts, id}), do: {:before, {ts, id + 1}}

  ## LiveView assigns diffs

  # A :state of a traced LiveView holds its assigns (ElixirScope.Tracing's view), so it
  # is the assigns before the next :stop too.
  defp diff_assigns(events) do
    {events, _} =
      Enum.map_reduce(events, :none, fn
        %{type: :phoenix, assigns: assigns} = e, prev when is_map(assigns) ->
          diff = if prev == :none, do: nil, else: TraceDB.diff(prev, assigns)
          {Map.put(e, :diff, diff), assigns}

        %{type: :state, state: assigns} = e, _prev when is_map(assigns) ->
          {e, assigns}

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

  # A test of ElixirScope.Query ({:>=, 500}, {:prefix, "/"}, ...): Query checks it.
  defp check_event_filter!(_k, v) when is_tuple(v) and tuple_size(v) in 2..3, do: :ok

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
end
