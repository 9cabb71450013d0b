# What ElixirScope costs a real Phoenix application: requests/s of the application of
# test/phoenix_app (Phoenix 1.7 / Bandit, built by `make phoenix-app` from
# ../shared/phoenix; skipped, saying so, when it is not there).
#
#   make bench   (or: make phoenix-app && MIX_ENV=prod mix run bench/phoenix_bench.exs)
#
# The request: GET /cart with keep-alive, a JSON endpoint whose controller calls the
# GenServer ScopeApp.Cart (ScopeAppWeb.CartController.show/2), driven by ApacheBench
# (`ab -k -c 8`, Debian's apache2-utils) at the load that saturates this machine, with
# the application's Logger at :warning. Each sample is a fresh boot of the application
# in a peer node (ElixirScope.Test.PhoenixApp), in one of these configurations:
#
#   untraced               no ElixirScope
#   ElixirScope            setup(phoenix: true) from the application's application.ex, at
#                          the default level and caps (every default capture: crashes,
#                          lifecycle, ...), and trace_genserver(ScopeApp.Cart)
#   phoenix: true only     the same without trace_genserver (diagnostic)
#   store filled once      as ElixirScope, with a store of 128k events and 32 MiB that
#                          the warm-up requests (45,000 of them) fill past both its
#                          rings: no first writes to fresh pages in the measured requests
#                          (a first write to a page costs ~10 us on the Firecracker VM we
#                          measure on: build/bench_store prints it) (diagnostic)
#   Cart traced only       setup() (no phoenix: true) + trace_genserver (diagnostic)
#   setup() only           setup() alone: tracing and crash capture running, nothing
#                          traced by name (diagnostic)
#
# The configurations are interleaved (rotated each round); medians of the rounds.
#
# Beside requests/s: the CPU time (user + system) the application's OS process spent per
# request, which other work on a shared machine inflates less than wall time.
#
# Inside the booted node, in the same samples:
#   * a traced ScopeApp.Cart.show/0 call against an untraced one (ns per call, N calls
#     by one process, in the ElixirScope and untraced boots), and, in the untraced
#     boots, the same call with the Cart traced as trace_genserver traces it but by the
#     no-op tracer (the runtime's floor);
#   * the telemetry handler (ElixirScope.Phoenix.Capture.handle_event/4) per event, on
#     the four events (endpoint and router start and stop) of a real request to /cart,
#     captured with their real metadata in that node, each called in a loop.
#
# Then the table of where a traced request's time goes. The load average is printed at
# the start (the machine is shared: ratios within a run are what count).

Code.require_file("support/bench_util.exs", __DIR__)
Code.require_file("../test/support/phoenix_app.ex", __DIR__)

# The no-op erl_tracer of the tracer bench (bench/noop_tracer.c, built by `make bench`):
# the runtime's own floor for a traced Cart call, in the untraced boots.
{:module, _, noop_bin, _} =
  defmodule :es_noop_tracer do
    @moduledoc false
    @on_load :load_nif
    @so Path.expand("../build/otp#{System.otp_release()}/noop_tracer", __DIR__)
    def load_nif, do: :erlang.load_nif(String.to_charlist(@so), 0)
    def enabled(_tag, _state, _tracee), do: :erlang.nif_error(:not_loaded)
    def trace(_tag, _state, _tracee, _term, _opts), do: :erlang.nif_error(:not_loaded)
  end

