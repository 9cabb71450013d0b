# ElixirScope cluster benchmark (issue 17): five :peer nodes on this machine, each with
# its own store, queried from this node.
#
#   MIX_ENV=prod mix run bench/cluster_bench.exs
#
#   1. merged pages: each node holds 100,000 events; 500-event merged pages (the
#      cursor walks the whole listing), p50 and p99 of the time of a page, against one
#      node's own pages over :erpc in the same run;
#   2. a hung node (SIGSTOP): the time until the partial result, with its timeout;
#   3. traced cross-node traffic (GenServer calls, replies and plain messages between
#      the five nodes) listed through merged pages with ±50 ms of skew injected into the
#      skew estimates: send/receive inversions in the whole stream (matched globally);
#   4. a coordinator (a peer) set up two members, then died (SIGKILL) or hung
#      (SIGSTOP): the time until their recordings stopped (polled every 5 ms).
#
# Progress goes to stderr, the results to stdout.

Code.require_file("../test/support/cluster_peers.ex", __DIR__)

defmodule Bench.Cluster do
  @moduledoc false
  alias ElixirScope.Cluster
  alias ElixirScope.Test.ClusterPeers

  @nodes 5
  @events 100_000
  @page 500

  def run do
    ClusterPeers.epmd!()
    # As in the peers (ElixirScope.Test.ClusterPeers): a hung node must not make
    # `global` disconnect healthy ones.
    Application.put_env(:kernel, :prevent_overlapping_partitions, false)
    {:ok, _} = Node.start(:"cluster_bench_#{System.pid()}@127.0.0.1", :longnames)
    Node.set_cookie(:elixir_scope_cluster_test)
    # The bench's own helpers go to the peers as a binary (ElixirScope is their own).
    [{mod, bin}] = Code.compile_file(Path.join(__DIR__, "../test/support/cluster_app.ex"))

    progress("starting #{@nodes} peers")
    peers = for i <- 1..@nodes, do: ClusterPeers.start!("bench#{i}")
    nodes = Enum.map(peers, &elem(&1, 1))
    for n <- nodes, do: true = Node.connect(n)

    for n <- nodes,
        do: {:module, ^mod} = :erpc.call(n, :code, :load_binary, [mod, ~c"cluster_app.ex", bin])

    :ok = ElixirScope.setup(tracing_level: :full, max_events: 2_000_000, nodes: nodes)
    pages(nodes, mod)
    partial(peers, nodes)
    inversions(nodes, mod)
    ElixirScope.stop()
    Enum.each(peers, &ClusterPeers.stop/1)
    coordinator_death()
  end

  defp pages(nodes, mod) do
    progress("filling #{@events} events on each node")

    nodes
    |> Enum.map(&Task.async(fn -> :erpc.call(&1, mod, :fill, [@events], 600_000) end))
    |> Enum.each(&Task.await(&1, :infinity))

    # Warm-up, then the whole listing page by page, twice.
    _ = Cluster.page([type: :bench, limit: @page], nodes: nodes)

    times =
      for _round <- 1..2, reduce: [] do
        acc -> walk(nodes, nil, acc, 0)
      end

    sorted = Enum.sort(times)
    {p50, p99} = {pct(sorted, 0.5), pct(sorted, 0.99)}

    # The baseline, same run: one node's own 500-event pages (ElixirScope.Query.page/1)
    # asked over :erpc, no merge.
    single = one_node(hd(nodes), nil, []) |> Enum.sort()

    IO.puts("""
    ## Merged pages: #{@nodes} nodes x #{@events} events, #{@page}-event pages
    pages timed: #{length(times)} (the whole listing, twice)
    merged:   p50 #{ms(p50)} ms (target < 20), p99 #{ms(p99)} ms (target < 100), max #{ms(List.last(sorted))} ms
    one node: p50 #{ms(pct(single, 0.5))} ms, p99 #{ms(pct(single, 0.99))} ms over :erpc (#{length(single)} pages)
    merged / one node at p50: #{Float.round(p50 / pct(single, 0.5), 1)}x
    """)
  end

  defp one_node(node, cursor, acc) do
    t0 = System.monotonic_time()

    {_events, next} =
      :erpc.call(node, ElixirScope.Query, :page, [[type: :bench, limit: @page, after: cursor]])

    acc = [System.monotonic_time() - t0 | acc]
    if next, do: one_node(node, next, acc), else: acc
  end

  defp walk(nodes, cursor, acc, seen) do
    t0 = System.monotonic_time()
    result = Cluster.page([type: :bench, limit: @page, after: cursor], nodes: nodes)
    t = System.monotonic_time() - t0
    [] = result.missing
    seen = seen + length(result.events)

    cond do
      result.cursor -> walk(nodes, result.cursor, [t | acc], seen)
      seen == @nodes * @events -> [t | acc]
      true -> raise "the listing gave #{seen} events, not #{@nodes * @events}"
    end
  end

  defp partial(peers, nodes) do
    {_, hung} = List.last(peers)
    os = ClusterPeers.os_pid(List.last(peers))
    ClusterPeers.signal(os, "STOP")

    lines =
      for timeout <- [500, 2_000] do
        t0 = System.monotonic_time()
        result = Cluster.page([type: :bench, limit: @page], nodes: nodes, timeout: timeout)
        t = System.monotonic_time() - t0
        [{^hung, :timeout}] = result.missing

        "timeout #{timeout} ms: partial result after #{ms(t)} ms (target <= #{timeout + 100}), #{length(result.events)} events, missing #{inspect(Enum.map(result.missing, &elem(&1, 1)))}"
      end

    ClusterPeers.signal(os, "CONT")
    # Its recording may have stopped meanwhile (no heartbeat reached it for longer than
    # its watchdog waits, and its probe of this node went unanswered while it was
    # frozen): set up again (or kept, when it still runs) for the next part.
    Process.sleep(1_000)

    {:ok, _} =
      :erpc.call(hung, ElixirScope.Cluster.Remote, :start, [
        node(),
        [tracing_level: :full],
        ElixirScope.version()
      ])

    IO.puts("## One node hung (SIGSTOP)\n" <> Enum.join(lines, "\n") <> "\n")
  end

  defp inversions(nodes, mod) do
    progress("traced cross-node traffic")
    ElixirScope.TraceDB.clear()
    for n <- nodes, do: :erpc.call(n, ElixirScope.TraceDB, :clear, [])
    servers = for n <- nodes, do: :erpc.call(n, mod, :start_inventory, [])
    rounds = 400

    nodes
    |> Enum.map(&Task.async(fn -> :erpc.call(&1, mod, :traffic, [servers, rounds], 300_000) end))
    |> Enum.each(&Task.await(&1, :infinity))

    ms50 = System.convert_time_unit(50, :millisecond, :native)

    skew =
      nodes
      |> Enum.with_index()
      |> Map.new(fn {n, i} -> {n, if(rem(i, 2) == 0, do: ms50, else: -ms50)} end)

    stream = listing(nodes, skew, nil, [])
    at = stream |> Enum.with_index() |> Map.new(fn {e, i} -> {{e.node, e.id}, i} end)
    matches = ElixirScope.Cluster.Matching.match(Enum.sort_by(stream, &{&1.node, &1.id}))
    cross = Enum.count(matches, fn {{rn, _}, {sn, _}} -> rn != sn end)
    inverted = Enum.count(matches, fn {r, s} -> at[r] < at[s] end)

    IO.puts("""
    ## Send/receive order with ±50 ms injected skew (nodes alternately +50 / -50 ms)
    events #{length(stream)}, matched pairs #{map_size(matches)} (#{cross} across nodes), inversions #{inverted} (target 0)
    """)
  end

  defp listing(nodes, skew, cursor, acc) do
    r =
      Cluster.page([type: [:send, :receive], limit: @page, after: cursor],
        nodes: nodes,
        inject_skew: skew
      )

    acc = [r.events | acc]

    if r.cursor,
      do: listing(nodes, skew, r.cursor, acc),
      else: acc |> Enum.reverse() |> List.flatten()
  end

  defp coordinator_death do
    lines =
      for how <- ["KILL", "STOP"] do
        c = ClusterPeers.start!("coord")
        members = for i <- 1..2, do: ClusterPeers.start!("member#{i}")
        ClusterPeers.connect!(c, members)

        :ok =
          ClusterPeers.call(c, ElixirScope, :setup, [[nodes: Enum.map(members, &elem(&1, 1))]])

        true = Enum.all?(members, &ClusterPeers.call(&1, ElixirScope, :running?, []))
        os = ClusterPeers.os_pid(c)
        t0 = System.monotonic_time()
        ClusterPeers.signal(os, how)

        times =
          members
          |> Enum.map(&Task.async(fn -> stopped_after(&1, t0) end))
          |> Enum.map(&Task.await(&1, 30_000))

        if how == "STOP", do: ClusterPeers.signal(os, "KILL")
        ClusterPeers.stop(c)
        Enum.each(members, &ClusterPeers.stop/1)

        "coordinator #{if how == "KILL", do: "killed", else: "hung"} (SIG#{how}): members stopped recording after #{Enum.map_join(times, ", ", &"#{ms(&1)} ms")} (target < 1000)"
      end

    IO.puts("## Coordinator death\n" <> Enum.join(lines, "\n"))
  end

  defp stopped_after(member, t0) do
    if ClusterPeers.call(member, ElixirScope, :running?, []) do
      Process.sleep(5)
      stopped_after(member, t0)
    else
      System.monotonic_time() - t0
    end
  end

  defp pct(sorted, p), do: Enum.at(sorted, min(length(sorted) - 1, ceil(p * length(sorted)) - 1))

  defp ms(native),
    do: Float.round(System.convert_time_unit(native, :native, :microsecond) / 1000, 1)

  defp progress(s), do: IO.puts(:stderr, "cluster bench: " <> s)
end

Bench.Cluster.run()
