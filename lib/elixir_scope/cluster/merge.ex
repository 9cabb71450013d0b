defmodule ElixirScope.Cluster.Merge do
  @moduledoc false
  # Merges per-node pages (each sorted in its node's own {timestamp, id} order) into one
  # page on the cluster's time line (ElixirScope.Cluster.Clock), causally corrected: a
  # matched receive (ElixirScope.Cluster.Matching) is placed after its send even when the
  # skew estimate says otherwise, and each node's events keep their own order (so a
  # cursor can hold a position per node).
  #
  # Events are taken in a k-way walk over the nodes' queues: the next is the head with
  # the earliest cluster time whose send, if it is a matched receive, was taken already;
  # its corrected time is the latest of its own, its node's previous one and its send's
  # plus one. Sorting by corrected time (walk order breaking ties) then keeps both rules.

  alias ElixirScope.Cluster.Matching

  # pages: %{node => {events with :node and :cluster_time, truncated?}}. Returns
  # {merged events, each with :cluster_time corrected, at most `limit`; positions
  # %{node => last event taken}; more?}.
  def merge(pages, limit) do
    all = pages |> Map.values() |> Enum.flat_map(&elem(&1, 0))
    matches = all |> Enum.sort_by(&{&1.cluster_time || 0, &1.node, &1.id}) |> Matching.match()
    corrected = correct(pages, matches)

    # A node whose page was cut may have events earlier (on the cluster's time line)
    # than another node's later ones: only what precedes the end of every cut page is
    # final.
    bound =
      pages
      |> Enum.filter(fn {_node, {events, truncated}} -> truncated and events != [] end)
      |> Enum.map(fn {node, {events, _}} -> time(corrected, node, List.last(events).id) end)
      |> Enum.min(fn -> nil end)

    received_by = Map.new(matches, fn {receive, send} -> {send, receive} end)

    taken =
      all
      |> Enum.sort_by(&Map.fetch!(corrected, {&1.node, &1.id}))
      |> Enum.take_while(&(bound == nil or time(corrected, &1.node, &1.id) <= bound))
      |> Enum.take(limit)

    events =
      Enum.map(taken, fn e ->
        e = %{e | cluster_time: time(corrected, e.node, e.id)}

        case e.type do
          :receive -> Map.put(e, :sent_by, Map.get(matches, {e.node, e.id}))
          :send -> Map.put(e, :received_by, Map.get(received_by, {e.node, e.id}))
          _ -> e
        end
      end)

    positions =
      Enum.reduce(taken, %{}, fn e, acc -> Map.put(acc, e.node, {e.timestamp, e.id}) end)

    more = length(taken) < length(all) or Enum.any?(pages, fn {_, {_, t}} -> t end)
    {events, positions, more}
  end

  defp time(corrected, node, id), do: corrected |> Map.fetch!({node, id}) |> elem(0)

  # %{{node, id} => {corrected time, walk order}}.
  defp correct(pages, matches) do
    queues = Map.new(pages, fn {node, {events, _}} -> {node, events} end)
    walk(queues, matches, %{}, %{}, 0)
  end

  defp walk(queues, matches, done, last, n) do
    heads = for {node, [e | _]} <- queues, do: {node, e}

    if heads == [] do
      done
    else
      ready = Enum.filter(heads, fn {_, e} -> ready?(e, matches, done) end)
      # Matches that would wait on each other cannot all be right: the earliest
      # receive goes first, without its match.
      {node, e} = Enum.min_by(if(ready == [], do: heads, else: ready), &order_key/1)

      send_time =
        case Map.get(matches, {node, e.id}) do
          nil -> nil
          send -> with {t, _} <- Map.get(done, send), do: t + 1
        end

      time =
        [e.cluster_time, Map.get(last, node), send_time]
        |> Enum.reject(&is_nil/1)
        |> Enum.max(fn -> e.timestamp end)

      walk(
        Map.update!(queues, node, &tl/1),
        matches,
        Map.put(done, {node, e.id}, {time, n}),
        Map.put(last, node, time),
        n + 1
      )
    end
  end

  defp order_key({node, e}), do: {e.cluster_time || e.timestamp, node, e.id}

  defp ready?(e, matches, done) do
    case Map.get(matches, {e.node, e.id}) do
      nil -> true
      send -> Map.has_key?(done, send)
    end
  end
end
