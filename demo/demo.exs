# `make demo` — ElixirScope tracing a small job-queue application.
#
# A supervised queue GenServer hands jobs to workers; one job crashes its worker.
# ElixirScope traces the queue (state + messages), the job module's functions and the
# workers' lifecycles without any change to their code, then we ask what happened.

alias ElixirScope.TraceDB

defmodule Demo.Queue do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)
  def push(job), do: GenServer.call(__MODULE__, {:push, job})
  def pop, do: GenServer.call(__MODULE__, :pop)
  def done(id), do: GenServer.cast(__MODULE__, {:done, id})

  @impl true
  def init(:ok), do: {:ok, %{pending: [], running: 0, done: []}}

  @impl true
  def handle_call({:push, job}, _from, state),
    do: {:reply, :ok, %{state | pending: state.pending ++ [job]}}

  def handle_call(:pop, _from, %{pending: [job | rest]} = state),
    do: {:reply, {:ok, job}, %{state | pending: rest, running: state.running + 1}}

  def handle_call(:pop, _from, state), do: {:reply, :empty, state}

  @impl true
  def handle_cast({:done, id}, state),
    do: {:noreply, %{state | running: state.running - 1, done: [id | state.done]}}
end

defmodule Demo.Jobs do
  def run(%{id: id, n: n}) when n < 0, do: raise(ArgumentError, "job #{id}: negative input #{n}")
  def run(%{n: n}), do: fib(n)

  defp fib(n) when n < 2, do: n
  defp fib(n), do: fib(n - 1) + fib(n - 2)
end

defmodule Demo.Worker do
  def start(parent) do
    spawn(fn ->
      # Wait until tracing is on, so the whole life of the worker is recorded.
      receive do
        :go -> loop()
      end

      send(parent, {:worker_done, self()})
    end)
  end

  defp loop do
    case Demo.Queue.pop() do
      {:ok, job} ->
        Demo.Jobs.run(job)
        Demo.Queue.done(job.id)
        loop()

      :empty ->
        :ok
    end
  end
end

:ok = ElixirScope.setup(tracing_level: :full, max_events: 100_000)
{:ok, _sup} = Supervisor.start_link([Demo.Queue], strategy: :one_for_one, name: Demo.Sup)
queue = Process.whereis(Demo.Queue)
:ok = ElixirScope.trace_genserver(queue)
:ok = ElixirScope.trace_module(Demo.Jobs)

for {n, id} <- Enum.with_index([10, 15, -1, 12, 5], 1), do: Demo.Queue.push(%{id: id, n: n})

Process.flag(:trap_exit, true)
workers = for _ <- 1..2, do: Demo.Worker.start(self())
for w <- workers, do: :ok = ElixirScope.trace_process(w)
for w <- workers, do: send(w, :go)
Process.sleep(300)
ElixirScope.stop()

IO.puts("== Store: #{inspect(Map.take(TraceDB.stats(), [:stored, :bytes]))}")
IO.puts("   events by type: #{inspect(Map.reject(TraceDB.stats().by_type, &(elem(&1, 1) == 0)))}")

IO.puts("\n== The queue's state timeline (#{inspect(queue)}): each change and its cause")

for e <- ElixirScope.state_timeline(queue) do
  change = if e.diff, do: inspect(e.diff), else: inspect(e.state)
  IO.puts("  #{e.callback} #{inspect(e[:cause])}\n      #{change}")
end

[first_worker | _] = workers
IO.puts("\n== Messages between the first worker #{inspect(first_worker)} and the queue")

for e <- ElixirScope.message_flow(first_worker, queue) do
  arrow = if e.from_pid == queue, do: "<-", else: "->"
  IO.puts("  ##{e.id} #{arrow} #{inspect(e.message)}")
end

IO.puts("\n== Calls of Demo.Jobs.run/1 and their results")

for e <- TraceDB.query_events(module: Demo.Jobs, function: :run),
    e.type in [:return, :exception] do
  us = System.convert_time_unit(e.duration, :native, :microsecond)

  outcome =
    if e.type == :return, do: "returned #{inspect(e.result)}", else: "raised #{inspect(e.reason)}"

  IO.puts("  #{inspect(e.pid)} #{outcome} in #{us} µs")
end

IO.puts("\n== Crashes")

for e <- TraceDB.query_events(type: :crash) do
  IO.puts(
    "  #{inspect(e.pid)} crashed: #{Exception.format_exit(e.reason) |> String.slice(0, 120)}"
  )
end

IO.puts("\n== The queue's state at the moment of the crash")
[crash | _] = TraceDB.query_events(type: :crash)
IO.inspect(TraceDB.get_state_at(queue, crash.timestamp))
