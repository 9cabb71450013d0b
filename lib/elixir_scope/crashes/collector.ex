defmodule ElixirScope.Crashes.Collector do
  @moduledoc false
  # Joins what every source says of one process's end into one :crash (or :exit) event
  # (ElixirScope.Crashes explains the sources, their order and the bounds).
  #
  # Per pid an entry gathers fields until the process is known dead — from the tracer's
  # exit (it hands over every exit OTP reports, c_src/nif/tracer.h) or from a monitor set
  # when a report named a live process — and, when its parent is a supervisor, that
  # supervisor's report, or @supervisor_wait ms without it. Then the event is written,
  # timestamped when the process ended (the tracer's time; else the time its own last
  # report was logged, just before it exited; else when its end was learnt), and the
  # pid is remembered a while so that a late report does not make a second event.

  use GenServer

  alias ElixirScope.{Config, Crashes, TraceDB, Tracing}
  alias ElixirScope.Crashes.Reports
  alias ElixirScope.Processes.{Live, Recorded}

  @supervisor_wait 100
  @max_pending 10_000
  # Pids whose event was written, remembered to drop what comes after it.
  @remembered 4096
  # Time precedence of the sources: the tracer's exit is the exact end.
  @time_rank %{trace: 4, crash_report: 3, terminate_report: 3, task_report: 3, monitor: 2}
  @big_fields [:state, :messages, :last_message, :args, :function, :links, :ancestors]

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @doc false
  # Reports dropped for a full mailbox, entries waiting, exits written.
  def info do
    case Process.whereis(__MODULE__) do
      nil -> nil
      pid -> GenServer.call(pid, :info)
    end
  end

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)
    tracer = Tracing.tracer()
    reports = Reports.install(self())
    if tracer, do: Tracing.set_exit_sink(tracer, self())

    {:ok,
     %{
       tracer: tracer,
       reports: reports,
       field_bytes: div(config.max_payload_bytes, 4),
       pending: %{},
       done: {:queue.new(), MapSet.new()},
       written: 0,
       late: 0
     }}
  end

  @impl true
  def handle_call(:info, _from, state) do
    {:reply,
     %{
       reports_dropped: Reports.dropped(state.reports),
       waiting: map_size(state.pending),
       recorded: state.written,
       late_reports: state.late
     }, state}
  end

  @impl true
  def handle_info({:report, label, report, logger_pid, ts}, state) do
    case Reports.parse(label, report, logger_pid) do
      {pid, source, fields} -> {:noreply, heard(state, pid, source, fields, ts)}
      nil -> {:noreply, state}
    end
  end

  # From the C tracer: an exit OTP reports.
  def handle_info({:elixir_scope_exit, pid, reason, ts}, state) do
    Tracing.exits_taken(state.tracer, 1)
    {:noreply, heard(state, pid, :trace, %{reason: reason}, ts)}
  end

  # A monitored process is gone; :noproc: it was gone already, which says nothing more.
  def handle_info({:DOWN, _ref, :process, pid, :noproc}, state),
    do: {:noreply, heard(state, pid, :gone, %{}, nil)}

  def handle_info({:DOWN, _ref, :process, pid, reason}, state),
    do: {:noreply, heard(state, pid, :monitor, %{reason: reason}, System.monotonic_time())}

  def handle_info({:supervisor_wait, pid}, state) do
    case state.pending do
      %{^pid => entry} -> {:noreply, write(state, entry)}
      _ -> {:noreply, state}
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    if state.tracer, do: Tracing.set_exit_sink(state.tracer, nil)
    Reports.uninstall(state.reports)
    # What is known of processes still waiting is written now.
    Enum.reduce(state.pending, state, fn {_pid, e}, acc ->
      if e.dead, do: write(acc, e), else: acc
    end)

    :ok
  end

  ## Entries

  defp heard(state, pid, source, fields, ts) do
    cond do
      remembered?(state, pid) ->
        late = if source in [:trace, :monitor, :gone], do: 0, else: 1
        %{state | late: state.late + late}

      map_size(state.pending) >= @max_pending and not Map.has_key?(state.pending, pid) ->
        state

      true ->
        entry = Map.get_lazy(state.pending, pid, fn -> new_entry(pid, source) end)
        entry = if source == :gone, do: entry, else: merge(entry, source, fields, ts)
        entry = if source in [:trace, :monitor, :gone], do: %{entry | dead: true}, else: entry
        state = %{state | pending: Map.put(state.pending, pid, entry)}
        if entry.dead, do: settle(state, entry), else: state
    end
  end

  # A process heard of from a report is monitored to learn its end (one of another
  # node cannot be: it counts as gone).
  defp new_entry(pid, source) do
    local = Live.local?(pid)
    watched = source not in [:trace, :monitor, :gone] and local

    %{
      pid: pid,
      fields: %{},
      sources: [],
      reason: nil,
      reason_rank: 0,
      ts: nil,
      ts_rank: 0,
      dead: not local,
      monitor: if(watched, do: Process.monitor(pid)),
      waiting: false
    }
  end

  defp merge(entry, source, fields, ts) do
    {reason, fields} = Map.pop(fields, :reason)
    rank = Map.get(@time_rank, source, 1)
    # The exit reason: the tracer's or the monitor's over what the reports make of it.
    reason_rank = if source in [:trace, :monitor], do: 2, else: 1

    entry = %{
      entry
      | fields: Map.merge(fields, entry.fields),
        sources: Enum.uniq(entry.sources ++ [source])
    }

    entry =
      if reason != nil and reason_rank > entry.reason_rank,
        do: %{entry | reason: reason, reason_rank: reason_rank},
        else: entry

    if ts && rank > entry.ts_rank, do: %{entry | ts: ts, ts_rank: rank}, else: entry
  end

  # The process is gone: its event now, or once its supervisor had its say.
  defp settle(state, entry) do
    cond do
      :supervisor_report in entry.sources ->
        write(state, entry)

      entry.waiting ->
        state

      supervised?(entry) ->
        Process.send_after(self(), {:supervisor_wait, entry.pid}, @supervisor_wait)
        %{state | pending: Map.put(state.pending, entry.pid, %{entry | waiting: true})}

      true ->
        write(state, entry)
    end
  end

  defp supervised?(entry) do
    parent =
      case entry.fields[:ancestors] do
        [first | _] when is_pid(first) -> first
        [first | _] when is_atom(first) -> Process.whereis(first)
        _ -> Recorded.parent(entry.pid, nil, TraceDB)
      end

    is_pid(parent) and Live.alive?(parent) and Live.supervisor?(parent)
  end

  defp write(state, entry) do
    if entry.monitor, do: Process.demonitor(entry.monitor, [:flush])

    state = %{
      state
      | pending: Map.delete(state.pending, entry.pid),
        done: remember(state.done, entry.pid)
    }

    reason = entry.reason || :unknown

    context = %{
      supervised: :supervisor_report in entry.sources or supervised?(entry),
      supervisor_context: entry.fields[:supervisor_context]
    }

    type = if Crashes.crash?(reason, context), do: :crash, else: :exit

    if recorded_at_level?(state, type) and not already_recorded?(entry.pid) do
      {fields, truncated} = fit(entry.fields, state.field_bytes)

      event =
        fields
        |> Map.merge(%{pid: entry.pid, reason: reason, sources: entry.sources})
        |> Map.put(:timestamp, entry.ts || System.monotonic_time())
        |> then(&if truncated == [], do: &1, else: Map.put(&1, :truncated_fields, truncated))

      TraceDB.store_event(type, event)
      %{state | written: state.written + 1}
    else
      state
    end
  end

  # Crashes at every level but :off, other ends where the level records lifecycles.
  defp recorded_at_level?(%{tracer: nil}, _type), do: true

  defp recorded_at_level?(state, type) do
    mask = Tracing.mask(state.tracer)
    category = Enum.find(TraceDB.vocabulary().types, &(&1.type == type)).category
    Bitwise.band(mask, Config.category_bit(category)) != 0
  end

  defp already_recorded?(pid), do: Recorded.last(Recorded.types(:died), pid, TraceDB) != nil

  # Fields too large to keep without losing the event (max_payload_bytes) are left out.
  defp fit(fields, limit) do
    Enum.reduce(@big_fields, {fields, []}, fn key, {acc, out} ->
      case acc do
        %{^key => v} ->
          if :erlang.external_size(v) > limit,
            do: {Map.delete(acc, key), [key | out]},
            else: {acc, out}

        _ ->
          {acc, out}
      end
    end)
  end

  defp remembered?(%{done: {_q, set}}, pid), do: MapSet.member?(set, pid)

  defp remember({q, set}, pid) do
    {q, set} = {:queue.in(pid, q), MapSet.put(set, pid)}

    if MapSet.size(set) > @remembered do
      {{:value, old}, q} = :queue.out(q)
      {q, MapSet.delete(set, old)}
    else
      {q, set}
    end
  end
end
