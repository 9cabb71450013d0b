defmodule ElixirScope.Processes do
  @moduledoc """
  Questions about processes, answered from the live system and from the recording
  together: what is this process and what has it done, which processes run a module,
  who is it related to, what was alive at a given moment, which message changed a
  GenServer's state, and whose mailbox is filling up.

  Every function combines two sources:

    * **live** — `Process.info/2` and friends, for processes running now;
    * **recorded** — the events in the `ElixirScope.TraceDB` store (spawns, exits,
      crashes, links, registrations, messages, GenServer states, and the `:alive`
      event `ElixirScope.setup/1` records for each process running when tracing
      starts), so a process that has already exited can still be examined.

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

  alias ElixirScope.{Event, Native, TraceDB}

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
          supervisor: pid() | nil
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

  # Events read per query when a whole type has to be walked.
  @page 2_000
  # How far up a chain of recorded parents a supervisor is looked for.
  @max_depth 32
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
    {name, store} = store!(opts)
    live = live_info(pid)

    %{
      pid: pid,
      alive: live != nil,
      live: live,
      history: Native.actor_summary(store, pid),
      last_state:
        wrap(List.first(TraceDB.get_state_history(pid, order: :desc, limit: 1, store: name))),
      crash: wrap(last_event(:crash, pid, name))
    }
  end

  def process_info(other, _opts),
    do: raise(ArgumentError, "process_info/2 expects a pid, got: #{inspect(other)}")

  @info_items [
    :registered_name,
    :status,
    :message_queue_len,
    :memory,
    :reductions,
    :current_function,
    :initial_call,
    :links,
    :monitors,
    :dictionary
  ]

  defp live_info(pid) do
    with true <- local?(pid),
         info when is_list(info) <- Process.info(pid, @info_items) do
      info = Map.new(info)
      {dict, info} = Map.pop(info, :dictionary)

      %{
        info
        | registered_name: name_or_nil(info.registered_name),
          initial_call: dict[:"$initial_call"] || info.initial_call
      }
      |> Map.put(:parent, live_parent(pid, dict))
    else
      _ -> nil
    end
  end

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

  Recorded matches come from walking every `:spawn` and `:alive` event and the
  module's `:state` events: the cost grows with the recording.
  """
  @spec find_processes(keyword()) :: [found()]
  def find_processes(opts) do
    opts = options!(opts, [:module, :limit, :store], "find_processes/1")

    module =
      Keyword.get(opts, :module) ||
        raise ArgumentError,
              "find_processes/1 needs module: SomeModule (the only criterion supported now), " <>
                "got: #{inspect(opts)}"

    {name, _store} = store!(opts)

    live = for pid <- Process.list(), live_runs?(pid, module), into: MapSet.new(), do: pid

    recorded =
      MapSet.new()
      |> walk([type: :state, module: module], name, fn ev, acc -> MapSet.put(acc, ev.pid) end)
      |> walk([type: :spawn], name, &add_if_initial_call(&1, &2, module))
      |> walk([type: :alive], name, &add_if_initial_call(&1, &2, module))

    MapSet.union(live, recorded)
    |> Enum.sort()
    |> take(Keyword.get(opts, :limit, :infinity))
    |> Enum.map(fn pid ->
      in_live = MapSet.member?(live, pid)

      %{
        pid: pid,
        alive: in_live or alive?(pid),
        source:
          if(in_live, do: [:live], else: []) ++
            if(MapSet.member?(recorded, pid), do: [:recorded], else: [])
      }
    end)
  end

  defp live_runs?(pid, module) do
    case Process.info(pid, [:initial_call, :dictionary]) do
      [initial_call: ic, dictionary: dict] ->
        mfa_module(ic) == module or mfa_module(dict[:"$initial_call"]) == module

      nil ->
        false
    end
  end

  defp add_if_initial_call(%{pid: pid} = ev, acc, module) when is_pid(pid) do
    if mfa_module(Map.get(ev, :initial_call)) == module, do: MapSet.put(acc, pid), else: acc
  end

  defp add_if_initial_call(_ev, acc, _module), do: acc

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
        peers: [{peer_pid, messages}]
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
    {name, store} = store!(opts)

    live =
      if local?(pid),
        do: Process.info(pid, [:links, :monitors, :monitored_by, :dictionary])

    alive = is_list(live)
    live = if alive, do: Map.new(live), else: nil

    links =
      if alive,
        do: live.links,
        else: recorded_links(pid, death_time(pid, name), name)

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
      peers: store |> Native.peers(pid) |> take(Keyword.get(opts, :limit, 10))
    }
  end

  def process_relationships(other, _opts),
    do: raise(ArgumentError, "process_relationships/2 expects a pid, got: #{inspect(other)}")

  # The ancestors of pid, nearest first: its live $ancestors, else its parent (live or
  # recorded) followed by that parent's ancestors.
  defp ancestors(pid, name), do: ancestors(pid, name, @max_depth, MapSet.new([pid]))

  defp ancestors(_pid, _name, 0, _seen), do: []

  defp ancestors(pid, name, depth, seen) do
    case live_ancestors(pid) do
      [_ | _] = list ->
        list

      _ ->
        parent = (local?(pid) && live_parent(pid, [])) || recorded_parent(pid, :infinity, name)

        if is_pid(parent) and not MapSet.member?(seen, parent),
          do: [parent | ancestors(parent, name, depth - 1, MapSet.put(seen, parent))],
          else: []
    end
  end

  defp live_ancestors(pid) do
    with true <- local?(pid),
         {:dictionary, dict} <- Process.info(pid, :dictionary) do
      dict |> Keyword.get(:"$ancestors", []) |> Enum.map(&resolve/1) |> Enum.filter(&is_pid/1)
    else
      _ -> []
    end
  end

  defp children(pid, alive, name) do
    live =
      if alive and live_supervisor?(pid) do
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

    add_child = fn
      %{pid: child, parent: ^pid}, acc when is_pid(child) -> MapSet.put(acc, child)
      _, acc -> acc
    end

    MapSet.new(live)
    |> walk([type: :spawn], name, add_child)
    |> walk([type: :alive], name, add_child)
    |> Enum.sort()
  end

  ## system_snapshot_at

  @doc """
  The processes alive at `timestamp` according to the recording — those with a
  `:spawn` or `:alive` event and no `:exit` or `:crash` event at or before it
  (`ElixirScope.TraceDB.get_processes_at/2`) — sorted by pid, each as

      %{pid: pid, name: atom | nil, state: term | nil, links: [pid],
        parent: pid | nil, supervisor: pid | nil}

    * `name` — the registered name then: from its `:alive` event and the
      `:register`/`:unregister` events before `timestamp`;
    * `state` — its recorded GenServer state then (`nil` if none);
    * `links` — its links then, replayed from `:link`/`:unlink` events of either
      side, less the processes recorded exiting by then;
    * `parent` — the `:parent` of its `:spawn` or `:alive` event;
    * `supervisor` — that parent, when it is known to be a supervisor (running now,
      or recorded as one by its `:alive` event), else `nil`.

  Options: `:limit` — at most this many processes (the lowest pids), default all;
  `:store`.
  """
  @spec system_snapshot_at(integer(), keyword()) :: [snapshot_entry()]
  def system_snapshot_at(timestamp, opts \\ [])

  def system_snapshot_at(timestamp, opts) when is_integer(timestamp) do
    opts = options!(opts, [:limit, :store], "system_snapshot_at/2")
    {name, _store} = store!(opts)

    timestamp
    |> TraceDB.get_processes_at(store: name)
    |> Enum.sort()
    |> take(Keyword.get(opts, :limit, :infinity))
    |> Enum.map(fn pid ->
      parent = recorded_parent(pid, timestamp, name)

      %{
        pid: pid,
        name: name_at(pid, timestamp, name),
        state:
          case TraceDB.get_state_at(pid, timestamp, store: name) do
            {:ok, state} -> state
            {:error, :not_found} -> nil
          end,
        links: recorded_links(pid, timestamp, name),
        parent: parent,
        supervisor: if(parent && supervisor?(parent, name), do: parent)
      }
    end)
  end

  def system_snapshot_at(other, _opts),
    do:
      raise(
        ArgumentError,
        "system_snapshot_at/2 expects an integer timestamp (System.monotonic_time/0), " <>
          "got: #{inspect(other)}"
      )

  defp name_at(pid, ts, name) do
    [:alive, :register, :unregister]
    |> Enum.map(&last_event(&1, pid, name, ts))
    |> Enum.reject(&is_nil/1)
    |> Enum.max_by(&{&1.timestamp, &1.id}, fn -> nil end)
    |> case do
      %{type: type} = ev when type in [:alive, :register] -> Map.get(ev, :name)
      _ -> nil
    end
  end

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
  states. States are compared with `===`.

  Returns `{:error, :not_found}` when no such pair of states is recorded.

  Options: `:limit` — at most this many `events_between`, default all; `:store`.
  """
  @spec analyze_state_change(pid(), term(), term(), keyword()) ::
          {:ok, state_change()} | {:error, :not_found}
  def analyze_state_change(pid, before_state, after_state, opts \\ [])

  def analyze_state_change(pid, before_state, after_state, opts) when is_pid(pid) do
    opts = options!(opts, [:limit, :store], "analyze_state_change/4")
    {name, _store} = store!(opts)

    history = TraceDB.get_state_history(pid, store: name)

    with {:ok, before, rest} <- find_state(history, before_state),
         {:ok, later, _} <- find_state(rest, after_state) do
      limit =
        case Keyword.get(opts, :limit, :infinity) do
          :infinity -> []
          0 -> nil
          n -> [limit: n]
        end

      between =
        if limit,
          do:
            TraceDB.query_events(
              [pid: pid, after_id: before.id, before_id: later.id, store: name] ++ limit
            ),
          else: []

      {:ok,
       %{
         before: Event.wrap(before),
         after: Event.wrap(later),
         cause: Map.get(later, :cause),
         callback: Map.get(later, :callback),
         events_between: Enum.map(between, &Event.wrap/1),
         diff: ElixirScope.diff(before_state, after_state)
       }}
    end
  end

  def analyze_state_change(other, _before, _after, _opts),
    do: raise(ArgumentError, "analyze_state_change/4 expects a pid, got: #{inspect(other)}")

  defp find_state([], _state), do: {:error, :not_found}

  defp find_state([ev | rest], state) do
    case ev do
      %{state: s} when s === state -> {:ok, ev, rest}
      _ -> find_state(rest, state)
    end
  end

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
    {_name, store} = store!(opts)
    limit = Keyword.get(opts, :limit, 10)
    window_ms = Keyword.get(opts, :window_ms, 5_000)

    now = System.monotonic_time()
    window = System.convert_time_unit(window_ms, :millisecond, :native)
    traffic = Native.traffic(store, now - window, now)

    live =
      for pid <- Process.list(),
          info = Process.info(pid, [:message_queue_len, :registered_name, :current_function]),
          info != nil,
          into: %{} do
        {pid, Map.new(info)}
      end

    top =
      live
      |> Enum.filter(fn {_pid, info} -> info.message_queue_len > 0 end)
      |> Enum.sort_by(fn {pid, info} -> {-info.message_queue_len, pid} end)
      |> take(limit)
      |> Enum.map(fn {pid, info} ->
        %{
          pid: pid,
          name: name_or_nil(info.registered_name),
          message_queue_len: info.message_queue_len,
          current_function: info.current_function
        }
      end)

    secs = window_ms / 1000

    traffic =
      traffic
      |> Enum.map(fn %{pid: pid, sent: sent, inflow: inflow, received: received} ->
        queue = get_in(live, [pid, :message_queue_len])
        inflow_rate = inflow / secs
        received_rate = received / secs

        %{
          pid: pid,
          sent: sent,
          inflow: inflow,
          received: received,
          sent_per_sec: sent / secs,
          inflow_per_sec: inflow_rate,
          received_per_sec: received_rate,
          message_queue_len: queue,
          growing:
            inflow > 0 and inflow_rate > received_rate * 1.2 and is_integer(queue) and queue > 0
        }
      end)
      |> Enum.sort_by(&{-&1.inflow, &1.pid})
      |> take(limit)

    %{window_ms: window_ms, top: top, traffic: traffic}
  end

  ## Recorded relationships

  # The links of pid at ts, replayed from :link/:unlink events of either side, less
  # the peers recorded exiting at or before ts.
  defp recorded_links(pid, ts, name) do
    bound = if ts == :infinity, do: [], else: [timestamp_end: ts]

    [
      [type: :link, pid: pid],
      [type: :unlink, pid: pid],
      [type: :link, to_pid: pid],
      [type: :unlink, to_pid: pid]
    ]
    |> Enum.flat_map(&TraceDB.query_events(&1 ++ bound ++ [store: name]))
    |> Enum.sort_by(&{&1.timestamp, &1.id})
    |> Enum.reduce(MapSet.new(), fn ev, acc ->
      other = if ev.pid == pid, do: Map.get(ev, :to_pid), else: ev.pid

      cond do
        not is_pid(other) or other == pid -> acc
        ev.type == :link -> MapSet.put(acc, other)
        true -> MapSet.delete(acc, other)
      end
    end)
    |> Enum.reject(&exited_by?(&1, ts, name))
    |> Enum.sort()
  end

  defp exited_by?(pid, ts, name),
    do: last_event(:exit, pid, name, ts) != nil or last_event(:crash, pid, name, ts) != nil

  # When pid exited (its last :exit or :crash event), or :infinity.
  defp death_time(pid, name) do
    [last_event(:exit, pid, name), last_event(:crash, pid, name)]
    |> Enum.reject(&is_nil/1)
    |> Enum.map(& &1.timestamp)
    |> Enum.max(fn -> :infinity end)
  end

  # The :parent of the last :spawn (else :alive) event of pid at or before ts.
  defp recorded_parent(pid, ts, name) do
    Enum.find_value([:spawn, :alive], fn type ->
      case last_event(type, pid, name, ts) do
        %{parent: parent} when is_pid(parent) -> parent
        _ -> nil
      end
    end)
  end

  # A supervisor: running as one now, or recorded as one by its :alive event.
  defp supervisor?(pid, name) do
    if local?(pid) and Process.alive?(pid) do
      live_supervisor?(pid)
    else
      case last_event(:alive, pid, name) do
        %{initial_call: ic} -> supervisor_call?(ic)
        _ -> false
      end
    end
  end

  defp live_supervisor?(pid) do
    case Process.info(pid, :dictionary) do
      {:dictionary, dict} -> supervisor_call?(dict[:"$initial_call"])
      nil -> false
    end
  end

  defp supervisor_call?({:supervisor, _, _}), do: true
  defp supervisor_call?({DynamicSupervisor, :init, 1}), do: true
  defp supervisor_call?(_), do: false

  ## Helpers

  defp last_event(type, pid, name, ts \\ :infinity) do
    bound = if ts == :infinity, do: [], else: [timestamp_end: ts]

    List.first(
      TraceDB.query_events([type: type, pid: pid, order: :desc, limit: 1, store: name] ++ bound)
    )
  end

  # Folds fun over every event matching filters, oldest first, a page at a time.
  # Pages continue from the last {timestamp, id} seen, the order queries return.
  defp walk(acc, filters, name, fun), do: walk(acc, filters, name, fun, nil, @page)

  defp walk(acc, filters, name, fun, cursor, size) do
    bound = if cursor, do: [timestamp_start: elem(cursor, 0)], else: []
    page = TraceDB.query_events(filters ++ bound ++ [limit: size, store: name])
    fresh = if cursor, do: Enum.filter(page, &({&1.timestamp, &1.id} > cursor)), else: page
    acc = Enum.reduce(fresh, acc, fun)

    cond do
      length(page) < size -> acc
      # A whole page shares the cursor's timestamp: read a larger one.
      fresh == [] -> walk(acc, filters, name, fun, cursor, size * 4)
      true -> walk(acc, filters, name, fun, last_key(fresh), @page)
    end
  end

  defp last_key(events) do
    last = List.last(events)
    {last.timestamp, last.id}
  end

  defp live_parent(pid, dict) do
    case dict[:"$ancestors"] do
      [first | _] when is_pid(first) or is_atom(first) ->
        resolve(first)

      _ ->
        # Process.info(pid, :parent) exists from OTP 25 on.
        try do
          case Process.info(pid, :parent) do
            {:parent, parent} when is_pid(parent) -> parent
            _ -> nil
          end
        rescue
          ArgumentError -> nil
        end
    end
  end

  defp resolve(pid) when is_pid(pid), do: pid
  defp resolve(name) when is_atom(name), do: Process.whereis(name)
  defp resolve(_), do: nil

  defp wrap(nil), do: nil
  defp wrap(event), do: Event.wrap(event)

  defp alive?(pid), do: local?(pid) and Process.alive?(pid)

  defp local?(pid), do: node(pid) == node()

  defp mfa_module({m, _f, _a}) when is_atom(m), do: m
  defp mfa_module(_), do: nil

  defp name_or_nil([]), do: nil
  defp name_or_nil(name), do: name

  defp take(list, :infinity), do: list
  defp take(list, n), do: Enum.take(list, n)

  defp store!(opts) do
    name = Keyword.get(opts, :store, TraceDB)
    {name, TraceDB.store!(name)}
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

  defp check_option!(key, v, fun) do
    expected =
      case key do
        :store -> "a store name (an atom)"
        :module -> "a module (an atom)"
        :limit -> "a non-negative integer or :infinity"
        :window_ms -> "a positive integer (milliseconds)"
      end

    raise ArgumentError, "#{fun}: #{inspect(key)} must be #{expected}, got: #{inspect(v)}"
  end
end
