defmodule ElixirScope.MCP.Tools.Control do
  @moduledoc false
  # The tools about tracing itself: what is traced and how much is stored, starting to
  # trace a module or a process, and stopping.

  alias ElixirScope.MCP.{Args, Text}

  @doc false
  # ElixirScope.status/0, told.
  def status(_args, _config) do
    status = ElixirScope.status()
    info = status.tracing
    stats = status.store
    now = status.now

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

    crashes =
      case status.crashes do
        nil ->
          []

        c ->
          [
            "Crashes: #{c.recorded} process ends recorded from every source (traced or not)" <>
              if(c.reports_dropped > 0,
                do: "; #{c.reports_dropped} reports dropped in a flood",
                else: ""
              )
          ]
      end

    monitor =
      case status.system_monitor do
        nil -> []
        %{active: true, options: o} -> ["System monitor: #{Text.term(o, 200)}"]
        %{held_by: holder} -> ["System monitor: held by #{Text.term(holder, 80)}, left to it"]
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
      "crashesRecorded" => status.crashes && status.crashes.recorded,
      "systemMonitor" => status.system_monitor != nil and status.system_monitor.active,
      "now" => Integer.to_string(now)
    }

    {Enum.join([tracing, store] ++ crashes ++ monitor ++ ["Now: #{Text.time(now)}"], "\n"),
     structured}
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
end
