# `make demo` — ElixirScope's store at work, on a small job-queue workload.
#
# A queue GenServer hands jobs to worker processes; every state change and message
# is recorded in the C store, then we ask the store what happened.

alias ElixirScope.TraceDB

defmodule Demo.Queue do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)
  def push(job), do: GenServer.call(__MODULE__, {:push, job})
  def pop(worker), do: GenServer.call(__MODULE__, {:pop, worker})

  @impl true
  def init(:ok) do
    state = %{pending: [], done: 0}
    TraceDB.log_state(__MODULE__, self(), state)
    {:ok, state}
  end

  @impl true
  def handle_call({:push, job}, {from, _}, state) do
    TraceDB.store_event(:message, %{from_pid: from, to_pid: self(), message: {:push, job}})
    state = %{state | pending: state.pending ++ [job]}
    TraceDB.log_state(__MODULE__, self(), state)
    {:reply, :ok, state}
  end

  def handle_call({:pop, worker}, _from, %{pending: [job | rest]} = state) do
    TraceDB.store_event(:message, %{from_pid: self(), to_pid: worker, message: {:job, job}})
    state = %{state | pending: rest, done: state.done + 1}
    TraceDB.log_state(__MODULE__, self(), state)
    {:reply, {:ok, job}, state}
  end

  def handle_call({:pop, _worker}, _from, state), do: {:reply, :empty, state}
end

{:ok, _} = TraceDB.start_link(max_events: 100_000)
{:ok, queue} = Demo.Queue.start_link(nil)
t0 = System.monotonic_time()

for n <- 1..5, do: Demo.Queue.push(%{id: n, work: String.duplicate("x", n)})

workers =
  for w <- 1..2 do
    spawn(fn ->
      TraceDB.store_event(:spawn, %{pid: self(), name: "worker #{w}"})
      Stream.repeatedly(fn -> Demo.Queue.pop(self()) end) |> Enum.take_while(&(&1 != :empty))
      TraceDB.store_event(:exit, %{pid: self(), reason: :normal})
    end)
  end

Process.sleep(100)

IO.puts("\n== Store statistics")
TraceDB.stats() |> Map.take([:stored, :appended, :bytes, :by_type]) |> IO.inspect()

IO.puts("\n== State history of the queue (#{inspect(queue)})")

for %{timestamp: ts, state: state} <- TraceDB.get_state_history(queue) do
  ms = System.convert_time_unit(ts - t0, :native, :microsecond) / 1000
  IO.puts("  +#{:erlang.float_to_binary(ms, decimals: 3)} ms  #{inspect(state)}")
end

IO.puts("\n== Messages from the queue to the first worker")

for e <- TraceDB.query_events(from_pid: queue, to_pid: hd(workers)),
    do: IO.puts("  ##{e.id} #{inspect(e.message)}")

IO.puts("\n== The queue's state just after the third push")
third = Enum.at(TraceDB.query_events(type: :state, pid: queue), 3)
IO.inspect(TraceDB.get_state_at(queue, third.timestamp))

[first_spawn | _] = TraceDB.query_events(type: :spawn)
IO.puts("\n== Processes alive when the first worker started (spawned, not yet exited)")
IO.inspect(TraceDB.get_processes_at(first_spawn.timestamp))

IO.puts("\n== The last three events, newest first")
for e <- TraceDB.query_events(limit: 3, order: :desc), do: IO.inspect(e)
