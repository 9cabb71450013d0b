defmodule ElixirScope do
  @moduledoc """
  ElixirScope: introspection and time-travel debugging for a running Elixir system.

  ElixirScope records what processes do — lifecycles, messages, function calls and
  GenServer state changes — into a bounded store written in C, and answers questions
  about it from IEx: what did this GenServer's state look like at a given moment, and
  which message changed it? Which messages flowed between two processes?

  Trace events go from the BEAM's trace hook straight into the C store: ElixirScope's
  tracer is a set of NIF callbacks (`:erl_tracer`) that run in the traced process, so
  there is no tracer process, no mailbox and no backlog.

  ## Starting

      # application.ex, or IEx
      ElixirScope.setup(tracing_level: :full, max_events: 1_000_000)

      # or in your own supervision tree
      children = [{ElixirScope, tracing_level: :minimal}]

  Nothing runs before that: adding the dependency starts no process.

  ## In the test environment

  An application that starts ElixirScope from its `application.ex` starts it under
  `mix test` too, beside a development server that may already hold the MCP server's
  (or the web UI's) port. Nothing breaks then (`setup/1` returns `{:partial, ...}`, tracing runs, one
  warning), but either keep the options in the configuration and leave them out of
  `config/test.exs`:

      # config/dev.exs
      config :my_app, :elixir_scope, phoenix: true, ai_integration: true

      # application.ex
      with {:ok, opts} <- Application.fetch_env(:my_app, :elixir_scope),
           do: ElixirScope.setup(opts)

  or give the servers free ports there: `config :elixir_scope, mcp: [port: 0], ui: [port:
  0]` in `config/test.exs` (`ElixirScope.MCP.url/0` and `ElixirScope.UI.url/0` tell
  which).

  ## Options

  Defaults come from `config :elixir_scope, ...` and then from the built-in values.

  | option | default | meaning |
  |---|---|---|
  | `:tracing_level` | `:full` | what is recorded, see below |
  | `:trace_all` | `false` | trace every process (messages, lifecycle, calls of traced functions) |
  | `:lifecycle` | `:all` on OTP 27+, `:traced` before | `:all`: spawn, exit and links of every process, traced or not; `:traced`: of traced processes only. On OTP 27+ it runs in ElixirScope's own trace session; before, it takes the one tracer slot of every process no other tool holds yet, hence opt-in there |
  | `:rearm` | `true` | OTP < 27: when another tool's cleanup removed ElixirScope's flags or patterns, set them again where still free (see `tracing_info/0`) |
  | `:sample_rate` | `1.0` | share of non-critical events kept |
  | `:max_events` | `1_000_000` | events kept; oldest pruned first |
  | `:max_bytes` | 256 MiB | payload bytes kept; oldest pruned first |
  | `:max_payload_bytes` | 64 KiB | larger payloads are stored as truncated markers |
  | `:max_keys` | `262_144` | distinct pids, modules, functions and pid pairs indexed |
  | `:max_events_per_sec` | `500_000` | governor cap on recorded events per second |
  | `:max_bytes_per_sec` | 64 MiB | governor cap on recorded bytes per second |
  | `:governor_interval` | `100` | ms between governor measurements |
  | `:persist` | `false` | write events to zstd segment files (see `ElixirScope.Persister`) |
  | `:persist_path` | — | the directory for them (needed with `persist: true`) |
  | `:persist_interval` | `1000` | ms between writes |
  | `:persist_segment_bytes` | 1 MiB | uncompressed bytes per zstd segment (4 KiB to 256 MiB) |
  | `:persist_max_file_bytes`, `:persist_max_files`, `:persist_max_disk_bytes` | 64 MiB, 10, 1 GiB | rotation and retention |
  | `:flight_recorder` | `nil` | `[window: seconds, dir: path]`: dump the last seconds on each crash (see `ElixirScope.FlightRecorder`) |
  | `:system_monitor` | `[]` | `[long_gc: ms, long_schedule: ms, large_heap: words, busy_port: true, busy_dist_port: true]`: the runtime's system monitor reports as events, never displacing one set already (see `ElixirScope.SystemMonitor`) |
  | `:storage` | `:ets` | accepted for compatibility; the C store is always used |
  | `:test_mode` | `false` | accepted for compatibility: the original ElixirScope's tracer process used it to drop the "received garbage" messages it produced under tests, which ElixirScope's tracer (no process) never produces |
  | `:phoenix` | `false` | record Phoenix requests, LiveView, channels and PubSub broadcasts (see `ElixirScope.Phoenix`) |
  | `:redact` | `["password", "token", "secret"]` | keys whose values are never stored: any map or keyword key containing one, any case, in Phoenix params, session and assigns, and in a traced LiveView's assigns; the application's `config :phoenix, :filter_parameters` are added (see `ElixirScope.Phoenix`) |
  | `:ai_integration` | `false` | start the MCP server for AI assistants (see `ElixirScope.MCP`); `:mcp` holds its options |
  | `:nodes` | — | `:all` or a list of nodes: start ElixirScope there too, with these options (see `ElixirScope.Cluster`) |
  | `:join` | `false` | with `nodes: :all`, also start it on nodes that connect later |
  | `:ui` | `false` | the web UI: `true`, or its options `[port: 4048, bind: ..., token: ...]` (see `ElixirScope.UI`) |

  ## Tracing levels

  | level | records |
  |---|---|
  | `:full` | process lifecycle, messages, function calls of traced modules, GenServer states |
  | `:messages_only` | messages of traced processes |
  | `:states_only` | GenServer state changes |
  | `:minimal` | lifecycle (spawn, exit, link, register), crashes and state changes |
  | `:off` | nothing; the store stays up for manual events and queries |

  Crashes are recorded at every level but `:off`, and spawn, exit, crash and governor
  events are never sampled out. See `ElixirScope.Governor` for what happens under
  overload.

  ## Recorded by default

  Whatever is traced, from `setup/1` on: the end of every process that ends
  abnormally, traced or not, as one `:crash` (or `:exit`) event with what the runtime's
  crash, terminate and supervisor reports say of it (`ElixirScope.Crashes`,
  `recent_crashes/1`); an `:alive` event for each process running when tracing starts;
  and with `lifecycle: :all` (the default on OTP 27+) the spawn, exit and links of
  every process. Messages, calls and states are recorded for what you trace.

  ## Beside other tracing tools

  On OTP 27+ everything ElixirScope traces is in a trace session of its own: `:dbg`,
  recon, redbug or the legacy `:erlang.trace/3` API can trace the same processes and
  functions at the same time, and their cleanup leaves ElixirScope's tracing alone. On
  OTP 25/26 a process has one tracer and patterns are shared: a watchdog notices when
  another tool removed ElixirScope's flags or patterns, records and logs it, and sets
  them again where still free (`rearm: false` to leave them). On every OTP, patterns a
  module reload dropped are set again. See the README's "Production safety".
  """

  alias ElixirScope.{Config, Tracing, TraceDB}
  alias ElixirScope.Cluster.Select

  @doc "The version of ElixirScope."
  @spec version() :: String.t()
  def version, do: unquote(Mix.Project.config()[:version])

  ## Lifecycle

  @doc """
  Starts ElixirScope: the store, the tracer and the governor, and the parts the options
  ask for.

  Returns `:ok`, or, when an optional part could not start, `{:partial, not_started}`:
  tracing and the store run, and `not_started` says which part did not and why, e.g.
  `[mcp: {:mcp_listen_failed, :eaddrinuse}]` when the MCP server's port is taken (a
  second `iex -S mix`, or `mix test` beside the running application); one warning is
  logged for it. The optional parts: the MCP server (`ai_integration: true`) and the
  web UI (`ui:`, `{:ui_listen_failed, reason}`). With `nodes:`, the nodes where
  ElixirScope could not be started are named as `{:partial, [nodes: [{node, reason}]]}`
  (`:noconnection`, `{:incompatible_version, message}`, `:elixir_scope_not_loaded`, ...).

  If ElixirScope is already tracing it returns `{:error, {:already_started, pid}}`:
  change the level or sample rate of a running instance with `set_tracing_level/1` and
  `set_sample_rate/1`, or call `stop/0` first. After `stop/0`, `setup/1` starts afresh
  and discards the previous recording. `{:error, reason}` when the store or the tracer
  could not start.

  Raises `ArgumentError` for an unknown option or a value out of range.
  """
  @spec setup(keyword()) ::
          :ok
          | {:partial, [{optional_part(), reason :: term()}]}
          | {:error, {:already_started, pid()} | term()}
  def setup(opts \\ []), do: ElixirScope.Lifecycle.setup(opts)

  @typedoc "The parts of ElixirScope that tracing does not need (see `setup/1`)."
  @type optional_part :: :mcp | :ui

  @doc false
  def child_spec(opts) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}, type: :supervisor}
  end

  @doc """
  Starts ElixirScope linked to the caller, for use in a supervision tree as
  `{ElixirScope, opts}`. Options as for `setup/1`.

  An optional part that cannot start (the MCP server's port is taken) does not stop
  the rest: it is left out (its child is `:undefined`), one warning is logged, and
  `tracing_info/0` names it under `:not_started`.
  """
  @spec start_link(keyword()) :: Supervisor.on_start()
  def start_link(opts \\ []), do: ElixirScope.Lifecycle.start_link(opts)

  @doc """
  Stops tracing: removes every trace flag and trace pattern ElixirScope set (and no
  others), detaches its Phoenix telemetry handler, and stops the tracer and the
  governor. The recording stays queryable until `TraceDB.clear/0` or the next
  `setup/1`; pass `keep_data: false` to free it now.
  Safe to call when ElixirScope is not running, and twice.
  """
  @spec stop(keyword()) :: :ok
  def stop(opts \\ []), do: ElixirScope.Lifecycle.stop(opts)

  @doc """
  Stops tracing only: removes ElixirScope's trace flags and patterns and stops the
  tracer and the governor, while the store, persistence and the MCP server keep
  running (an assistant can go on reading the recording). `setup/1` starts tracing
  again. Safe to call when ElixirScope is not running.
  """
  @spec stop_tracing() :: :ok
  def stop_tracing, do: ElixirScope.Lifecycle.stop_tracing()

  @doc "True while ElixirScope is tracing."
  @spec running?() :: boolean()
  def running?, do: Process.whereis(Tracing) != nil

  ## What to trace

  @doc """
  Traces a process: its messages, its lifecycle, calls of traced functions, and, if it
  is a GenServer, its state changes (see `trace_genserver/1`).

  On OTP < 27 it returns `{:error, {:traced_by_another_tool, tracer}}` when another tool
  (`:dbg`, recon, ...) already traces the process: a process has one tracer there, and
  ElixirScope does not take it over. On OTP 27+ each tool traces in its own session, so
  the process is traced by both.
  """
  @spec trace_process(pid()) :: :ok | {:error, term()}
  def trace_process(pid) when is_pid(pid), do: Tracing.call({:trace_process, pid})

  def trace_process(other),
    do: raise(ArgumentError, "trace_process/1 expects a pid, got: #{inspect(other)}")

  @doc "Traces the process registered under `name`, as `trace_process/1`."
  @spec trace_named_process(atom()) :: :ok | {:error, term()}
  def trace_named_process(name) when is_atom(name) do
    case Process.whereis(name) do
      nil -> {:error, {:not_registered, name}}
      pid -> trace_process(pid)
    end
  end

  def trace_named_process(other),
    do: raise(ArgumentError, "trace_named_process/1 expects an atom, got: #{inspect(other)}")

  @doc """
  Records a GenServer's state with no change to its code: the state now (callback
  `:initial`), then after each `handle_call/3`, `handle_cast/2`, `handle_info/2` and
  `handle_continue/2` the new state with the callback and the message that caused it
  (`:cause`), timestamped when the callback returned. A state equal to the previous one
  is not stored again. At levels that include messages its messages are recorded too.

  The callback module is the one of the process's `$initial_call` (`{MyServer, :init,
  1}`), or, when the process put something else there — an Agent, a LiveView
  (`{MyLive, :mount, 3}`: it runs `Phoenix.LiveView.Channel`), a Phoenix channel —, the
  one its `:gen_server` loop runs. A LiveView's state is recorded as its assigns,
  redacted, and its messages are not traced (see `ElixirScope.Phoenix`, "LiveViews").
  `{:error, :not_a_gen_server}` for a process that is none.
  """
  @spec trace_genserver(pid() | atom()) :: :ok | {:error, term()}
  def trace_genserver(pid) when is_pid(pid), do: Tracing.call({:trace_genserver, pid})

  def trace_genserver(name) when is_atom(name) do
    case Process.whereis(name) do
      nil -> {:error, {:not_registered, name}}
      pid -> trace_genserver(pid)
    end
  end

  def trace_genserver(other),
    do: raise(ArgumentError, "trace_genserver/1 expects a pid or a name, got: #{inspect(other)}")

  @doc "Stops tracing a process."
  @spec untrace_process(pid()) :: :ok | {:error, :not_running}
  def untrace_process(pid) when is_pid(pid), do: Tracing.call({:untrace_process, pid})

  def untrace_process(other),
    do: raise(ArgumentError, "untrace_process/1 expects a pid, got: #{inspect(other)}")

  @doc """
  Traces every function of `module`, local calls included, in every process (on OTP
  < 27, every process not traced by another tool): arguments, return value or
  exception, and duration.

  With `returns: false` only the calls are recorded (arguments, no result or duration):
  a traced call that also reports its return leaves a frame on the caller's stack until
  it returns, so a tail-recursive function (a receive loop, a list walker) traced with
  returns grows its process's stack by one frame (3 words on OTP 25/26, 4 on 27+) per
  iteration. ElixirScope never lets a process hold more than 100,000 words of them: a
  process that reaches half of that has the function it is in switched to calls only,
  with a `:governor` event (reason `:return_frames`) and one log line, and calls past the
  bound are not recorded until its stack unwinds.
  """
  @spec trace_module(module(), keyword()) :: :ok | {:error, term()}
  def trace_module(module, opts \\ [])

  def trace_module(module, opts) when is_atom(module),
    do: Tracing.call({:trace_module, module, returns_option!(opts, "trace_module/2")})

  def trace_module(other, _opts),
    do: raise(ArgumentError, "trace_module/2 expects a module, got: #{inspect(other)}")

  defp returns_option!(opts, fun) do
    case opts do
      [] -> true
      [returns: returns] when is_boolean(returns) -> returns
      _ -> raise ArgumentError, "#{fun} takes returns: boolean, got: #{inspect(opts)}"
    end
  end

  @doc "Stops tracing the functions of `module`."
  @spec stop_trace_module(module()) :: :ok | {:error, :not_running}
  def stop_trace_module(module) when is_atom(module),
    do: Tracing.call({:stop_trace_module, module})

  def stop_trace_module(other),
    do: raise(ArgumentError, "stop_trace_module/1 expects a module, got: #{inspect(other)}")

  @doc """
  Traces one function, given as `{module, function, arity}`, as `trace_module/2` does
  (`returns: false` too).
  """
  @spec trace_function({module(), atom(), non_neg_integer()}, keyword()) :: :ok | {:error, term()}
  def trace_function(mfa, opts \\ [])

  def trace_function({m, f, a} = mfa, opts)
      when is_atom(m) and is_atom(f) and is_integer(a) and a >= 0,
      do: Tracing.call({:trace_function, mfa, returns_option!(opts, "trace_function/2")})

  def trace_function(other, _opts),
    do:
      raise(
        ArgumentError,
        "trace_function/2 expects {module, function, arity}, got: #{inspect(other)}"
      )

  @doc "Changes the tracing level of a running ElixirScope. See the module doc."
  @spec set_tracing_level(atom()) :: :ok | {:error, :not_running}
  def set_tracing_level(level) do
    unless level in Config.levels(),
      do:
        raise(
          ArgumentError,
          "tracing level must be one of #{inspect(Config.levels())}, got: #{inspect(level)}"
        )

    Tracing.call({:set_level, level})
  end

  @doc "Changes the share (0.0..1.0) of non-critical events kept."
  @spec set_sample_rate(number()) :: :ok | {:error, :not_running}
  def set_sample_rate(rate) do
    unless is_number(rate) and rate >= 0 and rate <= 1,
      do: raise(ArgumentError, "sample rate must be a number in 0.0..1.0, got: #{inspect(rate)}")

    if TraceDB.lookup(TraceDB), do: TraceDB.set_sample_rate(rate), else: {:error, :not_running}
  end

  @doc """
  What ElixirScope traces now: `level`, `trace_all`, `lifecycle`, `session` (whether it
  traces through its own trace session, OTP 27+), `processes` (given to `trace_process/1` or `trace_genserver/1`), `genservers`, `modules`, `functions`,
  `calls_only` (functions the return-frame bound switched to calls only, see
  `trace_module/2`), `discarded_calls` (calls not recorded at that bound), `watchdog`
  (OTP < 27: how many times another tool removed ElixirScope's tracing, and the last
  time's report), `meta` (functions recorded in every process with meta trace patterns:
  Phoenix's PubSub broadcasts) and `not_started` (optional parts that could not start,
  with why: see `setup/1`).
  """
  @spec tracing_info() :: map() | {:error, :not_running}
  def tracing_info do
    case Tracing.call(:info) do
      %{} = info -> Map.put(info, :not_started, ElixirScope.Optional.not_started())
      error -> error
    end
  end

  @doc """
  Where ElixirScope stands, as the MCP server's status tool tells it:

      %{running: true,
        tracing: tracing_info() | nil,          # nil once tracing stopped
        governor: %{step: :full, events_per_sec: ..., bytes_per_sec: ...} | nil,
        store: TraceDB.stats() | nil,            # nil when no store runs
        crashes: %{recorded: n, waiting: n, reports_dropped: n, late_reports: n} | nil,
        system_monitor: ElixirScope.SystemMonitor.info() | nil,
        now: System.monotonic_time(), wall_time: DateTime.t()}

  `tracing.watchdog` says whether another tool removed ElixirScope's tracing (OTP <
  27), `tracing.calls_only` which functions the return-frame bound switched to calls
  only; `crashes` is the crash collector's count (see `ElixirScope.Crashes`).
  """
  @spec status() :: map()
  def status do
    tracing =
      case tracing_info() do
        {:error, :not_running} -> nil
        info -> info
      end

    store = if TraceDB.lookup(TraceDB), do: TraceDB.stats()
    now = System.monotonic_time()

    %{
      running: tracing != nil,
      tracing: tracing,
      governor: ElixirScope.Governor.status(),
      store: store,
      crashes: ElixirScope.Crashes.Collector.info(),
      system_monitor: ElixirScope.SystemMonitor.info(),
      now: now,
      wall_time: ElixirScope.WallClock.wall_time(now) || DateTime.utc_now()
    }
  end

  @doc """
  The most recent crashes, newest first: processes that ended abnormally, traced or not,
  and (with `phoenix: true`) Phoenix request exceptions, with reason, stacktrace, last
  state and last messages. See `ElixirScope.Crashes.recent/1`.
  """
  def recent_crashes(opts \\ []),
    do: Select.on_nodes(:recent_crashes, [opts], &ElixirScope.Crashes.recent/1)

  @doc """
  The wall-clock time (a UTC `DateTime` with microseconds) of an event or a timestamp,
  as it was when recorded: the timestamp plus the runtime's time offset then. `nil`
  when the store knows none. See `ElixirScope.WallClock`.
  """
  defdelegate wall_time(event_or_timestamp, opts \\ []), to: ElixirScope.WallClock

  ## Time travel (see ElixirScope.TimeTravel)
  #
  # Across nodes (ElixirScope.Cluster): a query about a process runs on that process's
  # node; message_flow/3 of processes on different nodes merges both nodes' sides; a
  # listing answers %{node => answer} from the nodes of `nodes:` (see
  # ElixirScope.Cluster.nodes/1; by default every node when this node coordinates a
  # cluster, `nodes: :local` for this node's own answer), or {:partial, answers,
  # [{node, reason}]} (ElixirScope.Cluster.Select).

  @doc "Messages between two processes, both directions. See `ElixirScope.TimeTravel.message_flow/3`."
  def message_flow(a, b, opts \\ []),
    do: Select.message_flow(a, b, opts, fn -> ElixirScope.TimeTravel.message_flow(a, b, opts) end)

  @doc "Every state of a process with causes and diffs. See `ElixirScope.TimeTravel.state_timeline/2`."
  def state_timeline(pid, opts \\ []),
    do:
      Select.on_pid(pid, :state_timeline, [pid, opts], fn ->
        ElixirScope.TimeTravel.state_timeline(pid, opts)
      end)

  @doc "Everything a process did, in order. See `ElixirScope.TimeTravel.execution_path/2`."
  def execution_path(pid, opts \\ []),
    do:
      Select.on_pid(pid, :execution_path, [pid, opts], fn ->
        ElixirScope.TimeTravel.execution_path(pid, opts)
      end)

  @doc "The state of a process at a time. See `ElixirScope.TimeTravel.get_state_at/3`."
  def get_state_at(pid, timestamp, opts \\ []),
    do:
      Select.on_pid(pid, :get_state_at, [pid, timestamp, opts], fn ->
        ElixirScope.TimeTravel.get_state_at(pid, timestamp, opts)
      end)

  @doc "Events between two times. See `ElixirScope.TimeTravel.get_events_between/3`."
  def get_events_between(t1, t2, filters \\ []),
    do:
      Select.on_nodes(
        :get_events_between,
        [t1, t2, filters],
        &ElixirScope.TimeTravel.get_events_between/3
      )

  @doc "The next event. See `ElixirScope.TimeTravel.next_event/2`."
  defdelegate next_event(event_or_ts, filters \\ []), to: ElixirScope.TimeTravel

  @doc "The previous event. See `ElixirScope.TimeTravel.prev_event/2`."
  defdelegate prev_event(event_or_ts, filters \\ []), to: ElixirScope.TimeTravel

  @doc "Events around an event. See `ElixirScope.TimeTravel.events_around/3`."
  defdelegate events_around(event_id, window_ms \\ 100, opts \\ []), to: ElixirScope.TimeTravel

  @doc """
  The structural difference of two terms, computed in C.

      iex> ElixirScope.diff(%{a: 1, b: [1, 2]}, %{a: 2, b: [1, 2, 3]})
      [{[:a], :changed, 1, 2}, {[:b, 2], :added, nil, 3}]
  """
  defdelegate diff(old, new), to: ElixirScope.TimeTravel

  ## Performance (see ElixirScope.Analysis)

  @doc "Per-function call statistics of a module. See `ElixirScope.Analysis.performance_analysis/2`."
  def performance_analysis(module, opts \\ []),
    do:
      Select.on_nodes(
        :performance_analysis,
        [module, opts],
        &ElixirScope.Analysis.performance_analysis/2
      )

  @doc "The slowest completed calls. See `ElixirScope.Analysis.slowest_function_calls/1`."
  def slowest_function_calls(opts \\ []),
    do:
      Select.on_nodes(
        :slowest_function_calls,
        [opts],
        &ElixirScope.Analysis.slowest_function_calls/1
      )

  @doc "Nested calls with durations. See `ElixirScope.Analysis.call_tree/2`."
  def call_tree(pid_or_call_id, opts \\ []),
    do:
      Select.on_pid(pid_or_call_id, :call_tree, [pid_or_call_id, opts], fn ->
        ElixirScope.Analysis.call_tree(pid_or_call_id, opts)
      end)

  ## Processes, live and recorded (see ElixirScope.Processes)

  @doc "Live information and recorded history of a process. See `ElixirScope.Processes.process_info/2`."
  def process_info(pid, opts \\ []),
    do:
      Select.on_pid(pid, :process_info, [pid, opts], fn ->
        ElixirScope.Processes.process_info(pid, opts)
      end)

  @doc "Processes running (or recorded running) a module. See `ElixirScope.Processes.find_processes/1`."
  def find_processes(opts),
    do: Select.on_nodes(:find_processes, [opts], &ElixirScope.Processes.find_processes/1)

  @doc "Links, monitors, parent, supervisor, children and message peers. See `ElixirScope.Processes.process_relationships/2`."
  def process_relationships(pid, opts \\ []),
    do:
      Select.on_pid(pid, :process_relationships, [pid, opts], fn ->
        ElixirScope.Processes.process_relationships(pid, opts)
      end)

  @doc "The processes alive at a time, with their state. See `ElixirScope.Processes.system_snapshot_at/2`."
  def system_snapshot_at(timestamp, opts \\ []),
    do:
      Select.on_nodes(
        :system_snapshot_at,
        [timestamp, opts],
        &ElixirScope.Processes.system_snapshot_at/2
      )

  @doc "What changed a state into another. See `ElixirScope.Processes.analyze_state_change/4`."
  defdelegate analyze_state_change(pid, before_state, after_state, opts \\ []),
    to: ElixirScope.Processes

  @doc "Queue lengths now and message rates recorded. See `ElixirScope.Processes.message_queue_analysis/1`."
  def message_queue_analysis(opts \\ []),
    do:
      Select.on_nodes(
        :message_queue_analysis,
        [opts],
        &ElixirScope.Processes.message_queue_analysis/1
      )

  ## Export (see ElixirScope.Export)

  @doc """
  Writes a Chrome trace (Perfetto) or a Mermaid diagram. See `ElixirScope.Export.export/2`;
  with `nodes:`, of the cluster (one group of tracks per node): `ElixirScope.Cluster.Export.export/2`.
  """
  def export(path, opts \\ []) do
    if is_list(opts) and Keyword.has_key?(opts, :nodes),
      do: ElixirScope.Cluster.Export.export(path, opts),
      else: ElixirScope.Export.export(path, opts)
  end

  ## Post-mortem (see ElixirScope.PostMortem)

  @doc "Writes the recording to a file. See `ElixirScope.PostMortem.dump/2`."
  defdelegate dump(path, opts \\ []), to: ElixirScope.PostMortem

  @doc "Opens a dump for every query, in any VM. See `ElixirScope.PostMortem.load/2`."
  defdelegate load(path, opts \\ []), to: ElixirScope.PostMortem

  ## Inspecting the live system

  @doc """
  The live supervision tree, from each application's top supervisor down: strategy,
  restart intensity and recent restarts, and children (id, pid, type, modules).
  See `ElixirScope.SupervisionTree`.
  """
  @spec get_supervision_tree(keyword()) :: [map()]
  def get_supervision_tree(opts \\ []),
    do: Select.on_nodes(:get_supervision_tree, [opts], &ElixirScope.SupervisionTree.get/1)
end
