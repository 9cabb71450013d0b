defmodule Bench.EventGen do
  @moduledoc false
  # Deterministic, realistic event mix: event `i` is a pure function of `i`, so every
  # implementation stores exactly the same events in the same order (ids 1, 2, 3, ...).
  #
  # Background traffic (about 95% of events): 2,000 processes sending messages to a
  # few partners each, calling and returning from 100 modules x 8 functions, logging
  # GenServer states and spawning. Payloads carry a 40-byte binary, so the part of an
  # event that is not an indexed field weighs ~70-90 bytes in external term format.
  #
  # Probe keys: for every benchmark size S (10k, 100k, 1M) there is a pid, a pid pair
  # and a module whose events fall on ids i with rem(i, S / 100) == phase, so among
  # the first S events each query on the size-S probe matches a constant number of
  # events (100, or 120 for the module query), spread evenly over the whole store.

  import Bitwise

  @npids 2_000
  @nmods 100
  @nfuns 8
  @pad :binary.copy(<<0xAB>>, 32)
  @ts_step 1_000

  # size => {step, first phase}; phases differ mod 100, so no two probes collide.
  @probe_sizes %{10_000 => {100, 10}, 100_000 => {1_000, 13}, 1_000_000 => {10_000, 17}}

  defstruct [:t0, :pids, :mods, :funs, :probes, :probe_list]

  def sizes, do: @probe_sizes |> Map.keys() |> Enum.sort()

  def new do
    pids = List.to_tuple(for n <- 1..@npids, do: fake_pid(100_000 + n))
    mods = List.to_tuple(for n <- 1..@nmods, do: :"Elixir.Bench.App.Mod#{n}")
    funs = List.to_tuple(for n <- 1..@nfuns, do: :"fun_#{n}")

    probes =
      Map.new(@probe_sizes, fn {size, {step, phase}} ->
        {size,
         %{
           step: step,
           phase: phase,
           pid: fake_pid(200_000 + size),
           from: fake_pid(300_000 + size),
           to: fake_pid(400_000 + size),
           module: :"Elixir.Bench.Probe.Mod#{size}"
         }}
      end)

    %__MODULE__{
      t0: System.monotonic_time(),
      pids: pids,
      mods: mods,
      funs: funs,
      probes: probes,
      probe_list: Map.values(probes)
    }
  end

  # Pids of processes that need not exist (a local pid has a 15-bit number + serial).
  defp fake_pid(n),
    do: :erlang.list_to_pid(String.to_charlist("<0.#{rem(n, 32_768)}.#{div(n, 32_768)}>"))

  def timestamp(g, i), do: g.t0 + i * @ts_step

  @doc "The queries of size `size`: {label, filters} with ~100 hits among the first `size` events."
  def queries(g, size) do
    p = Map.fetch!(g.probes, size)
    mid = div(size, 2)

    [
      {"(a) state history of a pid", [type: :state, pid: p.pid]},
      {"(b) messages of a pid pair", [from_pid: p.from, to_pid: p.to]},
      {"(c) calls of a module", [type: :call, module: p.module]},
      {"(c') calls of module+function", [type: :call, module: p.module, function: :hot]},
      {"(d) time range (100 events)",
       [timestamp_start: timestamp(g, mid), timestamp_end: timestamp(g, mid + 99)]}
    ]
  end

  @doc "Event `i` (1-based) as {type, map}, with an explicit :timestamp."
  def event(g, i) do
    ts = timestamp(g, i)
    fill = <<i::64, @pad::binary>>

    case probe(g, i) do
      nil -> background(g, i, ts, fill)
      {kind, p} -> probe_event(kind, p, i, ts, fill)
    end
  end

  @doc "The part of an event the store keeps as payload (everything but indexed fields)."
  def payload(event),
    do: Map.drop(event, [:pid, :from_pid, :to_pid, :module, :function, :arity, :timestamp])

  defp probe(g, i) do
    Enum.find_value(g.probe_list, fn %{step: step, phase: phase} = p ->
      r = rem(i, step) - phase

      if r >= 0 and r < 50 and rem(r, 10) == 0 do
        kind = div(r, 10)
        # kind 4 (calls of other functions of the probe module): one step in five.
        if kind < 4 or rem(div(i, step), 5) == 0, do: {kind, p}
      end
    end)
  end

  defp probe_event(0, p, i, ts, fill),
    do: {:state, %{pid: p.pid, module: p.module, state: %{count: i, data: fill}, timestamp: ts}}

  defp probe_event(1, p, i, ts, fill),
    do: {:send, %{from_pid: p.from, to_pid: p.to, message: {:request, i, fill}, timestamp: ts}}

  defp probe_event(2, p, i, ts, fill),
    do:
      {:call,
       %{pid: p.pid, module: p.module, function: :hot, arity: 2, args: [i, fill], timestamp: ts}}

  defp probe_event(3, p, _i, ts, fill),
    do:
      {:return,
       %{
         pid: p.pid,
         module: p.module,
         function: :hot,
         arity: 2,
         result: {:ok, fill},
         timestamp: ts
       }}

  defp probe_event(4, p, i, ts, fill),
    do:
      {:call,
       %{pid: p.pid, module: p.module, function: :cold, arity: 2, args: [i, fill], timestamp: ts}}

  defp hash(i) do
    h = i * 2_654_435_761 &&& 0xFFFFFFFF
    h = bxor(h, h >>> 15)
    h = h * 0x2C1B3C6D &&& 0xFFFFFFFF
    bxor(h, h >>> 13)
  end

  defp background(g, i, ts, fill) do
    h = hash(i)
    a = rem(h, @npids)
    pid = elem(g.pids, a)
    mod = elem(g.mods, rem(h >>> 11, @nmods))
    fun = elem(g.funs, rem(h >>> 18, @nfuns))

    case rem(h >>> 21, 100) do
      s when s < 35 ->
        # each process talks to 4 partners: 8,000 distinct pairs
        to = elem(g.pids, rem(a + 7 * (1 + rem(h >>> 28, 4)), @npids))
        {:send, %{from_pid: pid, to_pid: to, message: {:request, i, fill}, timestamp: ts}}

      s when s < 60 ->
        {:call, %{pid: pid, module: mod, function: fun, arity: 2, args: [i, fill], timestamp: ts}}

      s when s < 80 ->
        {:return,
         %{pid: pid, module: mod, function: fun, arity: 2, result: {:ok, fill}, timestamp: ts}}

      s when s < 95 ->
        {:state, %{pid: pid, module: mod, state: %{count: i, data: fill}, timestamp: ts}}

      _ ->
        {:spawn, %{pid: pid, parent: elem(g.pids, rem(a + 1, @npids)), info: fill, timestamp: ts}}
    end
  end
end
