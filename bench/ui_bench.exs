# ElixirScope web UI benchmark: the targets of the UI (issue 18), measured on this
# machine, each with its comparison in the same run.
#
#   MIX_ENV=prod mix run bench/ui_bench.exs      (make bench runs it; needs chromium and
#                                                 npm ci in test/ui_browser)
#
#  1. Core assets: bytes gzipped, as the server sends them (target ≤ 100 KB).
#  2. Every API call behind a page, server-side (the Router's work: parameters, the
#     store, JSON), with 1,000,000 stored events and 10,000 live processes (target
#     < 50 ms), and the same calls at 10,000 stored events: the ratio shows what the
#     store's size costs.
#  3. The processes view's first rows, from opening the page in chromium (target
#     300 ms), at the same size.
#  4. Stepping a state timeline whose states are ~100 KB with the tree open three
#     levels: the re-render once the step's data is in the page (target 16 ms), in
#     chromium, and the CPU time of the tree's work in V8 against building every row.
#  5. The live tail for 60 s while 5,000 events/s are stored: rows in the page (≤ 1,000)
#     and the page's JS heap (flat), sampled after a forced GC every 5 s.
#
# Progress goes to stderr, the tables to stdout.

Code.require_file("support/bench_util.exs", __DIR__)

defmodule Bench.UI.Mod do
  @moduledoc false
  # A traced module: the calls view's data.
  def handle(n) when rem(n, 50) == 0, do: raise(ArgumentError, "every 50th")
  def handle(n), do: step(n) + 1
  def step(n), do: :erlang.phash2(n)
end

defmodule Bench.UI.Big do
  @moduledoc false
  # A GenServer whose state is ~100 KB: 1,000 entries of a few fields; each call
  # changes one entry.
  use GenServer
  def start, do: GenServer.start(__MODULE__, nil)

  @impl true
  def init(_) do
    {:ok,
     Map.new(1..1_000, fn i ->
       {"user-#{i}", %{id: i, name: "User number #{i}", score: 0, tags: [:a, :b], seen: nil}}
     end)}
  end

  @impl true
  def handle_call({:touch, i}, _from, state),
    do: {:reply, :ok, update_in(state, ["user-#{i}", :score], &(&1 + 1))}
end

