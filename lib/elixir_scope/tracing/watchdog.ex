defmodule ElixirScope.Tracing.Watchdog do
  @moduledoc false
  # OTP < 27 only: whether ElixirScope's flags and patterns are still in place. Other
  # tools share the runtime's one tracing state there, and their cleanup removes what
  # ElixirScope set too: recon_trace's clear (run by every recon_trace:calls/3), redbug's
  # stop and :dbg.stop_clear/0 call erlang:trace(all, false, [all]) and clear every
  # pattern. Run by ElixirScope.Tracing on every tick; when something is gone it records
  # one :governor event (reason :tracing_removed), logs one line, keeps the report that
  # tracing_info/0 and the MCP status tool show, and says what to re-arm (nothing with
  # `rearm: false`): only what is still free — a function whose pattern another tool set
  # since, or a process another tool now traces, is left to it and reported.
  #
  # A pattern is checked on one function per pattern (a clear removes them all); a
  # module whose check fails is then gone through function by function.

  require Logger

  alias ElixirScope.TraceDB

  @shown 10

  @doc false
  def new(rearm), do: %{rearm: rearm, removals: 0, last: nil, seen: nil}

  @doc false
  # What tracing_info/0 reports.
  def report(wd), do: %{rearm: wd.rearm, removals: wd.removals, last: wd.last}

  @doc false
  # `ctx`: backend and handle, `patterns` (module => [{pattern, match_spec}]), `metas`
  # ([{mfa, match_spec}] of meta patterns),
  # `expected_ms` (mfa -> the match spec ElixirScope gives it, or nil), `all_flags`
  # (flags of every process, [] if none) and the `pids` traced one by one.
  # Returns the new watchdog and what to re-arm.
  def check(wd, ctx) do
    {lost_new, taken_new} = check_new(ctx)
    {lost_pids, taken_pids} = check_pids(ctx)
    {lost_fns, taken_fns} = check_patterns(ctx)
    {lost_metas, taken_metas} = check_metas(ctx)
    lost_fns = lost_fns ++ lost_metas
    taken_fns = taken_fns ++ taken_metas
    seen = {lost_new, lost_pids, lost_fns, taken_new, taken_pids, taken_fns}

    cond do
      lost_new == [] and lost_pids == [] and lost_fns == [] and taken_new == [] and
        taken_pids == [] and taken_fns == [] ->
        {%{wd | seen: nil}, []}

      seen == wd.seen ->
        # the same loss as last tick (rearm: false): told already
        {wd, []}

      true ->
        last = %{
          at: System.monotonic_time(),
          new_processes: lost_new != [],
          processes: length(lost_pids),
          patterns: length(lost_fns),
          taken: Enum.take(taken_new ++ taken_pids ++ Enum.map(taken_fns, &elem(&1, 0)), @shown),
          rearmed: wd.rearm
        }

        record(last)
        actions = if wd.rearm, do: lost_new ++ lost_pids ++ lost_fns, else: []
        {%{wd | removals: wd.removals + 1, last: last, seen: seen}, actions}
    end
  end

  # New processes: all of them are ours (flags of every process) unless another tool
  # took :new since; then only the existing free ones are re-armed.
  defp check_new(%{all_flags: []}), do: {[], []}

  defp check_new(ctx) do
    case ctx.backend.holder(ctx.handle, :new) do
      :ours -> {[], []}
      :free -> {[{:all_processes, :all, ctx.all_flags}], []}
      {:other, _} = other -> {[{:all_processes, :existing, ctx.all_flags}], [{:new, other}]}
    end
  end

  defp check_pids(ctx) do
    Enum.reduce(ctx.pids, {[], []}, fn pid, {lost, taken} ->
      case ctx.backend.holder(ctx.handle, pid) do
        :free -> {[{:process, pid} | lost], taken}
        {:other, _} -> {lost, [pid | taken]}
        _ours_or_dead -> {lost, taken}
      end
    end)
  end

  defp check_patterns(ctx) do
    Enum.reduce(ctx.patterns, {[], []}, fn {m, entries}, acc ->
      if in_place?(ctx, m, entries), do: acc, else: scan(ctx, m, acc)
    end)
  end

  @doc false
  # Whether a module's patterns are in place, checked on one function per pattern.
  def in_place?(ctx, m, entries), do: Enum.all?(entries, &entry_in_place?(ctx, m, &1))

  defp entry_in_place?(ctx, m, {{m, f, a}, _ms}) when f != :_, do: function_ok?(ctx, {m, f, a})

  defp entry_in_place?(ctx, m, {{m, :_, :_}, _ms}) do
    case functions(m) do
      [{f, a} | _] -> function_ok?(ctx, {m, f, a})
      [] -> true
    end
  end

  # (a pattern may name a function the module does not have: a GenServer callback it
  # does not define)
  defp function_ok?(ctx, mfa),
    do: ctx.backend.match_spec(ctx.handle, mfa) in [ctx.expected_ms.(mfa), :undefined]

  # Function by function: a missing pattern is re-armed, another tool's left alone.
  defp scan(ctx, m, acc) do
    Enum.reduce(functions(m), acc, fn {f, a}, {lost, taken} = acc ->
      mfa = {m, f, a}

      case {ctx.expected_ms.(mfa), ctx.backend.match_spec(ctx.handle, mfa)} do
        {nil, _} -> acc
        {ms, ms} -> acc
        {ms, false} -> {[{:function, mfa, ms} | lost], taken}
        {_ms, _other} -> {lost, [{mfa, :other_pattern} | taken]}
      end
    end)
  end

  # Meta patterns (ElixirScope.Tracing's meta-traced functions): each one checked.
  defp check_metas(ctx) do
    Enum.reduce(Map.get(ctx, :metas, []), {[], []}, fn {mfa, ms}, {lost, taken} = acc ->
      case ctx.backend.meta_spec(ctx.handle, mfa) do
        ^ms -> acc
        false -> {[{:meta, mfa, ms} | lost], taken}
        _other -> {lost, [{mfa, :other_meta_pattern} | taken]}
      end
    end)
  end

  # The functions a module-wide pattern covers (module_info/0,1 are never traced).
  defp functions(m) do
    m.module_info(:functions) |> Enum.reject(&match?({:module_info, _}, &1))
  rescue
    UndefinedFunctionError -> []
  end

  defp record(last) do
    TraceDB.store_event(:governor, Map.put(last, :reason, :tracing_removed) |> Map.delete(:at))

    what =
      [
        last.new_processes && "the flags of new processes",
        last.processes > 0 && "the flags of #{last.processes} traced processes",
        last.patterns > 0 && "#{last.patterns} trace patterns"
      ]
      |> Enum.filter(& &1)

    removed =
      if what == [],
        do: "another tool took over part of its tracing",
        else: "another tool removed part of its tracing (#{Enum.join(what, ", ")})"

    taken = if last.taken == [], do: "", else: "; left to the other tool: #{inspect(last.taken)}"
    done = if last.rearmed, do: "re-armed what is still free", else: "not re-armed (rearm: false)"
    Logger.warning("ElixirScope: " <> removed <> "; " <> done <> taken)
  end
end
