defmodule Bench.EngineGen do
  @moduledoc false
  # The store of bench/engine_bench.exs: event `i` (id i: one appender, an empty store)
  # is a function of i and of the call script's position, so every run stores the same
  # events. Timestamps are i * 1000 (native units).
  #
  # First 2,000 :alive events (the processes a snapshot lists: names, parents, some of
  # them supervisors). Then, by i rem 100:
  #   0..49  :phoenix request events (Phoenix-shaped: 10 payload fields, ~170 bytes,
  #          :status the 9th) of random processes; 1 in 100 has status 404
  #   50..64 :send between random processes;   65..74 :state of the state probe process
  #   75..78 the call probe process's script: one top call and every later call under it
  #   79..80 :state of random processes;       81..87 :return events of 50 modules
  #   88..89 :link / :unlink / :register among the processes;  90..99 :receive
  # and, over those, per benchmark size S, probes placed evenly among the first S events:
  # a status (500 + k) with about 10 and 100 hits, and a pair of processes with 10 and
  # 100 messages between them.

  @nprocs 2_000
  @tops_children 1_000_000
  @sizes [10_000, 100_000, 1_000_000]

  defstruct [:procs, :state_pid, :call_pid, :probes, states: 0, script: {0, 0, []}]

  def sizes, do: @sizes
  def nprocs, do: @nprocs

  def new do
    procs = List.to_tuple(for n <- 1..@nprocs, do: pid(100_000 + n))

    probes =
      for {size, k} <- Enum.with_index(@sizes),
          {hits, h} <- Enum.with_index([10, 100]),
          into: %{} do
        step = div(size, hits)

        {{size, hits},
         %{
           step: step,
           status_phase: 3 + 17 * (k * 2 + h),
           flow_phase: 5 + 17 * (k * 2 + h) + 2,
           status: 500 + k * 2 + h,
           a: pid(300_000 + k * 10 + h),
           b: pid(310_000 + k * 10 + h)
         }}
      end

    %__MODULE__{procs: procs, state_pid: pid(400_001), call_pid: pid(400_002), probes: probes}
  end

  defp pid(n), do: :erlang.list_to_pid(~c"<0.#{rem(n, 32_768)}.#{div(n, 32_768)}>")
  defp proc(g, n), do: elem(g.procs, rem(n, @nprocs))

  # Every probe: %{size, hits, status, a, b}.
  def probes(g),
    do: for({{size, hits}, p} <- g.probes, do: Map.merge(p, %{size: size, hits: hits}))

  def probe(g, size, hits), do: Map.merge(g.probes[{size, hits}], %{size: size, hits: hits})

  # The state of the state probe at its k-th :state event.
  def state(k),
    do: %{
      n: k,
      total: k * 3,
      items: [rem(k, 7), rem(k, 11)],
      user: "user-#{rem(k, 50)}",
      status: :open,
      retries: rem(k, 3),
      tag: {:cart, rem(k, 97)},
      note: "bench",
      flags: [:a],
      version: 1
    }

  # {type, event} for id i, and the generator (the call script moves on).
  def event(g, i) when i <= @nprocs do
    k = i - 1
    sup? = rem(k, 50) == 0

    {{:alive,
      %{
        pid: elem(g.procs, k),
        name: if(rem(k, 10) == 0, do: :"bench_proc_#{k}"),
        initial_call:
          if(sup?, do: {:supervisor, Bench.App.Sup, 1}, else: {Bench.App.Worker, :init, 1}),
        parent: elem(g.procs, div(k, 50) * 50),
        timestamp: i * 1000
      }}, g}
  end

  def event(g, i) do
    ts = i * 1000

    case probe_at(g, i) do
      {:status, p} -> {request(g, i, ts, p.status), g}
      {:flow, p} -> {send(p.a, p.b, {:probe, i}, ts), g}
      nil -> background(g, i, ts)
    end
  end

  defp probe_at(g, i) do
    Enum.find_value(g.probes, fn {{size, _}, p} ->
      cond do
        i > size -> nil
        rem(i, p.step) == p.status_phase -> {:status, p}
        rem(i, p.step) == p.flow_phase -> {:flow, p}
        true -> nil
      end
    end)
  end

  defp background(g, i, ts) do
    r = rem(i, 100)

    cond do
      r < 50 ->
        {request(
           g,
           i,
           ts,
           if(rem(i * 31, 100) == 0, do: 404, else: Enum.at([200, 200, 200, 302], rem(i, 4)))
         ), g}

      r < 65 ->
        {send(proc(g, i), proc(g, i * 7 + 3), {:msg, i, "payload-#{rem(i, 1000)}"}, ts), g}

      r < 75 ->
        k = g.states + 1

        {{:state,
          %{
            pid: g.state_pid,
            module: Bench.App.Cart,
            state: state(k),
            callback: :handle_call,
            cause: {:add, k},
            timestamp: ts
          }}, %{g | states: k}}

      r < 79 ->
        script(g, ts)

      r < 81 ->
        {{:state,
          %{
            pid: proc(g, i),
            module: Bench.App.Worker,
            state: %{n: i},
            callback: :handle_cast,
            cause: :tick,
            timestamp: ts
          }}, g}

      r < 88 ->
        {{:return,
          %{
            pid: proc(g, i),
            module: :"Elixir.Bench.App.Mod#{rem(i, 50)}",
            function: :work,
            arity: 1,
            result: :ok,
            duration: 1000 + rem(i * 7919, 50_000),
            call_id: i - 1,
            timestamp: ts
          }}, g}

      r < 90 ->
        a = proc(g, i * 13)
        b = proc(g, i * 17 + 1)

        case rem(i, 5) do
          0 -> {{:unlink, %{pid: a, to_pid: b, timestamp: ts}}, g}
          1 -> {{:register, %{pid: a, name: :"bench_reg_#{rem(i, 100)}", timestamp: ts}}, g}
          _ -> {{:link, %{pid: a, to_pid: b, timestamp: ts}}, g}
        end

      true ->
        {{:receive, %{pid: proc(g, i), message: {:msg, i}, timestamp: ts}}, g}
    end
  end

  # The call probe's script: a top call, @tops_children calls (each with its return)
  # under it, the top's return; again. `script` is {top call id, children done, stack}.
  defp script(g, ts) do
    {top, done, stack} = g.script
    i = div(ts, 1000)
    c = g.call_pid

    call = fn args ->
      {:call,
       %{pid: c, module: Bench.App.Tree, function: :node, arity: 1, args: args, timestamp: ts}}
    end

    ret = fn id, result ->
      {:return,
       %{
         pid: c,
         module: Bench.App.Tree,
         function: :node,
         arity: 1,
         result: result,
         duration: 5_000,
         call_id: id,
         timestamp: ts
       }}
    end

    case stack do
      [] -> {call.([i]), %{g | script: {i, 0, [i]}}}
      [^top] when done == @tops_children -> {ret.(top, :done), %{g | script: {0, 0, []}}}
      [^top] -> {call.([top, done]), %{g | script: {top, done, [i, top]}}}
      [child, ^top] -> {ret.(child, done), %{g | script: {top, done + 1, [top]}}}
    end
  end

  defp request(g, i, ts, status) do
    {:phoenix,
     %{
       pid: proc(g, i),
       module: Bench.App.Endpoint,
       kind: :endpoint,
       phase: :stop,
       method: "GET",
       path: "/shop/#{rem(i, 997)}",
       route: "/shop/:id",
       status: status,
       duration: 1000 + rem(i * 7919, 90_000),
       params: %{"id" => "#{rem(i, 997)}"},
       remote_ip: {127, 0, 0, 1},
       view: nil,
       timestamp: ts
     }}
  end

  defp send(from, to, msg, ts),
    do: {:send, %{from_pid: from, to_pid: to, message: msg, timestamp: ts}}
end
