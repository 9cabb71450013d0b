defmodule ElixirScope.QueryPropertyTest do
  @moduledoc """
  Property tests of the query engine with a seeded random generator of our own (:rand,
  so they run on every OTP release: Debian's erlang-proper only loads on OTP 25).

  Random stores — events of a few types, pids, modules and functions, fields of
  several kinds, timestamps out of id order and repeated — and random query specs:
  the engine's answer must be the same events, in the same order, as a plain Elixir
  filter over every stored event. Cursor paging must give back the whole listing in
  both directions, and, while another process appends and the store prunes, never
  skip or repeat an event. Each failure names the seed and the spec to replay it.
  """
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait

  alias ElixirScope.{Query, TraceDB}

  @store :query_property
  @types [:send, :receive, :call, :state, :phoenix, :note]
  @modules [M1, M2, M3]
  @functions [:f, :g, :h]
  @fields [:status, :path, :kind, :score, :tag, :args, :w3, :era]

  setup do
    seed = :erlang.phash2(make_ref())
    :rand.seed(:exsss, {seed, 17, 42})
    pids = for _ <- 1..4, do: spawn(fn -> Process.sleep(:infinity) end)
    %{seed: seed, pids: pids}
  end

  defp pick(list), do: Enum.at(list, :rand.uniform(length(list)) - 1)
  defp chance(p), do: :rand.uniform() < p

  ## events --------------------------------------------------------------------------

  defp value(:status), do: pick([200, 201, 404, 500, 503, 200.0, nil])
  defp value(:path), do: pick(["/", "/cart", "/cart/1", "/car", "/shop/2", "", <<0, 1>>])
  defp value(:kind), do: pick([:endpoint, :router, :live, "endpoint", {:endpoint, 1}])
  defp value(:score), do: pick([-3, 0, 7, 2.5, -0.5, 1_000_000_000_000, 255, 256])
  defp value(:tag), do: pick([:a, :b, [:a], %{k: 1}, {:t, :a}, "a"])
  defp value(:args), do: pick([[1, 2], [2, 1], [:x], {:x, 2}, [], [1 | 2], {1, [2, 3]}])
  defp value(:w3), do: pick([0, 3, 300, -3])
  defp value(:era), do: era_value(:rand.uniform(6) - 1)

  # An :era field's values depend on the block of 256 events an event is in (its id's):
  # so the block summaries of payload fields (c_src/core/zone.c) rule blocks in and out, and
  # a summary built by one spec serves later specs with other values.
  defp era_value(block) do
    pick([
      block * 10 + :rand.uniform(3),
      block * 10 + 0.5,
      "era-#{block}-#{:rand.uniform(9)}",
      :"era#{rem(block, 4)}"
    ])
  end

  defp random_event(pids, i) do
    base = %{timestamp: pick([i, i, div(i, 3), 1000 - i, 500])}

    base =
      case :rand.uniform(4) do
        1 ->
          Map.put(base, :pid, pick(pids))

        2 ->
          Map.merge(base, %{from_pid: pick(pids), to_pid: pick(pids)})

        3 ->
          Map.merge(base, %{
            pid: pick(pids),
            module: pick(@modules),
            function: pick(@functions),
            arity: 1
          })

        4 ->
          Map.merge(base, %{module: pick(@modules), arity: 0})
      end

    fields = for f <- @fields, f != :era, chance(0.6), into: %{}, do: {f, value(f)}
    fields = if chance(0.7), do: Map.put(fields, :era, era_value(div(i - 1, 256))), else: fields
    # Some events are wide (8 fields or more: stored with a table of their fields).
    wide = if chance(0.3), do: Map.new(1..6, &{:"w#{&1}", &1 * pick([1, 100])}), else: %{}
    {pick(@types), base |> Map.merge(wide) |> Map.merge(fields)}
  end

  # Stores n random events; returns them as the store returns them (ids 1..n, as the
  # store was empty: one appender, no sampling).
  defp fill(pids, n) do
    for i <- 1..n do
      {type, event} = random_event(pids, i)
      :ok = TraceDB.store_event(type, event, store: @store)
      event |> Map.merge(%{id: i, type: type})
    end
  end

  ## specs -----------------------------------------------------------------------------

  defp one_or_list(values) do
    if chance(0.5),
      do: pick(values),
      else: Enum.take_random(values, :rand.uniform(length(values)))
  end

  defp random_test(field) do
    v = value(field)

    case :rand.uniform(9) do
      1 -> v
      2 -> {:==, v}
      3 -> {:in, [v, value(field)]}
      4 -> {pick([:<, :<=, :>, :>=]), pick([0, 200, 404, 2.5, -1, 21, 30.5])}
      5 -> {:between, pick([0, 200, 250, 11, 20.5]), pick([300, 503, 1_000_000_000_000, 32])}
      6 -> {:prefix, pick(["/", "/car", "/cart/", "", "era-", "era-2", "era-4-"])}
      7 -> {:not, v}
      8 -> {:not, {:>, 100}}
      9 -> {:==, v}
    end
  end

  defp random_where do
    for _ <- 1..:rand.uniform(3) do
      field = pick(@fields)
      field = if field == :args and chance(0.5), do: {:args, pick([0, 1, [1, 0]])}, else: field
      {field, random_test(if(is_tuple(field), do: :status, else: field))}
    end
  end

  defp random_spec(pids) do
    [
      type: chance(0.4) && one_or_list(@types),
      pid: chance(0.3) && one_or_list(pids),
      to_pid: chance(0.2) && one_or_list(pids),
      module: chance(0.3) && one_or_list(@modules),
      timestamp_start: chance(0.2) && :rand.uniform(600),
      timestamp_end: chance(0.2) && 300 + :rand.uniform(700),
      where: chance(0.6) && random_where(),
      order: chance(0.5) && :desc,
      limit: chance(0.4) && :rand.uniform(30)
    ]
    |> Enum.reject(fn {_, v} -> v == false end)
    |> then(fn spec ->
      if spec[:module] && chance(0.3),
        do: spec ++ [function: one_or_list(@functions)],
        else: spec
    end)
  end

  ## the reference: a plain Elixir filter over all events ------------------------------

  defp listed(v) when is_list(v), do: v
  defp listed(v), do: [v]

  defp actor(e), do: Map.get(e, :pid) || Map.get(e, :from_pid)

  defp matches?(e, spec) do
    Enum.all?(spec, fn
      {:type, t} -> e.type in listed(t)
      {:pid, p} -> actor(e) in listed(p)
      {:to_pid, p} -> Map.get(e, :to_pid) in listed(p) and Map.has_key?(e, :to_pid)
      {:module, m} -> Map.get(e, :module) in listed(m)
      {:function, f} -> Map.has_key?(e, :function) and e.function in listed(f)
      {:timestamp_start, t} -> e.timestamp >= t
      {:timestamp_end, t} -> e.timestamp <= t
      {:where, conditions} -> Enum.all?(conditions, &holds?(e, &1))
      {:after, {ts, id}} -> {e.timestamp, e.id} > {ts, id}
      {:before, {ts, id}} -> {e.timestamp, e.id} < {ts, id}
      {key, _} when key in [:order, :limit] -> true
    end)
  end

  defp holds?(e, {{field, path}, test}), do: test?(dig(Map.fetch(e, field), listed(path)), test)
  defp holds?(e, {field, test}), do: test?(Map.fetch(e, field), test)

  defp dig(:error, _path), do: :error
  defp dig(found, []), do: found

  defp dig({:ok, t}, [i | rest]) when is_tuple(t) and i < tuple_size(t),
    do: dig({:ok, elem(t, i)}, rest)

  defp dig({:ok, l}, [i | rest]) when is_list(l) do
    if proper?(l) and i < length(l), do: dig({:ok, Enum.at(l, i)}, rest), else: :error
  end

  defp dig(_, _), do: :error

  defp proper?([]), do: true
  defp proper?([_ | t]), do: proper?(t)
  defp proper?(_), do: false

  defp test?(found, {:not, t}), do: not test?(found, t)
  defp test?(:error, _test), do: false
  defp test?({:ok, v}, {:==, x}), do: v === x
  defp test?({:ok, v}, {:in, xs}), do: Enum.any?(xs, &(&1 === v))

  defp test?({:ok, v}, {op, x}) when op in [:<, :<=, :>, :>=],
    do: is_number(v) and apply(Kernel, op, [v, x])

  defp test?({:ok, v}, {:between, lo, hi}), do: is_number(v) and v >= lo and v <= hi

  defp test?({:ok, v}, {:prefix, p}),
    do: is_binary(v) and byte_size(v) >= byte_size(p) and binary_part(v, 0, byte_size(p)) == p

  defp test?({:ok, v}, x), do: v === x

  defp expected(events, spec) do
    sorted =
      events
      |> Enum.filter(&matches?(&1, spec))
      |> Enum.sort_by(&{&1.timestamp, &1.id})
      |> then(&if spec[:order] == :desc, do: Enum.reverse(&1), else: &1)

    if spec[:limit], do: Enum.take(sorted, spec[:limit]), else: sorted
  end

  defp strip(e), do: Map.drop(e, [:__struct__])

  ## properties ------------------------------------------------------------------------

  test "random specs give the events a plain filter gives, in the same order", ctx do
    start_supervised!({TraceDB, name: @store})
    events = fill(ctx.pids, 1_500)

    assert Enum.map(Query.run(store: @store), &strip/1) ==
             Enum.sort_by(events, &{&1.timestamp, &1.id})

    for round <- 1..400 do
      spec = random_spec(ctx.pids)
      want = expected(events, spec)
      got = Query.run([store: @store] ++ spec)

      assert Enum.map(got, & &1.id) == Enum.map(want, & &1.id),
             "seed #{ctx.seed}, round #{round}: #{inspect(spec)}"

      count = Query.run([store: @store, select: :count] ++ Keyword.delete(spec, :order))
      assert count == length(want), "count, seed #{ctx.seed}: #{inspect(spec)}"
    end
  end

  test "paging with cursors gives back the whole listing, both ways", ctx do
    start_supervised!({TraceDB, name: @store})
    events = fill(ctx.pids, 400)

    for round <- 1..100 do
      spec = ctx.pids |> random_spec() |> Keyword.drop([:limit, :order])
      want = events |> expected(spec) |> Enum.map(& &1.id)
      size = :rand.uniform(7)

      forward = pages([store: @store, limit: size] ++ spec, :after)
      assert forward == want, "forward, seed #{ctx.seed}, round #{round}: #{inspect(spec)}"

      backward = pages([store: @store, limit: size, order: :desc] ++ spec, :before)
      assert backward == Enum.reverse(want), "backward, seed #{ctx.seed}: #{inspect(spec)}"
    end
  end

  defp pages(spec, direction, cursor \\ nil, acc \\ []) do
    {items, next} = Query.page([{direction, cursor} | spec])
    acc = acc ++ Enum.map(items, & &1.id)
    if next, do: pages(spec, direction, next, acc), else: acc
  end

  test "paging never skips or repeats an event while appends and pruning run", ctx do
    start_supervised!({TraceDB, name: @store, max_events: 2_000})
    [a | _] = ctx.pids

    for i <- 1..2_000, do: :ok = TraceDB.store_event(:tick, %{pid: a, n: i}, store: @store)
    parent = self()
    written = :atomics.new(1, [])

    writer =
      spawn_link(fn ->
        writes = fn writes, n ->
          # now, or a caller-given timestamp in the past (behind any cursor: not listed)
          event =
            if rem(n, 5) == 0,
              do: %{pid: a, n: n, timestamp: System.monotonic_time() - 1_000_000_000},
              else: %{pid: a, n: n}

          :ok = TraceDB.store_event(:tick, event, store: @store)
          :atomics.put(written, 1, n)
          # An application's pace, below the listing's: a writer spinning on the other
          # core outruns it, and every page's events are then pruned before they are read.
          if rem(n, 25) == 0, do: Process.sleep(1)

          receive do
            :stop -> send(parent, {:written, n})
          after
            0 -> writes.(writes, n + 1)
          end
        end

        writes.(writes, 2_001)
      end)

    start = Query.run(store: @store, type: :tick, select: [:n])
    # After 5 pages the listing waits until the writer has pruned the oldest 1,000 of the
    # store's 2,000 events, so that part of what it has not reached yet is pruned while
    # it runs, and the rest is there to be listed.
    prune = fn -> wait_until(fn -> :atomics.get(written, 1) > 3_000 end, 60_000) end
    listed = page_live([store: @store, type: :tick, where: [n: {:>, 0}]], nil, [], 0, prune)
    send(writer, :stop)
    assert_receive {:written, written}, 5_000

    live_now = MapSet.new(Query.run(store: @store, type: :tick, select: :ids))
    survivors = Enum.filter(start, &MapSet.member?(live_now, &1.id))

    assert written > 3_000 and length(listed) > 100 and survivors != [],
           "#{written} written, #{length(listed)} listed, #{length(survivors)} first events left"

    positions = Enum.map(listed, &{&1.timestamp, &1.id})
    assert positions == Enum.sort(positions) and positions == Enum.uniq(positions)
    listed_ids = MapSet.new(listed, & &1.id)

    # Every event there when the listing began and still there at its end was listed.
    for e <- survivors do
      assert MapSet.member?(listed_ids, e.id), "event #{e.id} skipped (seed #{ctx.seed})"
    end
  end

  # Pages until a page comes back short, 300 pages at most (the writer never stops);
  # `pause` runs after the fifth page.
  defp page_live(spec, cursor, acc, n, pause) do
    {items, next} = Query.page([after: cursor, limit: 40] ++ spec)
    acc = acc ++ items
    if n == 5, do: pause.()
    if next == nil or n > 300, do: acc, else: page_live(spec, next, acc, n + 1, pause)
  end
end
