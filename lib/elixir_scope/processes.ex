defmodule ElixirScope.Processes do
  @moduledoc """
  Questions about processes, answered from the live system and from the recording
  together: what is this process and what has it done, which processes run a module,
  who is it related to, what was alive at a given moment, which message changed a
  GenServer's state, and whose mailbox is filling up.

  Every function combines two sources:

    * **live** — `Process.info/2` and friends, for processes running now
      (`ElixirScope.Processes.Live`);
    * **recorded** — the events in the `ElixirScope.TraceDB` store (spawns, exits,
      crashes, links, registrations, messages, GenServer states, and the `:alive`
      event `ElixirScope.setup/1` records for each process running when tracing
      starts), so a process that has already exited can still be examined. Those are
      queries of the C store (`ElixirScope.Processes.Recorded`): snapshots, link
      replays and state searches run in C, in time proportional to the processes and
      the lifecycle and state events they read, not to the whole recording.

  What is recorded depends on what is traced: lifecycle events (`:spawn`, `:link`,
  `:register`, ...) are recorded for traced processes (`trace_all: true` traces all
  of them), messages at the levels that include them, and states for GenServers
  given to `ElixirScope.trace_genserver/1`.

  ## Examples

      ElixirScope.setup(trace_all: true)

      # One process: live info, event counts, last state, crash
      ElixirScope.Processes.process_info(pid)

      # Every process running (or recorded running) MyApp.Worker
      ElixirScope.Processes.find_processes(module: MyApp.Worker)

      # Links, monitors, parent, supervisor, children, busiest peers
      ElixirScope.Processes.process_relationships(pid)

      # What was alive at a moment, with names, states and links then
      t = System.monotonic_time()
      ElixirScope.Processes.system_snapshot_at(t)

      # Which message took the counter from 1 to 3?
      {:ok, change} = ElixirScope.Processes.analyze_state_change(pid, 1, 3)
      change.cause

      # Mailboxes growing faster than they are read
      ElixirScope.Processes.message_queue_analysis(window_ms: 2_000)

  Timestamps are `System.monotonic_time/0` values in native units, as in every
  ElixirScope event. Events come back as `ElixirScope.Event`s (maps that IEx prints
  on one line).

  ## Options and errors

  Every function takes `store: name` to read a store other than the default
  `ElixirScope.TraceDB`. Like the readers of `ElixirScope.TraceDB`, they raise
  `RuntimeError` when that store is not running (start it with
  `ElixirScope.setup/1` or `ElixirScope.TraceDB.start_link/1`) and `ArgumentError`
  for an argument or option of the wrong kind, naming the problem.

  Only processes of the local node have a live part: a pid of another node is
  examined from the recording alone.
  """

  alias ElixirScope.{Event, TraceDB}
  alias ElixirScope.Processes.{Live, Recorded}

  @type event :: Event.t()

  @type live_info :: %{
          registered_name: atom() | nil,
          status: atom(),
          message_queue_len: non_neg_integer(),
          memory: non_neg_integer(),
          reductions: non_neg_integer(),
          current_function: {module(), atom(), arity()} | nil,
          initial_call: {module(), atom(), arity()} | nil,
          links: [pid() | port()],
          monitors: list(),
          parent: pid() | nil
        }

  @type info :: %{
          pid: pid(),
          alive: boolean(),
          live: live_info() | nil,
          history: %{
            events: non_neg_integer(),
            first: integer() | nil,
            last: integer() | nil,
            by_type: %{atom() => non_neg_integer()}
          },
          last_state: event() | nil,
          crash: event() | nil
        }

  @type found :: %{pid: pid(), alive: boolean(), source: [:live | :recorded]}

  @type relationships :: %{
          pid: pid(),
          alive: boolean(),
          links: [pid() | port()],
          monitors: list(),
          monitored_by: list(),
          parent: pid() | nil,
          supervisor: pid() | nil,
          children: [pid()],
          peers: [{pid(), non_neg_integer()}]
        }

  @type snapshot_entry :: %{
          pid: pid(),
          name: atom() | nil,
          state: term(),
          links: [pid()],
          parent: pid() | nil,
          supervisor: pid() | nil,
          exit: :unknown | nil
        }

  @type state_change :: %{
          before: event(),
          after: event(),
          cause: term(),
          callback: atom() | nil,
          events_between: [event()],
          diff: [{list(), :added | :removed | :changed, term(), term()}]
        }

  @type queue_analysis :: %{
          window_ms: pos_integer(),
          top: [
            %{
              pid: pid(),
              name: atom() | nil,
              message_queue_len: non_neg_integer(),
              current_function: {module(), atom(), arity()} | nil
            }
          ],
          traffic: [
            %{
              pid: pid(),
              sent: non_neg_integer(),
              inflow: non_neg_integer(),
              received: non_neg_integer(),
              sent_per_sec: float(),
              inflow_per_sec: float(),
              received_per_sec: float(),
              message_queue_len: non_neg_integer() | nil,
              growing: boolean()
            }
          ]
        }

  @call_timeout 1_000

  ## process_info

  @doc """
  Everything known about one process, alive or not:

      %{
        pid: pid,
        alive: true,
        live: %{registered_name: name | nil, status: :waiting, message_queue_len: 0,
                memory: bytes, reductions: n, current_function: mfa,
                initial_call: mfa, links: [...], monitors: [...], parent: pid | nil},
        history: %{events: n, first: ts | nil, last: ts | nil, by_type: %{send: 3, ...}},
        last_state: state_event | nil,
        crash: crash_event | nil
      }

  `live` is `nil` (and `alive` false) for a process that is not running. Its
  `initial_call` is the one `proc_lib` records (`{MyServer, :init, 1}` for a
  GenServer), else the spawn call; `parent` is the first of its `$ancestors`, else
  the spawning process where the runtime knows it. `monitors` has the shape of
  `Process.info(pid, :monitors)`.

  `history` counts the process's recorded events; `last_state` is its last `:state`
  event (GenServers given to `ElixirScope.trace_genserver/1`); `crash` its last
  `:crash` event (an abnormal exit).

  Options: `:store`.
  """
  @spec process_info(pid(), keyword()) :: info()
  def process_info(pid, opts \\ [])

  def process_info(pid, opts) when is_pid(pid) do
    opts = options!(opts, [:store], "process_info/2")
    name = store!(opts)
    live = Live.info(pid)

    %{
      pid: pid,
      alive: live != nil,
      live: live,
      history: TraceDB.actor_summary(pid, name),
      last_state: wrap(Recorded.last(:state, pid, name)),
      crash: wrap(Recorded.last(:crash, pid, name))
    }
  end

  def process_info(other, _opts),
    do: raise(ArgumentError, "process_info/2 expects a pid, got: #{inspect(other)}")

  ## find_processes

  @doc """
  The processes running a module, live and recorded:

      [%{pid: pid, alive: true, source: [:live, :recorded]}, ...]

  sorted by pid. A live process matches when its initial call is in `module` (a
  process spawned with `spawn(module, ...)`) or its `proc_lib` initial call is
  (`{module, :init, 1}`: a GenServer whose callback module is `module`). A recorded
  one matches when it has `:state` events of `module`, or a `:spawn` or `:alive`
  event whose `:initial_call` is in `module`. `source` says which of the two found
  it.

  Options:

    * `:module` (required) — the module;
    * `:limit` — at most this many processes (the lowest pids), default all;
    * `:store`.

  Recorded matches are two aggregates of the C store (its `:state` events of the
  module, and the born events whose initial call names it, grouped by pid).
  """
  @spec find_processes(keyword()) :: [found()]
  def find_processes(opts) do
    opts = options!(opts, [:module, :limit, :store], "find_processes/1")

    module =
      Keyword.get(opts, :module) ||
        raise ArgumentError,
              "find_processes/1 needs module: SomeModule (the only criterion supported now), " <>
                "got: #{inspect(opts)}"

    name = store!(opts)
    live = for pid <- Process.list(), Live.runs?(pid, module), into: MapSet.new(), do: pid
    recorded = Recorded.running(module, name)

    MapSet.union(live, recorded)
    |> Enum.sort()
    |> take(Keyword.get(opts, :limit, :infinity))
    |> Enum.map(fn pid ->
      in_live = MapSet.member?(live, pid)

      %{
        pid: pid,
        alive: in_live or Live.alive?(pid),
        source:
          if(in_live, do: [:live], else: []) ++
            if(MapSet.member?(recorded, pid), do: [:recorded], else: [])
      }
    end)
  end

  ## process_relationships

  @doc """
  How a process is connected to others:

      %{
        pid: pid,
        alive: true,
        links: [pid | port],
        monitors: [{:process, pid} | ...],   # as Process.info(pid, :monitors)
        monitored_by: [pid],
        parent: pid | nil,
        supervisor: pid | nil,
        children: [pid],
        peers: [{pid, messages}]
      }

    * `links` — live; for a process no longer running, the links it had when it
      exited, replayed from its recorded `:link`/`:unlink` events (links to
      processes recorded exiting before it are dropped).
    * `monitors`, `monitored_by` — live; `[]` when it is not running.
    * `parent` — the first of its `$ancestors`, else the `:parent` of its recorded
      `:spawn` (or `:alive`) event.
    * `supervisor` — the nearest ancestor that is a supervisor (a `Supervisor`,
      `:supervisor` or `DynamicSupervisor`), found through `$ancestors` or, for a
      process no longer running, through recorded parents.
    * `children` — for a supervisor, its live children; plus every process whose
      recorded `:spawn` or `:alive` event names it as parent (children that have
      exited included, such as the ones a supervisor restarted). Sorted by pid.
    * `peers` — the processes it exchanged recorded messages with, either way,
      most messages first.

  Options: `:limit` — peers kept, default `10`; `:store`.
  """
  @spec process_relationships(pid(), keyword()) :: relationships()
  def process_relationships(pid, opts \\ [])

  def process_relationships(pid, opts) when is_pid(pid) do
    opts = options!(opts, [:limit, :store], "process_relationships/2")
    name = store!(opts)

    live =
      if Live.local?(pid),
        do: Process.info(pid, [:links, :monitors, :monitored_by, :dictionary])

    alive = is_list(live)
    live = if alive, do: Map.new(live), else: nil

    links =
      if alive, do: live.links, else: TraceDB.links(pid, Recorded.death_time(pid, name), name)

    ancestors = ancestors(pid, name)

    %{
      pid: pid,
      alive: alive,
      links: links,
      monitors: if(alive, do: live.monitors, else: []),
      monitored_by: if(alive, do: live.monitored_by, else: []),
      parent: List.first(ancestors),
      supervisor: Enum.find(ancestors, &supervisor?(&1, name)),
      children: children(pid, alive, name),
      peers: pid |> TraceDB.peers(name) |> take(Keyword.get(opts, :limit, 10))
    }
  end

  def process_relationships(other, _opts),
    do: raise(ArgumentError, "process_relationships/2 expects a pid, got: #{inspect(other)}")

  # The ancestors of pid, nearest first: its live $ancestors, else its parent (live or
  # recorded) followed by that parent's ancestors.
  defp ancestors(pid, name), do: ancestors(pid, name, 32, MapSet.new([pid]))

  defp ancestors(_pid, _name, 0, _seen), do: []

  defp ancestors(pid, name, depth, seen) do
    case Live.ancestors(pid) do
      [_ | _] = list ->
        list

      _ ->
        parent = (Live.local?(pid) && Live.parent(pid, [])) || Recorded.parent(pid, nil, name)

        if is_pid(parent) and not MapSet.member?(seen, parent),
          do: [parent | ancestors(parent, name, depth - 1, MapSet.put(seen, parent))],
          else: []
    end
  end

  defp children(pid, alive, name) do
    live =
      if alive and Live.supervisor?(pid) do
        try do
          for {_, child, _, _} <- GenServer.call(pid, :which_children, @call_timeout),
              is_pid(child),
              do: child
        catch
          :exit, _ -> []
        end
      else
        []
      end

    live |> MapSet.new() |> MapSet.union(Recorded.children(pid, name)) |> Enum.sort()
  end

  # A supervisor: running as one now, or recorded as one by its :alive event.
  defp supervisor?(pid, name) do
    if Live.alive?(pid), do: Live.supervisor?(pid), else: Recorded.supervisor?(pid, name)
  end

  ## system_snapshot_at

  @doc """
  The processes alive at `timestamp` according to the recording — every process with a
  recorded event at or before it (its `:spawn` or `:alive` event, a state, a message,
  a call...) and no exit recorded at or before it (`:exit`, `:crash`, or an event
  standing for one: see `ElixirScope.TraceDB.vocabulary/0`) — sorted by pid, each as

      %{pid: pid, name: atom | nil, state: term | nil, links: [pid],
        parent: pid | nil, supervisor: pid | nil, exit: nil | :unknown}

    * `name` — the registered name then: from its `:alive` event and the
      `:register`/`:unregister` events before `timestamp`;
    * `state` — its recorded GenServer state then (`nil` if none), so a GenServer
      given to `ElixirScope.trace_genserver/1` after it started is there with its state;
    * `links` — its links then, replayed from `:link`/`:unlink` events of either
      side, less the processes recorded exiting by then;
    * `parent` — the `:parent` of its `:spawn` or `:alive` event;
    * `supervisor` — that parent, when it is known to be a supervisor (running now,
      or recorded as one by its `:alive` event), else `nil`;
    * `exit` — `:unknown` for a process whose exit was never recorded (its lifecycle
      was not traced: see `:lifecycle` in `ElixirScope.setup/1`) and that is not running
      now (a process of a recording loaded from a file is not running): it may have
      ended before `timestamp`. `nil` otherwise: it was alive then.

  Computed in C from the lifecycle and state events at or before `timestamp` (and the
  exits recorded after it), in time proportional to them and to the processes listed,
  not to the whole recording; a process known only from other kinds of events costs a
  walk back through its own events after `timestamp`.

  Options: `:limit` — at most this many processes (the lowest pids), default all;
  `:after` — only processes after this pid (the last of a previous page); `:store`.
  """
  @spec system_snapshot_at(integer() | DateTime.t(), keyword()) :: [snapshot_entry()]
  def system_snapshot_at(timestamp, opts \\ [])

  def system_snapshot_at(%DateTime{} = at, opts) do
    opts = options!(opts, [:limit, :after, :store], "system_snapshot_at/2")
    system_snapshot_at(ElixirScope.WallClock.timestamp(at, store: store!(opts)), opts)
  end

  def system_snapshot_at(timestamp, opts) when is_integer(timestamp) do
    opts = options!(opts, [:limit, :after, :store], "system_snapshot_at/2")
    name = store!(opts)

    page =
      case {Keyword.get(opts, :limit, :infinity), opts[:after]} do
        {:infinity, nil} -> %{}
        {:infinity, pid} -> %{after: pid}
        {n, nil} -> %{limit: n}
        {n, pid} -> %{limit: n, after: pid}
      end

    entries = TraceDB.snapshot(timestamp, page, name)

    supervisors =
      for parent <- entries |> Enum.map(& &1.parent) |> Enum.uniq(),
          is_pid(parent),
          supervisor?(parent, name),
          into: MapSet.new(),
          do: parent

    Enum.map(entries, fn e ->
      {exited, e} = Map.pop(e, :exited)

      e
      |> Map.put(:supervisor, if(MapSet.member?(supervisors, e.parent), do: e.parent))
      |> Map.put(:exit, if(not exited and not running?(e.pid, name), do: :unknown))
    end)
  end

  def system_snapshot_at(other, _opts),
    do:
      raise(
        ArgumentError,
        "system_snapshot_at/2 expects a timestamp (System.monotonic_time/0) or a DateTime, " <>
          "got: #{inspect(other)}"
      )

  # Whether a process of the recording runs now: a live local process of a live store
  # (a loaded recording's pids are another VM's, none of which runs).
  defp running?(pid, name), do: TraceDB.recording(name) == nil and Live.alive?(pid)

  ## analyze_state_change

  @doc """
  Finds how `pid` went from `before_state` to `after_state`: the first recorded
  `:state` event equal to `before_state`, then the first later one equal to
  `after_state`, and what happened in between.

      {:ok, %{before: state_event, after: state_event,
              cause: message, callback: :handle_call,
              events_between: [event], diff: [{path, :changed, old, new}]}}

  `cause` and `callback` are those of the `after` event: the message (or request)
  and the GenServer callback that produced the new state. `events_between` are the
  events of `pid` recorded strictly between the two (messages received, calls,
  intermediate states...), oldest first; `diff` is `ElixirScope.diff/2` of the two
  states. States are compared with `===`: in C, by the digest the store keeps of each
  recorded state, confirmed on the stored bytes of the few that match it — no state
  of the history is decoded.

  Returns `{:error, :not_found}` when no such pair of states is recorded.

  Options: `:limit` — at most this many `events_between`, default all; `:store`.
  """
  @spec analyze_state_change(pid(), term(), term(), keyword()) ::
          {:ok, state_change()} | {:error, :not_found}
  def analyze_state_change(pid, before_state, after_state, opts \\ [])

  def analyze_state_change(pid, before_state, after_state, opts) when is_pid(pid) do
    opts = options!(opts, [:limit, :store], "analyze_state_change/4")
    name = store!(opts)

    with {before_id, after_id} <- TraceDB.state_change(pid, before_state, after_state, name),
         %{} = before <- TraceDB.get(before_id, name),
         %{} = later <- TraceDB.get(after_id, name) do
      between =
        case Keyword.get(opts, :limit, :infinity) do
          0 ->
            []

          limit ->
            TraceDB.query_structs(
              [pid: pid, after_id: before_id, before_id: after_id, store: name] ++
                if(limit == :infinity, do: [], else: [limit: limit]),
              Event
            )
        end

      {:ok,
       %{
         before: Event.wrap(before),
         after: Event.wrap(later),
         cause: Map.get(later, :cause),
         callback: Map.get(later, :callback),
         events_between: between,
         diff: ElixirScope.diff(before_state, after_state)
       }}
    else
      _ -> {:error, :not_found}
    end
  end

  def analyze_state_change(other, _before, _after, _opts),
    do: raise(ArgumentError, "analyze_state_change/4 expects a pid, got: #{inspect(other)}")

  ## message_queue_analysis

  @doc """
  Where messages pile up:

      %{
        window_ms: 5000,
        top: [%{pid: pid, name: atom | nil, message_queue_len: n, current_function: mfa}],
        traffic: [%{pid: pid, sent: n, inflow: n, received: n,
                    sent_per_sec: float, inflow_per_sec: float, received_per_sec: float,
                    message_queue_len: n | nil, growing: boolean}]
      }

    * `top` — the live processes with the longest message queues, longest first
      (processes with an empty queue are left out).
    * `traffic` — per process, the recorded messages of the last `window_ms`
      milliseconds: `sent` by it, `inflow` (sent to it by traced senders) and
      `received` (its `:receive` events, when it is traced itself), with their rates.
      Sorted by inflow, highest first. `growing` flags a mailbox filling faster than
      it is read: an inflow above zero and more than 1.2 times the receive rate, and
      the process alive with a non-empty queue now. `message_queue_len` is `nil` for a
      process that is not running.

  The runtime reports a `:receive` when a message enters the process's queue, not
  when the process takes it out: for a traced consumer `received` follows `inflow`
  closely, and its live `message_queue_len` is the surer sign of a backlog.

  Options: `:limit` — entries in each list, default `10`; `:window_ms` — default
  `5000`; `:store`.
  """
  @spec message_queue_analysis(keyword()) :: queue_analysis()
  def message_queue_analysis(opts \\ []) do
    opts = options!(opts, [:limit, :window_ms, :store], "message_queue_analysis/1")
    name = store!(opts)
    limit = Keyword.get(opts, :limit, 10)
    window_ms = Keyword.get(opts, :window_ms, 5_000)

    now = System.monotonic_time()
    window = System.convert_time_unit(window_ms, :millisecond, :native)
    traffic = TraceDB.traffic(now - window, now, name)
    Live.queue_analysis(traffic, window_ms, limit)
  end

  ## Helpers

  defp wrap(nil), do: nil
  defp wrap(event), do: Event.wrap(event)

  defp take(list, :infinity), do: list
  defp take(list, n), do: Enum.take(list, n)

  defp store!(opts) do
    name = Keyword.get(opts, :store, TraceDB)
    TraceDB.store!(name)
    name
  end

  defp options!(opts, allowed, fun) do
    unless is_list(opts) and Keyword.keyword?(opts),
      do: raise(ArgumentError, "#{fun} options must be a keyword list, got: #{inspect(opts)}")

    for {key, value} <- opts do
      unless key in allowed,
        do:
          raise(
            ArgumentError,
            "unknown option #{inspect(key)} for #{fun}; allowed: " <>
              Enum.map_join(allowed, ", ", &inspect/1)
          )

      check_option!(key, value, fun)
    end

    opts
  end

  defp check_option!(:store, v, _fun) when is_atom(v) and v != nil, do: :ok
  defp check_option!(:module, v, _fun) when is_atom(v) and v != nil, do: :ok
  defp check_option!(:limit, v, _fun) when (is_integer(v) and v >= 0) or v == :infinity, do: :ok
  defp check_option!(:window_ms, v, _fun) when is_integer(v) and v > 0, do: :ok
  defp check_option!(:after, v, _fun) when is_pid(v) or is_nil(v), do: :ok

  defp check_option!(key, v, fun) do
    expected =
      case key do
        :store -> "a store name (an atom)"
        :module -> "a module (an atom)"
        :limit -> "a non-negative integer or :infinity"
        :window_ms -> "a positive integer (milliseconds)"
        :after -> "a pid"
      end

    raise ArgumentError, "#{fun}: #{inspect(key)} must be #{expected}, got: #{inspect(v)}"
  end
end
