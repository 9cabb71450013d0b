defmodule ElixirScope.PostMortemTest do
  use ExUnit.Case, async: false

  alias ElixirScope.TraceDB
  alias ElixirScope.Test.Stores

  @moduletag :tmp_dir

  setup do
    Stores.stop_all([TraceDB, :loaded])
    on_exit(fn -> Stores.stop_all([TraceDB, :loaded]) end)
  end

  # A store with terms of every kind, and enough payload for several segments.
  defp record(n) do
    # Not linked: the store outlives this test's process until on_exit stops it.
    {:ok, store} = TraceDB.start_link(max_events: 100_000, max_bytes: 64 * 1024 * 1024)
    Process.unlink(store)
    me = self()

    for i <- 1..n do
      :ok =
        TraceDB.store_event(:note, %{
          pid: me,
          i: i,
          data: :crypto.strong_rand_bytes(900),
          nested: %{
            list: [1, 2.5, {:t, "s"}],
            set: MapSet.new([i]),
            ref: make_ref(),
            fun: &Enum.map/2
          }
        })
    end

    :ok = TraceDB.store_event(:state, %{pid: me, module: Some.Module, state: %{n: n}})
    TraceDB.query_events([])
  end

  test "a dump loads back identical: ids, timestamps, terms, and the answers of queries", %{
    tmp_dir: dir
  } do
    events = record(2_500)
    path = Path.join(dir, "scope.esd")
    assert {:ok, %{events: 2_501, bytes: bytes, raw_bytes: raw}} = ElixirScope.dump(path)
    assert bytes == File.stat!(path).size
    assert raw > 1024 * 1024, "several segments"
    assert Bitwise.band(File.stat!(path).mode, 0o777) == 0o600

    state_before = TraceDB.get_state_history(self())
    TraceDB.stop()
    assert {:ok, summary} = ElixirScope.load(path)
    assert %{events: 2_501, skipped: [], segments: segments} = summary
    assert segments >= 2
    assert summary.first_timestamp == hd(events).timestamp
    assert TraceDB.query_events([]) == events
    assert TraceDB.get_state_history(self()) == state_before

    assert TraceDB.query_events(type: :note, limit: 3, order: :desc) ==
             Enum.take(Enum.reverse(Enum.drop(events, -1)), 3)
  end

  # test/fixtures/main_v1.esd was written by the code before the query engine
  # (test/fixtures/gen_main_v1.exs says how): the dump format did not change, and what
  # the store now derives from events (the digest kept with each :state event) is
  # derived again on load.
  test "a recording written before the query engine loads, and every query reads it" do
    path = Path.join([__DIR__, "fixtures", "main_v1.esd"])
    assert {:ok, %{events: events, skipped: []}} = ElixirScope.load(path, name: :loaded)
    assert events > 40
    q = &ElixirScope.Query.run([store: :loaded] ++ &1)

    assert [%{status: 500}] = q.(type: :request, where: [status: {:>=, 500}])
    assert [%{path: "/cart/404"}] = q.(type: :request, where: [path: {:prefix, "/cart/4"}])
    assert [%{pid: counter} | _] = states = q.(type: :state)
    assert Enum.map(states, & &1.state.n) == [0, 1, 3, 6, 8, 13]
    assert [%{type: :crash, pid: ^counter}] = q.(type: :crash)

    assert {:ok, change} =
             ElixirScope.Processes.analyze_state_change(
               counter,
               %{n: 3, log: [2, 1]},
               %{n: 8, log: [2, 3, 2, 1]},
               store: :loaded
             )

    assert change.callback == :handle_call
    assert {[:n], :changed, 3, 8} in change.diff

    assert [%{type: :state, state: %{n: 6}} | _] =
             Enum.filter(change.events_between, &(&1.type == :state))

    assert [%{function: :twice, result: 42, children: []}] =
             ElixirScope.Analysis.call_tree(hd(q.(type: :call)).pid, store: :loaded)

    assert [%{group: :handle_call, count: 5}] =
             q.(type: :state, where: [callback: {:not, :initial}], group_by: :callback)
  end

  test "load under another name; queries read it with store:", %{tmp_dir: dir} do
    events = record(10)
    path = Path.join(dir, "named.esd")
    {:ok, _} = ElixirScope.dump(path)
    assert {:error, {:already_running, TraceDB}} = ElixirScope.load(path)
    assert {:ok, %{events: 11}} = ElixirScope.load(path, name: :loaded)
    assert TraceDB.query_events(store: :loaded) == events
  end

  defp damaged(dir, fun) do
    record(2_500)
    path = Path.join(dir, "damaged.esd")
    {:ok, _} = ElixirScope.dump(path)
    TraceDB.stop()
    bytes = File.read!(path)
    File.write!(path, fun.(bytes))
    ElixirScope.load(path)
  end

  # Byte offset of the second segment: the first one's compressed length is at 16 + 44.
  defp second_segment(bytes) do
    <<_::binary-size(60), zlen::little-32, _::binary>> = bytes
    16 + 64 + zlen
  end

  test "a file cut mid-segment loads every whole segment before it", %{tmp_dir: dir} do
    assert {:ok, summary} = damaged(dir, fn b -> binary_part(b, 0, second_segment(b) + 100) end)
    assert summary.segments == 1 and summary.events > 0 and summary.events < 2_501
    assert [{_file, 1, :truncated_data}] = summary.skipped
  end

  test "a file cut at a segment boundary loads what it holds", %{tmp_dir: dir} do
    assert {:ok, %{segments: 1, skipped: []}} =
             damaged(dir, fn b -> binary_part(b, 0, second_segment(b)) end)
  end

  test "a flipped byte in a segment's data skips that segment only", %{tmp_dir: dir} do
    flip = fn b, at ->
      <<head::binary-size(at), x, rest::binary>> = b
      <<head::binary, Bitwise.bxor(x, 0xFF), rest::binary>>
    end

    assert {:ok, summary} = damaged(dir, &flip.(&1, 16 + 64 + 10))
    assert [{_file, 0, :bad_checksum}] = summary.skipped
    assert summary.segments >= 1
    first_loaded = hd(TraceDB.query_events([]))
    assert first_loaded.i > 1
  end

  test "a damaged segment header stops the load there", %{tmp_dir: dir} do
    flip = fn b, at ->
      <<head::binary-size(at), x, rest::binary>> = b
      <<head::binary, Bitwise.bxor(x, 0xFF), rest::binary>>
    end

    assert {:ok, summary} = damaged(dir, fn b -> flip.(b, second_segment(b) + 5) end)
    assert summary.segments == 1
    assert [{_file, 1, :bad_header}] = summary.skipped
  end

  test "not a dump, or no file, or an unwritable place", %{tmp_dir: dir} do
    bad = Path.join(dir, "bad.esd")
    File.write!(bad, "definitely not a dump")
    assert {:error, "not an ElixirScope dump" <> _} = ElixirScope.load(bad)
    refute TraceDB.lookup(TraceDB), "a failed load leaves no store behind"
    assert {:error, _} = ElixirScope.load(Path.join(dir, "missing.esd"))
    record(1)
    assert {:error, _} = ElixirScope.dump(Path.join([dir, "no", "such", "dir.esd"]))
    assert_raise ArgumentError, ~r/file path/, fn -> ElixirScope.dump(:nope) end

    assert_raise ArgumentError, ~r/segment_bytes must be an integer from 4096/, fn ->
      ElixirScope.dump(Path.join(dir, "small.esd"), segment_bytes: 100)
    end
  end

  test "segment_bytes: sets how much one segment holds", %{tmp_dir: dir} do
    events = record(200)
    small = Path.join(dir, "small.esd")
    big = Path.join(dir, "big.esd")
    assert {:ok, %{raw_bytes: raw}} = ElixirScope.dump(small, segment_bytes: 16_384)
    assert {:ok, _} = ElixirScope.dump(big, segment_bytes: 64 * 1024 * 1024)
    TraceDB.stop()

    # A segment closes at the first record that takes it to 16 KiB: records here are
    # about 1 KiB, so each segment holds 16 or 17 of them.
    assert {:ok, %{events: 201, segments: n, skipped: []}} = ElixirScope.load(small)
    assert n >= div(raw, 16_384 + 1_100) and n <= div(raw, 16_384) + 1
    assert TraceDB.query_events([]) == events
    TraceDB.stop()
    assert {:ok, %{events: 201, segments: 1}} = ElixirScope.load(big)
    assert TraceDB.query_events([]) == events
  end
end
