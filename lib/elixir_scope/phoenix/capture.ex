defmodule ElixirScope.Phoenix.Capture do
  @moduledoc false
  # What `setup(phoenix: true)` records, and how: one telemetry handler attached to the
  # events Phoenix, Plug and LiveView emit, which turns each into a `:phoenix` event of
  # the emitting process (fields taken from conns and sockets, `params`, `session` and
  # `assigns` redacted), and trace patterns on Phoenix.PubSub's broadcast functions.
  # This module's process owns both: it attaches and traces when it starts, and
  # detaches when it stops. The queries over what is captured are ElixirScope.Phoenix's;
  # its moduledoc describes the fields, redaction, cost and safety.

  use GenServer

  alias ElixirScope.TraceDB
  require Logger

  @handler_id __MODULE__
  # (called through apply/3: ElixirScope does not depend on it)
  @telemetry :telemetry
  @redacted "[REDACTED]"
  @pubsub Phoenix.PubSub
  # The broadcast functions of Phoenix.PubSub: ElixirScope.Phoenix.broadcast_functions/0.
  @lv_callbacks [:mount, :handle_params, :handle_event, :render]
  @lc_callbacks @lv_callbacks ++ [:update]
  @phases [:start, :stop, :exception]
  @route_key {__MODULE__, :route}

  @doc false
  # The telemetry events the handler is attached to.
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

  # The exception as a term too, and its stacktrace (for ElixirScope.recent_crashes/1),
  # unless they are large enough to cost the event its other fields.
  defp exception(acc, :exception, meta) do
    {class, reason} = unwrap(meta[:kind], meta[:reason])

    acc
    |> put(:class, atom(class))
    |> put(:error, banner(class, reason))
    |> put(:reason, small(reason))
    |> put(:stacktrace, small(meta[:stacktrace]))
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

  defp small(term), do: if(:erlang.external_size(term) <= 16_384, do: term)

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
  # Params are what Phoenix's :filter_parameters is about: with {:keep, keys}, the
  # values of every other key go first.
  defp params(%{__struct__: _}, _config), do: nil
  defp params(p, %{keep: nil} = config) when is_map(p) or is_list(p), do: redact(p, config.redact)

  defp params(p, config) when is_map(p) or is_list(p),
    do: p |> keep(config.keep) |> redact(config.redact)

  defp params(_, _config), do: nil

  defp assigns(socket, config) do
    case get(socket, :assigns) do
      %{} = a -> a |> Map.delete(:__changed__) |> redact(config.redact)
      _ -> nil
    end
  end

  ## Redaction

  @doc false
  # Redacts `term` with the (lowercase) patterns, a list or a compiled pattern (nil:
  # none): the value under any map key, keyword key or {key, value} pair whose key
  # contains a pattern, any case. (The tracer redacts a LiveView's states and causes by
  # the same rule in C: c_src/nif/redact.h.)
  def redact(term, nil), do: term
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

  # Phoenix's {:keep, keys} (Phoenix.Logger.filter_values/2): under a kept key the value
  # stays whole; anything else that is not a map or a list is redacted.
  defp keep(%{__struct__: _}, _keys), do: @redacted

  defp keep(%{} = map, keys),
    do: Map.new(map, fn {k, v} -> if k in keys, do: {k, v}, else: {k, keep(v, keys)} end)

  defp keep([_ | _] = list, keys), do: Enum.map(list, &keep(&1, keys))
  defp keep(_other, _keys), do: @redacted

  ## The owner of the telemetry handler and of the PubSub trace patterns

  @doc false
  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    attached =
      if Code.ensure_loaded?(@telemetry) and function_exported?(@telemetry, :attach_many, 4) do
        attach(handler_config(config))
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

    {:ok, %{attached: attached, pubsub: trace_pubsub()}}
  end

  @impl true
  def terminate(_reason, %{attached: true}) do
    detach()
    :ok
  end

  def terminate(_reason, _state), do: :ok

  @doc false
  # The handler's configuration: what to redact (ElixirScope.Config.redaction/1), with
  # the patterns compiled once.
  def handler_config(config) do
    %{patterns: patterns, keep: keep} = ElixirScope.Config.redaction(config)
    %{redact: compile(patterns), keep: keep}
  end

  defp compile([]), do: nil
  defp compile(patterns), do: :binary.compile_pattern(patterns)

  defp attach(config) do
    # a handler left over by an instance that could not detach it goes first
    detach()

    case apply(@telemetry, :attach_many, [
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

  defp detach do
    apply(@telemetry, :detach, [@handler_id])
  catch
    _, _ -> :ok
  end

  # Meta patterns (ElixirScope.Tracing): the broadcasting process need not be traced,
  # and no process's trace flags are set for them.
  defp trace_pubsub do
    for name <- ElixirScope.Phoenix.broadcast_functions(),
        arity <- [broadcast_arity(name)],
        arity != nil,
        ElixirScope.Tracing.call({:trace_meta, {@pubsub, name, arity}}) == :ok,
        do: {@pubsub, name, arity}
  end

  @doc false
  # The arity of a broadcast function's longest head (the one the shorter ones call), or
  # nil when Phoenix.PubSub is not loaded.
  def broadcast_arity(name) do
    if Code.ensure_loaded?(@pubsub),
      do: Enum.find(6..3//-1, &function_exported?(@pubsub, name, &1))
  end
end
