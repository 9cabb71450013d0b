defmodule ElixirScope.QueryTest do
  # Named stores of its own, but the doctests use fixed names: not async.
  use ExUnit.Case, async: false

  alias ElixirScope.{Query, TraceDB}
  alias ElixirScope.Test.LongSchedule

  doctest ElixirScope.Query
  doctest ElixirScope.TraceDB, only: [vocabulary: 0]

  @store :query_test

  setup do
    start_supervised!({TraceDB, name: @store, max_events: 400_000, max_bytes: 128 * 1024 * 1024})
    :ok
  end

  defp run(spec), do: Query.run([store: @store] ++ spec)
  defp page(spec), do: Query.page([store: @store] ++ spec)
  defp store!(type, event), do: :ok = TraceDB.store_event(type, event, store: @store)
  defp ids(events), do: Enum.map(events, & &1.id)
  defp sleeper, do: spawn(fn -> Process.sleep(:infinity) end)

  defp requests(n) do
    for i <- 1..n do
      store!(:phoenix, %{
        kind: :endpoint,
        phase: :stop,
        status: Enum.at([200, 200, 404, 500, 503], rem(i, 5)),
        path: if(rem(i, 3) == 0, do: "/cart/#{i}", else: "/shop/#{i}"),
        method: "GET",
        duration: i * 10,
        i: i,
        args: {:get, [i, rem(i, 4)]},
        timestamp: 1_000 + i
      })
    end
  end

  describe "where: predicates" do
    setup do
      requests(100)
      :ok
    end

    test "equality, membership, comparisons, ranges, prefixes and negation" do
      assert length(run(type: :phoenix, where: [status: 500])) == 20
      assert length(run(type: :phoenix, where: [status: {:==, 500}])) == 20
      assert length(run(type: :phoenix, where: [status: {:in, [500, 503]}])) == 40
      assert length(run(type: :phoenix, where: [status: {:>=, 500}])) == 40
      assert length(run(type: :phoenix, where: [status: {:<, 404}])) == 40
      assert length(run(type: :phoenix, where: [status: {:between, 404, 500}])) == 40
      assert length(run(type: :phoenix, where: [path: {:prefix, "/cart"}])) == 33
      assert length(run(type: :phoenix, where: [status: {:not, 200}])) == 60

      both = run(type: :phoenix, where: [status: {:>=, 500}, path: {:prefix, "/cart"}])
      assert Enum.all?(both, &(&1.status >= 500 and String.starts_with?(&1.path, "/cart")))
      assert length(both) == Enum.count(1..100, &(rem(&1, 5) in [3, 4] and rem(&1, 3) == 0))
    end

    test "numbers compare across integers and floats; equality is exact" do
      assert length(run(type: :phoenix, where: [duration: {:>, 995.5}])) == 1
      assert run(type: :phoenix, where: [duration: 1000.0]) == []
      assert [%{i: 100}] = run(type: :phoenix, where: [duration: 1000])
    end

    test "elements of tuples and lists" do
      assert length(run(type: :phoenix, where: [{{:args, [1, 1]}, 0}])) == 25
      assert length(run(type: :phoenix, where: [{{:args, 0}, :get}])) == 100
      assert run(type: :phoenix, where: [{{:args, 5}, :get}]) == []
    end

    test "a missing field or a value of another kind fails the test; its negation holds" do
      assert run(type: :phoenix, where: [nope: 1]) == []
      assert length(run(type: :phoenix, where: [nope: {:not, 1}])) == 100
      assert run(type: :phoenix, where: [path: {:>, 1}]) == []
      assert run(type: :phoenix, where: [status: {:prefix, "5"}]) == []
    end

    test "ordered and limited results, both orders" do
      asc = run(type: :phoenix, where: [status: 500], limit: 3)
      assert Enum.map(asc, & &1.i) == [3, 8, 13]
      desc = run(type: :phoenix, where: [status: 500], limit: 3, order: :desc)
      assert Enum.map(desc, & &1.i) == [98, 93, 88]
    end
  end

  describe "key lists" do
    test "types, pids, modules and functions as lists: the union, merged in order" do
      [a, b, c] = for _ <- 1..3, do: sleeper()

      for i <- 1..30 do
        pid = Enum.at([a, b, c], rem(i, 3))
        store!(Enum.at([:x, :y, :z], rem(i, 3)), %{pid: pid, timestamp: 100 - i})
        store!(:call, %{pid: pid, module: M, function: Enum.at([:f, :g], rem(i, 2)), arity: 0})
      end

      xy = run(type: [:x, :y])
      assert length(xy) == 20
      assert Enum.map(xy, & &1.timestamp) == Enum.sort(Enum.map(xy, & &1.timestamp))
      assert length(run(pid: [a, b], type: [:x, :y, :z])) == 20
      assert length(run(module: M, function: [:f, :g])) == 30
      assert length(run(module: [M, Other], function: :f)) == 15
      assert run(type: [:never_stored]) == []
      assert length(run(type: [:x, :never_stored])) == 10
    end

    test "pid x to_pid combinations and both directions" do
      [a, b, c] = for _ <- 1..3, do: sleeper()

      for {from, to} <- [{a, b}, {a, c}, {b, a}, {c, a}, {b, c}] do
        store!(:send, %{from_pid: from, to_pid: to, message: {from, to}})
      end

      assert length(run(pid: a, to_pid: [b, c])) == 2
      assert length(run(pid: [b, c], to_pid: a)) == 2
      assert length(run(between: {a, b})) == 2
      assert length(run(from_pid: [a, b], pid: b)) == 2
    end
  end

  describe "cursors" do
    test "page/1 goes forward and back through equal timestamps without gaps or repeats" do
      for i <- 1..57, do: store!(:e, %{i: i, timestamp: div(i, 4)})
      all = run(type: :e)

      forward =
        Stream.unfold(nil, fn
          :done ->
            nil

          cursor ->
            {items, next} = page(type: :e, limit: 5, after: cursor)
            {items, next || :done}
        end)
        |> Enum.concat()

      assert ids(forward) == ids(all)

      {last_page, _} = page(type: :e, order: :desc, limit: 5)

      backward =
        Stream.unfold(Query.cursor(List.last(last_page)), fn
          nil ->
            nil

          cursor ->
            {items, next} = page(type: :e, order: :desc, limit: 5, before: cursor)
            {items, next}
        end)
        |> Enum.concat()

      assert ids(last_page ++ backward) == Enum.reverse(ids(all))
    end

    test "a cursor is a binary; an event or a malformed one" do
      store!(:e, %{timestamp: 5})
      [e] = run(type: :e)
      assert is_binary(Query.cursor(e))
      assert run(type: :e, after: Query.cursor(e)) == []
      assert run(type: :e, before: e) == []
      assert_raise ArgumentError, ~r/filter :after must be a cursor/, fn -> run(after: "nope") end

      assert_raise ArgumentError, ~r/filter :after must be a cursor/, fn ->
        run(after: "esq1.!!")
      end
    end
  end

  describe "projections and aggregates" do
    setup do
      requests(100)
      :ok
    end

    test "fields, ids and counts" do
      [first | _] = run(type: :phoenix, select: [:status, :path, :nope])
      assert Map.keys(first) |> Enum.sort() == [:id, :path, :status, :timestamp, :type]
      assert [id | _] = run(type: :phoenix, select: :ids)
      assert id == first.id
      assert run(type: :phoenix, select: :count) == 100
      assert run(type: :phoenix, select: :count, limit: 7) == 7
      assert Query.count(store: @store, type: :phoenix, where: [status: 404]) == 20
    end

    test "group_by with exact percentiles" do
      rows = run(type: :phoenix, group_by: :status, measure: :duration)
      assert Enum.map(rows, & &1.count) == [40, 20, 20, 20]

      for %{group: status} = row <- rows do
        ds = for i <- 1..100, Enum.at([200, 200, 404, 500, 503], rem(i, 5)) == status, do: i * 10
        sorted = Enum.sort(ds)
        rank = fn q -> Enum.at(sorted, max(ceil(q * length(ds)), 1) - 1) end
        assert row.min == hd(sorted) and row.max == List.last(sorted)
        assert row.p50 == rank.(0.5) and row.p90 == rank.(0.9) and row.p99 == rank.(0.99)
        assert_in_delta row.mean, Enum.sum(ds) / length(ds), 1.0e-9
      end

      assert %{count: 100, measured: 100, max: 1000} = run(type: :phoenix, measure: :duration)
      assert [%{group: :phoenix, count: 100}] = run(group_by: :type)
      assert [%{group: nil, count: 100}] = run(type: :phoenix, group_by: :absent)
      assert %{count: 0, p99: nil} = run(type: :nothing, measure: :duration)
    end
  end

  describe "malformed specs name the bad part" do
    test "keys, values, predicates" do
      assert_raise ArgumentError, ~r/unknown filter :bogus/, fn -> run(bogus: 1) end

      assert_raise ArgumentError, ~r/filter :type must be an atom or a list/, fn ->
        run(type: ["x"])
      end

      assert_raise ArgumentError, ~r/filter :pid must be a pid or a list/, fn -> run(pid: [1]) end

      assert_raise ArgumentError, ~r/filter :type must be an atom or a list/, fn ->
        run(type: [])
      end

      assert_raise ArgumentError,
                   ~r/where: \{:status, \{:>=, "5"\}\}: a comparison needs a number/,
                   fn ->
                     run(where: [status: {:>=, "5"}])
                   end

      assert_raise ArgumentError, ~r/where: :pid is an indexed field/, fn ->
        run(where: [pid: 1])
      end

      assert_raise ArgumentError, ~r/\{:in, list\} needs a list/, fn ->
        run(where: [a: {:in, []}])
      end

      assert_raise ArgumentError, ~r/malformed test/, fn -> run(where: [a: {:between, 1}]) end
      assert_raise ArgumentError, ~r/filter :where must be a list/, fn -> run(where: :x) end
      assert_raise ArgumentError, ~r/filter :select must be/, fn -> run(select: :all) end
      assert_raise ArgumentError, ~r/filter :group_by must be/, fn -> run(group_by: "x") end

      assert_raise ArgumentError, ~r/select: cannot be combined/, fn ->
        run(select: :ids, measure: :d)
      end

      assert_raise ArgumentError, ~r/page\/1 pages listings/, fn -> page(select: :count) end
    end

    test "no atom is created by a query" do
      store!(:e, %{status: 1})
      before = :erlang.system_info(:atom_count)

      for _ <- 1..50 do
        run(type: :e, where: [status: 1, other: {:not, 2}], select: [:status, :x])
        run(type: :e, group_by: :y, measure: :z)
      end

      assert :erlang.system_info(:atom_count) == before
    end
  end

  describe "scheduling" do
    test "long scans, counts and aggregates never hold a normal scheduler over 1 ms" do
      for chunk <- Enum.chunk_every(1..150_000, 10_000) do
        for i <- chunk,
            do:
              store!(:big, %{
                status: rem(i, 97),
                path: "/p/#{rem(i, 13)}",
                d: i,
                pad: "0123456789"
              })
      end

      reports =
        LongSchedule.reports(fn ->
          assert length(run(type: :big, where: [status: 96])) > 1000
          assert run(where: [status: {:>, 1000}]) == []
          assert run(type: :big, select: :count, where: [path: {:prefix, "/p/1"}]) > 0
          assert [_ | _] = run(type: :big, group_by: :status, measure: :d)
          assert {[_ | _], _} = page(type: :big, where: [status: 5], limit: 200)
          assert length(run(type: :big, select: :ids)) == 150_000
        end)

      assert reports == []
    end
  end
end
