# `make demo` — ElixirScope tracing a small job-queue application.
#
# A supervised queue GenServer hands jobs to workers; one job crashes its worker.
# ElixirScope traces the queue (state + messages), the job module's functions and the
# workers' lifecycles without any change to their code, then we ask what happened.

alias ElixirScope.TraceDB

Code.require_file("app.exs", __DIR__)

# The sample application, as a real OTP application with its own supervision tree.
:ok =
  :application.load(
    {:application, :demo_queue,
     [
       description: ~c"ElixirScope demo",
       vsn: ~c"1.0.0",
       modules: [],
       registered: [],
       applications: [:kernel, :stdlib, :elixir],
       mod: {Demo.App, []}
     ]}
  )

:ok =
  ElixirScope.setup(
    tracing_level: :full,
    max_events: 100_000,
    # The MCP server for AI assistants, on a free loopback port (see the last section).
    ai_integration: true,
    mcp: [port: 0]
  )

{:ok, _} = Application.ensure_all_started(:demo_queue)
queue = Process.whereis(Demo.Queue)
stats = Process.whereis(Demo.Stats)
:ok = ElixirScope.trace_genserver(queue)
:ok = ElixirScope.trace_genserver(stats)
:ok = ElixirScope.trace_module(Demo.Jobs)

for {n, id} <- Enum.with_index([10, 15, -1, 12, 5], 1), do: Demo.Queue.push(%{id: id, n: n})

Process.flag(:trap_exit, true)
workers = for _ <- 1..2, do: Demo.Worker.start(self())
for w <- workers, do: :ok = ElixirScope.trace_process(w)
for w <- workers, do: send(w, :go)
Process.sleep(300)
# A report the stats server cannot handle: it crashes and is restarted.
Demo.Stats.report(self(), "not a job id")
Process.sleep(100)
# Tracing stops; the recording and the MCP server stay.
ElixirScope.stop_tracing()

# Every event tells its wall-clock time (UTC, microseconds): its timestamp plus the
# runtime's time offset then.
at = fn e -> e |> ElixirScope.wall_time() |> DateTime.to_time() |> Time.to_iso8601() end

IO.puts("== Store: #{inspect(Map.take(TraceDB.stats(), [:stored, :bytes]))}")
IO.puts("   events by type: #{inspect(Map.reject(TraceDB.stats().by_type, &(elem(&1, 1) == 0)))}")

IO.puts("\n== The demo application's supervision tree (live)")

for %{application: :demo_queue} = app <- ElixirScope.get_supervision_tree() do
  IO.puts(
    "  #{inspect(app.name)} #{app.strategy}, #{app.restarts} restart(s) in the last #{app.period} s"
  )

  for child <- app.children,
      do: IO.puts("    #{inspect(child.id)} #{inspect(child.pid)} #{child.type}")
end

IO.puts("\n== The queue's state timeline (#{inspect(queue)}): each change and its cause")

for e <- ElixirScope.state_timeline(queue) do
  change = if e.diff, do: inspect(e.diff), else: inspect(e.state)
  IO.puts("  #{e.callback} #{inspect(e[:cause])}\n      #{change}")
end

[first_worker | _] = workers
IO.puts("\n== Messages between the first worker #{inspect(first_worker)} and the queue")

for e <- ElixirScope.message_flow(first_worker, queue) do
  arrow = if e.from_pid == queue, do: "<-", else: "->"
  IO.puts("  ##{e.id} #{at.(e)} #{arrow} #{inspect(e.message)}")
end

IO.puts("\n== Calls of Demo.Jobs.run/1 and their results")

for e <- TraceDB.query_events(module: Demo.Jobs, function: :run),
    e.type in [:return, :exception] do
  us = System.convert_time_unit(e.duration, :native, :microsecond)

  outcome =
    if e.type == :return, do: "returned #{inspect(e.result)}", else: "raised #{inspect(e.reason)}"

  IO.puts("  #{inspect(e.pid)} #{outcome} in #{us} µs")
end

IO.puts("\n== Demo.Jobs performance (µs)")
us = fn n -> n && System.convert_time_unit(n, :native, :microsecond) end

for f <- ElixirScope.performance_analysis(Demo.Jobs) do
  IO.puts(
    "  #{f.function}/#{f.arity}: #{f.calls} calls, #{f.exceptions} exceptions, " <>
      "mean #{us.(f.mean)}, p50 #{us.(f.p50)}, p99 #{us.(f.p99)}, max #{us.(f.max)}"
  )
end

IO.puts("\n== The three slowest calls")

for c <- ElixirScope.slowest_function_calls(limit: 3) do
  IO.puts(
    "  #{inspect(c.module)}.#{c.function}#{inspect(c.args)} took #{us.(c.duration)} µs in #{inspect(c.pid)}"
  )
end

IO.puts("\n== Crashes, newest first (every process's, traced or not)")

for c <- ElixirScope.recent_crashes() do
  IO.puts(
    "  #{at.(c.event)} #{inspect(c.pid)} crashed: " <>
      "#{Exception.format_exit(c.reason) |> String.slice(0, 120)}" <>
      if(c.event[:supervisor], do: " (restarted by #{inspect(c.event[:supervisor])})", else: "")
  )
end

IO.puts("\n== The stats server's crash, and its state just before it")
[crash] = TraceDB.query_events(type: :crash, pid: stats)
{:ok, before} = ElixirScope.get_state_at(stats, crash.timestamp)

# The last request it received before crashing (a crash loads code too: skip those replies).
last =
  [type: :receive, pid: stats, timestamp_end: crash.timestamp, order: :desc, limit: 10]
  |> TraceDB.query_events()
  |> Enum.find(&match?({:"$gen_cast", _}, &1.message))

IO.puts(
  "  #{inspect(stats)} crashed at #{ElixirScope.wall_time(crash)} on the request #{inspect(last.message)}"
)

IO.puts("  state before the crash: #{inspect(before)}")
IO.puts("  restarted as #{inspect(Process.whereis(Demo.Stats))}")

IO.puts("\n== What an AI assistant sees: the MCP server at #{ElixirScope.MCP.url()}")
# What Claude Code or Cursor sends, over real HTTP: initialize, then two tool calls.
{:ok, _} = Application.ensure_all_started(:inets)
url = String.to_charlist(ElixirScope.MCP.url())
accept = {~c"accept", ~c"application/json, text/event-stream"}

post = fn headers, body ->
  {:ok, {{_, 200, _}, response_headers, response}} =
    :httpc.request(
      :post,
      {url, [accept | headers], ~c"application/json", ElixirScope.JSON.encode!(body)},
      [],
      body_format: :binary
    )

  {response_headers, ElixirScope.JSON.decode!(response)}
end

{headers, _} =
  post.([], %{
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: %{protocolVersion: "2025-11-25", capabilities: %{}, clientInfo: %{name: "demo"}}
  })

session = [{~c"mcp-session-id", :proplists.get_value(~c"mcp-session-id", headers)}]

for {tool, args} <- [
      {"elixir_scope_recent_crashes", %{limit: 1}},
      {"elixir_scope_analyze_state_changes", %{pid_string: "Demo.Queue", limit: 3}}
    ] do
  {_, %{"result" => %{"content" => [%{"text" => text}]}}} =
    post.(session, %{
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: %{name: tool, arguments: args}
    })

  IO.puts("  #{tool}(#{ElixirScope.JSON.encode!(args)}):")
  IO.puts("    " <> String.replace(text, "\n", "\n    "))
end

ElixirScope.stop()
