defmodule ElixirScope.MCP.Tools.Processes do
  @moduledoc false
  # The tools that tell which processes there are and how they are or were: the live
  # supervision tree and process list, processes by module or name, one process's
  # info, the processes alive at a moment, mailboxes, and recent crashes.

  import ElixirScope.MCP.Tools.Common

  alias ElixirScope.{Crashes, Processes, Query, SupervisionTree}
  alias ElixirScope.MCP.{Args, Text}

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
            do:
              " from #{Text.time(h.first)} to #{Text.time(h.last)}: #{Text.term(h.by_type, 300)}",
            else: " (trace it with elixir_scope_trace_process)"
          )

      state =
        case info.last_state do
          nil -> []
          e -> ["Last state (##{e.id} #{Text.time(e.timestamp)}): #{Text.term(e[:state], 3000)}"]
        end

      crash =
        case info.crash do
          nil -> []
          e -> ["Crashed (##{e.id} #{Text.time(e.timestamp)}): #{Text.term(e[:reason], 2000)}"]
        end

      Text.fit_text(
        Enum.join(["#{Text.pid(pid)}", live, history] ++ state ++ crash, "\n"),
        config
      )
    end
  end

  @doc false
  def system_snapshot(args, config) do
    timestamp = Args.timestamp(args, "timestamp") || System.monotonic_time()
    limit = Args.integer(args, "limit", 100, 1, 500)
    after_pid = snapshot_cursor(args)
    # One more than the page says whether another follows.
    entries = Processes.system_snapshot_at(timestamp, limit: limit + 1, after: after_pid)

    lines =
      for p <- Enum.take(entries, limit) do
        {"#{Text.pid(p.pid)}" <>
           if(p.name, do: " #{inspect(p.name)}", else: "") <>
           if(p.supervisor, do: " supervisor=#{Text.pid(p.supervisor)}", else: "") <>
           if(p.links != [], do: " links=#{Text.term(p.links, 200)}", else: "") <>
           if(p.state != nil, do: " state=#{Text.term(p.state, 300)}", else: ""),
         "p" <> pid_text(p.pid)}
      end

    if lines == [] and after_pid == nil do
      {:error,
       "No process is recorded alive at #{Text.time(timestamp)}: lifecycle events are recorded " <>
         "for traced processes (setup with trace_all: true records all)."}
    else
      more = if length(entries) > limit, do: lines |> List.last() |> elem(1)

      Text.page(
        "Processes alive at #{Text.time(timestamp)} (recorded), by pid (pass the same timestamp " <>
          "with the cursor to continue):",
        lines,
        more,
        config
      )
    end
  end

  # A snapshot continues after a pid: "p0.123.0".
  defp pid_text(pid),
    do:
      pid
      |> :erlang.pid_to_list()
      |> to_string()
      |> String.trim_leading("<")
      |> String.trim_trailing(">")

  defp snapshot_cursor(args) do
    case Map.get(args, "cursor") do
      nil -> nil
      "p" <> text -> Args.pid!(%{"cursor" => "<" <> text <> ">"}, "cursor")
      other -> Args.fail("cursor #{inspect(other)} does not continue this listing")
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

  @doc false
  # The same list as ElixirScope.recent_crashes/1 (ElixirScope.Crashes.page/1).
  def recent_crashes(args, config) do
    limit = Args.integer(args, "limit", 5, 1, 50)
    {_limit, cursor} = window(args)
    {crashes, next} = Crashes.page(limit: limit, before: cursor)

    if crashes == [] and cursor == nil do
      {:error,
       "No crash recorded. Processes that end abnormally are recorded whether traced or " <>
         "not (from the runtime's crash reports; a plain spawn's end only with lifecycle: :all " <>
         "in setup), and Phoenix request exceptions with phoenix: true."}
    else
      lines = Enum.map(crashes, &{crash_lines(&1), Query.cursor(&1.event)})
      Text.page("Crashes, newest first:", lines, next, config)
    end
  end

  defp crash_lines(%{kind: :request} = c) do
    Enum.join(
      [
        "##{c.id} #{Text.time(c.timestamp)} #{Text.pid(c.pid)} request #{c.method} #{c.path} raised: " <>
          Text.term(c.reason, 1500)
        | stacktrace_lines(c.stacktrace)
      ],
      "\n"
    )
  end

  defp crash_lines(c) do
    e = c.event

    about =
      [
        e[:name] && "name #{inspect(e[:name])}",
        e[:behaviour] && "#{e[:behaviour]}",
        e[:initial_call] && "started as #{Text.term(e[:initial_call], 120)}",
        e[:supervisor] &&
          "supervisor #{Text.pid(e[:supervisor])} (child #{Text.term(e[:child_id], 80)}, " <>
            "#{e[:restart]}, #{e[:supervisor_context]})"
      ]
      |> Enum.filter(& &1)

    state =
      case c.last_state do
        {:ok, state} -> "  last state: #{Text.term(state, 1000)}"
        :not_recorded -> "  last state: not recorded"
      end

    last_message =
      if Map.has_key?(e, :last_message),
        do: ["  last message: " <> Text.term(e[:last_message], 300)],
        else: []

    messages =
      Enum.map(
        c.last_messages,
        &"    ##{&1.id} #{Text.time(&1.timestamp)} #{Text.term(&1[:message], 300)}"
      )

    Enum.join(
      [
        "##{c.id} #{Text.time(c.timestamp)} #{Text.pid(c.pid)} crashed: #{Text.term(c.reason, 1500)}"
        | if(about == [], do: [], else: ["  " <> Enum.join(about, "; ")])
      ] ++
        stacktrace_lines(c.stacktrace) ++
        [state] ++
        last_message ++ ["  last messages received:" | blank_list(messages, "    none recorded")],
      "\n"
    )
  end

  defp stacktrace_lines(nil), do: []

  defp stacktrace_lines(stacktrace) when is_list(stacktrace) do
    text =
      try do
        Exception.format_stacktrace(stacktrace)
      rescue
        _ -> Text.term(stacktrace, 1500)
      end

    ["  stacktrace:" | text |> String.split("\n", trim: true) |> Enum.take(12)]
  end

  defp stacktrace_lines(other), do: ["  stacktrace: " <> Text.term(other, 500)]
end