{:module, _, probe_bin, _} =
  defmodule Bench.PhoenixProbe do
    @moduledoc false
    # Loaded into the application's node (its object code sent there): timings taken
    # where the application runs.

    @doc "ns per ScopeApp.Cart.show/0 call, `n` calls by one fresh process."
    def cart_call_ns(n) do
      task =
        Task.async(fn ->
          for _ <- 1..1000, do: ScopeApp.Cart.show()
          t0 = System.monotonic_time(:nanosecond)
          loop(n)
          (System.monotonic_time(:nanosecond) - t0) / n
        end)

      Task.await(task, 120_000)
    end

    defp loop(0), do: :ok

    defp loop(n) do
      ScopeApp.Cart.show()
      loop(n - 1)
    end

    @doc """
    ns per ScopeApp.Cart.show/0 call with the Cart traced as trace_genserver traces it
    (its trace flags at the default level, return-tracing patterns on its callbacks), by
    the no-op tracer: the runtime's own cost of those trace events.
    """
    def cart_floor_ns(n) do
      pid = Process.whereis(ScopeApp.Cart)
      ms = [{:_, [], [{:return_trace}, {:exception_trace}, {:message, :"$elixir_scope_returns"}]}]
      callbacks = [handle_call: 3, handle_cast: 2, handle_info: 2, handle_continue: 2]
      for {f, a} <- callbacks, do: :erlang.trace_pattern({ScopeApp.Cart, f, a}, ms, [:local])
      :erlang.trace(pid, true, [:procs, :send, :receive, :call, {:tracer, :es_noop_tracer, []}])
      ns = cart_call_ns(n)
      :erlang.trace(pid, false, [:all])
      for {f, a} <- callbacks, do: :erlang.trace_pattern({ScopeApp.Cart, f, a}, false, [:local])
      ns
    end

    @doc "Starts collecting the :phoenix telemetry events of the next requests."
    def collect_start do
      me = self()
      collector = spawn(fn -> collect([], me) end)

      :telemetry.attach_many(
        :bench_collector,
        [
          [:phoenix, :endpoint, :start],
          [:phoenix, :endpoint, :stop],
          [:phoenix, :router_dispatch, :start],
          [:phoenix, :router_dispatch, :stop]
        ],
        &__MODULE__.forward/4,
        collector
      )

      collector
    end

    def forward(event, m, meta, collector), do: send(collector, {:ev, event, m, meta})

    defp collect(acc, owner) do
      receive do
        {:ev, e, m, meta} -> collect([{e, m, meta} | acc], owner)
        {:take, from} -> send(from, {:events, Enum.reverse(acc)})
      end
    end

    @doc "The events collected (the first request's four), the collector detached."
    def collect_take(collector) do
      :telemetry.detach(:bench_collector)
      send(collector, {:take, self()})

      receive do
        {:events, events} -> Enum.take(events, 4)
      after
        5000 -> []
      end
    end

    @doc """
    ns per call of ElixirScope's attached telemetry handler on each event, `n` calls each
    (in this process, as telemetry calls it in the emitting process). The store is cleared
    after, so the events it wrote do not count in later samples.
    """
    def handler_ns(events, n) do
      [%{function: fun, config: config}] =
        :telemetry.list_handlers([])
        |> Enum.filter(&(&1.id == ElixirScope.Phoenix.Capture))
        |> Enum.take(1)

      result =
        for {event, m, meta} <- events do
          for _ <- 1..200, do: fun.(event, m, meta, config)
          t0 = System.monotonic_time(:nanosecond)
          handler_loop(fun, event, m, meta, config, n)
          {event, (System.monotonic_time(:nanosecond) - t0) / n}
        end

      ElixirScope.TraceDB.clear()
      result
    end

    defp handler_loop(_fun, _e, _m, _meta, _config, 0), do: :ok

    defp handler_loop(fun, e, m, meta, config, n) do
      fun.(e, m, meta, config)
      handler_loop(fun, e, m, meta, config, n - 1)
    end

    @doc "Events stored by ElixirScope so far, by type (empty when it is not running)."
    def stored do
      if Process.whereis(ElixirScope.TraceDB), do: ElixirScope.TraceDB.stats().by_type, else: %{}
    end
  end

# (sent to the application's node: a module compiled here has no object code file)
:persistent_term.put(Bench.PhoenixProbe, probe_bin)
:persistent_term.put(:es_noop_tracer, noop_bin)

