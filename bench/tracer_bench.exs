# ElixirScope tracer benchmark: what tracing costs the traced code.
#
#   make bench   (or: make build/otp<release>/noop_tracer.so && MIX_ENV=prod mix run bench/tracer_bench.exs)
#
# Table 1: ns per traced call (call + return event) of a small function, called N times
# in a loop by one process, with call tracing on that process and the trace pattern
# [{:_, [], [{:return_trace}]}] (local) on the function:
#
#   untraced                     no trace flag, no trace pattern
#   no-op NIF tracer (floor)     erl_tracer NIF module :es_noop_tracer (bench/noop_tracer.c):
#                                enabled/3 -> trace, trace/5 -> ok; the runtime's own cost
#   ElixirScope :full            ElixirScope.setup/1 + trace_function/1: NIF callbacks
#                                writing into the C store (events checked after each run),
#                                with the default governor caps, then with the caps raised
#                                so that every event is recorded in full
#   :dbg process tracer          :dbg.tracer(:process, counting handler), :dbg.p(pid, [:c])
#   process tracer + ETS (orig)  the original design: a {:tracer, pid} process that
#                                inserts every trace message into an ETS :ordered_set
#
# Three more rows take ElixirScope's cost apart (same rounds, same interleaving):
#
#   no-op tracer, resource state  the floor's tracer, with a NIF resource term (an
#                                :atomics reference) as its state instead of []: a tracer
#                                that reaches its store through its state, as ours must,
#                                pays the runtime for copying that state
#   ES, nothing stored           ElixirScope :full with sample_rate: 0.0: every callback
#                                runs (tracer and pid lookup, call frames, clock, the
#                                sampling decision) but no event is encoded or stored
#   ES, store filled once        ElixirScope :full (caps raised) with a store that holds
#                                the run's events (2N + 8,192 events, 24 MiB), filled
#                                past both its rings by an untimed run of 3N calls first:
#                                every event recorded, into memory already touched. A
#                                store's first fill writes fresh pages, and a first write
#                                to a page costs what the machine makes it cost
#                                (build/bench_store prints it: ~10 us per 4 KiB page on
#                                the Firecracker VM we measure on)
#   ES, store within L2          ElixirScope :full (caps raised) with a store of 16,384
#                                events and 256 KiB of payload, small enough to stay in
#                                a core's L2 cache (1 MiB per core on the 2-vCPU EPYC VM
#                                we measure on): by difference, what writing events into
#                                memory that is not in cache costs
#
# For the two process tracers the time runs until the tracer has handled all 2N trace
# messages (its backlog drained); the caller's own time is shown beside it, with the
# peak mailbox length of the tracer (sampled by the tracer every 1024 messages and by
# the caller when its loop ends). CPU ns/call is the busy time of all schedulers
# together: a process tracer works on the other core, in parallel with the caller.
#
# Table 2: GenServer.call ping-pong between two processes, untraced and with
# ElixirScope at :full, :messages_only and :minimal (default governor), and at :full
# with the governor caps raised; and the runtime's floor for :full, the same trace flags
# and return-tracing patterns with the no-op tracer. Then the same with a server whose
# state is about
# 1 KiB (a map of 60 strings and a list of 40 integers) that changes on every call,
# untraced and at :states_only with the caps raised (every state stored whole).
#
# Every figure is the median of several samples; the alternatives are interleaved
# (round-robin, rotated each round) in the same run so machine noise hits them alike.
# Tracing is switched off completely between samples. Progress goes to stderr.

Code.require_file("support/bench_util.exs", __DIR__)

