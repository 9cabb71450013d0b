# The demo's job-queue application: a supervised queue GenServer hands jobs to
# workers, a stats GenServer counts them. `make demo` (demo/demo.exs) traces it, and
# bench/persist_bench.exs records it as its realistic workload.

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

  # The last 20 finished ids are kept, so a long run (bench/persist_bench.exs) keeps a
  # state of the same size.
  @impl true
  def handle_cast({:done, id}, state),
    do: {:noreply, %{state | running: state.running - 1, done: Enum.take([id | state.done], 20)}}
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
        Demo.Stats.report(self(), job.id)
        loop()

      :empty ->
        :ok
    end
  end
end

defmodule Demo.Stats do
  # Counts finished jobs per worker; a report it cannot read crashes it, and its
  # supervisor restarts it.
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)
  def report(worker, id), do: GenServer.cast(__MODULE__, {:done, worker, id})

  @impl true
  def init(counts), do: {:ok, counts}

  @impl true
  def handle_cast({:done, worker, id}, counts) when is_integer(id),
    do: {:noreply, Map.update(counts, worker, 1, &(&1 + 1))}
end

defmodule Demo.App do
  use Application

  @impl true
  def start(_type, _args) do
    Supervisor.start_link([Demo.Queue, Demo.Stats], strategy: :one_for_one, name: Demo.Sup)
  end
end
