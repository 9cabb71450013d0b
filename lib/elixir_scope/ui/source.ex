defmodule ElixirScope.UI.Source do
  @moduledoc false
  # Every read and every tracing change the web UI makes, in one place: the UI's API
  # (`ElixirScope.UI.API`) shapes answers and never calls the store, the NIFs or the
  # facade itself. Listings are `ElixirScope.Query` specs (plain data, evaluated in C:
  # id-only projections, type and pid lists, cursors); the rest are the store's and the
  # facade's own queries.
  #
  # The UI reads the default store, `ElixirScope.TraceDB`: the running recording, or a
  # dump opened with `ElixirScope.load/1`.

  alias ElixirScope.{Analysis, Event, Phoenix, Processes, Query, TimeTravel, TraceDB}

  @store TraceDB

  ## The store and the recording

  @doc false
  def running?, do: TraceDB.lookup(@store) != nil

  @doc false
  def stats, do: TraceDB.stats(@store)

  @doc false
  # What the store was loaded from (`ElixirScope.load/1`), or nil for a live recording.
  def recording, do: TraceDB.recording(@store)

  @doc false
  # Whether `pid` can be asked about in this VM: the UI shows the live recording (a
  # loaded one comes from another VM, whose pids may look like local ones) and the
  # pid is local.
  def local?(pid), do: is_pid(pid) and node(pid) == node() and recording() == nil

  @doc false
  # What is traced now, or nil when ElixirScope is not tracing.
  def tracing do
    case ElixirScope.tracing_info() do
      %{} = info -> info
      {:error, _} -> nil
    end
  end

  @doc false
  # System time minus monotonic time, in native units, for the recording's timestamps:
  # this VM's for a live recording; for a loaded one the offset its VM noted last
  # (ElixirScope.WallClock), or nil when it noted none (format version 1).
  def time_offset do
    case recording() do
      nil -> System.time_offset()
      %{last_timestamp: ts} when is_integer(ts) -> TraceDB.wall_offset(ts, @store)
      _ -> nil
    end
  end

  ## Events

  @doc false
  # Events matching `TraceDB.query_events/1` filters, as ElixirScope.Event structs.
  def events(filters), do: TraceDB.query_structs(filters, Event)

  @doc false
  # The ids alone (nothing decoded), ordered as events/1 orders them.
  def ids(filters), do: Query.run([select: :ids] ++ filters)

  @doc false
  def event(id), do: TraceDB.get(id, @store)

  @doc false
  # The :state event `id` of `pid`, with :diff from the state recorded before it.
  def state_step(pid, id) do
    case TraceDB.query_structs([type: :state, pid: pid, after_id: id - 1, limit: 1], Event,
           diff: true
         ) do
      [%{id: ^id} = step] -> step
      _ -> nil
    end
  end

  @doc false
  def diff(old, new), do: TimeTravel.diff(old, new)

  ## Processes

  @doc false
  # Recorded history of one process: %{events, first, last, by_type}.
  def history(pid), do: TraceDB.actor_summary(pid, @store)

  @doc false
  # The :alive (or :spawn) event of pid: its registered name then, initial call and
  # parent; nil when neither is recorded.
  def birth(pid) do
    Enum.find_value([:alive, :spawn], fn type ->
      List.first(events(type: type, pid: pid, order: :desc, limit: 1))
    end)
  end

  @doc false
  def process_info(pid), do: Processes.process_info(pid)

  @doc false
  def relationships(pid), do: Processes.process_relationships(pid)

  @doc false
  # Every process the recording has events of (or had: pids stay indexed after their
  # events are pruned), sorted.
  def recorded_pids do
    @store
    |> TraceDB.actors()
    |> Enum.filter(&is_pid/1)
    |> Enum.uniq()
    |> Enum.sort()
  end

  @doc false
  # Pids the recording shows alive at `timestamp` (spawned or alive when tracing
  # began, and not exited by then).
  def alive_at(timestamp), do: TraceDB.get_processes_at(timestamp)

  @doc false
  # The processes `pid` exchanged recorded messages with: [{pid, messages}], most first.
  def peers(pid), do: TraceDB.peers(pid, @store)

  ## Calls

  @doc false
  def call_tree(pid, window), do: Analysis.call_tree(pid, window)

  @doc false
  def call_subtree(call_id, window), do: Analysis.call_tree(call_id, window)

  @doc false
  def performance(module), do: Analysis.performance_analysis(module)

  @doc false
  def slowest(opts), do: Analysis.slowest_function_calls(opts)

  ## Phoenix

  @doc false
  def requests(filters), do: Phoenix.requests(filters)

  @doc false
  def request_timeline(id, opts), do: Phoenix.request_timeline(id, opts)

  @doc false
  def phoenix_events(filters), do: Phoenix.events(filters)

  @doc false
  def live_view_timeline(pid, opts), do: Phoenix.live_view_timeline(pid, opts)

  ## Exports

  @doc false
  def export(path, opts), do: ElixirScope.export(path, opts)

  ## Tracing changes (the only writes)

  @doc false
  def trace(:trace_process, pid), do: ElixirScope.trace_process(pid)
  def trace(:trace_genserver, pid), do: ElixirScope.trace_genserver(pid)
  def trace(:untrace_process, pid), do: ElixirScope.untrace_process(pid)
  def trace(:trace_module, module), do: ElixirScope.trace_module(module)
  def trace(:stop_trace_module, module), do: ElixirScope.stop_trace_module(module)
end
