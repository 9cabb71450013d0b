defmodule ElixirScope.CallTreePropertyTest do
  @moduledoc """
  Property test of `ElixirScope.Analysis.call_tree/2` (built in C, c_src/core/call_tree.c and
  history_nif.c) with a seeded random generator of our own (:rand, so it runs on every
  OTP release): random :call, :return and :exception events of a few processes, stored
  by hand — returns that close the innermost call, an outer one or no call at all,
  missing results, durations, classes, reasons and args, calls without an arity (read
  the slow way), timestamps repeated and out of id order — and the tree must be exactly
  the one a plain Elixir build over the stored events gives (the rule of
  `call_tree/2`'s doc: in (timestamp, id) order, an end closes the innermost open call
  when its `:call_id` names it). Each failure names the seed to replay it.
  """
  use ExUnit.Case, async: false

  alias ElixirScope.{Analysis, TraceDB}

  @store :call_tree_property
  @modules [M1, M2]
  @functions [:f, :g]

  setup do
    seed = :erlang.phash2(make_ref())
    :rand.seed(:exsss, {seed, 5, 8})
    pids = for _ <- 1..3, do: spawn(fn -> Process.sleep(:infinity) end)
    start_supervised!({TraceDB, name: @store})
    %{seed: seed, pids: pids}
  end

  defp pick(list), do: Enum.at(list, :rand.uniform(length(list)) - 1)
  defp chance(p), do: :rand.uniform() < p
  defp maybe(map, key, value), do: if(chance(0.8), do: Map.put(map, key, value), else: map)

  defp value, do: pick([:ok, 3, -2, 70_000, 1.5, "text", [1, 2], {:a, [:b]}, %{k: 1}, nil])

  # Stores n random events (ids 1..n: one appender, an empty store); the open calls of
  # each pid, innermost first, decide what ends name.
  defp fill(pids, n) do
    Enum.reduce(1..n, %{}, fn id, open ->
      pid = pick(pids)
      stack = Map.get(open, pid, [])
      ts = pick([id, id, id, div(id, 2), 1000 - id])
      base = %{pid: pid, module: pick(@modules), function: pick(@functions), timestamp: ts}

      {type, event, stack} =
        if stack == [] or chance(0.5) do
          call = if chance(0.9), do: Map.put(base, :arity, pick([0, 1, 2])), else: base
          {:call, maybe(call, :args, pick([[], [1], [value(), value()]])), [id | stack]}
        else
          names = pick([hd(stack), hd(stack), hd(stack), List.last(stack), 999_999, nil])
          stack = if names == hd(stack), do: tl(stack), else: stack
          ends = base |> Map.put(:arity, 1) |> maybe(:duration, :rand.uniform(10_000))
          ends = if names, do: Map.put(ends, :call_id, names), else: ends

          if chance(0.7),
            do: {:return, maybe(ends, :result, value()), stack},
            else:
              {:exception,
               ends |> maybe(:class, pick([:error, :exit, :throw])) |> maybe(:reason, value()),
               stack}
        end

      :ok = TraceDB.store_event(type, event, store: @store)
      Map.put(open, pid, stack)
    end)
  end

  ## the reference: a plain Elixir build over the stored events --------------------------

  defp reference(pid) do
    [:call, :return, :exception]
    |> Enum.flat_map(&TraceDB.query_events(type: &1, pid: pid, store: @store))
    |> Enum.sort_by(&{&1.timestamp, &1.id})
    |> Enum.reduce({[], []}, fn
      %{type: :call} = call, {roots, stack} ->
        {roots, [open_node(call) | stack]}

      %{call_id: id} = done, {roots, [%{call_id: id} = open | rest]} ->
        close(finish(open, done), roots, rest)

      _unmatched, acc ->
        acc
    end)
    |> unwind()
  end

  defp unwind({roots, []}), do: Enum.reverse(roots)
  defp unwind({roots, [open | rest]}), do: unwind(close(open, roots, rest))

  defp close(node, roots, [parent | rest]),
    do: {roots, [%{parent | children: parent.children ++ [node]} | rest]}

  defp close(node, roots, []), do: {[node | roots], []}

  defp open_node(call) do
    call
    |> Map.take([:pid, :module, :function, :arity, :args, :timestamp])
    |> Map.merge(%{
      call_id: call.id,
      arity: call[:arity],
      args: call[:args],
      result: :running,
      duration: nil,
      children: []
    })
  end

  defp finish(node, %{type: :return} = ret),
    do: %{node | result: ret[:result], duration: ret[:duration]}

  defp finish(node, exc) do
    %{node | result: :exception, duration: exc[:duration]}
    |> Map.merge(Map.take(exc, [:class, :reason]))
  end

  ## the property ---------------------------------------------------------------------

  test "call trees are the trees a plain Elixir build gives", %{seed: seed, pids: pids} do
    fill(pids, 400)

    for pid <- pids do
      assert Analysis.call_tree(pid, store: @store) == reference(pid),
             "seed #{seed}: the tree of #{inspect(pid)} differs"
    end
  end
end