defmodule Bench.Phoenix do
  @moduledoc false
  alias Bench.Util
  alias ElixirScope.Test.PhoenixApp

  @rounds String.to_integer(System.get_env("PHOENIX_BENCH_ROUNDS", "5"))
  @requests String.to_integer(System.get_env("PHOENIX_BENCH_REQUESTS", "20000"))
  @concurrency 8
  # warm-up requests: enough to fill the :es_filled row's store past both its rings
  @filling 45_000
  @calls 20_000
  @handler_iters 20_000
  @rows [:untraced, :es, :es_filled, :es_phoenix, :es_cart, :es_bare]
  @names %{
    untraced: "untraced",
    es: "ElixirScope (phoenix: true + Cart traced)",
    es_phoenix: "phoenix: true only",
    es_filled: "ElixirScope, store filled once (128k events, 32 MiB)",
    es_cart: "Cart traced only",
    es_bare: "setup() only (nothing traced by name)"
  }
  @boot %{
    untraced: [],
    es: [elixir_scope: [phoenix: true], trace_cart: true],
    es_phoenix: [elixir_scope: [phoenix: true]],
    es_filled: [
      elixir_scope: [phoenix: true, max_events: 131_072, max_bytes: 32 * 1024 * 1024],
      trace_cart: true
    ],
    es_cart: [elixir_scope: [], trace_cart: true],
    es_bare: [elixir_scope: []]
  }

  def run do
    Util.start_clock()
    {load, _} = System.cmd("cat", ["/proc/loadavg"])

    IO.puts("""
    ElixirScope in a real Phoenix application (GET /cart: controller -> GenServer call)
      Elixir #{System.version()}, OTP #{System.otp_release()}, #{System.schedulers_online()} schedulers, \
    load average #{load |> String.split() |> Enum.take(3) |> Enum.join(" ")}\
    """)

    cond do
      not PhoenixApp.available?() ->
        IO.puts("""
          SKIPPED: #{PhoenixApp.skip_reason()}.
          (../shared/phoenix holds the Phoenix sources; `make phoenix-app` builds the application.)
        """)

      System.find_executable("ab") == nil ->
        IO.puts(
          "  SKIPPED: ApacheBench (`ab`, Debian's apache2-utils) is not installed: run `make setup`."
        )

      true ->
        samples = measure()
        print(samples)
    end
  end

  defp measure do
    Util.progress(
      "#{@rounds} rounds x #{length(@rows)} configurations (fresh boot each), " <>
        "#{Util.int(@requests)} requests at -c #{@concurrency}"
    )

    for round <- 1..@rounds, row <- Util.rotate(@rows, round - 1), reduce: %{} do
      acc ->
        sample = sample(row)
        Util.progress("round #{round} #{row}: #{Util.int(sample.rps)} requests/s")
        Map.update(acc, row, [sample], &[sample | &1])
    end
  end

  defp sample(row) do
    app = PhoenixApp.start!(@boot[row])

    try do
      for mod <- [Bench.PhoenixProbe, :es_noop_tracer] do
        bin = :persistent_term.get(mod)
        {:module, _} = PhoenixApp.call(app, :code, :load_binary, [mod, ~c"#{mod}", bin])
      end

      url = app.url <> "/cart"
      # warm-up, and the four telemetry events of one request
      collector = PhoenixApp.call(app, Bench.PhoenixProbe, :collect_start, [])
      _ = ab(url, 1, 1)
      events = PhoenixApp.call(app, Bench.PhoenixProbe, :collect_take, [collector])
      _ = ab(url, if(row == :es_filled, do: @filling, else: 3000), @concurrency)
      os_pid = PhoenixApp.call(app, :os, :getpid, [])
      cpu0 = cpu_ticks(os_pid)
      rps = ab(url, @requests, @concurrency)
      cpu_us = (cpu_ticks(os_pid) - cpu0) * 1.0e6 / ticks_per_s() / @requests
      stored = PhoenixApp.call(app, Bench.PhoenixProbe, :stored, [])
      call_ns = PhoenixApp.call(app, Bench.PhoenixProbe, :cart_call_ns, [@calls], 120_000)

      floor_ns =
        if row == :untraced,
          do: PhoenixApp.call(app, Bench.PhoenixProbe, :cart_floor_ns, [@calls], 120_000)

      handler =
        if row in [:es, :es_phoenix, :es_filled],
          do:
            PhoenixApp.call(
              app,
              Bench.PhoenixProbe,
              :handler_ns,
              [events, @handler_iters],
              120_000
            )

      %{
        rps: rps,
        cpu_us: cpu_us,
        call_ns: call_ns,
        floor_ns: floor_ns,
        handler: handler,
        stored: stored,
        events: length(events)
      }
    after
      PhoenixApp.stop(app)
    end
  end

  # CPU time (user + system, clock ticks) the application's OS process has used: a
  # request's CPU cost, which the other work on a shared machine does not inflate as
  # it does wall time.
  defp cpu_ticks(os_pid) do
    [_, rest] = String.split(File.read!("/proc/#{os_pid}/stat"), ") ", parts: 2)
    fields = String.split(rest)
    String.to_integer(Enum.at(fields, 11)) + String.to_integer(Enum.at(fields, 12))
  end

  defp ticks_per_s do
    {out, 0} = System.cmd("getconf", ["CLK_TCK"])
    out |> String.trim() |> String.to_integer()
  end

  defp ab(url, n, c) do
    {out, status} =
      System.cmd("ab", ["-q", "-k", "-c", "#{c}", "-n", "#{n}", url], stderr_to_stdout: true)

    if status != 0, do: raise("ab failed: #{out}")

    failed = Regex.run(~r/Failed requests:\s+(\d+)/, out, capture: :all_but_first)
    non2xx = Regex.run(~r/Non-2xx responses:\s+(\d+)/, out, capture: :all_but_first)

    if (failed && failed != ["0"]) || non2xx,
      do: raise("ab: failed or non-2xx responses:\n#{out}")

    [rps] = Regex.run(~r/Requests per second:\s+([\d.]+)/, out, capture: :all_but_first)
    String.to_float(rps)
  end

  defp med(samples, fun), do: samples |> Enum.map(fun) |> Util.median()

  defp print(samples) do
    base = med(samples[:untraced], & &1.rps)
    base_call = med(samples[:untraced], & &1.call_ns)
    base_cpu = med(samples[:untraced], & &1.cpu_us)

    rows =
      for row <- @rows do
        s = samples[row]
        rps = med(s, & &1.rps)
        call = med(s, & &1.call_ns)
        cpu = med(s, & &1.cpu_us)

        [
          @names[row],
          Util.int(rps),
          Util.ratio(rps / base),
          Enum.map_join(Enum.reverse(s), " ", &Util.int(&1.rps)),
          Util.f(cpu, 1),
          Util.ratio(base_cpu / cpu),
          Util.f(call, 0),
          Util.ratio(call / base_call)
        ]
      end

    Util.table(
      "1. Requests/s, GET /cart (ab -k -c #{@concurrency}, #{Util.int(@requests)} requests), median of #{@rounds} fresh boots",
      [
        "configuration",
        "requests/s",
        "vs untraced",
        "each round",
        "app CPU us/req",
        "untraced CPU / this",
        "Cart call ns",
        "call vs untraced"
      ],
      rows
    )

    es_rps = med(samples[:es], & &1.rps)
    es_call = med(samples[:es], & &1.call_ns)
    filled_rps = med(samples[:es_filled], & &1.rps)
    es_cpu = med(samples[:es], & &1.cpu_us)
    filled_cpu = med(samples[:es_filled], & &1.cpu_us)
    IO.puts("  untraced, saturating this machine: #{Util.int(base)} requests/s")

    IO.puts(
      "  app CPU us/req: CPU time of the application's OS process per request (user + system), " <>
        "the cost that sets throughput when the machine is not shared; untraced CPU / this: " <>
        "the throughput ratio it implies (target >= 0.95x): ElixirScope " <>
        "#{Util.ratio(base_cpu / es_cpu)}, with its store filled once #{Util.ratio(base_cpu / filled_cpu)}"
    )

    IO.puts(
      "  ElixirScope with its store filled once / untraced: #{Util.ratio(filled_rps / base)} " <>
        "(the same capture, without first writes to fresh pages)"
    )

    IO.puts(
      "  ElixirScope / untraced: #{Util.ratio(es_rps / base)} requests/s (target >= 0.95x); " <>
        "traced Cart call / untraced: #{Util.ratio(es_call / base_call)} (target <= 1.5x)"
    )

    IO.puts(
      "  events stored by ElixirScope in one boot (after #{Util.int(@requests + 3001)} requests): " <>
        inspect(hd(samples[:es]).stored |> Enum.sort())
    )

    handler = handler_table(samples[:es] ++ samples[:es_phoenix], "a new store (default size)")
    _ = handler_table(samples[:es_filled], "the store filled once")
    breakdown(base, es_rps, base_call, es_call, handler, samples)
  end

  defp handler_table(samples, store) do
    per_event =
      samples
      |> Enum.flat_map(& &1.handler)
      |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))

    order = [
      [:phoenix, :endpoint, :start],
      [:phoenix, :router_dispatch, :start],
      [:phoenix, :endpoint, :stop],
      [:phoenix, :router_dispatch, :stop]
    ]

    rows =
      for e <- order, Map.has_key?(per_event, e) do
        ns = Util.median(per_event[e])
        [Enum.join(e, "."), Util.f(ns, 0), if(ns <= 1000, do: "yes", else: "NO")]
      end

    Util.table(
      "2. The telemetry handler per Phoenix event, writing into #{store} (real metadata of " <>
        "a /cart request; median of #{length(samples)} boots)",
      ["event", "ns/event", "<= 1 us"],
      rows
    )

    medians = for e <- order, Map.has_key?(per_event, e), do: Util.median(per_event[e])
    total = Enum.sum(medians)

    IO.puts(
      "  per request (4 events): #{Util.f(total, 0)} ns; worst event #{Util.f(Enum.max(medians, fn -> 0 end), 0)} ns (target <= 1000 ns each)"
    )

    total
  end

  defp breakdown(base, es_rps, base_call, es_call, handler_total, samples) do
    # ab and the application share the machine's cores: the time per request at
    # saturation is wall time per request (concurrency 8, 2 cores).
    req_ns = 1.0e9 / base
    es_req_ns = 1.0e9 / es_rps
    extra = es_req_ns - req_ns
    call_extra = es_call - base_call
    phoenix_only = 1.0e9 / med(samples[:es_phoenix], & &1.rps) - req_ns
    cart_only = 1.0e9 / med(samples[:es_cart], & &1.rps) - req_ns
    bare_only = 1.0e9 / med(samples[:es_bare], & &1.rps) - req_ns

    floor = med(samples[:untraced], & &1.floor_ns)

    rows = [
      ["untraced request (wall ns per request at saturation)", Util.f(req_ns, 0)],
      ["ElixirScope request", Util.f(es_req_ns, 0)],
      ["  added by ElixirScope", Util.f(extra, 0)],
      ["  of which phoenix: true alone (by its boots)", Util.f(phoenix_only, 0)],
      ["  of which Cart traced alone (by its boots)", Util.f(cart_only, 0)],
      ["  of which setup() alone (by its boots)", Util.f(bare_only, 0)],
      ["telemetry handler, 4 events (measured in the node)", Util.f(handler_total, 0)],
      ["traced Cart call over an untraced one (measured in the node)", Util.f(call_extra, 0)],
      ["  untraced Cart call", Util.f(base_call, 0)],
      ["  traced Cart call", Util.f(es_call, 0)],
      ["  Cart call, same trace flags and patterns, no-op tracer (floor)", Util.f(floor, 0)],
      ["  ElixirScope's own part of the traced call (traced - floor)", Util.f(es_call - floor, 0)]
    ]

    Util.table("3. Where a traced request's time goes (ns, medians)", ["part", "ns"], rows)

    IO.puts(
      "  the 1.5x target for the call leaves #{Util.f(0.5 * base_call, 0)} ns over an untraced call; " <>
        "the runtime's no-op tracer alone takes #{Util.f(floor - base_call, 0)} ns (floor / untraced: " <>
        "#{Util.ratio(floor / base_call)})"
    )

    IO.puts(
      "  (two cores serve ab and the application together: a request's wall ns at saturation is\n" <>
        "   about the CPU ns it takes on two cores / 2; the parts measured in the node are CPU ns of one process)"
    )
  end
end

Bench.Phoenix.run()
