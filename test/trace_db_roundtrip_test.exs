defmodule ElixirScope.TraceDBRoundTripTest do
  # Writes go to the default store: not async.
  use ExUnit.Case, async: false

  alias ElixirScope.TraceDB

  defmodule Point do
    defstruct x: 0, y: 0, meta: nil
  end

  setup do
    # Large enough for the multi-megabyte binaries below to be kept whole.
    start_supervised!(
      {TraceDB, max_events: 10_000, max_bytes: 64 * 1024 * 1024, max_payload_bytes: 8_000_000}
    )

    :ok
  end

  # Stores `event` under a type of its own and returns what comes back, minus the
  # fields the store adds.
  defp round_trip(event) do
    type = :"rt_#{System.unique_integer([:positive])}"
    :ok = TraceDB.store_event(type, event)
    assert [stored] = TraceDB.query_events(type: type)
    assert stored.type == type
    assert is_integer(stored.id)
    assert is_integer(stored.timestamp)
    Map.drop(stored, [:id, :type, :timestamp])
  end

  defp assert_round_trip(event) do
    back = round_trip(event)
    assert back === event
    back
  end

  test "scalars: atoms, integers, big integers, floats" do
    assert_round_trip(%{
      atoms: [:a, nil, true, false, :"with space", :ünïcødé, :"Elixir", Some.Module],
      ints: [0, 1, -1, 255, 256, 2 ** 27, -(2 ** 27) - 1, 2 ** 31, 2 ** 63 - 1, -(2 ** 63)],
      bigs: [2 ** 64, 2 ** 512, -(2 ** 100), 12_345_678_901_234_567_890_123_456_789],
      floats: [0.0, 1.5, -2.25, 0.1, 1.0e300, -1.0e-300, 3.141592653589793, 5.0e-324]
    })
  end

  # Small integers, atoms, [] and list cells are encoded from their tag bits; the
  # boundaries of each form and immediates at every depth (past the direct encoder's
  # depth limit too) must come back as they went in.
  test "immediates at the small-integer boundaries and at every depth" do
    small = 2 ** 59

    deep =
      Enum.reduce(1..14, [:leaf, -1, 0, small - 1, -small, []], fn i, acc -> [i, acc | :tail] end)

    assert_round_trip(%{
      ints: [
        small - 1,
        -small,
        small,
        -small - 1,
        2 ** 31 - 1,
        2 ** 31,
        -(2 ** 31),
        -(2 ** 31) - 1
      ],
      bytes: [0, 255, 256, -1, -255, -256],
      deep: deep,
      deep_tuple: Enum.reduce(1..12, {1, :a, []}, fn i, acc -> {i, acc, [i | i]} end),
      long_list: Enum.to_list(1..300),
      improper: [:a, :b | :c],
      improper_int: [1 | 2],
      nested_nil: [[], [[]], [[[]]]]
    })
  end

  test "nested maps, lists, improper lists and tuples" do
    assert_round_trip(%{
      nested: %{a: %{b: %{c: %{d: [1, %{e: {:f, [g: :h]}}]}}}},
      list: [1, "two", :three, [4, [5, [6]]], []],
      improper: [1, 2 | 3],
      improper_nested: [[:a | :b], {1, [2 | "tail"]}],
      tuples: {{}, {1}, {1, 2, {3, 4, {5}}}, {:ok, %{}}},
      charlist: ~c"hello",
      keyword: [a: 1, b: 2, a: 3],
      string_keys: %{"k" => 1, {1, 2} => :tuple_key, [1] => :list_key, 1.5 => :float_key},
      empty: {%{}, [], "", {}}
    })
  end

  test "maps of every size, including large hash maps" do
    small = Map.new(1..32, &{&1, &1 * 2})
    large = Map.new(1..5_000, &{"key_#{&1}", {&1, :erlang.integer_to_binary(&1)}})
    assert_round_trip(%{small: small, large: large, atom_keys: Map.new(1..100, &{:"k#{&1}", &1})})
  end

  # Events of 8 fields or more are stored with a table of where each field starts
  # (c_src/core/payload.h), unless they pass 64 KiB; nothing of it shows.
  test "wide events, with and without their table of fields, come back whole and answer predicates" do
    for width <- [7, 8, 9, 40, 256, 257] do
      event = Map.new(1..width, fn i -> {:"field_#{i}", {i, "v#{i}", [i * 1.5]}} end)
      assert_round_trip(event)
      big = Map.put(event, :field_1, String.duplicate("x", 70_000))
      assert_round_trip(big)
    end

    type = :"rt_#{System.unique_integer([:positive])}"
    mixed = %{"string key" => 1, 2 => :two, {:t} => [3]}

    for i <- 1..20 do
      wide = Map.new(1..12, fn f -> {:"f#{f}", i * f} end)
      :ok = TraceDB.store_event(type, Map.merge(wide, if(rem(i, 2) == 0, do: mixed, else: %{})))
    end

    assert length(TraceDB.query_events(type: type, where: [f12: {:>, 120}])) == 10
    assert [%{f1: 7}] = TraceDB.query_events(type: type, where: [f7: 49, f1: {:<, 10}])
    assert [%{"string key" => 1} = e] = TraceDB.query_events(type: type, where: [f3: 6])
    assert e[2] == :two

    assert TraceDB.query_events(type: type, select: [:f5, :f12], where: [f5: 100])
           |> Enum.map(& &1.f12) == [240]
  end

  test "binaries: empty, unicode, large, sub-binaries and bitstrings" do
    large = :crypto.strong_rand_bytes(4 * 1024 * 1024)
    sub = binary_part(large, 1_000, 200_000)
    <<_::binary-size(3), small_sub::binary-size(10), _::binary>> = large

    back =
      assert_round_trip(%{
        empty: "",
        unicode: "héllo wörld ✓ 日本語",
        zeros: <<0, 0, 0, 0>>,
        large: large,
        sub: sub,
        small_sub: small_sub,
        bits: <<1::1, 0::1, 1::1>>,
        bits_long: <<255, 1::4>>,
        bit_tuple: {<<3::2>>, <<>>}
      })

    assert byte_size(back.large) == 4 * 1024 * 1024
    assert bit_size(back.bits) == 3
    assert bit_size(back.bits_long) == 12
  end

  test "structs: MapSet, URI, DateTime, Date, Range, Decimal-like user structs" do
    now = DateTime.utc_now()

    assert_round_trip(%{
      set: MapSet.new([1, :two, "three", {4}]),
      uri: URI.parse("https://user@example.com:8443/path?q=1#frag"),
      datetime: now,
      datetime_tz: DateTime.from_naive!(~N[2024-02-29 12:34:56.789012], "Etc/UTC"),
      date: ~D[2024-02-29],
      time: ~T[23:59:59.999],
      naive: ~N[2000-01-01 00:00:00],
      range: 1..10//3,
      regex_source: ~r/ab+c/i.source,
      point: %Point{x: 1, y: -2, meta: %Point{x: :nested}},
      error: %ArgumentError{message: "boom"}
    })

    back = round_trip(%{set: MapSet.new(1..3), at: now})
    assert MapSet.member?(back.set, 2)
    assert DateTime.compare(back.at, now) == :eq
  end

  test "pids, refs and ports" do
    spawned = spawn(fn -> Process.sleep(:infinity) end)
    dead = spawn(fn -> :ok end)
    port = Port.open({:spawn, "cat"}, [:binary])
    on_exit(fn -> if Port.info(port), do: Port.close(port) end)
    ref = make_ref()
    alias_ref = :erlang.alias()

    back =
      assert_round_trip(%{
        pids: [self(), spawned, dead],
        ref: ref,
        alias: alias_ref,
        port: port,
        in_tuple: {self(), ref, port}
      })

    assert back.ref == ref
    assert back.port == port
    send(hd(back.pids), :reached_me)
    assert_receive :reached_me
  end

  test "anonymous and external funs" do
    offset = 10
    closure = fn x -> x + offset end
    plain = fn -> :plain end
    multi = fn {a, b} -> a * b end

    back =
      assert_round_trip(%{
        closure: closure,
        plain: plain,
        multi: multi,
        external: &Enum.map/2,
        erlang_external: &:lists.reverse/1,
        captured: &String.upcase/1
      })

    assert back.closure.(1) == 11
    assert back.plain.() == :plain
    assert back.multi.({6, 7}) == 42
    assert back.external.([1, 2], &(&1 * 3)) == [3, 6]
    assert back.erlang_external.([1, 2, 3]) == [3, 2, 1]
    assert back.captured.("abc") == "ABC"
  end

  test "indexed fields of the right kind come back under their own names" do
    pid = spawn(fn -> Process.sleep(:infinity) end)

    assert_round_trip(%{pid: self(), to_pid: pid, module: Mod, function: :fun, arity: 2, x: 1})
    assert_round_trip(%{from_pid: self(), to_pid: pid, message: {:hello, [1, 2]}})
    assert_round_trip(%{module: Mod, arity: 0})
    assert_round_trip(%{module: Mod, function: :only})
    assert_round_trip(%{module: Mod, function: :f, arity: 255})
    assert_round_trip(%{pid: self()})
    assert_round_trip(%{})
    assert_round_trip(%{pid: self(), from_pid: pid, to_pid: self()})
    assert_round_trip(%{module: nil, function: nil, arity: 1})
    assert_round_trip(%{critical: true, pid: self()})
  end

  test "a pid of another node round-trips and is indexed" do
    # An external pid <17.77.0> of node :"other@host", built from its external format.
    node_name = "other@host"

    remote =
      :erlang.binary_to_term(
        <<131, 88, 100, byte_size(node_name)::16, node_name::binary, 0::32, 77::32, 0::32, 1::32>>
      )

    assert node(remote) == :other@host
    assert_round_trip(%{pid: remote, to_pid: self(), n: 1})
    assert [%{n: 1, pid: ^remote}] = TraceDB.query_events(pid: remote)
    assert [%{n: 1}] = TraceDB.query_events(pid: remote, to_pid: self())
  end

  test "fields named like indexed ones but of the wrong kind come back unchanged" do
    cases = [
      %{pid: "not a pid"},
      %{pid: :atom_pid, x: 1},
      %{pid: nil},
      %{pid: [self()]},
      %{pid: {self()}},
      %{from_pid: 123},
      %{from_pid: "str", to_pid: :nobody},
      %{to_pid: [self()]},
      %{module: "str"},
      %{module: 123, function: :f, arity: 1},
      %{module: ["Mod"], function: "f"},
      %{module: {Mod}, arity: 2},
      %{module: Mod, function: "not an atom"},
      %{module: Mod, function: 42, arity: 1},
      %{function: :f},
      %{function: :f, arity: 1},
      %{arity: 3},
      %{module: Mod, arity: 300},
      %{module: Mod, function: :f, arity: 300},
      %{module: Mod, function: :f, arity: -1},
      %{module: Mod, function: :f, arity: 2.0},
      %{module: Mod, function: :f, arity: 2 ** 70},
      %{module: Mod, function: :f, arity: "2"},
      %{pid: "not a pid", from_pid: "neither", to_pid: "nor", module: "m", function: "f"},
      %{pid: 1, module: Mod, function: :f, arity: 256, state: %{pid: self()}},
      %{critical: "yes", truncated: :maybe, payload_size: -1}
    ]

    for event <- cases do
      assert round_trip(event) === event, "round trip of #{inspect(event)}"
    end

    # None of them was indexed under the pid of this process.
    assert TraceDB.query_events(pid: self()) == []
  end

  # Small terms are encoded directly in C (c_src/nif/etf.c), larger or unusual ones by
  # the VM: terms on both sides of every switch-over must come back the same.
  test "terms around the encoder's size, depth and kind limits" do
    sizes = [0, 1, 254, 255, 256, 257, 1000]
    # Each level holds the previous one once: 90 levels deep, linear in size.
    deep = Enum.reduce(1..30, :leaf, fn i, acc -> {i, [%{i => acc}]} end)
    improper_long = List.foldr(Enum.to_list(1..300), :tail, &[&1 | &2])

    assert_round_trip(%{
      lists: Map.new(sizes, &{&1, Enum.to_list(1..&1//1)}),
      tuples: Map.new(sizes, &{&1, List.to_tuple(Enum.to_list(1..&1//1))}),
      maps: Map.new(sizes, &{&1, Map.new(1..&1//1, fn k -> {k, -k} end)}),
      binaries: Map.new([0, 4095, 4096, 4097, 70_000], &{&1, :binary.copy("b", &1)}),
      deep: deep,
      improper_long: improper_long,
      charlist_long: Enum.map(1..300, &rem(&1, 256)),
      ints: [
        255,
        256,
        -1,
        -255,
        -256,
        2 ** 31 - 1,
        2 ** 31,
        -(2 ** 31),
        -(2 ** 31) - 1,
        2 ** 63 - 1,
        2 ** 63,
        -(2 ** 63),
        -(2 ** 63) - 1,
        2 ** 64 - 1,
        2 ** 64
      ],
      floats: [-0.0, 1.7976931348623157e308, -2.2250738585072014e-308],
      atoms: [
        String.to_atom(String.duplicate("a", 255)),
        String.to_atom(String.duplicate("é", 255)),
        String.to_atom("ÿ" <> String.duplicate("z", 10)),
        :日本語,
        :"emoji_🎉",
        :""
      ]
    })
  end

  test "a mix of everything in one event" do
    event = %{
      pid: self(),
      module: __MODULE__,
      function: :test,
      arity: 1,
      state: %{
        users: MapSet.new(["a", "b"]),
        last_seen: DateTime.utc_now(),
        handler: fn x -> {x, self()} end,
        queue: :queue.from_list([1, 2, 3]),
        ets_like: [{:key, <<1, 2, 3>>, 1.0e-10, -(2 ** 90)}],
        uri: URI.parse("http://localhost"),
        ref: make_ref(),
        pid_field: "still a string",
        bits: <<5::3>>
      }
    }

    assert_round_trip(event)
  end

  test "the same term stored many times comes back the same every time" do
    term = %{list: Enum.to_list(1..100), map: %{a: {1, 2}}, f: &Kernel.+/2}
    for i <- 1..200, do: :ok = TraceDB.store_event(:many, Map.put(term, :i, i))

    events = TraceDB.query_events(type: :many)
    assert length(events) == 200

    for {ev, i} <- Enum.with_index(events, 1) do
      assert Map.drop(ev, [:id, :type, :timestamp]) === Map.put(term, :i, i)
    end
  end
end