defmodule Bench.UI do
  @moduledoc false
  alias Bench.Util
  alias ElixirScope.{TraceDB, UI}
  alias ElixirScope.UI.{Assets, Router}

  @live 10_000
  @events 1_000_000
  @samples 15
  @node_script Path.expand("ui_browser_bench.mjs", __DIR__)
  @tree_script Path.expand("ui_tree_bench.mjs", __DIR__)

  def run do
    Util.start_clock()
    header()
    {:ok, _} = Application.ensure_all_started(:inets)
    assets()
    idle = for _ <- 1..@live, do: spawn(fn -> receive do: (:stop -> :ok) end)

    :ok =
      ElixirScope.setup(
        ui: [port: 0],
        max_events: @events + 200_000,
        max_bytes: 1024 * 1024 * 1024,
        max_payload_bytes: 512 * 1024,
        max_events_per_sec: 10_000_000,
        max_bytes_per_sec: 1024 * 1024 * 1024
      )

    app = app()
    fill(idle, 10_000 - TraceDB.stats().stored)
    small = api_times(app)
    Util.progress("filling the store to #{Util.int(@events)} events")
    fill(idle, @events - TraceDB.stats().stored)
    large = api_times(app)
    print_api(small, large)
    browser_first_rows()
    browser_stepping(app)
    browser_tail()
    Enum.each(idle, &send(&1, :stop))
    ElixirScope.stop(keep_data: false)
    Util.progress("done")
  end

  defp header do
    IO.puts("""
    ElixirScope web UI benchmark
      Elixir #{System.version()}, OTP #{System.otp_release()}, #{System.schedulers_online()} schedulers, \
    MIX_ENV=#{Mix.env()}, chromium #{chromium_version()}
    """)
  end

  defp chromium_version do
    case System.cmd("/usr/bin/chromium", ["--version"], stderr_to_stdout: true) do
      {out, 0} ->
        out |> String.split("\n") |> Enum.find("?", &(&1 =~ "Chromium")) |> String.trim()

      _ ->
        "?"
    end
  rescue
    _ -> "absent"
  end

  ## 1. assets

  defp assets do
    core =
      for {p, raw, gz} <- Assets.sizes(),
          Path.extname(p) in ~w(.html .js .mjs .css),
          do: {p, raw, gz}

    raw = core |> Enum.map(&elem(&1, 1)) |> Enum.sum()
    gz = core |> Enum.map(&elem(&1, 2)) |> Enum.sum()

    IO.puts("""
    1. Core assets: #{length(core)} files, #{kib(raw)} KiB raw, #{kib(gz)} KiB gzipped \
    (target ≤ 100 KB gzipped: #{if gz <= 100 * 1024, do: "holds", else: "MISSED"})
    """)
  end

  defp kib(bytes), do: r(bytes / 1024, 1)

  # Rounded, integers too (browser timings come as either).
  defp r(x, digits), do: Float.round(x / 1, digits)

  ## The application the pages look at

  defp app do
    {:ok, big} = Bench.UI.Big.start()
    :ok = ElixirScope.trace_genserver(big)
    for i <- 1..40, do: GenServer.call(big, {:touch, i})
    :ok = ElixirScope.trace_module(Bench.UI.Mod)
    caller = self()
    peer = spawn(fn -> pong() end)

    # A traced worker: 400 calls of the traced module, then 200 pings to the peer.
    worker =
      spawn(fn ->
        receive do: (:go -> :ok)

        for n <- 1..400 do
          try do
            Bench.UI.Mod.handle(n)
          rescue
            _ -> :error
          end
        end

        for i <- 1..200 do
          send(peer, {:ping, self(), i})
          receive do: ({:pong, ^i} -> :ok)
        end

        send(caller, :worker_done)
        receive do: (:stop -> :ok)
      end)

    :ok = ElixirScope.trace_process(worker)
    :ok = ElixirScope.trace_process(peer)
    send(worker, :go)
    receive do: (:worker_done -> :ok)
    Process.sleep(200)
    states = TraceDB.get_state_history(big)
    %{big: big, worker: worker, peer: peer, state_ids: Enum.map(states, & &1.id)}
  end

  defp pong do
    receive do
      {:ping, from, i} ->
        send(from, {:pong, i})
        pong()
    end
  end

  # Events over the idle processes, about the shapes the tracer records: messages
  # between neighbours, calls and returns, states, and a few exits and crashes.
  defp fill(_pids, n) when n <= 0, do: :ok

  defp fill(pids, n) do
    pids = List.to_tuple(pids)
    size = tuple_size(pids)
    base = TraceDB.stats().appended

    for i <- 1..n do
      j = base + i
      pid = elem(pids, rem(j, size))

      case rem(j, 10) do
        k when k < 4 ->
          to = elem(pids, rem(j + 1, size))
          TraceDB.store_event(:send, %{from_pid: pid, to_pid: to, message: {:work, j, "payload"}})

        k when k < 6 ->
          TraceDB.store_event(:receive, %{pid: pid, message: {:work, j, "payload"}})

        7 ->
          TraceDB.store_event(:call, %{
            pid: pid,
            module: Bench.Load,
            function: :run,
            arity: 1,
            args: [j]
          })

        8 ->
          TraceDB.store_event(:return, %{
            pid: pid,
            module: Bench.Load,
            function: :run,
            arity: 1,
            result: :ok,
            duration: 1000 + rem(j, 5000)
          })

        9 when rem(j, 1000) == 9 ->
          TraceDB.store_event(:crash, %{pid: pid, reason: {:badarith, []}})

        _ ->
          TraceDB.store_event(:state, %{
            pid: pid,
            module: Bench.Load,
            state: %{n: j},
            callback: :handle_cast,
            cause: :tick
          })
      end

      if rem(i, 200_000) == 0, do: Util.progress("#{Util.int(i)} of #{Util.int(n)} events stored")
    end

    :ok
  end

  ## 2. API calls, server-side

  defp api_times(app) do
    stats = TraceDB.stats()

    Util.progress(
      "API calls at #{Util.int(stats.stored)} stored events, #{Util.int(length(Process.list()))} processes"
    )

    p = &(&1 |> :erlang.pid_to_list() |> List.to_string())
    [call | _] = TraceDB.query_events(type: :call, pid: app.worker, limit: 1)
    [last | _] = TraceDB.query_events(order: :desc, limit: 1)

    calls = [
      {"meta", []},
      {"processes (live, by memory)", [sort: "memory", limit: 50]},
      {"processes (live, search)", [q: "elixir_scope", limit: 50]},
      {"processes (recorded)", [view: "recorded", limit: 50]},
      {"processes (exited)", [view: "exited", limit: 50]},
      {"process", [pid: p.(app.big)]},
      {"states", [pid: p.(app.big)]},
      {"state (100 KB)", [pid: p.(app.big), id: List.last(app.state_ids)]},
      {"messages (2 pids + density)", [pids: "#{p.(app.worker)},#{p.(app.peer)}", overview: 1]},
      {"peers", [pid: p.(app.worker)]},
      {"calls (tree)", [pid: p.(app.worker)]},
      {"call", [id: call.id]},
      {"modules", []},
      {"performance", [module: "Bench.UI.Mod"]},
      {"slowest", [limit: 20]},
      {"crashes", [limit: 10]},
      {"tail (1,000)", [limit: 1000]},
      {"event", [id: last.id]},
      {"phoenix/requests", []},
      {"phoenix/live_views", []},
      {"export/mermaid (2 pids)", [pids: "#{p.(app.worker)},#{p.(app.peer)}"]},
      {"export/chrome (2 pids)", [pids: "#{p.(app.worker)},#{p.(app.peer)}"]}
    ]

    config = %{
      token: nil,
      check_host: true,
      allowed_hosts: [],
      allowed_origins: [],
      csrf: UI.csrf_token(),
      cookie: "c"
    }

    for {label, params} <- calls do
      path = label |> String.split(" ") |> hd()
      query = URI.encode_query(params)

      request = %{
        method: "GET",
        path: ["api" | String.split(path, "/")],
        query: query,
        headers: %{"host" => "127.0.0.1"},
        body: ""
      }

      times =
        for _ <- 1..@samples do
          {ns, {status, _h, body}} = Util.time_ns(fn -> Router.handle(request, config) end)
          unless status == 200, do: raise("#{label}: #{status} #{String.slice(body, 0, 200)}")
          ns
        end

      {label, times, stats.stored}
    end
  end

  defp print_api(small, large) do
    IO.puts("""
    2. API calls, server-side (median and max of #{@samples}; Router.handle/2: checks, store, JSON),
       #{Util.int(@live)} idle processes besides the VM's own
    | call | #{Util.int(elem(hd(small), 2))} events: median | 1M events: median | 1M: max | 1M / small | < 50 ms at 1M |
    |---|---|---|---|---|---|\
    """)

    for {{label, s, _}, {label, l, _}} <- Enum.zip(small, large) do
      ms = fn ns -> r(ns / 1_000_000, 2) end
      ratio = r(Util.median(l) / max(Util.median(s), 1), 2)

      IO.puts(
        "| #{label} | #{ms.(Util.median(s))} ms | #{ms.(Util.median(l))} ms | #{ms.(Enum.max(l))} ms | " <>
          "#{ratio}× | #{if Enum.max(l) < 50_000_000, do: "yes", else: "NO (max)"} |"
      )
    end

    IO.puts("")
  end

  ## 3-5. In chromium

  defp node!(mode, plan) do
    path = Path.join(System.tmp_dir!(), "ui_bench_#{System.unique_integer([:positive])}.json")
    File.write!(path, ElixirScope.JSON.encode!(Map.put(plan, :url, UI.url())))
    {out, status} = System.cmd("node", [@node_script, mode, path], stderr_to_stdout: true)
    File.rm(path)
    unless status == 0, do: raise("the browser run failed:\n#{out}")
    out |> String.split("\n", trim: true) |> List.last() |> ElixirScope.JSON.decode!()
  end

  defp browser_first_rows do
    Util.progress("processes view, first rows")
    r = node!("first-rows", %{runs: 7})
    [cold | warm] = r["first_rows_ms"]

    IO.puts("""
    3. Processes view: first rows on screen, from navigation start, #{Util.int(@live)}+ live processes, \
    #{Util.int(TraceDB.stats().stored)} events
       first load in a fresh browser (nothing cached or compiled yet): #{r(cold, 1)} ms; the #{length(warm)} \
    loads after it: median #{r(Util.median(warm), 1)} ms, max #{r(Enum.max(warm), 1)} ms \
    (the API call alone: median #{r(Util.median(r["api_ms"]), 1)} ms in the page) — \
    target 300 ms: #{if Util.median(warm) <= 300, do: "holds (median)", else: "MISSED"}
       where the time goes (ms from navigation start, median): #{breakdown(r["breakdown"])}
    """)
  end

  defp breakdown(runs) do
    at = fn key -> r(Util.median(Enum.map(runs, &pick(&1[key]))) / 1, 1) end

    "page #{at.("html")}, scripts and styles #{at.("scripts_done")}, DOMContentLoaded " <>
      "#{at.("dom_content_loaded")}, /api/meta #{at.("meta")}, /api/processes sent " <>
      "#{r(Util.median(Enum.map(runs, &hd(&1["processes"]))) / 1, 1)} and answered " <>
      "#{at.("processes")}, rows #{at.("first_rows")}"
  end

  defp pick([_start, stop]), do: stop
  defp pick(v), do: v

  defp browser_stepping(app) do
    Util.progress("state timeline stepping")
    pid = app.big |> :erlang.pid_to_list() |> List.to_string()
    size = :erlang.external_size(List.last(TraceDB.get_state_history(app.big)).state)
    r = node!("stepping", %{pid: pid, ids: app.state_ids, steps: 30})
    cpu = tree_cpu(pid, List.last(app.state_ids))
    commits = Enum.map(r["renders"], & &1["commit"])
    frames = Enum.map(r["renders"], & &1["painted"])

    IO.puts("""
    4. State timeline: #{length(commits)} steps (→) through states of #{kib(size)} KiB \
    (#{Util.int(r["tree_rows"])} tree rows open, 3 levels), after the step's data was in the page
       re-render (key to commit): median #{r(Util.median(commits), 2)} ms, max #{r(Enum.max(commits), 2)} ms; \
    key to painted (layout and paint included): median #{r(Util.median(frames), 2)} ms, \
    p90 #{r(Enum.at(Enum.sort(frames), div(length(frames) * 9, 10)), 2)} ms, max #{r(Enum.max(frames), 2)} ms \
    — target 16 ms (re-render): #{if Enum.at(Enum.sort(commits), div(length(commits) * 9, 10)) < 16, do: "holds (p90)", else: "MISSED (p90)"}
       CPU time of a step's tree in V8 (node, the state as the API answers it, #{kib(cpu["bytes"])} KiB of JSON): \
    #{r(cpu["windowed_ms"], 2)} ms building the drawn rows (#{Util.int(cpu["rows"])} open) against \
    #{r(cpu["all_rows_ms"], 2)} ms building every row (the first version): \
    #{r(cpu["all_rows_ms"] / cpu["windowed_ms"], 1)}× less; parsing the answer (done while fetching ahead): \
    #{r(cpu["parse_ms"], 2)} ms
       for comparison, a jump to a step that was not fetched ahead (Home): \
    #{r(r["jump"]["painted"], 1)} ms from the key to painted (the fetch included)
    """)
  end

  # The tree's CPU cost per step, apart from the browser (see bench/ui_tree_bench.mjs).
  defp tree_cpu(pid, id) do
    config = %{token: nil, check_host: false, csrf: UI.csrf_token(), cookie: nil}

    request = %{
      method: "GET",
      path: ["api", "state"],
      query: URI.encode_query(pid: pid, id: id),
      headers: %{},
      body: ""
    }

    {200, _, body} = Router.handle(request, config)

    path =
      Path.join(System.tmp_dir!(), "ui_bench_state_#{System.unique_integer([:positive])}.json")

    File.write!(path, body)
    {out, 0} = System.cmd("node", [@tree_script, path], stderr_to_stdout: true)
    File.rm(path)
    out |> String.split("\n", trim: true) |> List.last() |> ElixirScope.JSON.decode!()
  end

  defp browser_tail do
    seconds = 60
    Util.progress("live tail, #{seconds} s at 5,000 events/s")
    {:ok, peer} = Agent.start(fn -> 0 end)
    gen = spawn(fn -> generate(peer, 5_000, System.monotonic_time(:millisecond), 0) end)
    before = TraceDB.stats().appended
    r = node!("tail", %{seconds: seconds})
    stored = TraceDB.stats().appended - before
    Process.exit(gen, :kill)
    samples = r["samples"]
    heaps = Enum.map(samples, & &1["heap"])
    rows = Enum.map(samples, & &1["rows"])

    IO.puts("""
    5. Live tail for #{seconds} s: #{Util.int(stored)} events stored meanwhile (#{Util.int(div(stored, seconds))}/s), \
    #{r["polls"]} polls
       rows in the page: max #{Enum.max(rows)} (≤ 1,000: #{if Enum.max(rows) <= 1000, do: "holds", else: "MISSED"}); \
    JS heap after GC every 5 s (MB): #{Enum.map_join(heaps, " ", &r(&1 / 1_048_576, 1))}
       heap at the end / at 10 s: #{r(List.last(heaps) / Enum.at(heaps, 1), 2)}; newest event shown \
    at the end was #{r["lag_ids"]} ids behind the store's newest
    """)
  end

  # Stores `rate` events per second from now on (catching up every 10 ms).
  defp generate(peer, rate, t0, sent) do
    due = div((System.monotonic_time(:millisecond) - t0) * rate, 1000)

    for i <- sent..(due - 1)//1,
        do:
          TraceDB.store_event(:send, %{
            from_pid: self(),
            to_pid: peer,
            message: {:tick, i, "some payload of a realistic size"}
          })

    Process.sleep(10)
    generate(peer, rate, t0, max(due, sent))
  end
end

Bench.UI.run()