defmodule :es_noop_tracer do
  @moduledoc false
  # erl_tracer callbacks that do nothing: replaced by the NIFs of build/otp<release>/noop_tracer.so.
  @on_load :load_nif
  @so Path.expand("../build/otp#{System.otp_release()}/noop_tracer", __DIR__)

  def load_nif do
    case :erlang.load_nif(String.to_charlist(@so), 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        IO.puts(
          :stderr,
          "cannot load #{@so}.so (#{reason}: #{text}); run `make bench`"
        )

        :error
    end
  end

  def enabled(_tag, _state, _tracee), do: :erlang.nif_error(:not_loaded)
  def trace(_tag, _state, _tracee, _term, _opts), do: :erlang.nif_error(:not_loaded)
end

defmodule Bench.TracerWork do
  @moduledoc false
  # The traced function and the loop that calls it (a local call, not a tail call).
  def work(x), do: x + 1

  def loop(0, acc), do: acc
  def loop(n, acc), do: loop(n - 1, work(acc))
end

defmodule Bench.PingServer do
  @moduledoc false
  use GenServer

  @impl true
  def init(:kib),
    do: {:ok, %{count: 0, table: Map.new(1..60, &{&1, "value #{&1}"}), log: Enum.to_list(1..40)}}

  def init(n), do: {:ok, n}

  @impl true
  def handle_call(:ping, _from, %{count: n} = s), do: {:reply, n, %{s | count: n + 1}}
  def handle_call(:ping, _from, n), do: {:reply, n, n + 1}
end

defmodule Bench.TracerBench do
  @moduledoc false
  alias Bench.{PingServer, TracerWork, Util}
  alias ElixirScope.TraceDB

  @n 200_000
  @reps 7
  @pings 100_000
  @ping_reps 5
  @match_spec [{:_, [], [{:return_trace}]}]
  @mfa {TracerWork, :work, 1}
  # ElixirScope's governor caps (500k events/s by default) out of the way: every event
  # is recorded in full, whatever the rate.
  @no_caps [max_events_per_sec: 1_000_000_000, max_bytes_per_sec: 1_000_000_000_000]
  @rows [
    :untraced,
    :noop,
    :es,
    :es_nocap,
    :dbg,
    :orig,
    :noop_resource,
    :es_unstored,
    :es_l2,
    :es_warm
  ]
  @diagnostics [:noop_resource, :es_unstored, :es_l2, :es_warm]
  @names %{
    untraced: "untraced",
    noop: "no-op NIF tracer (floor)",
    es: "ElixirScope :full",
    es_nocap: "ElixirScope :full, governor caps raised",
    dbg: ":dbg process tracer (counting)",
    orig: "process tracer + ETS (orig design)",
    noop_resource: "no-op tracer, resource state",
    es_unstored: "ES :full, nothing stored",
    es_l2: "ES :full, store within L2",
    es_warm: "ES :full, caps raised, store filled once"
  }
  # ElixirScope options of each ElixirScope row, on top of tracing_level: :full.
  @es_opts %{
    es: [],
    es_nocap: @no_caps,
    es_unstored: [sample_rate: 0.0],
    es_l2: [max_events: 16_384, max_bytes: 262_144] ++ @no_caps,
    es_warm: [max_events: 2 * @n + 8192, max_bytes: 24 * 1024 * 1024] ++ @no_caps
  }
  @levels [
    :untraced,
    :noop_floor,
    :full,
    :messages_only,
    :minimal,
    :full_nocap,
    :untraced_kib,
    :states_kib
  ]
  @untraced [:untraced, :untraced_kib]
  # Rows that run without ElixirScope.
  @without_es [:noop_floor | @untraced]
  @gen_server_callbacks [handle_call: 3, handle_cast: 2, handle_info: 2, handle_continue: 2]
  @returns_ms [
    {:_, [], [{:return_trace}, {:exception_trace}, {:message, :"$elixir_scope_returns"}]}
  ]

  def run do
    header()
    check_noop_tracer!()
    :erlang.system_flag(:scheduler_wall_time, true)
    reset()
    calls = call_table()
    pings = ping_table()
    print_calls(calls)
    print_pings(pings)
    Util.progress("done")
  end

  defp header do
    Util.start_clock()

    IO.puts("""
    ElixirScope tracer benchmark
      Elixir #{System.version()}, OTP #{System.otp_release()}, #{System.schedulers_online()} schedulers, \
    MIX_ENV=#{Mix.env()}
      median of several samples; alternatives interleaved in the same run.\
    """)
  end

  defp check_noop_tracer! do
    unless Code.ensure_loaded?(:es_noop_tracer) and
             :es_noop_tracer.trace(:call, [], self(), :x, %{}) == :ok do
      raise "the no-op tracer NIF is not loaded; run `make bench`"
    end
  end

  # Everything any row may have switched on, switched off.
  defp reset do
    ElixirScope.stop(keep_data: false)
    :dbg.stop()
    :erlang.trace(:all, false, [:all])
    :erlang.trace_pattern({:_, :_, :_}, false, [:local])
    :erlang.trace_pattern({:_, :_, :_}, false, [])
    :ok
  end

  ## Table 1: traced calls --------------------------------------------------------------

  defp call_table do
    Util.progress("table 1: 1 warm-up round + #{@reps} rounds x #{length(@rows)} rows, N = #{@n}")

    for rep <- 0..@reps, row <- Util.rotate(@rows, rep), reduce: %{} do
      acc ->
        sample = measure(row, @n)
        reset()
        :erlang.garbage_collect()
        if rep == 0, do: acc, else: Map.update(acc, row, [sample], &[sample | &1])
    end
  end

  # A process that runs the loop when told to, timing itself; when its loop ends it
  # reads the mailbox length of `observe` (a tracer process) and reports to the caller.
  defp spawn_worker(n) do
    parent = self()

    spawn(fn ->
      observe =
        receive do
          {:go, observe} -> observe
        end

      t0 = Util.now_ns()
      TracerWork.loop(n, 0)
      t1 = Util.now_ns()
      qlen = if observe, do: elem(Process.info(observe, :message_queue_len), 1), else: 0
      send(parent, {:worker_done, self(), t0, t1, qlen})
    end)
  end

  # Scheduler busy time, all schedulers together (ns): the CPU the VM spent, wherever.
  defp busy_ns do
    :scheduler_wall_time
    |> :erlang.statistics()
    |> Enum.reduce(0, fn {_id, active, _total}, acc -> acc + active end)
    |> :erlang.convert_time_unit(:native, :nanosecond)
  end

  defp go(worker, observe \\ nil) do
    busy0 = busy_ns()
    send(worker, {:go, observe})

    receive do
      {:worker_done, ^worker, t0, t1, qlen} -> {t0, t1, qlen, busy0}
    after
      60_000 -> raise "worker did not finish"
    end
  end

  defp measure(:untraced, n) do
    w = spawn_worker(n)
    {t0, t1, _, busy0} = go(w)
    %{caller: t1 - t0, total: t1 - t0, cpu: busy_ns() - busy0}
  end

  defp measure(row, n) when row in [:noop, :noop_resource] do
    state = if row == :noop, do: [], else: :atomics.new(1, [])
    w = spawn_worker(n)
    1 = :erlang.trace_pattern(@mfa, @match_spec, [:local])
    1 = :erlang.trace(w, true, [:call, {:tracer, :es_noop_tracer, state}])
    {t0, t1, _, busy0} = go(w)
    %{caller: t1 - t0, total: t1 - t0, cpu: busy_ns() - busy0}
  end

  defp measure(row, n) when is_map_key(@es_opts, row) do
    opts = Keyword.merge([tracing_level: :full, max_events: 2_000_000], @es_opts[row])
    :ok = ElixirScope.setup(opts)
    :ok = ElixirScope.trace_function(@mfa)
    # trace_function/1 traces calls in every process, new ones included.
    if row == :es_warm, do: go(spawn_worker(3 * n))
    w = spawn_worker(n)
    {t0, t1, _, busy0} = go(w)
    cpu = busy_ns() - busy0
    stats = warm_stats(row, TraceDB.stats(), w, n)
    governor = ElixirScope.Governor.status()
    first = TraceDB.query_events(type: :call, pid: w, limit: 1)
    last = TraceDB.query_events(type: :return, pid: w, limit: 1, order: :desc)
    :ok = ElixirScope.stop(keep_data: false)

    %{
      caller: t1 - t0,
      total: t1 - t0,
      cpu: cpu,
      calls: Map.get(stats.by_type, :call, 0),
      returns: Map.get(stats.by_type, :return, 0),
      governor_changes: Map.get(stats.by_type, :governor, 0),
      governor_step: governor.step,
      sampled_out: stats.sampled_out,
      first: first,
      last: last
    }
  end

  # The store filled once also holds the filling run's newest events: count the
  # measured worker's.
  defp warm_stats(:es_warm, stats, w, n) do
    count = &ElixirScope.Query.count(type: &1, pid: w, limit: 10 * n)
    %{stats | by_type: %{call: count.(:call), return: count.(:return)}}
  end

  defp warm_stats(_row, stats, _w, _n), do: stats

  defp measure(:dbg, n) do
    parent = self()
    target = 2 * n

    # Counts trace messages; samples its own mailbox length every 1024 messages.
    handler = fn
      msg, {count, peak} when elem(msg, 0) == :trace ->
        count = count + 1

        peak =
          if Bitwise.band(count, 1023) == 0,
            do: max(peak, elem(Process.info(self(), :message_queue_len), 1)),
            else: peak

        if count == target, do: send(parent, {:drained, Util.now_ns(), peak})
        {count, peak}

      _msg, acc ->
        acc
    end

    {:ok, _} = :dbg.tracer(:process, {handler, {0, 0}})
    {:ok, tracer} = :dbg.get_tracer()
    w = spawn_worker(n)
    {:ok, [{:matched, _, 1}]} = :dbg.p(w, [:c])
    {:ok, [{:matched, _, 1} | _]} = :dbg.tpl(TracerWork, :work, 1, @match_spec)
    {t0, t1, qlen, busy0} = go(w, tracer)
    {t2, peak} = await_drained()
    cpu = busy_ns() - busy0
    %{caller: t1 - t0, total: t2 - t0, cpu: cpu, backlog: max(peak, qlen)}
  end

  defp measure(:orig, n) do
    parent = self()
    table = :ets.new(:orig_trace_events, [:ordered_set, :public])
    tracer = spawn(fn -> orig_tracer(table, parent, 2 * n, 0, 0) end)
    w = spawn_worker(n)
    1 = :erlang.trace_pattern(@mfa, @match_spec, [:local])
    1 = :erlang.trace(w, true, [:call, {:tracer, tracer}])
    {t0, t1, qlen, busy0} = go(w, tracer)
    {t2, peak} = await_drained()
    cpu = busy_ns() - busy0
    stored = :ets.info(table, :size)
    send(tracer, :stop)
    :ets.delete(table)
    %{caller: t1 - t0, total: t2 - t0, cpu: cpu, backlog: max(peak, qlen), stored: stored}
  end

  defp await_drained do
    receive do
      {:drained, t2, peak} -> {t2, peak}
    after
      120_000 -> raise "the tracer did not drain its mailbox"
    end
  end

  # The original ElixirScope design: the tracer process turns each trace message into an
  # event map (id, type, timestamp, pid, mfa, args or result) in an ETS :ordered_set.
  defp orig_tracer(table, parent, target, count, peak) do
    receive do
      {:trace, pid, :call, {m, f, args}} ->
        orig_insert(table, %{type: :call, pid: pid, module: m, function: f, args: args})
        orig_next(table, parent, target, count, peak)

      {:trace, pid, :return_from, {m, f, a}, result} ->
        orig_insert(table, %{
          type: :return,
          pid: pid,
          module: m,
          function: f,
          arity: a,
          result: result
        })

        orig_next(table, parent, target, count, peak)

      :stop ->
        :ok
    end
  end

  defp orig_next(table, parent, target, count, peak) do
    count = count + 1

    peak =
      if Bitwise.band(count, 1023) == 0,
        do: max(peak, elem(Process.info(self(), :message_queue_len), 1)),
        else: peak

    if count == target, do: send(parent, {:drained, Util.now_ns(), peak})
    orig_tracer(table, parent, target, count, peak)
  end

  defp orig_insert(table, event) do
    id = :erlang.unique_integer([:monotonic, :positive])
    ts = System.monotonic_time()
    :ets.insert(table, {{ts, id}, Map.merge(event, %{id: id, timestamp: ts})})
  end

  ## Table 2: GenServer ping-pong ------------------------------------------------------

  defp ping_table do
    Util.progress(
      "table 2: 1 warm-up round + #{@ping_reps} rounds x #{length(@levels)} configurations, " <>
        "#{Util.int(@pings)} calls"
    )

    for rep <- 0..@ping_reps, level <- Util.rotate(@levels, rep), reduce: %{} do
      acc ->
        sample = ping(level, @pings)
        reset()
        :erlang.garbage_collect()
        if rep == 0, do: acc, else: Map.update(acc, level, [sample], &[sample | &1])
    end
  end

  defp ping(level, calls) do
    parent = self()

    {:ok, server} =
      GenServer.start(PingServer, if(level in [:untraced_kib, :states_kib], do: :kib, else: 0))

    client =
      spawn(fn ->
        receive do
          :go -> :ok
        end

        t0 = Util.now_ns()
        ping_loop(server, calls)
        send(parent, {:ping_done, Util.now_ns() - t0})
      end)

    {setup_ns, extra} =
      cond do
        level in @untraced ->
          {0, %{}}

        level == :noop_floor ->
          noop_like_es(server, client)
          {0, %{}}

        true ->
          Util.time_ns(fn ->
            opts =
              case level do
                :full_nocap -> [tracing_level: :full] ++ @no_caps
                :states_kib -> [tracing_level: :states_only] ++ @no_caps
                level -> [tracing_level: level]
              end

            :ok = ElixirScope.setup([max_events: 2_000_000] ++ opts)
            :ok = ElixirScope.trace_genserver(server)
            {trace_process_ns, :ok} = Util.time_ns(fn -> ElixirScope.trace_process(client) end)
            %{trace_process_ns: trace_process_ns}
          end)
      end

    send(client, :go)

    ns =
      receive do
        {:ping_done, ns} -> ns
      after
        120_000 -> raise "ping-pong did not finish"
      end

    extra =
      if level in @without_es do
        extra
      else
        stats = TraceDB.stats()

        Map.merge(extra, %{
          stored: stats.appended,
          by_type: stats.by_type,
          governor_step: ElixirScope.Governor.status().step,
          setup_ns: setup_ns
        })
      end

    GenServer.stop(server)
    Map.put(extra, :ns, ns)
  end

  # The runtime's own cost of what :full traces in the ping-pong: the flags that
  # trace_genserver/trace_process set at :full on the server and the client, and the
  # return-tracing patterns on the server's callbacks (ElixirScope.Tracing), with the
  # no-op tracer.
  defp noop_like_es(server, client) do
    for {f, a} <- @gen_server_callbacks,
        do: :erlang.trace_pattern({PingServer, f, a}, @returns_ms, [:local])

    for pid <- [server, client],
        do:
          1 =
            :erlang.trace(pid, true, [
              :procs,
              :send,
              :receive,
              :call,
              {:tracer, :es_noop_tracer, []}
            ])
  end

  defp ping_loop(_server, 0), do: :ok

  defp ping_loop(server, n) do
    GenServer.call(server, :ping)
    ping_loop(server, n - 1)
  end

  ## Printing --------------------------------------------------------------------------

  defp values(samples, key), do: Enum.map(samples, &Map.fetch!(&1, key))
  defp med(samples, key), do: samples |> values(key) |> Util.median()
  defp uniq_join(samples, key), do: samples |> values(key) |> Enum.uniq() |> Enum.join(",")
  defp ints(samples, key), do: samples |> values(key) |> Enum.map_join(" ", &Util.int/1)

  defp print_calls(calls) do
    per_call = fn row, key -> med(calls[row], key) / @n end
    total = Map.new(@rows, &{&1, per_call.(&1, :total)})
    floor = total.noop

    rows =
      for row <- @rows -- @diagnostics do
        samples = calls[row]

        backlog =
          case row do
            r when r in [:dbg, :orig] -> Util.int(med(samples, :backlog))
            r when is_map_key(@es_opts, r) -> "0"
            _ -> "-"
          end

        [
          @names[row],
          Util.f(per_call.(row, :caller), 1),
          Util.f(total[row], 1),
          Util.f(Enum.min(values(samples, :total)) / @n, 1),
          Util.f(per_call.(row, :cpu), 1),
          Util.f(total[row] - total.untraced, 1),
          Util.ratio(total[row] / floor),
          Util.ratio(total[row] / total.es),
          Util.ratio(total[row] / total.es_nocap),
          backlog
        ]
      end

    Util.table(
      "1. Traced calls: #{Util.int(@n)} calls of TracerWork.work/1 by one process " <>
        "(call + return events), median of #{@reps}",
      [
        "tracer",
        "caller ns/call",
        "ns/call",
        "min ns/call",
        "CPU ns/call",
        "overhead ns",
        "vs floor",
        "vs ES",
        "vs ES caps raised",
        "peak backlog"
      ],
      rows
    )

    es = calls.es
    nc = calls.es_nocap
    s = hd(nc)

    IO.puts("""
      ns/call: until every event is recorded; for the process tracers, until the tracer has \
    handled all #{Util.int(2 * @n)} trace messages (the caller's own time is beside it).
      CPU ns/call: busy time of all schedulers together (the tracer process runs on the \
    other core).
      peak backlog: the largest mailbox length of the tracer process (sampled every 1024 \
    messages and when the caller's loop ends).

      ElixirScope :full, :call events recorded in each run (expected #{Util.int(@n)}):
        default governor:     #{ints(es, :calls)}  (:return #{ints(es, :returns)})
        governor caps raised: #{ints(nc, :calls)}  (:return #{ints(nc, :returns)})
      governor, default caps: step changes per run #{ints(es, :governor_changes)}, step at end \
    #{uniq_join(es, :governor_step)}, events sampled out per run #{ints(es, :sampled_out)}
      governor, caps raised:  step changes per run #{ints(nc, :governor_changes)}, step at end \
    #{uniq_join(nc, :governor_step)}
      first :call event:  #{inspect(Map.drop(hd(s.first), [:pid]))}
      last :return event: #{inspect(Map.drop(hd(s.last), [:pid]))}
      process tracer + ETS, rows in the table per run: #{ints(calls.orig, :stored)} \
    (expected #{Util.int(2 * @n)})

      ElixirScope / floor:                   #{Util.ratio(total.es / floor)} default governor, \
    #{Util.ratio(total.es_nocap / floor)} caps raised, \
    #{Util.ratio(total.es_warm / floor)} caps raised with the store filled once   (target <= 1.6x, caps raised)
      (process tracer + ETS) / ElixirScope:  #{Util.ratio(total.orig / total.es)} default governor, \
    #{Util.ratio(total.orig / total.es_nocap)} caps raised   (target >= 2.5x in >= 4 of 5 rounds: \
    #{rounds_at_least(calls.orig, calls.es_nocap, 2.5)} of #{@reps} rounds, caps raised)
      :dbg (counting only) / ElixirScope:    #{Util.ratio(total.dbg / total.es)} default governor, \
    #{Util.ratio(total.dbg / total.es_nocap)} caps raised
      ElixirScope backlog: 0 (no tracer process: the traced process stores its own events)\
    """)

    print_breakdown(calls, total)
  end

  # Rounds (samples of the same round pair up: both lists are built newest first) in
  # which a's time is at least k times b's.
  defp rounds_at_least(a, b, k) do
    Enum.zip(a, b) |> Enum.count(fn {x, y} -> x.total >= k * y.total end)
  end

  # The diagnostic rows, and ElixirScope's time over the floor taken apart with them.
  defp print_breakdown(calls, total) do
    floor = total.noop

    rows =
      for row <- [:noop | @diagnostics] ++ [:es_nocap] do
        [
          @names[row],
          Util.f(total[row], 1),
          Util.f(Enum.min(values(calls[row], :total)) / @n, 1),
          Util.f(total[row] - floor, 1),
          Util.ratio(total[row] / floor)
        ]
      end

    Util.table(
      "1b. Where ElixirScope's time goes: diagnostic rows (same rounds as table 1)",
      ["row", "ns/call", "min ns/call", "over floor ns", "vs floor"],
      rows
    )

    un = calls.es_unstored
    l2 = calls.es_l2
    part = fn a, b -> String.pad_leading(Util.f(total[a] - total[b], 1), 7) end

    IO.puts("""
      ES, nothing stored: :call events stored per run #{ints(un, :calls)}, sampled out \
    #{ints(un, :sampled_out)} (expected 0 and #{Util.int(@n)})
      ES, store within L2: :call events appended per run #{ints(l2, :calls)} \
    (expected #{Util.int(@n)}; the ring wraps, the oldest are pruned)
      ES, store filled once: the worker's :call events stored per run \
    #{ints(calls.es_warm, :calls)}, :return #{ints(calls.es_warm, :returns)} (expected \
    #{Util.int(@n)} each: every event recorded)

      ns per call over the floor, by difference of medians:
        the runtime copying a resource state (resource state - floor):      #{part.(:noop_resource, :noop)}
        our callbacks, nothing stored (nothing stored - resource state):    #{part.(:es_unstored, :noop_resource)}
        encoding + storing two events in cache (within L2 - nothing stored): #{part.(:es_l2, :es_unstored)}
        the store's memory not in cache (filled once - within L2):           #{part.(:es_warm, :es_l2)}
        first writes to the store's fresh pages (caps raised - filled once): #{part.(:es_nocap, :es_warm)}
      ES with nothing stored / floor: #{Util.ratio(total.es_unstored / floor)}; the 1.6x target \
    leaves #{Util.f(1.6 * floor - total.es_unstored, 1)} ns per call for encoding and storing \
    the call's two events.\
    """)
  end

  defp print_pings(pings) do
    rows =
      for level <- @levels do
        samples = pings[level]
        ns = med(samples, :ns)

        base =
          med(
            if(level in [:untraced_kib, :states_kib], do: pings.untraced_kib, else: pings.untraced),
            :ns
          )

        {events, step, tp} =
          if level in @without_es do
            {"-", "-", "-"}
          else
            {Util.int(med(samples, :stored)), uniq_join(samples, :governor_step),
             Util.int(med(samples, :trace_process_ns) / 1_000_000)}
          end

        name =
          case level do
            :untraced -> "untraced"
            :noop_floor -> "no-op tracer, :full's flags and patterns (floor)"
            :full_nocap -> "ElixirScope :full, governor caps raised"
            :untraced_kib -> "untraced, 1 KiB state"
            :states_kib -> "ES :states_only, 1 KiB state, caps raised"
            level -> "ElixirScope #{inspect(level)}"
          end

        [
          name,
          Util.int(@pings * 1.0e9 / ns),
          Util.f(ns / @pings / 1000, 2),
          Util.ratio(ns / base),
          events,
          step,
          tp
        ]
      end

    Util.table(
      "2. GenServer ping-pong: #{Util.int(@pings)} GenServer.call round trips, client and " <>
        "server traced, median of #{@ping_reps}",
      [
        "configuration",
        "calls/s",
        "us/call",
        "slowdown",
        "events stored",
        "governor step at end",
        "trace_process ms"
      ],
      rows
    )

    IO.puts("""
      events stored: events appended to the store during the run (median); governor step: \
    ElixirScope.Governor.status().step after the run. The 1 KiB rows are against their own \
    untraced row.
      trace_process ms: ElixirScope.trace_process(client) on the (non-GenServer) client process.\
    """)

    floor = med(pings.noop_floor, :ns)
    full = med(pings.full, :ns)
    base = med(pings.untraced, :ns)

    IO.puts("""
      :full / untraced throughput: #{Util.ratio(base / full)} (target >= 0.5x); the runtime's \
    floor for the same trace events: #{Util.ratio(base / floor)} (no-op tracer); ElixirScope \
    :full over that floor: #{Util.f((full - floor) / @pings, 0)} ns per round trip.\
    """)

    for level <- @levels -- @without_es do
      bt = hd(pings[level]).by_type |> Enum.filter(fn {_, c} -> c > 0 end) |> Enum.sort()
      IO.puts("  #{inspect(level)} events by type (one run): #{inspect(bt)}")
    end
  end
end

Logger.configure(level: :error)
Bench.TracerBench.run()
