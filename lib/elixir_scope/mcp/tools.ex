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
  | `elixir_scope_recent_crashes` | — | recent crashes, traced or not, and Phoenix request exceptions, with reason, stacktrace, last state and last messages (`ElixirScope.recent_crashes/1`) |
  | `elixir_scope_stop_tracing` | `pid_string` or `module_name` | stops tracing one process, one module, or everything |
  | `elixir_scope_phoenix_requests` | `path`, `status`, `slowest` | the Phoenix requests recorded, newest (or slowest) first |
  | `elixir_scope_request_timeline` | `request_id` | what one request caused: its events, messages to its process, what its GenServer calls did |
  | `elixir_scope_live_view_timeline` | `pid_string` | one LiveView's mounts, events, renders and states with their causes and diffs (without a pid: the LiveViews recorded) |

  Listings take `limit` and `cursor`: an answer never passes the server's budget
  (`:max_tokens`), and ends with the cursor to continue when it is cut. Listings of
  events continue with the query engine's cursors (`ElixirScope.Query`): exactly after
  the last event shown, in the listing's order.

  The tools live in modules by what they answer: `ElixirScope.MCP.Tools.History` (what
  happened: timelines, flows, calls, events, states), `ElixirScope.MCP.Tools.Processes`
  (which processes, how they are and were), `ElixirScope.MCP.Tools.Performance` (where
  time goes), `ElixirScope.MCP.Tools.Phoenix` (what a Phoenix application served) and
  `ElixirScope.MCP.Tools.Control` (what is traced, starting and stopping it); `ElixirScope.MCP.Tools.Common` holds what they share. A pid is
  written `"#PID<0.123.0>"` (or a registered name); a timestamp is the integer shown
  after `t=` in event listings (strings, since they do not fit in a JSON number), or
  the ISO 8601 wall-clock time shown before it.

  A call that cannot be answered (an unknown pid, a dead process, a module not
  loaded, nothing recorded yet) gives an `isError` result saying what to do next.
  """

  alias ElixirScope.MCP.{Args, Text}
  alias ElixirScope.MCP.Tools.{Control, History, Performance, Phoenix, Processes}

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
    "description" =>
      "A timestamp as shown after t= in event listings (native monotonic units), or an " <>
        "ISO 8601 time as listings show it (2026-01-05T12:03:07.123456Z)"
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

  @tools [
    {"elixir_scope_get_state_timeline", "State timeline",
     "The recorded states of a GenServer, oldest first: for each, the callback that " <>
       "produced it, the message or request that caused it, and what changed (a diff " <>
       "against the state before). Needs the process traced (elixir_scope_trace_process).",
     %{"pid_string" => @pid_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, ["pid_string"],
     {History, :state_timeline}},
    {"elixir_scope_get_message_flow", "Message flow",
     "The messages sent between two processes, in both directions, in the order they " <>
       "were sent. Needs at least one of them traced.",
     %{
       "from_pid" => @pid_arg,
       "to_pid" => @pid_arg,
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, ["from_pid", "to_pid"], {History, :message_flow}},
    {"elixir_scope_get_function_calls", "Function calls",
     "The recorded calls of a module's functions, with arguments, return values or " <>
       "exceptions and durations, oldest first. Needs the module traced " <>
       "(elixir_scope_trace_module).",
     %{"module_name" => @module_arg, "limit" => @limit_arg, "cursor" => @cursor_arg},
     ["module_name"], {History, :function_calls}},
    {"elixir_scope_trace_module", "Trace a module",
     "Starts recording every call of a module's functions (local calls included): " <>
       "arguments, results, exceptions and durations. Read them with " <>
       "elixir_scope_get_function_calls or elixir_scope_performance_analysis.",
     %{"module_name" => @module_arg}, ["module_name"], {Control, :trace_module}},
    {"elixir_scope_trace_process", "Trace a process",
     "Starts recording a process: its messages, lifecycle, calls of traced modules and, " <>
       "for a GenServer, every state change with its cause.", %{"pid_string" => @pid_arg},
     ["pid_string"], {Control, :trace_process}},
    {"elixir_scope_trace_named_process", "Trace a named process",
     "Like elixir_scope_trace_process, for a process given by its registered name " <>
       "(\"MyApp.Queue\", or \"logger\" for an Erlang name).",
     %{"process_name" => %{"type" => "string", "description" => "The registered name"}},
     ["process_name"], {Control, :trace_named_process}},
    {"elixir_scope_get_supervision_tree", "Supervision tree",
     "The live supervision tree of every application: supervisors with strategy and " <>
       "restart count, children with id, pid, type and module.",
     %{"limit" => @limit_arg, "cursor" => @cursor_arg}, [], {Processes, :supervision_tree}},
    {"elixir_scope_get_execution_path", "Execution path",
     "Everything recorded about one process, in order: calls and returns, messages " <>
       "sent and received, state changes, lifecycle.",
     %{"pid_string" => @pid_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, ["pid_string"],
     {History, :execution_path}},
    {"elixir_scope_analyze_state_changes", "Analyze state changes",
     "How a GenServer's state evolved: which fields change and how often, which " <>
       "callbacks and messages change them, then each change with its cause and diff.",
     %{"pid_string" => @pid_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, ["pid_string"],
     {History, :analyze_state_changes}},
    {"elixir_scope_status", "Status",
     "What ElixirScope is doing: tracing level, traced processes and modules, and how " <>
       "much the store holds. A good first call.", %{}, [], {Control, :status}},
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
     }, [], {Processes, :list_processes}},
    {"elixir_scope_find_processes", "Find processes",
     "Processes running a module (live, and recorded ones that have exited), or live " <>
       "processes whose registered name contains a text. Give module_name or name.",
     %{
       "module_name" => @module_arg,
       "name" => %{"type" => "string", "description" => "Part of a registered name"},
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, [], {Processes, :find_processes}},
    {"elixir_scope_process_info", "Process info",
     "Everything known about one process, alive or not: status, memory, queue, links, " <>
       "parent, recorded event counts, last recorded state and crash.",
     %{"pid_string" => @pid_arg}, ["pid_string"], {Processes, :process_info}},
    {"elixir_scope_get_state_at", "State at a moment",
     "A GenServer's recorded state as it was at a timestamp, or right after an event " <>
       "(event_id, the number after # in listings). Give timestamp or event_id.",
     %{
       "pid_string" => @pid_arg,
       "timestamp" => @timestamp_arg,
       "event_id" => %{"type" => "integer", "minimum" => 1}
     }, ["pid_string"], {History, :state_at}},
    {"elixir_scope_get_events_between", "Events between two times",
     "Every recorded event between two timestamps (inclusive), oldest first, " <>
       "optionally of one process or one type. Without timestamps: the whole recording.",
     %{
       "start_timestamp" => @timestamp_arg,
       "end_timestamp" => @timestamp_arg,
       "pid_string" => @pid_arg,
       "type" => %{
         "type" => "string",
         "description" => "An event type (the list: elixir_scope_status)"
       },
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, [], {History, :events_between}},
    {"elixir_scope_system_snapshot", "System snapshot",
     "The processes alive at a moment according to the recording, with their names, " <>
       "GenServer states, links and supervisors then. Without a timestamp: now.",
     %{"timestamp" => @timestamp_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, [],
     {Processes, :system_snapshot}},
    {"elixir_scope_slowest_calls", "Slowest calls",
     "The slowest recorded calls (of one module, or of all traced ones), slowest " <>
       "first, with their arguments, results and process.",
     %{
       "module_name" => @module_arg,
       "limit" => %{"type" => "integer", "minimum" => 1, "maximum" => 100}
     }, [], {Performance, :slowest_calls}},
    {"elixir_scope_performance_analysis", "Performance analysis",
     "Per function of a traced module: calls, exceptions, total and mean time, and " <>
       "p50/p90/p99/max durations. Sorted by total time.", %{"module_name" => @module_arg},
     ["module_name"], {Performance, :performance_analysis}},
    {"elixir_scope_message_queue_analysis", "Message queue analysis",
     "Where messages pile up: the live processes with the longest mailboxes, and the " <>
       "recorded message rates of the last window_ms, flagging mailboxes that fill " <>
       "faster than they are read.",
     %{
       "limit" => %{"type" => "integer", "minimum" => 1, "maximum" => 100},
       "window_ms" => %{"type" => "integer", "minimum" => 1, "maximum" => 3_600_000}
     }, [], {Processes, :message_queue_analysis}},
    {"elixir_scope_recent_crashes", "Recent crashes",
     "The most recent crashes, newest first: processes that ended abnormally (traced or " <>
       "not: reason, stacktrace, the GenServer's last message and state, its supervisor, " <>
       "its last messages before dying) and Phoenix request exceptions (method, path, " <>
       "the exception and its stacktrace).",
     %{
       "limit" => %{"type" => "integer", "minimum" => 1, "maximum" => 50},
       "cursor" => @cursor_arg
     }, [], {Processes, :recent_crashes}},
    {"elixir_scope_stop_tracing", "Stop tracing",
     "Stops tracing one process (pid_string), one module (module_name), or, with no " <>
       "argument, everything. What was recorded stays queryable.",
     %{"pid_string" => @pid_arg, "module_name" => @module_arg}, [], {Control, :stop_tracing}},
    {"elixir_scope_phoenix_requests", "Phoenix requests",
     "The HTTP requests a Phoenix application served (recorded with setup(phoenix: true)), " <>
       "newest first, or the slowest first: method, path, status, duration, route and " <>
       "the process that served each, with the request_id to pass to " <>
       "elixir_scope_request_timeline.",
     %{
       "path" => %{"type" => "string", "description" => "Only paths starting with this"},
       "status" => %{
         "type" => ["integer", "string"],
         "description" => "An HTTP status (500), or a class (\"5xx\")"
       },
       "slowest" => %{"type" => "boolean", "description" => "The slowest first (default false)"},
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, [], {Phoenix, :requests}},
    {"elixir_scope_request_timeline", "Request timeline",
     "What one request caused, in order, without tracing the process that served it: " <>
       "its Phoenix events (endpoint, router, exception), the messages traced processes " <>
       "sent its process, and, for each GenServer.call it made to a traced GenServer, " <>
       "that GenServer's receive, the calls and broadcasts it made, its state change and " <>
       "its reply (or its crash).",
     %{
       "request_id" => %{
         "type" => "integer",
         "minimum" => 1,
         "description" => "A request's id, as elixir_scope_phoenix_requests shows it"
       },
       "limit" => @limit_arg,
       "cursor" => @cursor_arg
     }, ["request_id"], {Phoenix, :request_timeline}},
    {"elixir_scope_live_view_timeline", "LiveView timeline",
     "One LiveView's life, oldest first: mounts, events, renders, components and, once " <>
       "the process is traced (elixir_scope_trace_process), its assigns after each " <>
       "change, with the message that caused it (changes made in handle_info included) " <>
       "and what changed. Without pid_string: the LiveViews recorded.",
     %{"pid_string" => @pid_arg, "limit" => @limit_arg, "cursor" => @cursor_arg}, [],
     {Phoenix, :live_view_timeline}}
  ]

  @by_name Map.new(@tools, fn {name, _, _, props, _, fun} -> {name, {fun, Map.keys(props)}} end)

  @node_arg %{
    "type" => "string",
    "description" =>
      "The node to answer from, in a cluster set up with ElixirScope.setup(nodes: ...) " <>
        "(default: this one); pids and timestamps are that node's"
  }
  @writes [:trace_module, :trace_process, :trace_named_process, :stop_tracing]

  @doc false
  def exists?(name), do: Map.has_key?(@by_name, name)

  @doc false
  # The tools as `tools/list` describes them.
  def definitions(_config) do
    for {name, title, description, props, required, {_module, fun}} <- @tools do
      props = props |> with_type_enum() |> Map.put("node", @node_arg)

      %{
        "name" => name,
        "title" => title,
        "description" => description,
        "inputSchema" =>
          %{"type" => "object", "properties" => props, "additionalProperties" => false}
          |> then(&if required == [], do: &1, else: Map.put(&1, "required", required)),
        "outputSchema" => output_schema(fun),
        "annotations" => %{
          "readOnlyHint" => fun not in @writes,
          "openWorldHint" => false
        }
      }
      |> Map.reject(fn {_, v} -> v == nil end)
    end
  end

  # The event types a listing can be narrowed to: the vocabulary's, known at run time.
  defp with_type_enum(%{"type" => schema} = props),
    do: %{props | "type" => Map.put(schema, "enum", Enum.map(event_types(), &Atom.to_string/1))}

  defp with_type_enum(props), do: props

  @doc false
  def event_types, do: Enum.map(ElixirScope.TraceDB.vocabulary().types, & &1.type)

  defp output_schema(:status), do: @status_schema
  defp output_schema(_), do: nil

  @doc false
  # A `tools/call` result: text, `isError` when the call could not be answered.
  def call(name, args, config) do
    {{module, fun}, allowed} = Map.fetch!(@by_name, name)
    {node, args} = Map.pop(args, "node")

    try do
      case ElixirScope.Cluster.member_named(node) do
        nil ->
          local(module, fun, allowed, args, config)

        other ->
          ElixirScope.Cluster.Remote.forward(other, {__MODULE__, :call}, [name, args, config])
      end
    rescue
      e in ArgumentError -> error(Exception.message(e))
    end
  end

  defp local(module, fun, allowed, args, config) do
    try do
      Args.only!(args, allowed)
      apply(module, fun, [args, config])
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
end
