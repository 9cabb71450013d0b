# ElixirScope query benchmark: the time-travel and analysis functions of ElixirScope
# (C store, ElixirScope.TraceDB) against the same queries written over the original
# GenServer + ETS design and over the best plain-ETS design, in the same run.
#
#   MIX_ENV=prod mix run bench/query_bench.exs
#
# The three stores are filled incrementally to 10k, 100k and 1M events (explicit
# timestamps, chunks of 50k, the realistic mix of bench/support/query_gen.exs); at
# each size every query runs on that size's probe keys, which match a constant ~100
# events. Every time is the median of several samples; samples of the implementations
# are interleaved (round-robin) so that machine noise hits them alike. Progress goes
# to stderr, the tables to stdout.

Code.require_file("support/bench_util.exs", __DIR__)
Code.require_file("support/event_gen.exs", __DIR__)
Code.require_file("support/orig_store.exs", __DIR__)
Code.require_file("support/best_ets.exs", __DIR__)
Code.require_file("support/query_gen.exs", __DIR__)
Code.require_file("support/ets_queries.exs", __DIR__)

defmodule Bench.QueryBench do
  @moduledoc false
  alias Bench.{BestEts, EtsQueries, OrigStore, QueryGen, Util}
  alias ElixirScope.TraceDB

  @max_events 1_100_000
  @chunk 50_000
  @impls [:es, :orig, :best]
  @slowest_limit 10

  def run do
    header()
    g = QueryGen.new()
    {:ok, _} = TraceDB.start_link(max_events: @max_events)
    {orig, tab} = OrigStore.start()
    best = BestEts.new()

    {rows, _built} =
      Enum.reduce(QueryGen.sizes(), {[], 0}, fn size, {rows, built} ->
        build(g, built, size, orig, best)
        Util.progress("queries at #{Util.int(size)} events")
        new = Enum.map(queries(g, size, tab, best), &measure(&1, size))
        {rows ++ new, size}
      end)

    stats = TraceDB.stats()
    TraceDB.stop()
    OrigStore.stop(orig)
    BestEts.delete(best)
    print(rows, stats)
    Util.progress("done")
  end

  defp header do
    Util.start_clock()

    IO.puts("""
    ElixirScope query benchmark
      Elixir #{System.version()}, OTP #{System.otp_release()}, #{System.schedulers_online()} schedulers, \
    MIX_ENV=#{Mix.env()}
      median of several samples; implementations interleaved in the same run;
      ratios are (other implementation's time) / (ElixirScope's time): > 1 means ElixirScope is faster.\
    """)
  end

  ## filling ---------------------------------------------------------------------------

  # Appends events built+1..size to the three stores, chunk by chunk (as store_bench).
  defp build(g, built, size, orig, best) do
    Util.progress("filling #{Util.int(built)} -> #{Util.int(size)} events")

    (built + 1)..size
    |> Stream.chunk_every(@chunk)
    |> Enum.each(fn ids ->
      events = Enum.map(ids, &QueryGen.event(g, &1))
      Enum.each(events, fn {t, e} -> :ok = TraceDB.store_event(t, e) end)
      Enum.each(events, fn {t, e} -> OrigStore.store_event(orig, t, e) end)
      OrigStore.sync(orig)
      Enum.each(events, fn {t, e} -> BestEts.store_event(best, t, e) end)
    end)

    stored = TraceDB.stats().stored

    unless stored == size and :ets.info(best.events, :size) == size,
      do: raise("stored #{stored} / #{:ets.info(best.events, :size)} events, expected #{size}")
  end

  ## the queries -----------------------------------------------------------------------

  # {label, kind of result, %{impl => zero-arity fun}}
  defp queries(g, size, tab, best) do
    p = QueryGen.probe(g, size)
    mid = div(size, 2)
    t_mid = QueryGen.timestamp(g, mid)
    {t1, t2} = {QueryGen.timestamp(g, mid), QueryGen.timestamp(g, mid + 99)}
    lim = @slowest_limit

    [
      {"1 message_flow(a, b)", :events,
       %{
         es: fn -> ElixirScope.message_flow(p.a, p.b) end,
         orig: fn -> EtsQueries.orig_message_flow(tab, p.a, p.b) end,
         best: fn -> EtsQueries.best_message_flow(best, p.a, p.b) end
       }},
      {"2 state_timeline(pid)", :events,
       %{
         es: fn -> ElixirScope.state_timeline(p.p) end,
         orig: fn -> EtsQueries.orig_state_timeline(tab, p.p) end,
         best: fn -> EtsQueries.best_state_timeline(best, p.p) end
       }},
      {"3 execution_path(pid)", :events,
       %{
         es: fn -> ElixirScope.execution_path(p.x) end,
         orig: fn -> EtsQueries.orig_execution_path(tab, p.x) end,
         best: fn -> EtsQueries.best_execution_path(best, p.x) end
       }},
      {"4 get_state_at(pid, ts)", :state_at,
       %{
         es: fn -> ElixirScope.get_state_at(p.p, t_mid) end,
         orig: fn -> EtsQueries.orig_get_state_at(tab, p.p, t_mid) end,
         best: fn -> EtsQueries.best_get_state_at(best, p.p, t_mid) end
       }},
      {"5 get_events_between(t1, t2)", :events,
       %{
         es: fn -> ElixirScope.get_events_between(t1, t2) end,
         orig: fn -> EtsQueries.orig_events_between(tab, t1, t2) end,
         best: fn -> EtsQueries.best_events_between(best, t1, t2) end
       }},
      {"6 performance_analysis(m)", :perf,
       %{
         es: fn -> ElixirScope.performance_analysis(p.m) end,
         orig: fn -> EtsQueries.orig_perf(tab, p.m) end,
         best: fn -> EtsQueries.best_perf(best, p.m) end
       }},
      {"7 slowest_function_calls(m)", :slowest,
       %{
         es: fn -> ElixirScope.slowest_function_calls(limit: lim, module: p.m) end,
         orig: fn -> EtsQueries.orig_slowest(tab, p.m, lim) end,
         best: fn -> EtsQueries.best_slowest(best, p.m, lim) end
       }},
      {"6* perf (returns w/o call_id)", :perf,
       %{
         es: fn -> ElixirScope.performance_analysis(p.m2) end,
         orig: fn -> EtsQueries.orig_perf(tab, p.m2) end,
         best: fn -> EtsQueries.best_perf(best, p.m2) end
       }},
      {"7* slowest (returns w/o call_id)", :slowest,
       %{
         es: fn -> ElixirScope.slowest_function_calls(limit: lim, module: p.m2) end,
         orig: fn -> EtsQueries.orig_slowest(tab, p.m2, lim) end,
         best: fn -> EtsQueries.best_slowest(best, p.m2, lim) end
       }}
    ]
  end

  defp measure({label, kind, funs}, size) do
    # The results to compare, and interleaved timing samples.
    {results, samples} = Util.measure_interleaved(funs, @impls)

    {same, notes} = compare(kind, results)

    %{
      label: label,
      size: size,
      hits: Map.new(results, fn {k, r} -> {k, hits(kind, r)} end),
      same: same,
      notes: notes,
      samples: Map.new(samples, fn {k, l} -> {k, length(l)} end),
      ns: Map.new(samples, fn {k, l} -> {k, Util.median(l)} end)
    }
  end

  ## checking the results ----------------------------------------------------------------

  defp hits(:events, r), do: length(r)
  defp hits(:state_at, {:ok, _}), do: 1
  defp hits(:state_at, _), do: 0
  defp hits(:perf, rows), do: rows |> Enum.map(& &1.returns) |> Enum.sum()
  defp hits(:slowest, r), do: length(r)

  # {same?, [note]}: ElixirScope's result against the two ETS ones (which agree exactly).
  defp compare(kind, %{es: es, orig: orig, best: best}) when kind in [:events, :state_at] do
    es = plain(es)

    cond do
      es == orig and es == best -> {true, []}
      orig != best -> {false, ["original and bestETS differ"]}
      true -> {false, ["ElixirScope differs: " <> first_difference(es, orig)]}
    end
  end

  defp compare(:slowest, %{es: es, orig: orig, best: best}) do
    key = fn r -> Enum.map(r, &{&1.id, &1.duration}) end

    cond do
      orig != best ->
        {false, ["original and bestETS differ"]}

      key.(es) == key.(orig) ->
        {true, []}

      true ->
        {false,
         [
           "ElixirScope returned #{length(es)} calls #{inspect(Enum.take(key.(es), 3))}..., " <>
             "ETS #{length(orig)} #{inspect(Enum.take(key.(orig), 3))}... ({id, duration})"
         ]}
    end
  end

  @exact [:function, :arity, :returns, :total, :mean, :max]
  @quantiles [:p50, :p90, :p99]

  # Counts, totals, means and maxima must match exactly; ElixirScope's percentiles are
  # histogram bucket midpoints (documented: within 6.25% of the exact value).
  defp compare(:perf, %{es: es, orig: orig, best: best}) do
    sort = &Enum.sort_by(&1, fn r -> {r.function, r.arity} end)
    {es, exact} = {sort.(es), sort.(orig)}

    if orig != best do
      {false, ["original and bestETS differ"]}
    else
      notes =
        if length(es) != length(exact) do
          [{"differs", "ElixirScope has #{length(es)} functions, ETS #{length(exact)}"}]
        else
          Enum.zip(es, exact)
          |> Enum.flat_map(fn {e, x} ->
            fx = "#{inspect(x.function)}/#{x.arity}"

            bad_exact =
              for k <- @exact,
                  Map.get(e, k) != Map.get(x, k),
                  do: "#{k} #{inspect(e[k])} (exact #{inspect(x[k])})"

            bad_q =
              for k <- @quantiles,
                  not near?(e[k], x[k]),
                  do: "#{k} #{inspect(e[k])} (exact #{inspect(x[k])})"

            over =
              for k <- @quantiles,
                  is_integer(e[k]) and is_integer(e.max) and e[k] > e.max,
                  do: "#{k} #{e[k]} > max #{e.max}"

            for {l, tag} <- [{bad_exact ++ bad_q, "differs"}, {over, "percentile above max"}],
                l != [],
                do: {tag, "ElixirScope #{fx} #{tag}: " <> Enum.join(l, ", ")}
          end)
        end

      # A percentile above the maximum is reported but does not count as a difference.
      {Enum.all?(notes, fn {tag, _} -> tag == "percentile above max" end),
       Enum.map(notes, fn {_, n} -> n end)}
    end
  end

  # ElixirScope tags the events it returns as ElixirScope.Event (a map with a
  # :__struct__ key); compared as plain maps.
  defp plain(events) when is_list(events), do: Enum.map(events, &plain/1)
  defp plain(%{__struct__: ElixirScope.Event} = e), do: Map.delete(e, :__struct__)
  defp plain(other), do: other

  defp near?(nil, nil), do: true
  defp near?(a, b) when is_integer(a) and is_integer(b), do: abs(a - b) <= 0.0625 * b + 1
  defp near?(_, _), do: false

  defp first_difference(a, b) when is_list(a) and is_list(b) do
    if length(a) != length(b) do
      "#{length(a)} results, ETS #{length(b)}"
    else
      i = Enum.zip(a, b) |> Enum.find_index(fn {x, y} -> x != y end)
      "result #{i}: #{inspect(Enum.at(a, i), limit: 12)} vs #{inspect(Enum.at(b, i), limit: 12)}"
    end
  end

  defp first_difference(a, b), do: "#{inspect(a, limit: 12)} vs #{inspect(b, limit: 12)}"

  ## output ------------------------------------------------------------------------------

  defp print(rows, stats) do
    Util.query_table(
      "Time-travel and analysis queries, median µs/query",
      Enum.sort_by(rows, &{&1.label, &1.size})
    )

    IO.puts("""
      hits: results returned (ES/orig/bestETS when they differ): events; 1 for a state found;
      for performance_analysis the :return events aggregated (sum of :returns). same: ES's
      result equals the ETS ones (whole event maps, ES's Event tag dropped, and their order;
      slowest: ids and durations; performance_analysis: returns, total, mean, max exact,
      p50/p90/p99 within 6.25%).
      original = :ets.tab2list + Enum.filter + sort in Elixir; bestETS = :duplicate_bag index
      lookups + sort + :ets.lookup_element (message_flow: both pair keys; get_events_between:
      :ets.next walk of the ordered_set). state_timeline diffs: ElixirScope.diff/2 in all three.
      ETS performance_analysis aggregates the module's :return events only (ES also counts
      :call and :exception); ETS slowest_function_calls does not attach the call's :args.
      6*/7*: the same queries on a module whose :return events carry no :call_id.
      Samples per median: 7 (5 when one call takes > 100 ms); #{Util.int(stats.stored)} events stored.\
    """)

    noted = Enum.filter(rows, &(&1.notes != []))

    if noted != [] do
      IO.puts("\nResult differences:")

      for r <- noted, n <- r.notes, do: IO.puts("  #{r.label} @ #{Util.int(r.size)}: #{n}")
    end

    worst(rows)
  end

  defp worst(rows) do
    ok = Enum.filter(rows, & &1.same)

    pick = fn impl ->
      r = Enum.min_by(ok, &(&1.ns[impl] / &1.ns.es))
      "#{Util.ratio(r.ns[impl] / r.ns.es)} (#{r.label} @ #{Util.int(r.size)})"
    end

    excluded = length(rows) - length(ok)

    IO.puts(
      "\nWorst ratios: orig/ES #{pick.(:orig)}, best/ES #{pick.(:best)}" <>
        if(excluded > 0, do: "; #{excluded} rows with differing results excluded", else: "")
    )
  end
end

Bench.QueryBench.run()
