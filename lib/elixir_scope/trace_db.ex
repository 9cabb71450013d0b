defmodule ElixirScope.TraceDB do
  @moduledoc """
  The event store every ElixirScope feature reads and writes, backed by C.

  Events live in a bounded, lock-free ring inside a NIF (see `c_src/core/store.h`): any
  number of processes (and, later, tracer callbacks on every scheduler) append at
  once without a lock, readers never block writers, and queries walk per-key index
  chains, so their cost follows the number of results, not the size of the store.

  Starting it is the only thing that costs anything: adding the dependency starts no
  process and allocates nothing.

      iex> {:ok, _pid} = ElixirScope.TraceDB.start_link(max_events: 10_000)
      iex> ElixirScope.TraceDB.store_event(:state, %{pid: self(), state: %{count: 1}})
      :ok
      iex> [event] = ElixirScope.TraceDB.query_events(type: :state, pid: self())
      iex> event.state
      %{count: 1}

  ## Events

  An event is any map stored under a type atom. The store adds `:id` (unique and
  increasing) and `:type`, and `:timestamp` in `System.monotonic_time/0` native units
  unless the map has one. Every term comes back exactly as stored (maps, lists,
  tuples, binaries, pids, refs, funs, structs...), except that a payload larger than
  `:max_payload_bytes` is replaced by `truncated: true, payload_size: bytes`.

  These fields are indexed when present and of the right kind:

    * `:pid` (or, for messages, `:from_pid`) — the process the event is about;
    * `:to_pid` — the other process of a message;
    * `:module`, `:function`, `:arity` — the code involved.

  Events of a critical type of the vocabulary (`vocabulary/0`: `:spawn`, `:exit`,
  `:crash`, `:alive`, `:error`, `:governor`, `:persist_error`), and any event with
  `critical: true`, are never sampled out.

  ## Options

  | option | default | meaning |
  |---|---|---|
  | `:max_events` | `1_000_000` | events kept; the oldest are pruned first |
  | `:max_bytes` | `268_435_456` (256 MiB) | payload bytes kept; the oldest are pruned first |
  | `:max_payload_bytes` | `65_536` | larger payloads are stored as a truncated marker |
  | `:sample_rate` | `1.0` | share of non-critical events kept (`0.2` keeps about one in five) |
  | `:max_keys` | `262_144` | distinct pids, modules, functions and pid pairs indexed |
  | `:name` | `ElixirScope.TraceDB` | registered name; queries take `store: name` |
  | `:clock` | `true` | record the runtime's time offset now and at each change, for wall-clock times (`ElixirScope.WallClock`); `false` for a store filled from a file, which brings its own (`ElixirScope.load/2` starts it so) |
  | `:test_mode` | `false` | accepted for compatibility with the original ElixirScope, whose tracer process used it to drop the "received garbage" messages it produced under tests; ElixirScope's tracer is no process and produces none, so it changes nothing |

  Memory is reserved up front but committed by the OS only as it is written: a store
  costs about 64 bytes per event held plus the payload bytes.
  """
  use GenServer

  alias ElixirScope.{Native, Persister, Query}
  require Logger

  @type event :: %{
          required(:id) => pos_integer(),
          required(:type) => atom(),
          required(:timestamp) => integer(),
          optional(atom()) => term()
        }

  @type filters :: keyword() | map()

  ## Lifecycle

  @doc """
  Starts a store and registers it under `opts[:name]` (default `ElixirScope.TraceDB`).

  With `persist: true, persist_path: dir` (and the other `:persist_*` options of
  `ElixirScope.Persister`) the store's events are also written to zstd segment files
  in `dir` while it runs, and once more when it stops.

  Raises `ArgumentError` for an unknown option or a value out of range.
  """
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ []) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "options must be a keyword list, got: #{inspect(opts)}")

    {persist, opts} = Keyword.split(opts, Keyword.keys(Persister.defaults()))
    persist = Persister.validate!(persist)
    {clock, opts} = Keyword.pop(opts, :clock, true)

    unless is_boolean(clock),
      do: raise(ArgumentError, ":clock must be a boolean, got: #{inspect(clock)}")

    {name, config} = validate_options!(opts)
    GenServer.start_link(__MODULE__, {name, config, persist, clock}, name: name)
  end

  @doc false
  def child_spec(opts) do
    %{id: Keyword.get(opts, :name, __MODULE__), start: {__MODULE__, :start_link, [opts]}}
  end

  @doc "Stops the store registered under `name` and frees its memory."
  @spec stop(atom()) :: :ok
  def stop(name \\ __MODULE__), do: GenServer.stop(name)

  @impl true
  def init({name, config, persist, clock}) do
    Process.flag(:trap_exit, true)
    store = Native.store_new(config)
    :persistent_term.put({__MODULE__, name}, store)
    # The runtime's time offset now and at each change (ElixirScope.WallClock): asked
    # after the monitor is set, so that no change falls in between.
    if clock do
      :erlang.monitor(:time_offset, :clock_service)
      Native.wall_note(store, System.monotonic_time(), System.time_offset())
    end

    {:ok, start_persister(%{name: name, store: store, persist: persist, persister: nil})}
  end

  @impl true
  def handle_info({:CHANGE, _ref, :time_offset, :clock_service, offset}, state) do
    Native.wall_note(state.store, System.monotonic_time(), offset)
    {:noreply, state}
  end

  def handle_info({:EXIT, pid, reason}, %{persister: pid} = state) do
    Logger.error("ElixirScope persister of #{inspect(state.name)} exited: #{inspect(reason)}")
    {:noreply, start_persister(state)}
  end

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, %{name: name, persister: persister}) do
    # The persister's last write needs the store: it stops first.
    if persister, do: stop_persister(persister)
    :persistent_term.erase({__MODULE__, name})
    :persistent_term.erase({__MODULE__, name, :recording})
    :ok
  end

  defp start_persister(%{persist: %{persist: true} = persist, name: name} = state) do
    {:ok, pid} = Persister.start_link(Map.put(persist, :store, name), [])
    %{state | persister: pid}
  end

  defp start_persister(state), do: state

  defp stop_persister(pid) do
    GenServer.stop(pid)
  catch
    # it exited meanwhile; its {:EXIT, ...} is still in our mailbox
    :exit, _ -> :ok
  end

  ## Writing

  @doc """
  Stores `event` under `type`. The event can be queried as soon as this returns.

  Returns `{:error, :not_running}` when no store is running (so instrumented code
  keeps working while ElixirScope is off). Raises `ArgumentError` when `type` is not
  an atom, `event` is not a map, or its `:timestamp` is not an integer.

  Pass `store: name` to write to a store other than the default one.
  """
  @spec store_event(atom(), map(), keyword()) :: :ok | {:error, :not_running}
  def store_event(type, event, opts \\ [])

  def store_event(type, event, opts) when is_atom(type) and is_map(event) and is_list(opts) do
    case lookup(Keyword.get(opts, :store, __MODULE__)) do
      nil -> {:error, :not_running}
      store -> Native.append(store, type, event)
    end
  end

  def store_event(type, event, _opts) do
    cond do
      not is_atom(type) ->
        raise ArgumentError, "event type must be an atom, got: #{inspect(type)}"

      true ->
        raise ArgumentError, "event must be a map, got: #{inspect(event)}"
    end
  end

  @doc """
  Records `state` as the state of GenServer `pid` running `module` (a `:state` event).
  """
  @spec log_state(module(), pid(), term(), keyword()) :: :ok | {:error, :not_running}
  def log_state(module, pid, state, opts \\ [])

  def log_state(module, pid, state, opts) when is_atom(module) and is_pid(pid) do
    store_event(:state, %{module: module, pid: pid, state: state}, opts)
  end

  def log_state(module, pid, _state, _opts) do
    if is_atom(module),
      do: raise(ArgumentError, "log_state/3 expects a pid, got: #{inspect(pid)}"),
      else: raise(ArgumentError, "log_state/3 expects a module atom, got: #{inspect(module)}")
  end

  ## Reading

  @doc """
  Returns the events matching `filters`, sorted by timestamp then id (reversed for
  `order: :desc`).

  `filters` is a query spec (keyword list or map), as `ElixirScope.Query` documents
  it: filters answered by the indexes (`:type`, `:pid`, `:from_pid`, `:to_pid`,
  `:between`, `:module`, `:function`, each an atom or pid or a list of them), bounds
  (`:timestamp_start`, `:timestamp_end` inclusive, `:after_id`, `:before_id` exclusive,
  `:after`/`:before` a cursor), `:where` predicates on the other fields, `:limit`,
  `:order` (`:asc` or `:desc`), `:select` and aggregates, and `:store` for a store
  other than the default. With `:select` or an aggregate it returns what
  `ElixirScope.Query.run/1` returns.

  Raises `ArgumentError` for an unknown key or a value of the wrong kind.
  """
  @spec query_events(filters()) :: [event()]
  def query_events(filters \\ []), do: Query.run(filters)

  @doc false
  # The engine behind ElixirScope.Query: a normalized spec run on a named store.
  def run_query(name, native) do
    store = store!(name)

    cond do
      Map.has_key?(native, :group_by) ->
        store |> Native.aggregate(native) |> Enum.sort_by(&{-&1.count, &1.group})

      Map.has_key?(native, :measure) ->
        case Native.aggregate(store, native) do
          [one] ->
            one

          [] ->
            %{count: 0, measured: 0, min: nil, max: nil, mean: nil, p50: nil, p90: nil, p99: nil}
        end

      native[:select] == :count ->
        Native.query(store, native)

      true ->
        store |> Native.query(native) |> elem(0)
    end
  end

  @doc false
  # {items, next position | nil}.
  def run_page(name, native), do: Native.query(store!(name), Map.put(native, :page, true))

  @doc false
  # query_events/1 with each event tagged as `struct` (ElixirScope.Event). Options:
  # `diff: true` gives each :state event :diff, the change from the state recorded before
  # it by the same process; `page: true` returns {events, cursor | nil}.
  def query_structs(filters, struct, opts \\ []) do
    {name, native} = Query.normalize!(filters)
    native = Map.put(native, :struct, struct)
    native = if opts[:diff], do: Map.put(native, :diff, :state), else: native

    if opts[:page] do
      {items, next} = run_page(name, native)
      {items, next && Query.cursor(next)}
    else
      run_query(name, native)
    end
  end

  @doc false
  # The ids a spec, a list of specs (their union) or a list of ids selects, in
  # (timestamp, id) order, without building the events.
  def select_ids(specs, name \\ __MODULE__), do: Native.query_ids(store!(name), selection(specs))

  @doc false
  # The native form of a selection: a spec (a map), a list of specs (their union), or a
  # list of event ids.
  def selection(%{} = spec), do: spec |> Query.normalize!() |> elem(1)
  def selection([%{} | _] = specs), do: Enum.map(specs, &selection/1)
  def selection(ids) when is_list(ids), do: ids

  @doc false
  def get(id, name \\ __MODULE__), do: Native.get(store!(name), id)

  @doc "Every recorded state of `pid`, oldest first."
  @spec get_state_history(pid(), keyword()) :: [event()]
  def get_state_history(pid, opts \\ []) do
    check_pid!(pid, "get_state_history/1")
    query_events([type: :state, pid: pid] ++ opts)
  end

  @doc """
  The state `pid` had at `timestamp`: the last `:state` event at or before it.
  """
  @spec get_state_at(pid(), integer() | DateTime.t(), keyword()) ::
          {:ok, term()} | {:error, :not_found}
  def get_state_at(pid, timestamp, opts \\ []) do
    check_pid!(pid, "get_state_at/2")
    timestamp = timestamp!(timestamp, opts, "get_state_at/2 timestamp")

    case query_events(
           [type: :state, pid: pid, timestamp_end: timestamp, order: :desc, limit: 1] ++ opts
         ) do
      [%{state: state}] -> {:ok, state}
      _ -> {:error, :not_found}
    end
  end

  @doc """
  Events within `window_ms` milliseconds either side of `timestamp`, oldest first.
  """
  @spec get_events_at(integer() | DateTime.t(), non_neg_integer(), keyword()) :: [event()]
  def get_events_at(timestamp, window_ms \\ 100, opts \\ []) do
    timestamp = timestamp!(timestamp, opts, "get_events_at/2 timestamp")

    unless is_integer(window_ms) and window_ms >= 0,
      do:
        raise(
          ArgumentError,
          "window_ms must be a non-negative integer, got: #{inspect(window_ms)}"
        )

    window = System.convert_time_unit(window_ms, :millisecond, :native)
    query_events([timestamp_start: timestamp - window, timestamp_end: timestamp + window] ++ opts)
  end

  @doc "The first event after `timestamp`, or `nil`."
  @spec next_event_after(integer() | DateTime.t(), keyword()) :: event() | nil
  def next_event_after(timestamp, opts \\ []) do
    timestamp = timestamp!(timestamp, opts, "next_event_after/1 timestamp")
    List.first(query_events([timestamp_start: timestamp + 1, limit: 1] ++ opts))
  end

  @doc "The last event before `timestamp`, or `nil`."
  @spec prev_event_before(integer() | DateTime.t(), keyword()) :: event() | nil
  def prev_event_before(timestamp, opts \\ []) do
    timestamp = timestamp!(timestamp, opts, "prev_event_before/1 timestamp")
    List.first(query_events([timestamp_end: timestamp - 1, order: :desc, limit: 1] ++ opts))
  end

  @doc """
  Pids that had a `:spawn` or `:alive` event (running when tracing began) and no
  `:exit` or `:crash` event at or before `timestamp` — the event types whose lifecycle
  role (`vocabulary/0`) is `:born` and `:died`.
  """
  @spec get_processes_at(integer() | DateTime.t(), keyword()) :: [pid()]
  def get_processes_at(timestamp, opts \\ []) do
    timestamp = timestamp!(timestamp, opts, "get_processes_at/1 timestamp")
    Native.live_pids(store!(Keyword.get(opts, :store, __MODULE__)), timestamp)
  end

  @doc "Forgets every stored event. Statistics of what was appended are kept."
  @spec clear(atom()) :: :ok
  def clear(name \\ __MODULE__), do: Native.clear(store!(name))

  @doc """
  Store statistics: `:stored` (held now), `:appended`, `:sampled_out`, `:pruned`,
  `:truncated`, `:bytes` (payload held), `:memory` (reserved), `:by_type` (appended
  per type), `:oldest_id`, `:newest_id`, the configuration, and `:unindexed` (true
  once `:max_keys` distinct keys were seen and newer ones are stored unindexed).
  """
  @spec stats(atom()) :: map()
  def stats(name \\ __MODULE__), do: Native.stats(store!(name))

  @doc "Changes the sample rate (0.0..1.0) of a running store."
  @spec set_sample_rate(number(), atom()) :: :ok
  def set_sample_rate(rate, name \\ __MODULE__) do
    Native.set_sample_rate(store!(name), sample_rate!(rate))
  end

  @doc """
  The event vocabulary, from the one table in C (`c_src/core/vocab.c`): every event type
  ElixirScope records or knows, with its category (what tracing levels record it), whether it is
  critical (never sampled out), its lifecycle role (`:born`, `:died`, `:link`,
  `:unlink`, `:named`, `:unnamed` or `:none`) and the fields it indexes; and the
  tracing levels with the categories each records.

      iex> %{types: types, levels: levels} = ElixirScope.TraceDB.vocabulary()
      iex> Enum.find(types, &(&1.type == :crash))
      %{type: :crash, category: :crashes, critical: true, lifecycle: :died, indexes: [:pid], hashed_field: nil, peer: :to_pid, variants: nil}
      iex> Enum.find(types, &(&1.type == :process)).variants.values |> Enum.map(&{&1.value, &1.as})
      [spawn: :spawn, existing: :alive, exit: :exit, crash: :crash]
      iex> Enum.find(levels, &(&1.level == :messages_only)).categories
      [:messages, :crashes]
  """
  @spec vocabulary() :: %{types: [map()], levels: [map()]}
  def vocabulary do
    case :persistent_term.get({__MODULE__, :vocabulary}, nil) do
      nil ->
        v = Native.vocabulary()
        :persistent_term.put({__MODULE__, :vocabulary}, v)
        v

      v ->
        v
    end
  end

  @doc false
  # Query specs (ElixirScope.Query) that together select the events of `types` and the
  # events that stand for them (the vocabulary's variants: a `:process` event with
  # `event: :crash` stands for a `:crash`).
  def type_specs(types) do
    types = List.wrap(types)

    variants =
      for %{type: type, variants: %{field: field, values: values}} <- vocabulary().types,
          standing = for(%{value: v, as: as} <- values, as in types, do: v),
          standing != [],
          do: [type: type, where: [{field, {:in, standing}}]]

    [[type: types] | variants]
  end

  @doc false
  # The lookups and aggregations the query modules build on (ElixirScope.Processes,
  # Analysis, Phoenix, the MCP tools): each one NIF of the query side, on a named store.
  def snapshot(ts, opts, name), do: Native.snapshot(store!(name), ts, opts)
  def links(pid, ts, name), do: Native.links(store!(name), pid, ts)

  def state_change(pid, before, later, name),
    do: Native.state_change(store!(name), pid, before, later)

  def perf(module, name), do: Native.perf(store!(name), module)
  def slowest(limit, module, name), do: Native.slowest(store!(name), limit, module)

  @doc false
  # The events of a spec with the largest `field`, largest first (c_src/core/agg.h: es_agg_top).
  def top(filters, field, struct) do
    {name, native} = Query.normalize!(filters)
    Native.top(store!(name), Map.put(native, :struct, struct), field)
  end

  def traffic(from, to, name), do: Native.traffic(store!(name), from, to)
  def peers(pid, name), do: Native.peers(store!(name), pid)
  def actor_summary(pid, name), do: Native.actor_summary(store!(name), pid)
  def actors(name), do: Native.actors(store!(name))

  @doc false
  # Field-change and cause counts over the :state events a spec selects.
  def state_stats(filters, name) do
    {_, native} = Query.normalize!(filters)
    Native.state_stats(store!(name), native)
  end

  @doc false
  def call_tree(pid, filters, name) do
    {_, native} = Query.normalize!(filters)
    Native.call_tree(store!(name), pid, native)
  end

  @doc false
  # What `pid` did and caused in a window, one hop deep (c_src/core/cause.h): `window` and
  # `page` are normalized specs, the window's bounds, and the page's types, positions,
  # order, limit and :struct.
  def request_timeline(pid, window, page, name),
    do: Native.request_timeline(store!(name), pid, window, page)

  @doc false
  # Files: dumps and loads (ElixirScope.PostMortem, Persister, FlightRecorder), exports.
  def dump(path, selection, mode, segment_bytes, name),
    do: Native.dump(store!(name), path, dump_selection(selection), mode, segment_bytes)

  def load(path, offset, index, name), do: Native.load(store!(name), path, offset, index)

  # Where erlang:halt/0,1 writes the events after last_id (OTP 26+, c_src/nif/persist.h);
  # a nil path forgets it. Nothing when the store is gone.
  def persist_on_halt(path, last_id, segment_bytes, name) do
    case lookup(name) do
      nil -> :ok
      store -> Native.persist_on_halt(store, path, last_id, segment_bytes)
    end
  end

  def export_chrome(path, selection, name),
    do: Native.export_chrome(store!(name), path, selection(selection))

  def export_mermaid(path, spec, pids, busiest, name),
    do: Native.export_mermaid(store!(name), path, selection(spec), pids, busiest)

  defp dump_selection(after_id) when is_integer(after_id), do: after_id
  defp dump_selection(selection), do: selection(selection)

  @doc false
  # The structural diff of two terms (ElixirScope.diff/2), and the clock's calibration.
  def diff(old, new), do: Native.diff(old, new)
  def calibrate_clock, do: Native.calibrate_clock()

  @doc false
  # The store's wall clock (ElixirScope.WallClock): the offset in effect at a
  # timestamp, the timestamp of a wall-clock time (native units since the epoch), every
  # offset noted, and a note of one.
  def wall_offset(ts, name), do: Native.wall_offset(store!(name), ts)
  def wall_timestamp(wall, name), do: Native.wall_timestamp(store!(name), wall)
  def wall_offsets(name), do: Native.wall_offsets(store!(name))
  def note_wall_offset(ts, offset, name), do: Native.wall_note(store!(name), ts, offset)

  @doc false
  # What a store loaded by ElixirScope.PostMortem.load/2 was loaded from, or nil.
  def recording(name), do: :persistent_term.get({__MODULE__, name, :recording}, nil)

  @doc false
  # Notes that the running store `name` holds what `info` describes (a loaded dump);
  # forgotten when the store stops.
  def put_recording(name, info), do: :persistent_term.put({__MODULE__, name, :recording}, info)

  @doc false
  # The store resource of a running store, or nil.
  def lookup(name), do: :persistent_term.get({__MODULE__, name}, nil)

  @doc false
  def store!(name) do
    lookup(name) ||
      raise RuntimeError,
            "ElixirScope store #{inspect(name)} is not running: start it with " <>
              "ElixirScope.TraceDB.start_link/1 (or ElixirScope.setup/1)"
  end

  ## Validation

  @doc """
  The store options with their defaults, from the store itself (`c_src/core/store.c`):
  `max_events`, `max_bytes`, `max_payload_bytes`, `max_keys`, `sample_rate`.
  """
  @spec defaults() :: keyword()
  def defaults do
    ints = for {name, default, _min, _max} <- Native.store_options(), do: {name, default}
    ints ++ [sample_rate: 1.0]
  end

  @doc false
  # Validates store options; returns {name, config map}. ElixirScope.setup/1 uses it too.
  def validate_options!(opts) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "options must be a keyword list, got: #{inspect(opts)}")

    {name, opts} = Keyword.pop(opts, :name, __MODULE__)

    unless is_atom(name) and name != nil,
      do: raise(ArgumentError, ":name must be an atom, got: #{inspect(name)}")

    ranges = Map.new(Native.store_options(), fn {key, _, min, max} -> {key, {min, max}} end)

    config =
      Enum.reduce(opts, Map.new(defaults()), fn
        {:sample_rate, v}, acc ->
          Map.put(acc, :sample_rate, sample_rate!(v))

        # The original ElixirScope's option: see the moduledoc.
        {:test_mode, v}, acc when is_boolean(v) ->
          acc

        {:test_mode, v}, _acc ->
          raise ArgumentError, ":test_mode must be a boolean, got: #{inspect(v)}"

        {key, v}, acc when is_map_key(ranges, key) ->
          Map.put(acc, key, int_in!(key, v, ranges[key]))

        {key, _}, _ ->
          raise ArgumentError,
                "unknown TraceDB option #{inspect(key)}; allowed: :name, :test_mode, " <>
                  Enum.map_join(
                    Keyword.keys(defaults()) ++ Keyword.keys(Persister.defaults()),
                    ", ",
                    &inspect/1
                  )
      end)

    if config.max_payload_bytes > div(config.max_bytes, 4) do
      raise ArgumentError,
            ":max_payload_bytes (#{config.max_payload_bytes}) must be at most :max_bytes / 4 " <>
              "(#{div(config.max_bytes, 4)})"
    end

    {name, config}
  end

  defp int_in!(key, v, {min, max}) do
    if is_integer(v) and v >= min and v <= max do
      v
    else
      raise ArgumentError,
            "#{inspect(key)} must be an integer in #{min}..#{max}, got: #{inspect(v)}"
    end
  end

  defp sample_rate!(v) when is_number(v) and v >= 0 and v <= 1, do: v / 1

  defp sample_rate!(v),
    do: raise(ArgumentError, ":sample_rate must be a number in 0.0..1.0, got: #{inspect(v)}")

  defp check_pid!(pid, _what) when is_pid(pid), do: :ok

  defp check_pid!(pid, what),
    do: raise(ArgumentError, "#{what} expects a pid, got: #{inspect(pid)}")

  # A timestamp, or a DateTime turned into one by the store's wall clock.
  defp timestamp!(v, _opts, _what) when is_integer(v), do: v

  defp timestamp!(%DateTime{} = at, opts, _what),
    do: ElixirScope.WallClock.timestamp(at, store: Keyword.get(opts, :store, __MODULE__))

  defp timestamp!(v, _opts, what),
    do:
      raise(
        ArgumentError,
        "#{what} must be an integer (System.monotonic_time/0 units) or a DateTime, " <>
          "got: #{inspect(v)}"
      )
end
