defmodule ElixirScope.MCP.Tools.Performance do
  @moduledoc false
  # The tools that tell where time goes: the slowest calls, and per-function statistics
  # of a module, both aggregated in C.

  import ElixirScope.MCP.Tools.Common

  alias ElixirScope.Analysis
  alias ElixirScope.MCP.{Args, Text}

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
             ) <> " (##{c.id} #{Text.time(c.timestamp)})", nil}
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
end
