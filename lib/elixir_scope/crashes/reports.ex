defmodule ElixirScope.Crashes.Reports do
  @moduledoc false
  # The runtime's reports of processes ending, taken as terms: a primary logger filter
  # (run in the process that logs, before any other filter — Elixir 1.15+ translates
  # reports to text in a primary filter of its own) sends the reports below to the
  # collector and passes every log event on unchanged; and the parsing of each report
  # into the pid it is about and the crash event's fields (ElixirScope.Crashes), done
  # in the collector so that the dying process only sends.
  #
  # Ordinary log events cost one failed match. The primary level must let :error
  # through for the runtime to make these reports at all: install/1 lowers a stricter
  # level to :error and the filter then stops what the application's level would have
  # (uninstall/0 sets it back).

  @filter_id :elixir_scope_crashes
  @labels [
    {:proc_lib, :crash},
    {:gen_server, :terminate},
    {:gen_statem, :terminate},
    {Task.Supervisor, :terminating},
    {:supervisor, :child_terminated},
    {:supervisor, :shutdown_error}
  ]
  # Reports waiting in the collector's mailbox beyond which more are dropped (counted).
  @max_queue 10_000

  @doc false
  def install(collector) do
    %{level: level, filters: filters} = :logger.get_primary_config()
    # The application's level, when ElixirScope must lower it to see :error reports.
    app_level = if :logger.compare_levels(level, :error) == :gt, do: level
    dropped = :counters.new(1, [])
    config = %{collector: collector, app_level: app_level, dropped: dropped}
    filters = List.keydelete(filters, @filter_id, 0)
    # First, ahead of any filter that translates or drops reports.
    :ok =
      :logger.set_primary_config(
        :filters,
        [{@filter_id, {&__MODULE__.filter/2, config}}] ++ filters
      )

    if app_level, do: :ok = :logger.set_primary_config(:level, :error)
    config
  end

  @doc false
  def uninstall(%{app_level: app_level}) do
    :logger.remove_primary_filter(@filter_id)

    if app_level && :logger.get_primary_config().level == :error,
      do: :logger.set_primary_config(:level, app_level)

    :ok
  end

  @doc false
  def dropped(%{dropped: counter}), do: :counters.get(counter, 1)

  @doc false
  # The logger filter, in the logging process.
  def filter(%{msg: {:report, %{label: label} = report}, meta: meta} = event, config)
      when label in @labels do
    case Process.info(config.collector, :message_queue_len) do
      {:message_queue_len, n} when n < @max_queue ->
        send(
          config.collector,
          {:report, label, report, Map.get(meta, :pid, self()), System.monotonic_time()}
        )

      {:message_queue_len, _} ->
        :counters.add(config.dropped, 1, 1)

      nil ->
        :ok
    end

    pass(event, config)
  end

  def filter(event, config), do: pass(event, config)

  defp pass(_event, %{app_level: nil}), do: :ignore

  defp pass(%{level: level}, %{app_level: app_level}),
    do: if(:logger.compare_levels(level, app_level) == :lt, do: :stop, else: :ignore)

  @doc false
  # {the pid the report is about, the source, fields} or nil.
  def parse({:proc_lib, :crash}, %{report: [info | _]}, _logger_pid) when is_list(info) do
    {class, reason, stacktrace} =
      case info[:error_info] do
        {c, r, st} -> {c, r, st}
        _ -> {nil, nil, nil}
      end

    fields = %{
      initial_call: mfa(info[:initial_call]),
      name: name(info[:registered_name]),
      ancestors: info[:ancestors],
      message_queue_len: info[:message_queue_len],
      messages: info[:messages],
      links: info[:links],
      # the exit reason proc_lib makes of what was raised
      reason: exit_reason(class, reason, stacktrace),
      stacktrace: if(class in [:error, :throw], do: stacktrace)
    }

    with_pid(info[:pid], :crash_report, fields)
  end

  def parse({:gen_server, :terminate}, report, logger_pid) do
    fields = %{
      behaviour: :gen_server,
      name: name(report[:name]),
      last_message: report[:last_message],
      state: report[:state],
      client: client(report[:client_info]),
      reason: report[:reason],
      stacktrace: stacktrace_of(report[:reason])
    }

    with_pid(logger_pid, :terminate_report, fields)
  end

  def parse({:gen_statem, :terminate}, report, logger_pid) do
    {class, reason, stacktrace} =
      case report[:reason] do
        {c, r, st} -> {c, r, st}
        other -> {:exit, other, nil}
      end

    fields = %{
      behaviour: :gen_statem,
      name: name(report[:name]),
      last_message: List.first(List.wrap(report[:queue])),
      state: report[:state],
      client: client(report[:client_info]),
      reason: exit_reason(class, reason, stacktrace),
      stacktrace: if(class in [:error, :throw], do: stacktrace)
    }

    with_pid(logger_pid, :terminate_report, fields)
  end

  def parse({Task.Supervisor, :terminating}, %{report: report}, logger_pid) when is_map(report) do
    fields = %{
      behaviour: :task,
      starter: report[:starter],
      function: report[:function],
      args: report[:args],
      reason: report[:reason],
      stacktrace: stacktrace_of(report[:reason])
    }

    with_pid(if(is_pid(report[:name]), do: report[:name], else: logger_pid), :task_report, fields)
  end

  def parse({:supervisor, context}, %{report: report}, logger_pid) when is_list(report) do
    offender = List.wrap(report[:offender])

    fields = %{
      supervisor: logger_pid,
      supervisor_context: context,
      child_id: offender[:id],
      restart: offender[:restart_type],
      reason: report[:reason]
    }

    with_pid(offender[:pid], :supervisor_report, fields)
  end

  def parse(_label, _report, _logger_pid), do: nil

  defp with_pid(pid, source, fields) when is_pid(pid),
    do: {pid, source, :maps.filter(fn _k, v -> v != nil end, fields)}

  defp with_pid(_pid, _source, _fields), do: nil

  # proc_lib's exit reason for what a process raised, threw or exited with.
  defp exit_reason(:exit, reason, _st), do: reason
  defp exit_reason(:error, reason, st), do: {reason, st}
  defp exit_reason(:throw, reason, st), do: {{:nocatch, reason}, st}
  defp exit_reason(_class, _reason, _st), do: nil

  @doc false
  # The stacktrace in an exit reason {exception | term, stacktrace}, or nil.
  def stacktrace_of({_, [{m, _f, _a, _loc} | _] = st}) when is_atom(m), do: st
  def stacktrace_of(_reason), do: nil

  # proc_lib writes the arguments as a list of names: the arity, as everywhere else.
  defp mfa({m, f, args}) when is_list(args), do: {m, f, length(args)}
  defp mfa(other), do: other

  defp name([]), do: nil
  defp name(name) when is_pid(name), do: nil
  defp name(name), do: name

  defp client({pid, _}) when is_pid(pid), do: pid
  defp client(_), do: nil
end
