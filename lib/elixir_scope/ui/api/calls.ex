defmodule ElixirScope.UI.API.Calls do
  @moduledoc false
  # GET /api/calls, /api/call, /api/modules, /api/performance and /api/slowest: the
  # calls view — a process's call tree over a window (drawn as an icicle), one call
  # whole, and per-function latency.

  alias ElixirScope.UI.API.Shape
  alias ElixirScope.UI.{Params, Source}

  @doc false
  # The call tree of `pid` over [from, to]; without `from`, over its latest `limit`
  # calls (before `to`, when given). A window holding more than `limit` calls is cut
  # to its first `limit` (`more` says so).
  def tree(params, _ctx) do
    pid = Params.pid!(params, "pid")
    limit = Params.integer(params, "limit", 300, 1, 2_000)
    from = Params.timestamp(params, "from")
    to = Params.timestamp(params, "to")

    {from, to, more} =
      if from == nil do
        before = if to, do: [timestamp_end: to], else: []

        case Source.events([type: :call, pid: pid, order: :desc, limit: limit + 1] ++ before) do
          [] -> {nil, to, false}
          calls -> {List.last(Enum.take(calls, limit)).timestamp, to, length(calls) > limit}
        end
      else
        cut(pid, from, to, limit)
      end

    window = Enum.reject([timestamp_start: from, timestamp_end: to], &(elem(&1, 1) == nil))
    roots = if from, do: Source.call_tree(pid, window), else: []

    %{
      "pid" => Shape.pid(pid),
      "from" => Shape.ts(from),
      "to" => Shape.ts(to),
      # without `from`: earlier calls left out; with it: later ones
      "more" => more,
      "roots" => Enum.map(roots, &tree_node/1)
    }
  end

  # [from, to] narrowed so that it holds at most `limit` calls.
  defp cut(pid, from, to, limit) do
    window = Enum.reject([timestamp_start: from, timestamp_end: to], &(elem(&1, 1) == nil))
    ids = Source.ids([type: :call, pid: pid, limit: limit + 1] ++ window)

    if length(ids) > limit do
      last = Source.event(List.last(ids))
      {from, last.timestamp - 1, true}
    else
      {from, to, false}
    end
  end

  defp tree_node(n) do
    %{
      "id" => n.call_id,
      "mfa" => mfa(n.module, n.function, n.arity),
      "ts" => Shape.ts(n.timestamp),
      "duration" => Shape.duration(n.duration),
      "args" => Shape.text(n.args, 120),
      "result" => result_text(n),
      "exception" => n.result == :exception,
      "children" => Enum.map(n.children, &tree_node/1)
    }
  end

  defp result_text(%{result: :running}), do: "(running)"

  defp result_text(%{result: :exception} = n),
    do: "#{n[:class]} " <> Shape.text(n[:reason], 120)

  defp result_text(n), do: Shape.text(n.result, 120)

  defp mfa(m, f, a), do: "#{inspect(m)}.#{f}/#{a}"

  @doc false
  # One call whole: arguments, and its result or exception, with the nested calls'
  # count. `to` (the call's end, when the page knows it) bounds the search.
  def call(params, _ctx) do
    id = Params.id!(params, "id")
    to = Params.timestamp(params, "to")

    case Source.event(id) do
      %{type: :call} = call ->
        tree = Source.call_subtree(id, if(to, do: [timestamp_end: to], else: []))

        %{
          "id" => id,
          "pid" => Shape.pid(call.pid),
          "mfa" => mfa(call.module, call.function, call.arity),
          "ts" => Shape.ts(call.timestamp),
          "args" => Shape.term(call[:args], 50_000),
          "duration" => tree && Shape.duration(tree.duration),
          "outcome" => tree && outcome(tree),
          "calls_inside" => tree && count(tree.children)
        }

      _ ->
        {404, %{"error" => "no call event ##{id} in the recording"}}
    end
  end

  defp outcome(%{result: :running}), do: %{"running" => true}

  defp outcome(%{result: :exception} = n),
    do: %{"class" => Shape.atom(n[:class]), "reason" => Shape.term(n[:reason], 50_000)}

  defp outcome(n), do: %{"result" => Shape.term(n.result, 50_000)}

  defp count(children), do: Enum.reduce(children, 0, &(&2 + 1 + count(&1.children)))

  @doc false
  # Modules with recorded calls: the traced ones, and those among the slowest calls.
  def modules(_params, _ctx) do
    traced = (Source.tracing() || %{modules: []}).modules
    seen = Source.slowest(limit: 500, module: nil) |> Enum.map(& &1[:module])

    %{
      "modules" =>
        (traced ++ seen)
        |> Enum.filter(&is_atom/1)
        |> Enum.uniq()
        |> Enum.map(&Shape.atom/1)
        |> Enum.sort()
    }
  end

  @doc false
  def performance(params, _ctx) do
    module = Params.module!(params, "module")

    %{
      "module" => Shape.atom(module),
      "functions" =>
        for r <- Source.performance(module) do
          %{
            "function" => "#{r.function}/#{r.arity}",
            "calls" => r.calls,
            "returns" => r.returns,
            "exceptions" => r.exceptions,
            "total" => Shape.duration(r.total),
            "mean" => Shape.duration(r.mean && round(r.mean)),
            "p50" => Shape.duration(r.p50),
            "p90" => Shape.duration(r.p90),
            "p99" => Shape.duration(r.p99),
            "max" => Shape.duration(r.max)
          }
        end
    }
  end

  @doc false
  def slowest(params, _ctx) do
    module = if params["module"] not in [nil, ""], do: Params.module!(params, "module")
    limit = Params.integer(params, "limit", 20, 1, 200)

    %{
      "calls" =>
        for c <- Source.slowest(limit: limit, module: module) do
          %{
            "id" => c[:call_id],
            "return_id" => c.id,
            "pid" => Shape.pid(c[:pid]),
            "mfa" => mfa(c[:module], c[:function], c[:arity]),
            "ts" => Shape.ts(c.timestamp),
            "duration" => Shape.duration(c[:duration]),
            "args" => Shape.text(c[:args], 120),
            "result" =>
              if(c.type == :exception,
                do: "#{c[:class]} " <> Shape.text(c[:reason], 120),
                else: Shape.text(c[:result], 120)
              )
          }
        end
    }
  end
end
