defmodule Bench.QueryGen do
  @moduledoc false
  # Events for bench/query_bench.exs: Bench.EventGen's deterministic background mix
  # (event `i` is a pure function of `i`, ids 1, 2, 3, ... in every store), completed
  # to the shapes the tracer records:
  #
  #   :send   from_pid, to_pid, message
  #   :state  pid, module, state, callback, cause
  #   :call   pid, module, function, arity, args
  #   :return pid, module, function, arity, result, duration, call_id
  #
  # plus, for every benchmark size S (10k, 100k, 1M), probe events on ids i with
  # rem(i, S / 100) in phase + {0, 2, ..., 10} (one slot each), so that among the first
  # S events each probe key matches 100 events, spread evenly over the whole store:
  #
  #   slot 0  :send between pids A and B, alternating direction      message_flow(A, B)
  #   slot 1  :state of GenServer P (callback, cause, changing state) state_timeline(P)
  #   slot 2  :call by Q of probe module M (hot/2 and warm/1 alternately)
  #   slot 3  :return of that call (duration, call_id = the call's id)  perf / slowest(M)
  #   slot 4  an event of pid X, cycling :send/:call/:return/:state    execution_path(X)
  #   slot 5  :return by Q of module M2 without :call_id              perf / slowest(M2)
  #
  # Bench.EventGen's own probes use rem(i, 100) in 10..57; these use 60..92, disjoint
  # between sizes and from EventGen's.

  import Bitwise
  alias Bench.EventGen

  @probe_sizes %{10_000 => 60, 100_000 => 71, 1_000_000 => 82}
  @slots 6
  @pad :binary.copy(<<0xCD>>, 32)

  defstruct [:base, :probes, :probe_list]

  def sizes, do: @probe_sizes |> Map.keys() |> Enum.sort()

  def new do
    probes =
      Map.new(@probe_sizes, fn {size, phase} ->
        {size,
         %{
           size: size,
           step: div(size, 100),
           phase: phase,
           a: fake_pid(500_000 + size),
           b: fake_pid(600_000 + size),
           p: fake_pid(700_000 + size),
           q: fake_pid(800_000 + size),
           x: fake_pid(900_000 + size),
           y: fake_pid(1_000_000 + size),
           server: :"Elixir.Bench.QProbe.Server#{size}",
           m: :"Elixir.Bench.QProbe.Mod#{size}",
           m2: :"Elixir.Bench.QProbe.NoCallId#{size}",
           mx: :"Elixir.Bench.QProbe.Exec#{size}"
         }}
      end)

    %__MODULE__{base: EventGen.new(), probes: probes, probe_list: Map.values(probes)}
  end

  def probe(g, size), do: Map.fetch!(g.probes, size)

  def timestamp(g, i), do: EventGen.timestamp(g.base, i)

  defp fake_pid(n),
    do: :erlang.list_to_pid(String.to_charlist("<0.#{rem(n, 32_768)}.#{div(n, 32_768)}>"))

  @doc "Event `i` (1-based) as {type, map}, with an explicit :timestamp."
  def event(g, i) do
    case slot(g, i) do
      nil -> complete(EventGen.event(g.base, i), i)
      {slot, j, p} -> probe_event(slot, j, p, i, timestamp(g, i))
    end
  end

  defp slot(g, i) do
    Enum.find_value(g.probe_list, fn %{step: step, phase: phase} = p ->
      r = rem(i, step) - phase
      if r >= 0 and r < 2 * @slots and rem(r, 2) == 0, do: {div(r, 2), div(i, step), p}
    end)
  end

  # A deterministic duration in native units (ns): 1 µs .. ~4 ms, skewed low.
  def duration(i) do
    h = hash(i)
    1_000 + rem(h, 10_000) * (1 + rem(h >>> 14, 5) * rem(h >>> 17, 100))
  end

  defp hash(i) do
    h = i * 2_246_822_519 &&& 0xFFFFFFFF
    h = bxor(h, h >>> 13)
    h = h * 0x85EBCA6B &&& 0xFFFFFFFF
    bxor(h, h >>> 16)
  end

  # Background events of EventGen, with the fields the tracer adds.
  defp complete({:state, e}, i),
    do: {:state, Map.merge(e, %{callback: :handle_cast, cause: {:"$gen_cast", {:tick, i}}})}

  defp complete({:return, e}, i),
    do: {:return, Map.merge(e, %{duration: duration(i), call_id: max(i - 3, 1)})}

  defp complete(other, _i), do: other

  defp fill(i), do: <<i::64, @pad::binary>>

  defp probe_event(0, j, p, i, ts) do
    {from, to} = if rem(j, 2) == 0, do: {p.a, p.b}, else: {p.b, p.a}
    {:send, %{from_pid: from, to_pid: to, message: {:request, j, fill(i)}, timestamp: ts}}
  end

  defp probe_event(1, j, p, i, ts) do
    state = %{
      count: j,
      status: if(rem(j, 3) == 0, do: :busy, else: :idle),
      last: {:push, j},
      items: Enum.to_list(max(0, j - 4)..j),
      data: fill(i)
    }

    {:state,
     %{
       pid: p.p,
       module: p.server,
       state: state,
       callback: :handle_cast,
       cause: {:"$gen_cast", {:push, j}},
       timestamp: ts
     }}
  end

  defp probe_event(2, j, p, i, ts) do
    {f, args} = m_call(j, i)
    {:call, %{pid: p.q, module: p.m, function: f, arity: length(args), args: args, timestamp: ts}}
  end

  defp probe_event(3, j, p, i, ts) do
    {f, args} = m_call(j, i - 2)

    {:return,
     %{
       pid: p.q,
       module: p.m,
       function: f,
       arity: length(args),
       result: {:ok, fill(i)},
       duration: duration(i),
       call_id: i - 2,
       timestamp: ts
     }}
  end

  defp probe_event(4, j, p, i, ts) do
    case rem(j, 4) do
      0 ->
        {:send, %{from_pid: p.x, to_pid: p.y, message: {:job, j, fill(i)}, timestamp: ts}}

      1 ->
        {:call,
         %{pid: p.x, module: p.mx, function: :run, arity: 1, args: [fill(i)], timestamp: ts}}

      2 ->
        {:return,
         %{
           pid: p.x,
           module: p.mx,
           function: :run,
           arity: 1,
           result: :ok,
           duration: duration(i),
           call_id: i - p.step,
           timestamp: ts
         }}

      3 ->
        {:state,
         %{
           pid: p.x,
           module: p.mx,
           state: %{done: j, data: fill(i)},
           callback: :handle_info,
           cause: {:job_done, j},
           timestamp: ts
         }}
    end
  end

  defp probe_event(5, j, p, i, ts) do
    {f, args} = m_call(j, i)

    {:return,
     %{
       pid: p.q,
       module: p.m2,
       function: f,
       arity: length(args),
       result: {:ok, fill(i)},
       duration: duration(i),
       timestamp: ts
     }}
  end

  defp m_call(j, i) do
    if rem(j, 2) == 0, do: {:hot, [i, fill(i)]}, else: {:warm, [fill(i)]}
  end
end
