# ElixirScope persistence benchmark: ElixirScope.dump/2 and ElixirScope.load/2 (zstd
# segments written and read by dirty I/O NIFs, docs/FORMAT.md) against the original
# ElixirScope's approach — an ETS table saved with :ets.tab2list/1 |> term_to_binary |>
# File.write!/2 — in the same run.
#
#   MIX_ENV=prod mix run bench/persist_bench.exs
#
# 1. Compression on a realistic trace: a small GenServer job queue with workers (demo/app.exs,
#    the application of make demo) traced at :full until ~150k events are recorded, dumped.
# 2. Write throughput: 1,000,000 stored events (the realistic mix of
#    bench/support/event_gen.exs), ElixirScope.dump/2 against tab2list + term_to_binary
#    (plain and compressed: 6) + File.write!, each a median of several interleaved runs.
# 3. Load time of those 1,000,000 events: ElixirScope.load/2 into a fresh store against
#    File.read! + binary_to_term + :ets.insert into a fresh table; counts and contents
#    are checked.
# 4. Scheduler blocking: :erlang.system_monitor(self(), [{:long_schedule, 1}]) while
#    each writer/reader runs in its own process; messages naming that process are
#    counted (a dump runs on a dirty I/O scheduler, so ElixirScope should have none).
#
# Every writer and reader runs in a fresh process (spawned, monitored), so its pid is
# the one the long_schedule messages name and its heap is gone afterwards; another
# process samples :erlang.memory(:total) every 5 ms meanwhile (the "peak mem+" column).
# Progress goes to stderr, the tables to stdout.

Code.require_file("support/bench_util.exs", __DIR__)
Code.require_file("support/event_gen.exs", __DIR__)

Code.require_file("../demo/app.exs", __DIR__)

## The benchmark --------------------------------------------------------------------

