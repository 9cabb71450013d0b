defmodule ElixirScope.MCP.Tools.History do
  @moduledoc false
  # The tools that tell what happened: a GenServer's states, the messages between two
  # processes, a module's calls, one process's path, the events of a time range, a state
  # at a moment, and how a state evolves. Every listing is a query of the C store paged
  # with its cursors (Common.event_page/4).

  import ElixirScope.MCP.Tools.Common

  alias ElixirScope.{TimeTravel, TraceDB}
  alias ElixirScope.MCP.{Args, Text, Tools}

  @doc false
  def state_timeline(args, config) do
    pid = Args.pid!(args, "pid_string")

    event_page([type: :state, pid: pid], window(args), config,
      diff: true,
      heading: "States of #{Text.pid(pid)}, oldest first:",
      line: &state_lines/1,
      none: fn -> nothing_recorded(pid, "state changes", :genserver) end
    )
  end

  defp state_lines(%{diff: nil} = e),
    do:
      "##{e.id} #{Text.time(e.timestamp)} #{e[:callback]} #{Text.term(e[:cause], 200)}\n  state: #{Text.term(e[:state], 1500)}"

  defp state_lines(e) do
    changes = Enum.map_join(e.diff, "\n", &("  " <> diff_line(&1)))
    "##{e.id} #{Text.time(e.timestamp)} #{e[:callback]} #{Text.term(e[:cause], 200)}\n#{changes}"
  end

  defp diff_line({path, :changed, old, new}),
    do: "#{path_text(path)}: #{Text.term(old, 200)} → #{Text.term(new, 200)}"

  defp diff_line({path, :added, _old, new}),
    do: "#{path_text(path)}: added #{Text.term(new, 200)}"

  defp diff_line({path, :removed, old, _new}),
    do: "#{path_text(path)}: removed #{Text.term(old, 200)}"

  @doc false
  def message_flow(args, config) do
    a = Args.pid!(args, "from_pid")
    b = Args.pid!(args, "to_pid")

    event_page([type: :send, between: {a, b}], window(args), config,
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

    event_page([module: module], window(args), config,
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
  def execution_path(args, config) do
    pid = Args.pid!(args, "pid_string")

    event_page([pid: pid], window(args), config,
      heading: "What #{Text.pid(pid)} did, in order:",
      none: fn -> nothing_recorded(pid, "events", :process) end
    )
  end

  # States a state analysis reads at most.
  @analysed 5_000

  @doc false
  def analyze_state_changes(args, config) do
    pid = Args.pid!(args, "pid_string")
    # Counted in C over the first states: each diffed against the one before.
    stats = TraceDB.state_stats([type: :state, pid: pid, limit: @analysed], TraceDB)

    if stats.states == 0 do
      nothing_recorded(pid, "state changes", :genserver)
    else
      fields =
        stats.fields
        |> Enum.map(fn {path, n} -> {path_text(path), n} end)
        |> Enum.sort_by(fn {path, n} -> {-n, path} end)
        |> Enum.map_join(", ", fn {path, n} -> "#{path} ×#{n}" end)

      causes =
        stats.causes
        |> Enum.sort_by(fn {key, n} -> {-n, inspect(key)} end)
        |> Enum.map_join(", ", fn {{callback, kind}, n} ->
          "#{callback} #{kind_text(kind)} ×#{n}"
        end)

      heading =
        "#{Text.pid(pid)}: #{stats.states} states recorded#{if stats.states == @analysed, do: " (first #{@analysed} analysed)"}, " <>
          "#{stats.changes} changes.\nFields changed: #{blank(fields)}\nChanged by: #{blank(causes)}\n" <>
          "States, oldest first:"

      event_page([type: :state, pid: pid], window(args), config,
        diff: true,
        heading: heading,
        line: &state_lines/1
      )
    end
  end

  # The shape of a message, to group causes: {:push, _} -> ":push", :tick -> ":tick".
  defp kind_text(nil), do: "(other)"
  defp kind_text(atom), do: inspect(atom)

  defp blank(""), do: "none"
  defp blank(text), do: text

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
        "State of #{Text.pid(pid)} at #{Text.time(timestamp)}:\n#{Text.term(state, 50_000)}"

      {:error, :not_found} ->
        if TimeTravel.state_timeline(pid, limit: 1) == [],
          do: nothing_recorded(pid, "state changes", :genserver),
          else:
            {:error,
             "No state of #{Text.pid(pid)} was recorded at or before #{Text.time(timestamp)}: its first " <>
               "recorded state is later (elixir_scope_get_state_timeline shows when)."}
    end
  end

  defp event_timestamp!(id) do
    case TraceDB.get(id) do
      %{timestamp: timestamp} -> timestamp
      nil -> Args.fail("no event ##{id} in the recording (it may have been pruned)")
    end
  end

  @doc false
  def events_between(args, config) do
    t1 = Args.timestamp(args, "start_timestamp")
    t2 = Args.timestamp(args, "end_timestamp")
    types = Map.new(Tools.event_types(), &{Atom.to_string(&1), &1})

    spec =
      [
        timestamp_start: t1,
        timestamp_end: t2,
        pid: if(Map.has_key?(args, "pid_string"), do: Args.pid!(args, "pid_string")),
        type: Args.choice(args, "type", types, nil)
      ]
      |> Enum.reject(fn {_, v} -> v == nil end)

    range =
      "from #{if t1, do: Text.time(t1), else: "the start"} to #{if t2, do: Text.time(t2), else: "now"}"

    event_page(spec, window(args), config,
      heading: "Events #{range}, oldest first:",
      none: fn ->
        {:error,
         "No events recorded in that range. elixir_scope_status shows the current time and " <>
           "what is traced."}
      end
    )
  end
end
