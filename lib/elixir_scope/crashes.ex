defmodule ElixirScope.Crashes do
  @moduledoc """
  Crashes, traced or not: what ElixirScope records when a process ends, what counts as
  a crash, and the recent ones (`recent/1`, also `ElixirScope.recent_crashes/1` and the
  MCP tool `elixir_scope_recent_crashes`).

  ## What is recorded, by default

  From `ElixirScope.setup/1` on, at every tracing level but `:off`, every process that
  ends abnormally is recorded — whether ElixirScope traces it or not — as **one** event
  per exit, identified by its pid: a `:crash`, or an `:exit` when the rule below says it
  was no crash. Every source that saw the exit fills that event's fields:

  | source | when | fields |
  |---|---|---|
  | the tracer's exit event | the process is lifecycle-traced (see `:lifecycle` in `ElixirScope.setup/1`) | `reason`, the exact time |
  | the process's crash report (`proc_lib`: GenServer, gen_statem, Task, supervisor children, `:proc_lib.spawn*`) | it logged one | `reason`, `stacktrace`, `initial_call`, `name`, `ancestors`, `message_queue_len`, `messages` (its mailbox then), `links` |
  | GenServer / gen_statem terminate report | it logged one | `behaviour`, `name`, `last_message`, `state`, `client` (the caller of a crashing call) |
  | Task report | a Task raised | `behaviour: :task`, `starter`, `function`, `args`, `stacktrace` |
  | the supervisor's report | its supervisor reported the child's end | `supervisor`, `child_id`, `restart` (`:permanent`, `:transient` or `:temporary`: whether it is restarted), `supervisor_context` (`:child_terminated`, `:shutdown_error`) |
  | a monitor | the process was known from a report | `reason` when nothing else gave it |

  `sources` lists which of `:trace`, `:crash_report`, `:terminate_report`,
  `:task_report`, `:supervisor_report` and `:monitor` contributed. Reports are taken as
  terms, before Logger turns them into text (Elixir 1.15+ translates them in a primary
  filter of its own; ElixirScope's primary filter runs first, records, and passes every
  log event on unchanged), whatever the application's log level: when that level is
  above `:error` (`:critical`, `:alert`, `:emergency`, `:none`), ElixirScope sets the
  primary level to `:error` while it runs and its filter drops, after recording, what
  the application's level would have dropped — it sets the level back on `stop/0`.
  A field larger than a quarter of `:max_payload_bytes` (a huge state or mailbox) is
  left out and named in `truncated_fields`, so the rest of the event is kept.

  A plain `spawn`ed process logs no report: its end is seen only when its lifecycle is
  traced — `lifecycle: :all` records the exit of every process (the default on OTP
  27+; opt-in before, see `ElixirScope.setup/1`).

  ## How one event gets every source's fields

  Reports are logged by the dying process itself just before it exits, so they arrive
  first; the tracer's exit event (for traced processes) next; a supervisor's report
  after the exit, from the supervisor. The tracer therefore records exits OTP calls
  normal (`:normal`, `:shutdown`, `{:shutdown, _}`) at once, and hands every other exit
  to a collector process (no work on the traced process beyond one message), which
  also receives the reports and monitors a process it heard of from a report. Once the
  process is dead it writes the event — at once, or, when the process's parent is a
  supervisor, when that supervisor's report arrives, waiting at most
  100 ms for it. Bounds: a supervisor slower than that has its report left out (and a
  `:killed` child counted as ended by its supervisor, below); a supervisor's report on a
  child that ended normally (a permanent child) comes after the tracer recorded that
  `:exit`, and is left out; under a flood of crashes — more than 10,000 exits waiting
  for the collector, or more than 10,000 reports in its mailbox — the tracer records
  exits alone and reports are dropped (counted in `ElixirScope.status/0`). An exit is
  never recorded twice: the collector skips a process whose exit the store already has.

  ## What a crash is

  OTP's rule, as supervisors apply it, with one addition for servers:

    * `:normal`, `:shutdown` and `{:shutdown, term}` are no crash;
    * `:killed` is no crash when the process's supervisor killed it while shutting it
      down (its report says `:shutdown_error`, or — with `shutdown: :brutal_kill`, which
      it does not report — it made no report), and a crash when the supervisor reports
      it as `:child_terminated` (someone else killed it) or the process had no
      supervisor;
    * exits with the reasons server libraries use for a client connection that went
      away — `:closed`, `:connection_closed`, `:econnreset`, `:econnaborted`, `:epipe`,
      `:enotconn`, `:etimedout` (`closed_connection_reasons/0`) — are recorded as `:exit` events, not crashes.
      Bandit and ThousandIsland end their connection processes with
      `{:shutdown, :peer_closed}` (the client closed), `{:shutdown, :local_closed}` (the
      server closed) and `{:shutdown, :timeout}`, and with the socket's error (an
      `:inet` error such as `:econnreset`) on a TCP error;
    * anything else is a crash.

  `recent/1` lists `:crash` events (and the original vocabulary's `:process` events
  with `event: :crash`), not `:exit` events.
  """

  alias ElixirScope.{Event, Query, TraceDB}

  @closed_connection [
    :closed,
    :connection_closed,
    :econnreset,
    :econnaborted,
    :epipe,
    :enotconn,
    :etimedout
  ]

  @type crash :: %{
          kind: :process | :request,
          id: pos_integer(),
          timestamp: integer(),
          pid: pid() | nil,
          reason: term(),
          stacktrace: list() | nil,
          event: Event.t(),
          last_state: {:ok, term()} | :not_recorded,
          last_messages: [Event.t()],
          method: String.t() | nil,
          path: String.t() | nil
        }

  @doc "The exit reasons of a client connection gone away (see the moduledoc)."
  @spec closed_connection_reasons() :: [atom()]
  def closed_connection_reasons, do: @closed_connection

  @doc """
  Whether an exit with `reason` is a crash (see the moduledoc). `context`:
  `:supervisor_context` — what the process's supervisor reported of its end
  (`:child_terminated`, `:shutdown_error`, or `nil` for no report) — and `:supervised`
  — whether its parent is a supervisor.

      iex> ElixirScope.Crashes.crash?({:shutdown, :peer_closed})
      false
      iex> ElixirScope.Crashes.crash?(:econnreset)
      false
      iex> ElixirScope.Crashes.crash?(:killed, %{supervised: true, supervisor_context: :shutdown_error})
      false
      iex> ElixirScope.Crashes.crash?(:killed, %{supervised: true, supervisor_context: :child_terminated})
      true
      iex> ElixirScope.Crashes.crash?({%RuntimeError{message: "boom"}, []})
      true
  """
  @spec crash?(term(), map()) :: boolean()
  def crash?(reason, context \\ %{})
  def crash?(reason, _context) when reason in [:normal, :shutdown], do: false
  def crash?({:shutdown, _}, _context), do: false
  def crash?(reason, _context) when reason in @closed_connection, do: false

  def crash?(:killed, context) do
    case {context[:supervised], context[:supervisor_context]} do
      {_, :child_terminated} -> true
      {true, _} -> false
      _ -> true
    end
  end

  def crash?(_reason, _context), do: true

  @doc """
  The most recent crashes, newest first: process crashes (`:crash` events) and Phoenix
  request exceptions (`:phoenix` events of a `router_dispatch` exception, with
  `phoenix: true`), each as

      %{kind: :process | :request, id:, timestamp:, pid:, reason:, stacktrace:,
        event: the event, last_state: {:ok, state} | :not_recorded,
        last_messages: [receive events], method: nil | "GET", path: nil | "/cart"}

  `last_state` is the state the crash event carries (from a GenServer's terminate
  report), else the process's last recorded state at the crash; `last_messages` the
  last messages it was recorded receiving (up to 5, oldest first; replies of the code
  server, which come from loading the modules the crash itself needed, left out). For a
  request, `reason` is the exception and `method`, `path` those of the request.

  Options: `:limit` (default 10), `:before` (a cursor from `page/1`, or an event: only
  older crashes), `:store`.
  """
  @spec recent(keyword()) :: [crash()]
  def recent(opts \\ []), do: opts |> page() |> elem(0)

  @doc """
  `recent/1` and the cursor to pass as `before:` for the older ones (`nil` when none).
  """
  @spec page(keyword()) :: {[crash()], Query.cursor() | nil}
  def page(opts \\ []) do
    {limit, before, store} = options!(opts)
    bounds = [order: :desc, limit: limit, before: before, store: store]

    events =
      (TraceDB.type_specs(:crash) ++ [request_exceptions()])
      |> Enum.flat_map(&TraceDB.query_structs(&1 ++ bounds, Event))
      |> Enum.sort_by(&{&1.timestamp, &1.id}, :desc)
      |> Enum.take(limit)

    next = if length(events) == limit, do: Query.cursor(List.last(events))
    {Enum.map(events, &crash(&1, store)), next}
  end

  defp request_exceptions,
    do: [type: :phoenix, where: [kind: :router_dispatch, phase: :exception]]

  defp crash(%{type: :phoenix} = e, _store) do
    %{
      kind: :request,
      id: e.id,
      timestamp: e.timestamp,
      pid: e[:pid],
      reason: e[:reason] || e[:error],
      stacktrace: e[:stacktrace],
      event: e,
      last_state: :not_recorded,
      last_messages: [],
      method: e[:method],
      path: e[:path]
    }
  end

  defp crash(e, store) do
    pid = e[:pid]

    %{
      kind: :process,
      id: e.id,
      timestamp: e.timestamp,
      pid: pid,
      reason: e[:reason],
      stacktrace: e[:stacktrace],
      event: e,
      last_state: last_state(e, store),
      last_messages: if(is_pid(pid), do: last_messages(pid, e.timestamp, store), else: []),
      method: nil,
      path: nil
    }
  end

  defp last_state(%{state: state}, _store), do: {:ok, state}

  defp last_state(%{pid: pid, timestamp: ts}, store) when is_pid(pid) do
    case TraceDB.get_state_at(pid, ts, store: store) do
      {:ok, state} -> {:ok, state}
      {:error, :not_found} -> :not_recorded
    end
  end

  defp last_state(_e, _store), do: :not_recorded

  defp last_messages(pid, ts, store) do
    [
      pid: pid,
      type: :receive,
      timestamp_end: ts,
      where: [{{:message, 0}, {:not, :code_server}}],
      order: :desc,
      limit: 5,
      store: store
    ]
    |> TraceDB.query_structs(Event)
    |> Enum.reverse()
  end

  defp options!(opts) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "recent_crashes/1 takes a keyword list, got: #{inspect(opts)}")

    Enum.each(opts, fn
      {:limit, n} when is_integer(n) and n > 0 -> :ok
      {:before, _} -> :ok
      {:store, name} when is_atom(name) -> :ok
      {key, value} -> raise ArgumentError, "recent_crashes/1: bad option #{inspect({key, value})}"
    end)

    {Keyword.get(opts, :limit, 10), opts[:before], Keyword.get(opts, :store, TraceDB)}
  end
end