defmodule Bench.PersistBench do
  @moduledoc false
  alias Bench.{EventGen, Util}
  alias ElixirScope.TraceDB

  @demo_target 150_000
  @demo_max_rounds 80
  @demo_jobs_per_round 40
  @demo_workers 4

  @n 1_000_000
  @max_events 1_100_000
  @chunk 50_000
  @write_reps 3
  @load_reps 3
  @check_window 2_000

  def run do
    header()
    dir = Path.join(System.tmp_dir!(), "es_persist_bench_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)

    try do
      demo = demo(dir)
      print_demo(demo)
      ets = fill()
      w = writes(dir, ets)
      print_writes(w)
      l = loads(w.files, ets)
      print_loads(l, w)
      print_sched(w, l)
      TraceDB.stop()
      :ets.delete(ets)
    after
      File.rm_rf!(dir)
    end

    Util.progress("done")
  end

  defp header do
    Util.start_clock()

    IO.puts("""
    ElixirScope persistence benchmark
      Elixir #{System.version()}, OTP #{System.otp_release()}, #{System.schedulers_online()} schedulers, \
    #{:erlang.system_info(:dirty_io_schedulers)} dirty I/O schedulers, MIX_ENV=#{Mix.env()}
      MB = 10^6 bytes; times are medians of interleaved runs in this same VM;
      "vs ES" ratios are (other approach) / (ElixirScope): > 1 means ElixirScope is smaller/faster.\
    """)
  end

  ## 1. A realistic trace: the demo's job queue ---------------------------------------

  defp demo(dir) do
    Util.progress("1: tracing the job queue until ~#{Util.int(@demo_target)} events")
    # Caps raised so that the governor keeps every payload whole: at its defaults it
    # truncates payloads under this load (~1M events/s), which would flatter compression.
    :ok =
      ElixirScope.setup(
        tracing_level: :full,
        max_events: 300_000,
        max_events_per_sec: 100_000_000,
        max_bytes_per_sec: 16 * 1024 * 1024 * 1024
      )

    # The crashing jobs' error reports would interleave with the tables.
    log_level = Logger.level()
    Logger.configure(level: :critical)

    {:ok, sup} =
      Supervisor.start_link([Demo.Queue, Demo.Stats],
        strategy: :one_for_one,
        name: Bench.DemoSup
      )

    Process.unlink(sup)
    queue = Process.whereis(Demo.Queue)
    stats = Process.whereis(Demo.Stats)
    :ok = ElixirScope.trace_genserver(queue)
    :ok = ElixirScope.trace_genserver(stats)
    :ok = ElixirScope.trace_module(Demo.Jobs)

    {us, {rounds, jobs, crashes}} = :timer.tc(fn -> demo_rounds(1, 0, 0) end)

    ElixirScope.stop()
    Logger.configure(level: log_level)
    st = TraceDB.stats()
    path = Path.join(dir, "demo.esd")
    {dump_us, {:ok, d}} = :timer.tc(fn -> ElixirScope.dump(path) end)
    by_type = st.by_type |> Enum.reject(&(elem(&1, 1) == 0)) |> Enum.sort_by(&(-elem(&1, 1)))

    # The same events the original way (one term_to_binary of the event list).
    events = TraceDB.query_events()
    t2b = byte_size(:erlang.term_to_binary(events))
    t2b6 = byte_size(:erlang.term_to_binary(events, compressed: 6))

    Supervisor.stop(sup)
    ElixirScope.stop(keep_data: false)

    %{
      rounds: rounds,
      jobs: jobs,
      crashes: crashes,
      secs: us / 1.0e6,
      dump_ms: dump_us / 1000,
      stats: st,
      by_type: by_type,
      dump: d,
      file_size: File.stat!(path).size,
      listed: length(events),
      t2b: t2b,
      t2b6: t2b6
    }
  end

  # Each round: 40 jobs pushed (one of every 5 rounds with a job that crashes its
  # worker), 4 fresh traced workers drain the queue.
  defp demo_rounds(round, jobs, crashes) do
    stored = TraceDB.stats().stored

    if stored >= @demo_target or round > @demo_max_rounds do
      {round - 1, jobs, crashes}
    else
      crash? = rem(round, 5) == 0

      for k <- 1..@demo_jobs_per_round do
        id = jobs + k
        n = if crash? and k == 20, do: -1, else: 2 + rem(id * 7, 10)
        :ok = Demo.Queue.push(%{id: id, n: n, name: "job-#{id}"})
      end

      workers = for _ <- 1..@demo_workers, do: Demo.Worker.start(self())

      refs =
        for w <- workers do
          :ok = ElixirScope.trace_process(w)
          Process.monitor(w)
        end

      for w <- workers, do: send(w, :go)
      for ref <- refs, do: receive(do: ({:DOWN, ^ref, _, _, _} -> :ok))
      flush_worker_done()
      demo_rounds(round + 1, jobs + @demo_jobs_per_round, crashes + if(crash?, do: 1, else: 0))
    end
  end

  defp flush_worker_done do
    receive do
      {:worker_done, _} -> flush_worker_done()
    after
      0 -> :ok
    end
  end

  defp print_demo(d) do
    s = d.stats
    raw = d.dump.raw_bytes
    file = d.dump.bytes

    Util.table(
      "1. Compression on a realistic trace: job queue + #{@demo_workers} workers per round, " <>
        "#{d.rounds} rounds, #{Util.int(d.jobs)} jobs (#{d.crashes} crashing), traced at :full " <>
        "in #{Util.f(d.secs, 1)} s",
      ["file", "events", "bytes", "B/event", "raw/this", "target"],
      [
        [
          "raw records (summary :raw_bytes)",
          Util.int(d.dump.events),
          Util.int(raw),
          Util.f(raw / d.dump.events, 1),
          "1.00x",
          ""
        ],
        [
          "ElixirScope.dump/2 file",
          Util.int(d.dump.events),
          Util.int(file),
          Util.f(file / d.dump.events, 1),
          Util.ratio(raw / file),
          if(raw / file >= 4, do: ">= 4x: meets", else: ">= 4x: MISSES")
        ],
        [
          "term_to_binary(events)",
          Util.int(d.listed),
          Util.int(d.t2b),
          Util.f(d.t2b / d.listed, 1),
          Util.ratio(raw / d.t2b),
          ""
        ],
        [
          "term_to_binary(events, compressed: 6)",
          Util.int(d.listed),
          Util.int(d.t2b6),
          Util.f(d.t2b6 / d.listed, 1),
          Util.ratio(raw / d.t2b6),
          ""
        ]
      ]
    )

    types = Enum.map_join(d.by_type, ", ", fn {t, n} -> "#{t} #{Util.int(n)}" end)

    IO.puts("""
      stored #{Util.int(s.stored)}, appended #{Util.int(s.appended)}, sampled out #{Util.int(s.sampled_out)}; \
    file size on disk #{Util.int(d.file_size)} B (summary :bytes #{Util.int(file)}); dump took #{Util.f(d.dump_ms, 0)} ms.
      governor caps raised (max_events_per_sec 100M, max_bytes_per_sec 16 GiB): no payload truncated.
      events by type: #{types}
      term_to_binary rows: the same events as TraceDB.query_events/0 returns them, one list.\
    """)
  end

  ## 2. Write throughput at 1M events -------------------------------------------------

  # Stores @n events of the realistic mix in ElixirScope and, as full maps with :id and
  # :type (what the original ElixirScope kept), in an ETS :set keyed by id.
  defp fill do
    Util.progress("2: storing #{Util.int(@n)} events in ElixirScope and in an ETS :set")
    g = EventGen.new()
    {:ok, _} = TraceDB.start_link(max_events: @max_events)
    ets = :ets.new(:orig_events, [:set, :public, read_concurrency: true])

    1..@n
    |> Stream.chunk_every(@chunk)
    |> Enum.each(fn ids ->
      for i <- ids do
        {type, event} = EventGen.event(g, i)
        :ok = TraceDB.store_event(type, event)
        :ets.insert(ets, {i, event |> Map.put(:id, i) |> Map.put(:type, type)})
      end
    end)

    stored = TraceDB.stats().stored
    if stored != @n, do: raise("ElixirScope stored #{stored} events, expected #{@n}")
    if :ets.info(ets, :size) != @n, do: raise("ETS holds #{:ets.info(ets, :size)} events")
    ets
  end

  @writers [:es, :t2b, :t2b6]
  @wnames %{
    es: "ElixirScope.dump/2 (zstd-3 segments)",
    t2b: "tab2list |> term_to_binary |> write!",
    t2b6: "same, term_to_binary(compressed: 6)"
  }

  defp writes(dir, ets) do
    files = Map.new(@writers, &{&1, Path.join(dir, "1m_#{&1}.bin")})
    Util.progress("2: #{@write_reps} rounds of #{Enum.join(@writers, ", ")} (interleaved)")

    samples =
      for rep <- 1..@write_reps, w <- Util.rotate(@writers, rep), reduce: %{} do
        acc ->
          r = write_once(w, files[w], ets)
          Util.progress("2:   #{w} #{Util.f(r.ns / 1.0e6, 0)} ms")
          Map.update(acc, w, [r], &[r | &1])
      end

    %{files: files, samples: samples}
  end

  # Runs one writer in a fresh process under system_monitor long_schedule 1 ms; also
  # the peak of :erlang.memory(:total) during it, sampled every 5 ms by another process.
  defp write_once(:es, path, _ets) do
    run_monitored(fn ->
      {:ok, s} = ElixirScope.dump(path)
      %{events: s.events, raw: s.raw_bytes, out: s.bytes}
    end)
  end

  defp write_once(w, path, ets) do
    opts = if w == :t2b6, do: [compressed: 6], else: []

    run_monitored(fn ->
      bin = ets |> :ets.tab2list() |> :erlang.term_to_binary(opts)
      File.write!(path, bin)
      %{events: :ets.info(ets, :size), raw: nil, out: byte_size(bin)}
    end)
  end

  defp run_monitored(fun) do
    Util.gc_all()
    mem0 = :erlang.memory(:total)
    sampler = spawn_link(fn -> sample_memory(mem0) end)
    me = self()
    :erlang.system_monitor(me, [{:long_schedule, 1}])
    t0 = Util.now_ns()

    {pid, ref} =
      spawn_monitor(fn ->
        result = fun.()
        send(me, {:result, self(), result, Util.now_ns()})
      end)

    {result, t1} = receive(do: ({:result, ^pid, r, t} -> {r, t}))
    receive(do: ({:DOWN, ^ref, _, _, _} -> :ok))
    :erlang.system_monitor(:undefined)
    send(sampler, {:stop, self()})
    peak = receive(do: ({:peak, ^sampler, bytes} -> bytes))
    msgs = drain_monitor([])
    mine = Enum.filter(msgs, fn {p, _} -> p == pid end)
    others = Enum.reject(msgs, fn {p, _} -> p in [pid, sampler] end)

    Map.merge(result, %{
      ns: t1 - t0,
      pid: pid,
      long: length(mine),
      long_other: length(others),
      long_other_examples: Enum.take(others, 2),
      long_sampler: length(msgs) - length(mine) - length(others),
      long_max_ms: mine |> Enum.map(fn {_, info} -> info[:timeout] end) |> Enum.max(fn -> 0 end),
      long_examples: Enum.take(mine, 2),
      peak_extra: peak - mem0
    })
  end

  defp drain_monitor(acc) do
    receive do
      {:monitor, p, :long_schedule, info} -> drain_monitor([{p, info} | acc])
    after
      50 -> Enum.reverse(acc)
    end
  end

  defp sample_memory(peak) do
    receive do
      {:stop, from} -> send(from, {:peak, self(), max(peak, :erlang.memory(:total))})
    after
      5 -> sample_memory(max(peak, :erlang.memory(:total)))
    end
  end

  defp med(samples, key), do: samples |> Enum.map(&Map.fetch!(&1, key)) |> Util.median()

  defp print_writes(w) do
    s = w.samples
    es_ns = med(s.es, :ns)
    es_out = med(s.es, :out)
    es_raw = med(s.es, :raw)

    rows =
      for k <- @writers do
        ns = med(s[k], :ns)
        out = med(s[k], :out)
        events = med(s[k], :events)
        raw = if k == :es, do: es_raw, else: med(s[:t2b], :out)
        secs = ns / 1.0e9

        [
          @wnames[k],
          Util.int(out),
          Util.f(out / events, 1),
          Util.f(ns / 1.0e6, 0),
          Util.int(events / secs),
          Util.f(raw / 1.0e6 / secs, 0),
          Util.f(out / 1.0e6 / secs, 0),
          Util.ratio(out / es_out),
          Util.ratio(ns / es_ns),
          peak(med(s[k], :peak_extra))
        ]
      end

    Util.table(
      "2. Write #{Util.int(@n)} events (realistic mix, bench/support/event_gen.exs), " <>
        "median of #{@write_reps} runs each",
      [
        "writer",
        "file bytes",
        "B/event",
        "ms",
        "events/s",
        "raw MB/s",
        "out MB/s",
        "size vs ES",
        "time vs ES",
        "peak mem+"
      ],
      rows
    )

    IO.puts("""
      raw MB/s: uncompressed serialized bytes per second — for ElixirScope the summary's
      :raw_bytes (#{Util.int(es_raw)} B, #{Util.f(es_raw / @n, 1)} B/event: 4-byte length + term_to_binary of each
      event map), for ETS the plain term_to_binary of tab2list (#{Util.int(med(s.t2b, :out))} B); out MB/s: file
      bytes per second. ElixirScope's compression: #{Util.ratio(es_raw / es_out)} (raw/file).
      peak mem+: highest :erlang.memory(:total) during the run (sampled every 5 ms) minus
      before it: the BEAM memory (heaps, NIF heap fragments, binaries, ETS) a writer needs on
      top of the store/table; ElixirScope's store itself and C malloc are outside it.
      Time runs from spawning the writer process to its result message (file closed).\
    """)
  end

  defp peak(bytes), do: Util.mib(bytes)

  ## 3. Load time of the 1M events ----------------------------------------------------

  @loaders [:es, :t2b, :t2b6]
  @lnames %{
    es: "ElixirScope.load/2 -> fresh store",
    t2b: "read! |> binary_to_term -> new ETS",
    t2b6: "same, from the compressed: 6 file"
  }

  defp loads(files, ets) do
    Util.progress(
      "3: #{@load_reps} rounds of loading with #{Enum.join(@loaders, ", ")} (interleaved)"
    )

    samples =
      for rep <- 1..@load_reps, l <- Util.rotate(@loaders, rep), reduce: %{} do
        acc ->
          r = load_once(l, files[l], ets, rep == 1)
          Util.progress("3:   #{l} #{Util.f(r.ns / 1.0e6, 0)} ms, #{Util.int(r.events)} events")
          Map.update(acc, l, [r], &[r | &1])
      end

    %{samples: samples, ets_table_bytes: :ets.info(ets, :memory) * :erlang.system_info(:wordsize)}
  end

  defp load_once(:es, path, _ets, check?) do
    r =
      run_monitored(fn ->
        {:ok, s} = ElixirScope.load(path, name: :bench_loaded, max_events: @max_events)
        %{events: s.events, segments: s.segments, skipped: s.skipped}
      end)

    st = TraceDB.stats(:bench_loaded)
    same = if check?, do: same_events?(), else: nil
    TraceDB.stop(:bench_loaded)
    Map.merge(r, %{stored: st.stored, same: same})
  end

  defp load_once(_loader, path, ets, check?) do
    r =
      run_monitored(fn ->
        list = path |> File.read!() |> :erlang.binary_to_term()
        tab = :ets.new(:loaded_events, [:set, :public, read_concurrency: true])
        :ets.insert(tab, list)
        # The table would die with this process: hand it over to the bench process.
        :ets.give_away(tab, Process.whereis(:bench_main), nil)
        %{events: length(list), tab: tab}
      end)

    tab = r.tab
    receive(do: ({:"ETS-TRANSFER", ^tab, _, _} -> :ok))
    stored = :ets.info(tab, :size)

    same =
      if check?,
        do: Enum.all?([1, div(@n, 2), @n], &(:ets.lookup(tab, &1) == :ets.lookup(ets, &1))),
        else: nil

    :ets.delete(tab)
    Map.merge(r, %{stored: stored, same: same, segments: nil, skipped: []})
  end

  # The loaded store returns the same events (maps, ids, timestamps) as the original,
  # in windows at the start, middle and end.
  defp same_events? do
    Enum.all?([0, div(@n, 2), @n - @check_window], fn after_id ->
      q = [after_id: after_id, limit: @check_window]
      TraceDB.query_events(q) == TraceDB.query_events([store: :bench_loaded] ++ q)
    end)
  end

  defp print_loads(l, w) do
    s = l.samples
    es_ns = med(s.es, :ns)

    rows =
      for k <- @loaders do
        ns = med(s[k], :ns)
        r = hd(s[k])
        file = med(w.samples[k], :out)
        raw = if k == :es, do: med(w.samples.es, :raw), else: med(w.samples.t2b, :out)

        [
          @lnames[k],
          Util.int(file),
          Util.f(ns / 1.0e6, 0),
          Util.int(r.events / (ns / 1.0e9)),
          Util.f(file / 1.0e6 / (ns / 1.0e9), 0),
          Util.f(raw / 1.0e6 / (ns / 1.0e9), 0),
          Util.ratio(ns / es_ns),
          "#{Util.int(r.stored)}#{if r.stored == @n, do: " ok", else: " WRONG"}",
          same_text(List.last(s[k]).same),
          peak(med(s[k], :peak_extra))
        ]
      end

    Util.table(
      "3. Load #{Util.int(@n)} events, median of #{@load_reps} runs each",
      [
        "loader",
        "file bytes",
        "ms",
        "events/s",
        "file MB/s",
        "raw MB/s",
        "time vs ES",
        "events held",
        "same",
        "peak mem+"
      ],
      rows
    )

    es = hd(s.es)

    IO.puts("""
      file MB/s: file bytes read per second; raw MB/s: uncompressed serialized bytes
      decoded per second (as in table 2). ElixirScope.load/2's time includes starting the
      store (TraceDB.start_link, name: :bench_loaded, max_events: #{Util.int(@max_events)}); it loaded
      #{es.segments} segments, skipped #{inspect(es.skipped)}.
      ETS: File.read! + binary_to_term + :ets.new + :ets.insert of the whole list; its peak
      mem+ includes the new table (#{Util.mib(l.ets_table_bytes)}), ElixirScope's excludes its store.
      same: checked on the first run — ElixirScope: TraceDB.query_events windows of
      #{Util.int(@check_window)} events after ids 0, #{Util.int(div(@n, 2))}, #{Util.int(@n - @check_window)} are equal in the loaded and
      the original store (maps, ids, timestamps); ETS: ids 1, #{Util.int(div(@n, 2))}, #{Util.int(@n)} equal.\
    """)
  end

  defp same_text(nil), do: "-"
  defp same_text(true), do: "yes"
  defp same_text(false), do: "NO"

  ## 4. Scheduler blocking --------------------------------------------------------------

  defp print_sched(w, l) do
    rows =
      for {part, samples, names} <- [{"write", w.samples, @wnames}, {"load", l.samples, @lnames}],
          k <- @writers do
        runs = samples[k]

        [
          "#{part}: #{names[k]}",
          Integer.to_string(length(runs)),
          Enum.map_join(runs, " ", &Integer.to_string(&1.long)),
          Integer.to_string(runs |> Enum.map(& &1.long_max_ms) |> Enum.max()),
          Enum.map_join(runs, " ", &Integer.to_string(&1.long_other)),
          Enum.map_join(runs, " ", &Integer.to_string(&1.long_sampler)),
          if(k == :es,
            do: if(Enum.all?(runs, &(&1.long == 0)), do: "0: ok", else: "0: FAILS"),
            else: ""
          )
        ]
      end

    Util.table(
      "4. Normal schedulers blocked: :erlang.system_monitor(self(), [{:long_schedule, 1}]) " <>
        "during each run",
      ["run", "runs", "msgs naming it", "max ms", "others", "sampler", "expect"],
      rows
    )

    IO.puts("""
      msgs naming it: {:monitor, pid, :long_schedule, info} messages (running > 1 ms on a
      normal scheduler without yielding) whose pid is the process that ran the writer/loader,
      per run; others: about any other process meanwhile (the memory sampler apart, counted
      under sampler: an :erlang.memory/1 call can take over 1 ms while big heaps exist).\
    """)

    examples = fn key ->
      for {part, samples} <- [{"write", w.samples}, {"load", l.samples}],
          k <- @writers,
          r <- samples[k],
          {p, info} <- Map.fetch!(r, key),
          do: {"#{part} #{k}", p, info}
    end

    for {label, _p, info} <- Enum.take(Enum.uniq_by(examples.(:long_examples), &elem(&1, 0)), 6),
        do: IO.puts("  e.g. #{label}: #{inspect(info)}")

    for {label, p, info} <- Enum.take(examples.(:long_other_examples), 4) do
      name = Process.info(p, :registered_name) || Process.info(p, :current_function)
      IO.puts("  other, during #{label}: #{inspect(p)} #{inspect(name)} #{inspect(info)}")
    end
  end
end

Process.register(self(), :bench_main)
Bench.PersistBench.run()
