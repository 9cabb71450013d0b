# ElixirScope store benchmark: ElixirScope.TraceDB (C/NIF) against the original
# GenServer + ETS design and the best plain-ETS design, in the same run.
#
#   MIX_ENV=prod mix run bench/store_bench.exs      (or: make bench)
#
# A. appends from Elixir, B. indexed queries at 10k / 100k / 1M events, C. memory.
# Every time is the median of several samples; samples of the implementations being
# compared are interleaved (round-robin) so that machine noise hits them alike.
# Progress goes to stderr, the tables to stdout.

Code.require_file("support/bench_util.exs", __DIR__)
Code.require_file("support/event_gen.exs", __DIR__)
Code.require_file("support/orig_store.exs", __DIR__)
Code.require_file("support/best_ets.exs", __DIR__)

defmodule Bench.StoreBench do
  @moduledoc false
  alias Bench.{BestEts, EventGen, OrigStore, Util}
  alias ElixirScope.TraceDB

  @max_events 1_100_000
  @chunk 50_000
  @append_events 100_000
  @append_reps 7
  @impls [:es, :orig, :best]
  @names %{es: "ElixirScope", orig: "GenServer+ETS (orig)", best: "best plain ETS"}

  def run do
    header()
    # C first: the VmRSS readings want a VM that has not yet held big heaps and tables.
    c = memory()
    {b, ets_memory} = queries()
    a = appends()
    print_a(a)
    print_b(b)
    print_c(Map.merge(c, ets_memory))
    Util.progress("done")
  end

  defp header do
    Util.start_clock()

    IO.puts("""
    ElixirScope store benchmark
      Elixir #{System.version()}, OTP #{System.otp_release()}, #{System.schedulers_online()} schedulers, \
    word #{:erlang.system_info(:wordsize)} B, MIX_ENV=#{Mix.env()}
      median of several samples; implementations interleaved in the same run;
      ratios are (other implementation's time) / (ElixirScope's time): > 1 means ElixirScope is faster.\
    """)
  end

  ## A. appends ---------------------------------------------------------------------

  defp appends do
    g = EventGen.new()
    # The realistic mix of B without explicit timestamps: each store stamps events.
    events =
      for i <- 1..@append_events do
        {type, event} = EventGen.event(g, i)
        {type, Map.delete(event, :timestamp)}
      end

    payload = payload_bytes(events) / @append_events

    Util.progress("A: #{@append_reps} rounds x #{@append_events} appends per implementation")

    samples =
      for rep <- 1..@append_reps, impl <- Util.rotate(@impls, rep), reduce: %{} do
        acc ->
          {total, caller} = append_once(impl, events)

          acc
          |> Map.update({impl, :total}, [total], &[total | &1])
          |> Map.update({impl, :caller}, [caller], &[caller | &1])
      end

    per_event = fn key -> Util.median(samples[key]) / @append_events end

    %{
      payload: payload,
      n: @append_events,
      reps: @append_reps,
      total: Map.new(@impls, &{&1, per_event.({&1, :total})}),
      caller: Map.new(@impls, &{&1, per_event.({&1, :caller})})
    }
  end

  # Each round starts every implementation from an empty store; setup and teardown
  # are not timed. Returns {ns until stored, ns until the caller was free}.
  defp append_once(:es, events) do
    {:ok, _} = TraceDB.start_link(max_events: @max_events)
    :erlang.garbage_collect()

    {ns, :ok} =
      Util.time_ns(fn -> Enum.each(events, fn {t, e} -> :ok = TraceDB.store_event(t, e) end) end)

    check_count(TraceDB.stats().stored, length(events))
    TraceDB.stop()
    {ns, ns}
  end

  defp append_once(:orig, events) do
    {pid, table} = OrigStore.start()
    :erlang.garbage_collect()
    t0 = Util.now_ns()
    Enum.each(events, fn {t, e} -> OrigStore.store_event(pid, t, e) end)
    t1 = Util.now_ns()
    OrigStore.sync(pid)
    t2 = Util.now_ns()
    check_count(:ets.info(table, :size), length(events))
    OrigStore.stop(pid)
    {t2 - t0, t1 - t0}
  end

  defp append_once(:best, events) do
    s = BestEts.new()
    :erlang.garbage_collect()

    {ns, :ok} =
      Util.time_ns(fn -> Enum.each(events, fn {t, e} -> BestEts.store_event(s, t, e) end) end)

    check_count(:ets.info(s.events, :size), length(events))
    BestEts.delete(s)
    {ns, ns}
  end

  defp check_count(n, n), do: :ok
  defp check_count(got, want), do: raise("stored #{got} events, expected #{want}")

  defp print_a(a) do
    es = a.total.es

    rows =
      for impl <- @impls do
        ns = a.total[impl]

        [
          @names[impl],
          Util.f(ns, 0),
          Util.int(1.0e9 / ns),
          Util.ratio(ns / es),
          Util.f(a.caller[impl], 0)
        ]
      end

    Util.table(
      "A. Append from Elixir: #{Util.int(a.n)} events per round, median of #{a.reps} rounds, " <>
        "payload #{Util.f(a.payload, 1)} B/event (ext. term format, indexed fields excluded)",
      ["implementation", "ns/event", "events/s", "time vs ES", "caller ns/event"],
      rows
    )

    IO.puts("""
      ns/event: until the event is stored and queryable (GenServer: until its mailbox is
      drained, checked with a final GenServer.call). caller ns/event: until the writing
      process is free again (GenServer.cast returns before the insert happens).\
    """)
  end

  ## C. memory (measured first, in a fresh VM, with nothing else running) -------------

  @mem_chunk 10_000

  defp memory do
    g = EventGen.new()
    n = List.last(EventGen.sizes())
    rss = fn -> Util.gc_all() && Util.rss_bytes() end
    # The VM's allocators keep some of what generating 1M events took, stored or not
    # (~5-15 B/event here): one pass of the same work without storing, first, so that
    # the store's reading is the store's.
    Util.progress("C: generating #{Util.int(n)} events without storing them, reading VmRSS")
    r_gen = rss.()
    fill(g, n, fn _events -> :ok end)
    r0 = rss.()
    Util.progress("C: filling ElixirScope alone with #{Util.int(n)} events, reading VmRSS")
    {:ok, _} = TraceDB.start_link(max_events: @max_events)
    r_start = rss.()

    payload =
      fill(g, n, fn events ->
        Enum.each(events, fn {t, e} -> :ok = TraceDB.store_event(t, e) end)
      end)

    r_end = rss.()
    stats = TraceDB.stats()
    TraceDB.stop()

    %{
      n: n,
      payload: payload / n,
      generation: r0 - r_gen,
      es_start: r_start - r0,
      es_fill: r_end - r_start,
      es_stats: stats
    }
  end

  # Events 1..n in chunks, each chunk given to store; returns their payload bytes.
  defp fill(g, n, store) do
    1..n
    |> Stream.chunk_every(@mem_chunk)
    |> Enum.reduce(0, fn ids, payload ->
      events = Enum.map(ids, &EventGen.event(g, &1))
      store.(events)
      payload + payload_bytes(events)
    end)
  end

  defp payload_bytes(events) do
    Enum.reduce(events, 0, fn {_t, e}, acc ->
      acc + byte_size(:erlang.term_to_binary(EventGen.payload(e)))
    end)
  end

  ## B. queries -----------------------------------------------------------------------

  defp queries do
    g = EventGen.new()
    {:ok, _} = TraceDB.start_link(max_events: @max_events)
    {orig, orig_tab} = OrigStore.start()
    best = BestEts.new()

    st0 = %{built: 0, fill: [], rows: []}

    st =
      Enum.reduce(EventGen.sizes(), st0, fn size, st ->
        st = build(g, st, size, orig, best)
        Util.progress("B: queries at #{Util.int(size)} events")
        rows = Enum.map(EventGen.queries(g, size), &query_row(&1, size, orig_tab, best))
        %{st | rows: st.rows ++ rows}
      end)

    words = :erlang.system_info(:wordsize)

    ets_memory = %{
      orig: :ets.info(orig_tab, :memory) * words,
      best: BestEts.memory_words(best) * words,
      best_main: :ets.info(best.events, :memory) * words
    }

    TraceDB.stop()
    OrigStore.stop(orig)
    BestEts.delete(best)
    {%{rows: st.rows, fill: st.fill}, ets_memory}
  end

  # Appends events st.built+1..size to all three stores, chunk by chunk, timing each.
  defp build(g, st, size, orig, best) do
    Util.progress("B: filling #{Util.int(st.built)} -> #{Util.int(size)} events")
    from = st.built + 1

    times =
      from..size
      |> Stream.chunk_every(@chunk)
      |> Enum.reduce(%{es: 0, orig: 0, best: 0}, fn ids, times ->
        events = Enum.map(ids, &EventGen.event(g, &1))
        :erlang.garbage_collect()

        {t_es, :ok} =
          Util.time_ns(fn ->
            Enum.each(events, fn {t, e} -> :ok = TraceDB.store_event(t, e) end)
          end)

        {t_orig, :ok} =
          Util.time_ns(fn ->
            Enum.each(events, fn {t, e} -> OrigStore.store_event(orig, t, e) end)
            OrigStore.sync(orig)
          end)

        {t_best, :ok} =
          Util.time_ns(fn ->
            Enum.each(events, fn {t, e} -> BestEts.store_event(best, t, e) end)
          end)

        %{es: times.es + t_es, orig: times.orig + t_orig, best: times.best + t_best}
      end)

    n = size - from + 1

    %{
      st
      | built: size,
        fill: st.fill ++ [{from, size, Map.new(times, fn {k, t} -> {k, t / n} end)}]
    }
  end

  defp query_row({label, filters}, size, orig_tab, best) do
    funs = %{
      es: fn -> TraceDB.query_events(filters) end,
      orig: fn -> OrigStore.query_events(orig_tab, filters) end,
      best: BestEts.query_fun(best, filters)
    }

    # The results to compare, and interleaved timing samples.
    {results, samples} = Util.measure_interleaved(funs, @impls)
    hits = Map.new(results, fn {k, r} -> {k, length(r)} end)
    same = results.es == results.orig and results.es == results.best

    %{
      label: label,
      size: size,
      hits: hits,
      same: same,
      ns: Map.new(samples, fn {k, l} -> {k, Util.median(l)} end)
    }
  end

  defp print_b(b) do
    rows =
      for {from, to, ns} <- b.fill do
        [
          "#{Util.int(from - 1)} -> #{Util.int(to)}",
          Util.f(ns.es, 0),
          Util.f(ns.orig, 0),
          Util.f(ns.best, 0),
          Util.ratio(ns.orig / ns.es),
          Util.ratio(ns.best / ns.es)
        ]
      end

    Util.table(
      "B0. Filling the stores for B (explicit timestamps, chunks of #{Util.int(@chunk)}): ns/event",
      ["events", "ElixirScope", "orig (drained)", "bestETS", "orig/ES", "best/ES"],
      rows
    )

    Util.query_table(
      "B. Indexed queries, µs/query (full event maps, sorted by timestamp)",
      b.rows
    )

    IO.puts("""
      hits: events returned (ES/orig/bestETS when they differ); same: the three result
      lists are equal (same maps, same order). original = :ets.tab2list + Enum.filter +
      Enum.sort_by; bestETS = index lookup (:ets.select on the bound key) + sort +
      :ets.lookup_element per hit, or an :ets.next walk of the ordered_set for (d).
      Samples per median: ElixirScope/bestETS 7; original 7 (5 when a query takes > 100 ms).\
    """)
  end

  defp print_c(c) do
    n = c.n
    payload = c.payload
    target = 1.3 * payload + 64
    s = c.es_stats

    # Parts of a store ("of which" rows) get no verdict: the target is for a whole store.
    row = fn name, bytes, verdict? ->
      per = bytes / n
      verdict = if per <= target, do: "meets", else: "MISSES"

      [
        name,
        Util.mib(bytes),
        Util.f(per, 1),
        Util.f(per / payload, 2),
        if(verdict?, do: verdict, else: "")
      ]
    end

    # What the documented design should cost: a 64-byte slot (ES_SLOT_BYTES), the
    # payload rounded up to 8 bytes in the arena (TraceDB.stats :bytes) and a 32-byte
    # summary per 256 ids.
    floor = n * (64 + 32 / 256) + s.bytes

    Util.table(
      "C. Memory at #{Util.int(n)} events; payload #{Util.f(payload, 1)} B/event " <>
        "(term_to_binary of the event without indexed fields); " <>
        "target <= 1.3 x payload + 64 = #{Util.f(target, 1)} B/event",
      ["store", "total", "B/event", "x payload", "target"],
      [
        row.("ElixirScope (VmRSS after - before)", c.es_start + c.es_fill, true),
        row.("  of which start_link (empty store)", c.es_start, false),
        row.("  of which the #{Util.int(n)} appends", c.es_fill, false),
        row.("(generating the events, not stored)", c.generation, false),
        row.("ElixirScope design floor (computed)", floor, true),
        row.("orig: ETS :set (ets.info)", c.orig, true),
        row.("bestETS: 5 tables (ets.info)", c.best, true),
        row.("  of which the ordered_set", c.best_main, false),
        row.("  of which the 4 index bags", c.best - c.best_main, false)
      ]
    )

    IO.puts("""
      ElixirScope is measured first, alone in a fresh VM: VmRSS is read after
      :erlang.garbage_collect/1 of every process, before start_link, after it, and after
      the last append (events generated in chunks of #{Util.int(@mem_chunk)}, garbage by then),
      after one pass of generating the same events without storing them (what the VM keeps
      of that pass is the "generating" row, not the store's).
      ETS rows: :ets.info(tab, :memory) x word size, at the end of B's 1M build.
      design floor = 64 B slot + arena bytes + 32 B per 256-event time block, no key tables.
      TraceDB.stats at #{Util.int(n)}: stored #{Util.int(s.stored)}, payload bytes #{Util.int(s.bytes)} \
    (#{Util.f(s.bytes / max(s.stored, 1), 1)} B/event), memory (reserved) #{Util.mib(s.memory)}, \
    unindexed #{s.unindexed}.\
    """)
  end
end

Bench.StoreBench.run()
