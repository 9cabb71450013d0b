defmodule ElixirScope.MCP.Tools do
  @moduledoc """
  The tools ElixirScope's MCP server offers an assistant.

  The first nine keep the names and arguments of the original ElixirScope, so its
  documentation still applies; the others let an assistant find its way without
  guessing pids.

  | tool | arguments | answers |
  |---|---|---|
  | `elixir_scope_get_state_timeline` | `pid_string` | a GenServer's recorded states, each with the callback, the message that caused it and the diff |
  | `elixir_scope_get_message_flow` | `from_pid`, `to_pid` | the messages between two processes, both ways |
  | `elixir_scope_get_function_calls` | `module_name` | recorded calls, returns and exceptions of a traced module |
  | `elixir_scope_trace_module` | `module_name` | starts recording a module's calls |
  | `elixir_scope_trace_process` | `pid_string` | starts recording a process (messages, calls, GenServer state) |
  | `elixir_scope_trace_named_process` | `process_name` | the same, by registered name |
  | `elixir_scope_get_supervision_tree` | — | the live supervision tree with restart counts |
  | `elixir_scope_get_execution_path` | `pid_string` | everything recorded about one process, in order |
  | `elixir_scope_analyze_state_changes` | `pid_string` | which fields change, how often, and which messages change them |
  | `elixir_scope_status` | — | what is traced, and the store's size |
  | `elixir_scope_list_processes` | `sort_by` | the top processes by memory, reductions or message queue |
  | `elixir_scope_find_processes` | `module_name` or `name` | processes running a module, or registered under a name |
  | `elixir_scope_process_info` | `pid_string` | live info, recorded history, last state and crash of one process |
  | `elixir_scope_get_state_at` | `pid_string`, `timestamp` or `event_id` | a GenServer's state at a moment |
  | `elixir_scope_get_events_between` | `start_timestamp`, `end_timestamp` | every event in a time range |
  | `elixir_scope_system_snapshot` | `timestamp` | the processes alive at a moment, with names, states and links |
  | `elixir_scope_slowest_calls` | `module_name` | the slowest recorded calls, with their arguments |
  | `elixir_scope_performance_analysis` | `module_name` | calls, exceptions and duration percentiles per function |
  | `elixir_scope_message_queue_analysis` | — | the longest mailboxes, and the ones filling faster than read |
  | `elixir_scope_recent_crashes` | — | recent crashes with reason, last state and last messages |
  | `elixir_scope_stop_tracing` | `pid_string` or `module_name` | stops tracing one process, one module, or everything |

  Listings take `limit` and `cursor`: an answer never passes the server's budget
  (`:max_tokens`), and ends with the cursor to continue when it is cut. A pid is
  written `"#PID<0.123.0>"` (or a registered name); a timestamp is the integer shown
  after `t=` in event listings (strings, since they do not fit in a JSON number).

  A call that cannot be answered (an unknown pid, a dead process, a module not
  loaded, nothing recorded yet) gives an `isError` result saying what to do next.
  """

  alias ElixirScope.{Analysis, Native, Processes, SupervisionTree, TimeTravel, TraceDB}
  alias ElixirScope.MCP.{Args, Text}

  @pid_arg %{
    "type" => "string",
    "description" => "A process: \"#PID<0.123.0>\" (or \"<0.123.0>\"), or its registered name"
  }
  @module_arg %{
    "type" => "string",
    "description" => "A loaded module: \"MyApp.Worker\", or \":ets\" for an Erlang module"
  }
  @limit_arg %{"type" => "integer", "minimum" => 1, "maximum" => 500}
  @cursor_arg %{
    "type" => "string",
    "description" => "The cursor a previous answer ended with, to continue it"
  }
  @timestamp_arg %{
    "type" => ["string", "integer"],
    "description" => "A timestamp as shown after t= in event listings (native monotonic units)"
  }

  @status_schema %{
    "type" => "object",
    "properties" => %{
      "tracing" => %{"type" => "boolean"},
      "level" => %{"type" => ["string", "null"]},
      "traceAll" => %{"type" => ["boolean", "null"]},
      "genservers" => %{"type" => "array", "items" => %{"type" => "string"}},
      "modules" => %{"type" => "array", "items" => %{"type" => "string"}},
      "functions" => %{"type" => "array", "items" => %{"type" => "string"}},
      "storedEvents" => %{"type" => ["integer", "null"]},
      "payloadBytes" => %{"type" => ["integer", "null"]},
      "now" => %{"type" => "string", "description" => "The current timestamp"}
    },
    "required" => ["tracing", "now"]
  }

  @event_types ~w(spawn exit crash link unlink register unregister send receive call return
                  exception state alive governor phoenix)

  @tools [
    {"elixir_scope_get_state_timeline", "State timeline",
     "The recorded states of a GenServer, oldest first: for each, the callback that " <>
       "produced it, the message or request that caused it, and what changed (a diff " <>
       "against the state before). Needs the process traced (elixir_scope_trace_process).",
     %{"pid_string" => @pid_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, ["pid_string"],
     :state_timeline},
    {"elixir_scope_get_message_flow", "Message flow",
     "The messages sent between two processes, in both directions, in the order they " <>
       "were sent. Needs at least one of them traced.",
     %{
       "from_pid" => @pid_arg,
       "to_pid" => @pid_arg,
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, ["from_pid", "to_pid"], :message_flow},
    {"elixir_scope_get_function_calls", "Function calls",
     "The recorded calls of a module's functions, with arguments, return values or " <>
       "exceptions and durations, oldest first. Needs the module traced " <>
       "(elixir_scope_trace_module).",
     %{"module_name" => @module_arg, "limit" => @limit_arg, "cursor" => @cursor_arg},
     ["module_name"], :function_calls},
    {"elixir_scope_trace_module", "Trace a module",
     "Starts recording every call of a module's functions (local calls included): " <>
       "arguments, results, exceptions and durations. Read them with " <>
       "elixir_scope_get_function_calls or elixir_scope_performance_analysis.",
     %{"module_name" => @module_arg}, ["module_name"], :trace_module},
    {"elixir_scope_trace_process", "Trace a process",
     "Starts recording a process: its messages, lifecycle, calls of traced modules and, " <>
       "for a GenServer, every state change with its cause.", %{"pid_string" => @pid_arg},
     ["pid_string"], :trace_process},
    {"elixir_scope_trace_named_process", "Trace a named process",
     "Like elixir_scope_trace_process, for a process given by its registered name " <>
       "(\"MyApp.Queue\", or \"logger\" for an Erlang name).",
     %{"process_name" => %{"type" => "string", "description" => "The registered name"}},
     ["process_name"], :trace_named_process},
    {"elixir_scope_get_supervision_tree", "Supervision tree",
     "The live supervision tree of every application: supervisors with strategy and " <>
       "restart count, children with id, pid, type and module.",
     %{"limit" => @limit_arg, "cursor" => @cursor_arg}, [], :supervision_tree},
    {"elixir_scope_get_execution_path", "Execution path",
     "Everything recorded about one process, in order: calls and returns, messages " <>
       "sent and received, state changes, lifecycle.",
     %{"pid_string" => @pid_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, ["pid_string"],
     :execution_path},
    {"elixir_scope_analyze_state_changes", "Analyze state changes",
     "How a GenServer's state evolved: which fields change and how often, which " <>
       "callbacks and messages change them, then each change with its cause and diff.",
     %{"pid_string" => @pid_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, ["pid_string"],
     :analyze_state_changes},
    {"elixir_scope_status", "Status",
     "What ElixirScope is doing: tracing level, traced processes and modules, and how " <>
       "much the store holds. A good first call.", %{}, [], :status},
    {"elixir_scope_list_processes", "List processes",
     "The live processes with the most memory, reductions or queued messages, with " <>
       "their pid, registered name and current function.",
     %{
       "sort_by" => %{
         "type" => "string",
         "enum" => ["memory", "reductions", "message_queue_len"],
         "description" => "What to rank by (default memory)"
       },
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, [], :list_processes},
    {"elixir_scope_find_processes", "Find processes",
     "Processes running a module (live, and recorded ones that have exited), or live " <>
       "processes whose registered name contains a text. Give module_name or name.",
     %{
       "module_name" => @module_arg,
       "name" => %{"type" => "string", "description" => "Part of a registered name"},
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, [], :find_processes},
    {"elixir_scope_process_info", "Process info",
     "Everything known about one process, alive or not: status, memory, queue, links, " <>
       "parent, recorded event counts, last recorded state and crash.",
     %{"pid_string" => @pid_arg}, ["pid_string"], :process_info},
    {"elixir_scope_get_state_at", "State at a moment",
     "A GenServer's recorded state as it was at a timestamp, or right after an event " <>
       "(event_id, the number after # in listings). Give timestamp or event_id.",
     %{
       "pid_string" => @pid_arg,
       "timestamp" => @timestamp_arg,
       "event_id" => %{"type" => "integer", "minimum" => 1}
     }, ["pid_string"], :state_at},
    {"elixir_scope_get_events_between", "Events between two times",
     "Every recorded event between two timestamps (inclusive), oldest first, " <>
       "optionally of one process or one type. Without timestamps: the whole recording.",
     %{
       "start_timestamp" => @timestamp_arg,
       "end_timestamp" => @timestamp_arg,
       "pid_string" => @pid_arg,
       "type" => %{"type" => "string", "enum" => @event_types},
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, [], :events_between},
    {"elixir_scope_system_snapshot", "System snapshot",
     "The processes alive at a moment according to the recording, with their names, " <>
       "GenServer states, links and supervisors then. Without a timestamp: now.",
     %{"timestamp" => @timestamp_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, [],
     :system_snapshot},
    {"elixir_scope_slowest_calls", "Slowest calls",
     "The slowest recorded calls (of one module, or of all traced ones), slowest " <>
       "first, with their arguments, results and process.",
     %{
       "module_name" => @module_arg,
       "limit" => %{"type" => "integer", "minimum" => 1, "maximum" => 100}
     }, [], :slowest_calls},
    {"elixir_scope_performance_analysis", "Performance analysis",
     "Per function of a traced module: calls, exceptions, total and mean time, and " <>
       "p50/p90/p99/max durations. Sorted by total time.", %{"module_name" => @module_arg},
     ["module_name"], :performance_analysis},
    {"elixir_scope_message_queue_analysis", "Message queue analysis",
     "Where messages pile up: the live processes with the longest mailboxes, and the " <>
       "recorded message rates of the last window_ms, flagging mailboxes that fill " <>
       "faster than they are read.",
     %{
       "limit" => %{"type" => "integer", "minimum" => 1, "maximum" => 100},
       "window_ms" => %{"type" => "integer", "minimum" => 1, "maximum" => 3_600_000}
     }, [], :message_queue_analysis},
    {"elixir_scope_recent_crashes", "Recent crashes",
     "The most recent crashes (abnormal exits) of traced processes, newest first: " <>
       "reason, the process's last recorded state, and its last messages before dying.",
     %{
       "limit" => %{"type" => "integer", "minimum" => 1, "maximum" => 50},
       "cursor" => @cursor_arg
     }, [], :recent_crashes},
    {"elixir_scope_stop_tracing", "Stop tracing",
     "Stops tracing one process (pid_string), one module (module_name), or, with no " <>
       "argument, everything. What was recorded stays queryable.",
     %{"pid_string" => @pid_arg, "module_name" => @module_arg}, [], :stop_tracing}
  ]

  @by_name Map.new(@tools, fn {name, _, _, props, _, fun} -> {name, {fun, Map.keys(props)}} end)

  @doc false
  def exists?(name), do: Map.has_key?(@by_name, name)

  @doc false
  # The tools as `tools/list` describes them.
  def definitions(_config) do
    for {name, title, description, props, required, fun} <- @tools do
      %{
        "name" => name,
        "title" => title,
        "description" => description,
        "inputSchema" =>
          %{"type" => "object", "properties" => props, "additionalProperties" => false}
          |> then(&if required == [], do: &1, else: Map.put(&1, "required", required)),
        "outputSchema" => output_schema(fun),
        "annotations" => %{
          "readOnlyHint" =>
            fun not in [:trace_module, :trace_process, :trace_named_process, :stop_tracing],
          "openWorldHint" => false
        }
      }
      |> Map.reject(fn {_, v} -> v == nil end)
    end
  end

  defp output_schema(:status), do: @status_schema
  defp output_schema(_), do: nil

  @doc false
  # A `tools/call` result: text, `isError` when the call could not be answered.
  def call(name, args, config) do
    {fun, allowed} = Map.fetch!(@by_name, name)

    try do
      Args.only!(args, allowed)
      apply(__MODULE__, fun, [args, config])
    rescue
      e in Args.Error -> error(e.message)
      e in ArgumentError -> error(Exception.message(e))
      e in RuntimeError -> error(not_running(Exception.message(e)))
      # Whatever else goes wrong is the tool's failure, never the transport's.
      e -> error("ElixirScope could not answer: " <> Exception.message(e))
    catch
      :exit, reason -> error("ElixirScope could not answer: #{Text.term(reason, 300)}")
    else
      {:error, text} -> error(text)
      text when is_binary(text) -> ok(Text.fit_text(text, config))
      {text, structured} -> text |> ok() |> Map.put("structuredContent", structured)
    end
  end

  defp ok(text), do: %{"content" => [%{"type" => "text", "text" => text}], "isError" => false}
  defp error(text), do: %{"content" => [%{"type" => "text", "text" => text}], "isError" => true}

  defp not_running(message) do
    if message =~ "not running",
      do:
        "ElixirScope's store is not running: start it in the application with ElixirScope.setup/1.",
      else: message
  end

  ## The original tools

  @doc false
  def state_timeline(args, config) do
    pid = Args.pid!(args, "pid_string")
    window = window(args)
    states = TimeTravel.state_timeline(pid, page_filters(window))

    id_page(states, window, config,
      heading: "States of #{Text.pid(pid)}, oldest first:",
      line: &state_lines/1,
      none: fn -> nothing_recorded(pid, "state changes", :genserver) end
    )
  end

  defp state_lines(%{diff: nil} = e),
    do:
      "##{e.id} t=#{e.timestamp} #{e[:callback]} #{Text.term(e[:cause], 200)}\n  state: #{Text.term(e[:state], 1500)}"

  defp state_lines(e) do
    changes = Enum.map_join(e.diff, "\n", &("  " <> diff_line(&1)))
    "##{e.id} t=#{e.timestamp} #{e[:callback]} #{Text.term(e[:cause], 200)}\n#{changes}"
  end

  defp diff_line({path, :changed, old, new}),
    do: "#{path_text(path)}: #{Text.term(old, 200)} → #{Text.term(new, 200)}"

  defp diff_line({path, :added, _old, new}),
    do: "#{path_text(path)}: added #{Text.term(new, 200)}"

  defp diff_line({path, :removed, old, _new}),
    do: "#{path_text(path)}: removed #{Text.term(old, 200)}"

  defp path_text([]), do: "(whole state)"
  defp path_text(path), do: Text.term(path, 120)

  @doc false
  def message_flow(args, config) do
    a = Args.pid!(args, "from_pid")
    b = Args.pid!(args, "to_pid")
    window = window(args)
    events = TimeTravel.message_flow(a, b, page_filters(window))

    id_page(events, window, config,
      heading: "Messages between #{Text.pid(a)} and #{Text.pid(b)}, in order:",
      none: fn ->
        {:error,
         "No messages recorded between #{Text.pid(a)} and #{Text.pid(b)}. Messages are " <>
           "recorded for traced senders: trace one with elixir_scope_trace_process, then " <>
           "let them talk."}
      end
    )
  end

  @doc false
  def function_calls(args, config) do
    module = Args.module!(args, "module_name")
    window = window(args)
    events = TraceDB.query_events([module: module] ++ page_filters(window))

    id_page(events, window, config,
      heading: "Calls of #{inspect(module)}, oldest first:",
      none: fn ->
        {:error,
         if(module in info(:modules, []),
           do: "#{inspect(module)} is traced but none of its functions has been called since.",
           else:
             "#{inspect(module)} is not traced: call elixir_scope_trace_module with it, then " <>
               "let the application work."
         )}
      end
    )
  end

  @doc false
  def trace_module(args, _config) do
    module = Args.module!(args, "module_name")
    # Asked before tracing starts, so that this call is not recorded.
    functions = length(module.module_info(:functions))

    traced(
      ElixirScope.trace_module(module),
      "Tracing calls of #{inspect(module)} (#{functions} functions). Read them with " <>
        "elixir_scope_get_function_calls or elixir_scope_performance_analysis."
    )
  end

  @doc false
  def trace_process(args, _config), do: trace_pid(Args.pid!(args, "pid_string"))

  @doc false
  def trace_named_process(args, _config) do
    name = Args.string!(args, "process_name")

    case Args.registered(name) do
      nil ->
        {:error,
         "No process is registered as #{inspect(name)} (names are case-sensitive); " <>
           "elixir_scope_list_processes or elixir_scope_find_processes list them."}

      pid ->
        trace_pid(pid)
    end
  end

  defp trace_pid(pid) do
    traced(
      ElixirScope.trace_process(pid),
      "Tracing #{Text.pid(pid)}: messages, lifecycle and, for a GenServer, state changes. " <>
        "Read them with elixir_scope_get_execution_path or elixir_scope_get_state_timeline."
    )
  end

  # The answer to a tracing request: `text` when it was done, else why not.
  defp traced(:ok, text), do: text
  defp traced({:error, reason}, _text), do: {:error, tracing_error(reason)}

  defp tracing_error(:not_running),
    do:
      "ElixirScope is not tracing (it was stopped). Restart it in the application with " <>
        "ElixirScope.setup/1; what was recorded can still be read."

  defp tracing_error(:not_alive), do: "That process is not running; pick a live one."

  defp tracing_error({:traced_by_another_tool, tracer}),
    do:
      "That process is already traced by another tool (tracer #{Text.term(tracer, 80)}); " <>
        "stop that tool's tracing first (e.g. :dbg.stop())."

  defp tracing_error({:module_not_loaded, module}), do: "#{inspect(module)} is not loaded."
  defp tracing_error(other), do: "Could not trace: #{Text.term(other, 200)}"

  @doc false
  def supervision_tree(args, config) do
    {limit, offset} = offset_window(args, 500)
    lines = Enum.flat_map(SupervisionTree.get(), &supervisor_lines(&1, 0))

    offset_page(
      "Supervision tree (supervisors with strategy and restarts, then children):",
      lines,
      limit,
      offset,
      config
    )
  end

  defp supervisor_lines(%{error: reason} = sup, depth),
    do: [indent(depth) <> "#{Text.pid(sup.pid)} (could not be read: #{Text.term(reason, 80)})"]

  defp supervisor_lines(sup, depth) do
    label =
      [
        sup[:application] && "[#{sup.application}]",
        Text.pid(sup.pid),
        sup[:name] && inspect(sup.name),
        sup[:module] && sup[:module] != sup[:name] && "(#{inspect(sup.module)})",
        sup[:strategy] && "#{sup.strategy}",
        sup[:restarts] && "restarts=#{sup.restarts}/#{sup[:intensity]} in #{sup[:period]}s"
      ]
      |> Enum.filter(& &1)
      |> Enum.join(" ")

    [indent(depth) <> label | Enum.flat_map(sup[:children] || [], &child_lines(&1, depth + 1))]
  end

  defp child_lines(%{type: :supervisor, pid: pid} = child, depth) when is_pid(pid),
    do: supervisor_lines(child, depth)

  defp child_lines(child, depth) do
    [
      indent(depth) <>
        "#{Text.term(child.id, 80)} #{child.type} #{Text.term(child.pid, 40)}" <>
        if(child[:name], do: " #{inspect(child.name)}", else: "") <>
        " #{Text.term(child[:modules], 80)}"
    ]
  end

  defp indent(depth), do: String.duplicate("  ", depth)

  @doc false
  def execution_path(args, config) do
    pid = Args.pid!(args, "pid_string")
    window = window(args)
    events = TimeTravel.execution_path(pid, page_filters(window))

    id_page(events, window, config,
      heading: "What #{Text.pid(pid)} did, in order:",
      none: fn -> nothing_recorded(pid, "events", :process) end
    )
  end

  @doc false
  def analyze_state_changes(args, config) do
    pid = Args.pid!(args, "pid_string")
    window = window(args)
    all = TimeTravel.state_timeline(pid, limit: 5_000)

    if all == [] do
      nothing_recorded(pid, "state changes", :genserver)
    else
      changes = Enum.filter(all, & &1.diff)

      fields =
        changes
        |> Enum.flat_map(fn e -> Enum.map(e.diff, &path_text(elem(&1, 0))) end)
        |> Enum.frequencies()
        |> Enum.sort_by(fn {path, n} -> {-n, path} end)
        |> Enum.map_join(", ", fn {path, n} -> "#{path} ×#{n}" end)

      causes =
        changes
        |> Enum.frequencies_by(&{&1[:callback], cause_kind(&1[:cause])})
        |> Enum.sort_by(fn {key, n} -> {-n, inspect(key)} end)
        |> Enum.map_join(", ", fn {{callback, kind}, n} -> "#{callback} #{kind} ×#{n}" end)

      page = TimeTravel.state_timeline(pid, page_filters(window))

      heading =
        "#{Text.pid(pid)}: #{length(all)} states recorded#{if length(all) == 5_000, do: " (first 5000 analysed)"}, " <>
          "#{length(changes)} changes.\nFields changed: #{blank(fields)}\nChanged by: #{blank(causes)}\n" <>
          "States, oldest first:"

      id_page(page, window, config, heading: heading, line: &state_lines/1)
    end
  end

  # The shape of a message, to group causes: {:push, _} -> ":push", :tick -> ":tick".
  defp cause_kind(cause)
       when is_tuple(cause) and tuple_size(cause) > 0 and is_atom(elem(cause, 0)),
       do: inspect(elem(cause, 0))

  defp cause_kind(cause) when is_atom(cause), do: inspect(cause)
  defp cause_kind(_), do: "(other)"

  defp blank(""), do: "none"
  defp blank(text), do: text

  ## Finding one's way

  @doc false
  def status(_args, _config) do
    info =
      case ElixirScope.tracing_info() do
        {:error, :not_running} -> nil
        info -> info
      end

    stats = if TraceDB.lookup(TraceDB), do: TraceDB.stats()
    now = System.monotonic_time()

    tracing =
      if info do
        "Tracing: level #{info.level}, trace_all #{info.trace_all}, lifecycle #{info.lifecycle}" <>
          if(info.session, do: " (own trace session)", else: "") <>
          "\nGenServers traced: #{list_text(info.genservers)}\n" <>
          "Modules traced: #{list_text(info.modules)}\n" <>
          "Functions traced: #{list_text(Enum.map(info.functions, &Text.mfa/1))}" <>
          calls_only_text(info) <> watchdog_text(info.watchdog)
      else
        "Tracing: stopped (what was recorded can still be read)."
      end

    store =
      if stats do
        "Store: #{stats[:stored]} events, #{stats[:bytes]} payload bytes; " <>
          "#{stats[:pruned]} pruned, #{stats[:sampled_out]} sampled out."
      else
        "Store: not running."
      end

    structured = %{
      "tracing" => info != nil,
      "level" => info && Atom.to_string(info.level),
      "traceAll" => info && info.trace_all,
      "genservers" => Enum.map((info && info.genservers) || [], &inspect/1),
      "modules" => Enum.map((info && info.modules) || [], &inspect/1),
      "functions" => Enum.map((info && info.functions) || [], &Text.mfa/1),
      "lifecycle" => info && Atom.to_string(info.lifecycle),
      "callsOnly" => Enum.map((info && info.calls_only) || [], &Text.mfa/1),
      "discardedCalls" => info && info.discarded_calls,
      "tracingRemovedByOtherTools" => info && info.watchdog.removals,
      "storedEvents" => stats && stats[:stored],
      "payloadBytes" => stats && stats[:bytes],
      "now" => Integer.to_string(now)
    }

    {Enum.join([tracing, store, "Now: t=#{now}"], "\n"), structured}
  end

  # Functions the return-frame bound switched to calls only (tail-recursive loops).
  defp calls_only_text(%{calls_only: [], discarded_calls: 0}), do: ""

  defp calls_only_text(info) do
    "\nCalls only (return frames bounded): #{list_text(Enum.map(info.calls_only, &Text.mfa/1))}; " <>
      "#{info.discarded_calls} calls not recorded at the bound"
  end

  # OTP < 27: what another tool's cleanup removed, last time.
  defp watchdog_text(%{last: nil}), do: ""

  defp watchdog_text(%{removals: n, last: last}) do
    taken = if last.taken == [], do: "", else: "; left to it: #{Text.term(last.taken, 200)}"

    "\nRemoved by another tool: #{n} time(s), last #{last.patterns} patterns, " <>
      "#{last.processes} processes#{if last.new_processes, do: ", new processes", else: ""}; " <>
      if(last.rearmed, do: "re-armed", else: "not re-armed (rearm: false)") <> taken
  end

  defp list_text([]), do: "none"

  defp list_text(items),
    do:
      items
      |> Enum.map(&if(is_binary(&1), do: &1, else: inspect(&1)))
      |> Enum.sort()
      |> Enum.join(", ")

  @doc false
  def list_processes(args, config) do
    key =
      Args.choice(
        args,
        "sort_by",
        %{
          "memory" => :memory,
          "reductions" => :reductions,
          "message_queue_len" => :message_queue_len
        },
        :memory
      )

    {limit, offset} = offset_window(args, 20)

    ranked =
      for pid <- Process.list(), {^key, value} <- [Process.info(pid, key)] do
        {pid, value}
      end
      |> Enum.sort_by(fn {pid, value} -> {-value, pid} end)

    lines =
      ranked
      |> Enum.drop(offset)
      |> Enum.take(limit)
      |> Enum.flat_map(fn {pid, _} -> process_line(pid) end)

    Text.page(
      "#{length(ranked)} processes; by #{key}, largest first, from #{offset + 1}:",
      Enum.with_index(lines, fn line, i -> {line, "o#{offset + i + 1}"} end),
      if(offset + limit < length(ranked), do: "o#{offset + limit}"),
      config
    )
  end

  @info [
    :registered_name,
    :memory,
    :reductions,
    :message_queue_len,
    :current_function,
    :dictionary
  ]

  defp process_line(pid) do
    case Process.info(pid, @info) do
      nil ->
        []

      info ->
        info = Map.new(info)
        name = if info.registered_name == [], do: "", else: " #{inspect(info.registered_name)}"
        initial = info.dictionary[:"$initial_call"]

        [
          "#{Text.pid(pid)}#{name} memory=#{info.memory} reductions=#{info.reductions} " <>
            "queue=#{info.message_queue_len} current=#{Text.mfa(info.current_function)}" <>
            if(initial, do: " initial=#{Text.mfa(initial)}", else: "")
        ]
    end
  end

  @doc false
  def find_processes(args, config) do
    {limit, offset} = offset_window(args, 50)

    {heading, lines} =
      case {Map.has_key?(args, "module_name"), Map.get(args, "name")} do
        {true, nil} ->
          module = Args.module!(args, "module_name")

          found =
            for p <- Processes.find_processes(module: module) do
              "#{Text.pid(p.pid)} #{if p.alive, do: "alive", else: "exited"} (#{Enum.join(p.source, ", ")})"
            end

          {"Processes running #{inspect(module)}:", found}

        {false, name} when is_binary(name) and name != "" ->
          found =
            for pid <- Process.list(),
                {:registered_name, registered} <- [Process.info(pid, :registered_name)],
                is_atom(registered) and registered != [],
                String.contains?(inspect(registered), name),
                do: hd(process_line(pid) ++ ["#{Text.pid(pid)} #{inspect(registered)}"])

          {"Processes whose registered name contains #{inspect(name)}:", Enum.sort(found)}

        _ ->
          Args.fail("give module_name or name (one of the two)")
      end

    if lines == [] do
      {:error, "No process found. elixir_scope_list_processes lists the running ones."}
    else
      offset_page(heading, lines, limit, offset, config)
    end
  end

  @doc false
  def process_info(args, config) do
    pid = Args.pid!(args, "pid_string")
    info = Processes.process_info(pid)

    if not info.alive and info.history.events == 0 do
      {:error,
       "#{Text.pid(pid)} is not running and nothing is recorded about it. " <>
         "elixir_scope_list_processes lists the running processes."}
    else
      live =
        case info.live do
          nil ->
            "Not running."

          l ->
            "Running: status #{l.status}, name #{inspect(l.registered_name)}, memory #{l.memory}, " <>
              "reductions #{l.reductions}, queue #{l.message_queue_len}\n" <>
              "Initial call #{Text.mfa(l.initial_call)}, now in #{Text.mfa(l.current_function)}\n" <>
              "Parent #{Text.term(l.parent, 40)}; links #{Text.term(l.links, 400)}; monitors #{Text.term(l.monitors, 300)}"
        end

      h = info.history

      history =
        "Recorded: #{h.events} events" <>
          if(h.events > 0,
            do: " from t=#{h.first} to t=#{h.last}: #{Text.term(h.by_type, 300)}",
            else: " (trace it with elixir_scope_trace_process)"
          )

      state =
        case info.last_state do
          nil -> []
          e -> ["Last state (##{e.id} t=#{e.timestamp}): #{Text.term(e[:state], 3000)}"]
        end

      crash =
        case info.crash do
          nil -> []
          e -> ["Crashed (##{e.id} t=#{e.timestamp}): #{Text.term(e[:reason], 2000)}"]
        end

      Text.fit_text(
        Enum.join(["#{Text.pid(pid)}", live, history] ++ state ++ crash, "\n"),
        config
      )
    end
  end

  @doc false
  def state_at(args, _config) do
    pid = Args.pid!(args, "pid_string")

    timestamp =
      case {Args.timestamp(args, "timestamp"), Args.integer(args, "event_id", nil, 1, 2 ** 62)} do
        {nil, nil} -> Args.fail("give timestamp or event_id")
        {ts, nil} -> ts
        {nil, id} -> event_timestamp!(id)
        _ -> Args.fail("give timestamp or event_id, not both")
      end

    case TimeTravel.get_state_at(pid, timestamp) do
      {:ok, state} ->
        "State of #{Text.pid(pid)} at t=#{timestamp}:\n#{Text.term(state, 50_000)}"

      {:error, :not_found} ->
        if TimeTravel.state_timeline(pid, limit: 1) == [],
          do: nothing_recorded(pid, "state changes", :genserver),
          else:
            {:error,
             "No state of #{Text.pid(pid)} was recorded at or before t=#{timestamp}: its first " <>
               "recorded state is later (elixir_scope_get_state_timeline shows when)."}
    end
  end

  defp event_timestamp!(id) do
    case TraceDB.store!(TraceDB) |> Native.get(id) do
      %{timestamp: timestamp} -> timestamp
      nil -> Args.fail("no event ##{id} in the recording (it may have been pruned)")
    end
  end

  @doc false
  def events_between(args, config) do
    t1 = Args.timestamp(args, "start_timestamp")
    t2 = Args.timestamp(args, "end_timestamp")
    window = window(args)

    filters =
      [
        timestamp_start: t1,
        timestamp_end: t2,
        pid: if(Map.has_key?(args, "pid_string"), do: Args.pid!(args, "pid_string")),
        type:
          Args.choice(
            args,
            "type",
            Map.new(@event_types, &{&1, String.to_existing_atom(&1)}),
            nil
          )
      ]
      |> Enum.reject(fn {_, v} -> v == nil end)

    events = TraceDB.query_events(filters ++ page_filters(window))

    range =
      "from #{if t1, do: "t=#{t1}", else: "the start"} to #{if t2, do: "t=#{t2}", else: "now"}"

    id_page(events, window, config,
      heading: "Events #{range}, oldest first:",
      none: fn ->
        {:error,
         "No events recorded in that range. elixir_scope_status shows the current time and " <>
           "what is traced."}
      end
    )
  end

  @doc false
  def system_snapshot(args, config) do
    timestamp = Args.timestamp(args, "timestamp") || System.monotonic_time()
    {limit, offset} = offset_window(args, 100)

    lines =
      for p <- Processes.system_snapshot_at(timestamp) do
        "#{Text.pid(p.pid)}" <>
          if(p.name, do: " #{inspect(p.name)}", else: "") <>
          if(p.supervisor, do: " supervisor=#{Text.pid(p.supervisor)}", else: "") <>
          if(p.links != [], do: " links=#{Text.term(p.links, 200)}", else: "") <>
          if(p.state != nil, do: " state=#{Text.term(p.state, 300)}", else: "")
      end

    if lines == [] do
      {:error,
       "No process is recorded alive at t=#{timestamp}: lifecycle events are recorded " <>
         "for traced processes (setup with trace_all: true records all)."}
    else
      offset_page("Processes alive at t=#{timestamp} (recorded):", lines, limit, offset, config)
    end
  end

  @doc false
  def slowest_calls(args, config) do
    module = Args.module(args, "module_name")
    limit = Args.integer(args, "limit", 10, 1, 100)
    calls = Analysis.slowest_function_calls(limit: limit, module: module)

    if calls == [] do
      {:error,
       "No completed calls recorded#{if module, do: " of #{inspect(module)}"}: trace a module with elixir_scope_trace_module first."}
    else
      lines =
        for c <- calls do
          {"#{Text.duration(c[:duration])} #{Text.mfa({c[:module], c[:function], c[:arity]})} " <>
             "in #{Text.pid(c[:pid])} args=#{Text.term(c[:args], 300)} " <>
             if(c.type == :exception,
               do: "raised #{c[:class]} #{Text.term(c[:reason], 200)}",
               else: "→ #{Text.term(c[:result], 200)}"
             ) <> " (##{c.id} t=#{c.timestamp})", nil}
        end

      Text.page("Slowest calls, slowest first:", lines, nil, config)
    end
  end

  @doc false
  def performance_analysis(args, config) do
    module = Args.module!(args, "module_name")

    case Analysis.performance_analysis(module) do
      [] ->
        {:error,
         "No calls of #{inspect(module)} recorded" <>
           if(module in info(:modules, []),
             do: " yet: let the application work.",
             else: ": trace it with elixir_scope_trace_module first."
           )}

      rows ->
        lines =
          for r <- rows do
            {"#{r.function}/#{r.arity}: #{r.calls} calls, #{r.exceptions} exceptions, " <>
               "total #{Text.duration(r.total)}, mean #{Text.duration(r.mean)}, " <>
               "p50 #{Text.duration(r.p50)}, p90 #{Text.duration(r.p90)}, " <>
               "p99 #{Text.duration(r.p99)}, max #{Text.duration(r.max)}", nil}
          end

        Text.page("#{inspect(module)}, by total time:", lines, nil, config)
    end
  end

  @doc false
  def message_queue_analysis(args, config) do
    limit = Args.integer(args, "limit", 10, 1, 100)
    window_ms = Args.integer(args, "window_ms", 5_000, 1, 3_600_000)
    analysis = Processes.message_queue_analysis(limit: limit, window_ms: window_ms)

    top =
      for t <- analysis.top do
        "  #{Text.pid(t.pid)}#{if t.name, do: " #{inspect(t.name)}"} queue=#{t.message_queue_len} in #{Text.mfa(t.current_function)}"
      end

    traffic =
      for t <- analysis.traffic do
        "  #{Text.pid(t.pid)} sent=#{t.sent} inflow=#{t.inflow} received=#{t.received} " <>
          "(#{Float.round(t.inflow_per_sec, 1)}/s in) queue=#{inspect(t.message_queue_len)}" <>
          if(t.growing, do: " GROWING", else: "")
      end

    Text.fit_text(
      Enum.join(
        ["Longest mailboxes now:" | blank_list(top, "  none (every queue is empty)")] ++
          [
            "Recorded traffic, last #{window_ms} ms, by inflow:"
            | blank_list(traffic, "  none recorded (trace processes to record messages)")
          ],
        "\n"
      ),
      config
    )
  end

  defp blank_list([], text), do: [text]
  defp blank_list(lines, _text), do: lines

  @doc false
  def recent_crashes(args, config) do
    limit = Args.integer(args, "limit", 5, 1, 50)
    before_id = cursor_id(args)

    crashes =
      TraceDB.query_events(
        [type: :crash, order: :desc, limit: limit + 1] ++
          if(before_id, do: [before_id: before_id], else: [])
      )

    if crashes == [] and before_id == nil do
      {:error,
       "No crash recorded. Crashes are recorded for traced processes (trace_all: true in " <>
         "setup records every process)."}
    else
      lines = Enum.map(crashes, &{crash_lines(&1), "e#{&1.id}"})
      Text.page("Crashes, newest first:", Enum.take(lines, limit), more(lines, limit), config)
    end
  end

  defp crash_lines(crash) do
    pid = crash.pid

    state =
      case TraceDB.get_state_at(pid, crash.timestamp) do
        {:ok, state} -> "  last state: #{Text.term(state, 1000)}"
        {:error, :not_found} -> "  last state: not recorded"
      end

    # Replies of the code server come from loading the modules the crash itself
    # needed (formatting the error): not what the process was doing.
    messages =
      [pid: pid, type: :receive, timestamp_end: crash.timestamp, order: :desc, limit: 20]
      |> TraceDB.query_events()
      |> Enum.reject(&match?({:code_server, _}, &1[:message]))
      |> Enum.take(5)
      |> Enum.reverse()
      |> Enum.map(&"    ##{&1.id} t=#{&1.timestamp} #{Text.term(&1[:message], 300)}")

    Enum.join(
      [
        "##{crash.id} t=#{crash.timestamp} #{Text.pid(pid)} crashed: #{Text.term(crash[:reason], 1500)}",
        state,
        "  last messages received:" | blank_list(messages, "    none recorded")
      ],
      "\n"
    )
  end

  @doc false
  def stop_tracing(args, _config) do
    case {Map.has_key?(args, "pid_string"), Map.has_key?(args, "module_name")} do
      {true, true} ->
        Args.fail("give pid_string or module_name, not both (or neither to stop everything)")

      {true, false} ->
        pid = Args.pid!(args, "pid_string")
        traced(ElixirScope.untrace_process(pid), "Stopped tracing #{Text.pid(pid)}.")

      {false, true} ->
        module = Args.module!(args, "module_name")
        traced(ElixirScope.stop_trace_module(module), "Stopped tracing #{inspect(module)}.")

      {false, false} ->
        ElixirScope.stop_tracing()

        "Stopped all tracing. What was recorded stays queryable; the application " <>
          "restarts tracing with ElixirScope.setup/1."
    end
  end

  ## Shared helpers

  defp info(key, default) do
    case ElixirScope.tracing_info() do
      %{^key => value} -> value
      _ -> default
    end
  end

  defp nothing_recorded(pid, what, kind) do
    alive = Process.alive?(pid)

    traced =
      case kind do
        :genserver -> pid in info(:genservers, [])
        :process -> false
      end

    {:error,
     cond do
       not alive and kind == :genserver ->
         "No #{what} recorded for #{Text.pid(pid)}, and it is not running."

       not alive ->
         "Nothing recorded for #{Text.pid(pid)}, and it is not running: check the pid with elixir_scope_list_processes."

       traced ->
         "#{Text.pid(pid)} is traced, but no #{what} happened since; let the application work and ask again."

       true ->
         "No #{what} recorded for #{Text.pid(pid)}: trace it first with elixir_scope_trace_process, then let the application work."
     end}
  end

  # One more than the page: whether it comes says if there is a next page.
  defp page_filters({limit, nil}), do: [limit: limit + 1]
  defp page_filters({limit, after_id}), do: [limit: limit + 1, after_id: after_id]

  # limit and the id to continue after, for listings ordered by id.
  defp window(args), do: {Args.integer(args, "limit", 50, 1, 500), cursor_id(args)}

  defp cursor_id(args) do
    case Map.get(args, "cursor") do
      nil -> nil
      "e" <> digits -> parse_cursor(digits)
      other -> Args.fail("cursor #{inspect(other)} does not continue this listing")
    end
  end

  defp offset_window(args, default) do
    limit = Args.integer(args, "limit", default, 1, 500)

    case Map.get(args, "cursor") do
      nil -> {limit, 0}
      "o" <> digits -> {limit, parse_cursor(digits)}
      other -> Args.fail("cursor #{inspect(other)} does not continue this listing")
    end
  end

  defp parse_cursor(digits) do
    case Integer.parse(digits) do
      {n, ""} when n >= 0 -> n
      _ -> Args.fail("cursor is malformed; pass back the cursor an answer ended with")
    end
  end

  defp more(lines, limit) do
    if length(lines) > limit, do: lines |> Enum.at(limit - 1) |> elem(1)
  end

  # A page of events in id order (`:line` renders one; one line each by default), with
  # the cursor that continues it. On the first page, no events at all is the tool's
  # `:none` answer.
  defp id_page(events, {limit, after_id}, config, opts) do
    if events == [] and after_id == nil and opts[:none] do
      opts[:none].()
    else
      render = Keyword.get(opts, :line, &Text.event/1)
      lines = Enum.map(events, &{render.(&1), "e#{&1.id}"})
      Text.page(opts[:heading], Enum.take(lines, limit), more(lines, limit), config)
    end
  end

  defp offset_page(heading, lines, limit, offset, config) do
    shown = lines |> Enum.drop(offset) |> Enum.take(limit)
    paired = Enum.with_index(shown, fn line, i -> {line, "o#{offset + i + 1}"} end)

    Text.page(
      heading,
      paired,
      if(offset + limit < length(lines), do: "o#{offset + limit}"),
      config
    )
  end
end
