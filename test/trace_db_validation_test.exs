defmodule ElixirScope.TraceDBValidationTest do
  # Nothing here writes to or starts the default store (ExUnit runs async modules
  # before the synchronous ones that do); the few stores started are named.
  use ExUnit.Case, async: true

  alias ElixirScope.TraceDB

  @store :trace_db_validation_store

  defp start_named do
    start_supervised!(
      {TraceDB, name: @store, max_events: 64, max_bytes: 4096, max_payload_bytes: 1024}
    )
  end

  describe "start_link/1 options" do
    test "max_events out of range" do
      for bad <- [0, 15, -1, 2 ** 31 + 1, 1.0, "100", nil] do
        assert_raise ArgumentError, ~r/:max_events must be an integer in 16\.\.2147483648/, fn ->
          TraceDB.start_link(name: :never_started, max_events: bad)
        end
      end
    end

    test "max_bytes out of range" do
      for bad <- [-1, 0, 4095, 2 ** 40 + 1, 4096.0] do
        assert_raise ArgumentError, ~r/:max_bytes must be an integer in 4096\.\./, fn ->
          TraceDB.start_link(name: :never_started, max_bytes: bad, max_payload_bytes: 0)
        end
      end
    end

    test "sample_rate out of range" do
      for bad <- [1.5, -0.1, 2, "0.5", nil, :half] do
        assert_raise ArgumentError, ~r/:sample_rate must be a number in 0\.0\.\.1\.0/, fn ->
          TraceDB.start_link(name: :never_started, sample_rate: bad)
        end
      end
    end

    test "max_payload_bytes must be at most max_bytes / 4" do
      assert_raise ArgumentError,
                   ~r/:max_payload_bytes \(2048\) must be at most :max_bytes \/ 4 \(1024\)/,
                   fn ->
                     TraceDB.start_link(
                       name: :never_started,
                       max_bytes: 4096,
                       max_payload_bytes: 2048
                     )
                   end

      # The default max_payload_bytes (64 KiB) does not fit a 4 KiB store either.
      assert_raise ArgumentError, ~r/:max_payload_bytes \(65536\) must be at most/, fn ->
        TraceDB.start_link(name: :never_started, max_bytes: 4096)
      end

      assert_raise ArgumentError, ~r/:max_payload_bytes must be an integer/, fn ->
        TraceDB.start_link(name: :never_started, max_payload_bytes: -1)
      end
    end

    test "max_keys out of range" do
      for bad <- [0, 15, 2 ** 26 + 1, :many] do
        assert_raise ArgumentError, ~r/:max_keys must be an integer in 16\.\./, fn ->
          TraceDB.start_link(name: :never_started, max_keys: bad)
        end
      end
    end

    test "unknown option" do
      assert_raise ArgumentError, ~r/unknown TraceDB option :bogus/, fn ->
        TraceDB.start_link(name: :never_started, bogus: 1)
      end

      assert_raise ArgumentError, ~r/unknown TraceDB option :max_event\b/, fn ->
        TraceDB.start_link(name: :never_started, max_event: 10)
      end
    end

    test "options that are not a keyword list, and bad names" do
      for bad <- [:opts, %{max_events: 100}, [1, 2], "opts"] do
        assert_raise ArgumentError, ~r/options must be a keyword list/, fn ->
          TraceDB.start_link(bad)
        end
      end

      for bad <- ["name", nil, {:via, Registry, :x}, 1] do
        assert_raise ArgumentError, ~r/:name must be an atom/, fn ->
          TraceDB.start_link(name: bad)
        end
      end
    end

    test "a refused start leaves nothing running" do
      assert_raise ArgumentError, fn ->
        TraceDB.start_link(name: :refused_store, max_events: 0)
      end

      assert Process.whereis(:refused_store) == nil
      assert TraceDB.lookup(:refused_store) == nil
    end

    test "boundary values are accepted" do
      start_supervised!(
        {TraceDB,
         name: :trace_db_validation_min,
         max_events: 16,
         max_bytes: 4096,
         max_payload_bytes: 1024,
         max_keys: 16,
         sample_rate: 0}
      )

      stats = TraceDB.stats(:trace_db_validation_min)
      assert stats.max_events == 16
      assert stats.max_bytes == 4096
      assert stats.max_payload_bytes == 1024
      assert stats.sample_rate == 0.0
    end
  end

  describe "store_event/2 and log_state/3" do
    test "non-atom type" do
      for bad <- ["type", 1, {:t}, ~c"type"] do
        assert_raise ArgumentError, ~r/event type must be an atom, got: /, fn ->
          TraceDB.store_event(bad, %{})
        end
      end
    end

    test "non-map event" do
      for bad <- [[a: 1], nil, "event", {:event}, 1] do
        assert_raise ArgumentError, ~r/event must be a map, got: /, fn ->
          TraceDB.store_event(:type, bad)
        end
      end
    end

    test "a bad type is reported even when the event is bad too" do
      assert_raise ArgumentError, ~r/event type must be an atom/, fn ->
        TraceDB.store_event("type", "event")
      end
    end

    test "log_state with a non-module or a non-pid" do
      assert_raise ArgumentError, ~r/log_state\/3 expects a module atom, got: "Mod"/, fn ->
        TraceDB.log_state("Mod", self(), %{})
      end

      assert_raise ArgumentError, ~r/log_state\/3 expects a pid, got: :not_a_pid/, fn ->
        TraceDB.log_state(SomeMod, :not_a_pid, %{})
      end

      assert_raise ArgumentError, ~r/log_state\/3 expects a pid/, fn ->
        TraceDB.log_state(SomeMod, "pid", %{})
      end
    end
  end

  describe "query_events/1 filters" do
    test "filters that are neither a keyword list nor a map" do
      for bad <- [:type, "type", 1, [1, 2], [{"type", :x}], {:type, :x}] do
        assert_raise ArgumentError, ~r/filters must be a keyword list or a map/, fn ->
          TraceDB.query_events(bad)
        end
      end
    end

    test "unknown filter key" do
      assert_raise ArgumentError, ~r/unknown filter :bogus; allowed: :type/, fn ->
        TraceDB.query_events(bogus: 1)
      end

      assert_raise ArgumentError, ~r/unknown filter :timestamp\b/, fn ->
        TraceDB.query_events(%{timestamp: 1})
      end
    end

    test "negative or non-integer limit" do
      for bad <- [-1, 1.5, "10", :all, nil] do
        assert_raise ArgumentError, ~r/filter :limit must be a non-negative integer/, fn ->
          TraceDB.query_events(limit: bad)
        end
      end
    end

    test "unknown order" do
      for bad <- [:sideways, "asc", :ascending, nil] do
        assert_raise ArgumentError, ~r/filter :order must be :asc or :desc/, fn ->
          TraceDB.query_events(order: bad)
        end
      end
    end

    test "non-pid pid filters" do
      for key <- [:pid, :from_pid, :to_pid], bad <- ["pid", :self, 1, nil] do
        assert_raise ArgumentError, ~r/filter #{inspect(key)} must be a pid/, fn ->
          TraceDB.query_events([{key, bad}])
        end
      end
    end

    test "non-atom type, module and function" do
      for key <- [:type, :module] do
        assert_raise ArgumentError, ~r/filter #{inspect(key)} must be an atom/, fn ->
          TraceDB.query_events([{key, "x"}])
        end
      end

      assert_raise ArgumentError, ~r/filter :function must be an atom/, fn ->
        TraceDB.query_events(module: M, function: "f")
      end
    end

    test ":function without :module" do
      assert_raise ArgumentError, ~r/filter :function needs :module/, fn ->
        TraceDB.query_events(function: :f)
      end

      assert_raise ArgumentError, ~r/filter :function needs :module/, fn ->
        TraceDB.query_events(%{function: :f, type: :call})
      end
    end

    test "non-integer timestamps and ids" do
      for key <- [:timestamp_start, :timestamp_end], bad <- [1.0, "1", nil] do
        assert_raise ArgumentError, ~r/filter #{inspect(key)} must be an integer/, fn ->
          TraceDB.query_events([{key, bad}])
        end
      end

      for key <- [:after_id, :before_id], bad <- [-1, 1.0, "1"] do
        assert_raise ArgumentError,
                     ~r/filter #{inspect(key)} must be a non-negative integer/,
                     fn -> TraceDB.query_events([{key, bad}]) end
      end
    end

    test "values out of the 64-bit range are refused by the store" do
      start_named()

      assert_raise ArgumentError, ~r/filter :timestamp_start must be an integer/, fn ->
        TraceDB.query_events(store: @store, timestamp_start: 2 ** 64)
      end

      assert_raise ArgumentError, ~r/filter :limit must be a non-negative integer/, fn ->
        TraceDB.query_events(store: @store, limit: 2 ** 65)
      end
    end

    test "a store that is not running raises RuntimeError" do
      assert_raise RuntimeError, ~r/store :no_such_store is not running/, fn ->
        TraceDB.query_events(store: :no_such_store)
      end

      assert_raise RuntimeError, ~r/is not running/, fn ->
        TraceDB.query_events(%{store: :no_such_store, type: :x})
      end
    end

    test "a valid query on a named, empty store returns []" do
      start_named()
      assert TraceDB.query_events(store: @store) == []
      assert TraceDB.query_events(store: @store, type: :x, pid: self(), limit: 5) == []
    end
  end

  describe "time-travel helpers" do
    test "get_state_history/1 with a non-pid" do
      assert_raise ArgumentError, ~r/get_state_history\/1 expects a pid, got: "pid"/, fn ->
        TraceDB.get_state_history("pid")
      end
    end

    test "get_state_at/2 with a non-pid or a non-integer timestamp" do
      assert_raise ArgumentError, ~r/get_state_at\/2 expects a pid, got: :me/, fn ->
        TraceDB.get_state_at(:me, 0)
      end

      for bad <- [1.5, "0", nil, :now] do
        assert_raise ArgumentError, ~r/get_state_at\/2 timestamp must be an integer/, fn ->
          TraceDB.get_state_at(self(), bad)
        end
      end
    end

    test "get_events_at/2 with a bad timestamp or window" do
      assert_raise ArgumentError, ~r/get_events_at\/2 timestamp must be an integer/, fn ->
        TraceDB.get_events_at(1.0, 10)
      end

      for bad <- [-1, 1.5, "10", nil] do
        assert_raise ArgumentError, ~r/window_ms must be a non-negative integer, got: /, fn ->
          TraceDB.get_events_at(0, bad)
        end
      end
    end

    test "next_event_after/1 and prev_event_before/1 with non-integers" do
      for bad <- [1.0, "1", nil, :now] do
        assert_raise ArgumentError, ~r/next_event_after\/1 timestamp must be an integer/, fn ->
          TraceDB.next_event_after(bad)
        end

        assert_raise ArgumentError, ~r/prev_event_before\/1 timestamp must be an integer/, fn ->
          TraceDB.prev_event_before(bad)
        end
      end
    end

    test "get_processes_at/1 with a non-integer" do
      assert_raise ArgumentError, ~r/get_processes_at\/1 timestamp must be an integer/, fn ->
        TraceDB.get_processes_at("now")
      end
    end

    test "options are validated like query filters" do
      start_named()

      assert_raise ArgumentError, ~r/unknown filter :bogus/, fn ->
        TraceDB.get_state_history(self(), store: @store, bogus: 1)
      end

      assert_raise ArgumentError, ~r/filter :limit must be a non-negative integer/, fn ->
        TraceDB.next_event_after(0, store: @store, limit: -1)
      end
    end

    test "a named store is reached with the :store option" do
      start_named()
      assert TraceDB.get_state_history(self(), store: @store) == []
      assert TraceDB.get_state_at(self(), 0, store: @store) == {:error, :not_found}
      assert TraceDB.get_events_at(0, 10, store: @store) == []
      assert TraceDB.next_event_after(0, store: @store) == nil
      assert TraceDB.prev_event_before(0, store: @store) == nil
      assert TraceDB.get_processes_at(0, store: @store) == []
    end

    test "stopped or unknown named stores raise RuntimeError" do
      for fun <- [
            fn -> TraceDB.get_state_at(self(), 0, store: :nope) end,
            fn -> TraceDB.get_events_at(0, 1, store: :nope) end,
            fn -> TraceDB.next_event_after(0, store: :nope) end,
            fn -> TraceDB.get_processes_at(0, store: :nope) end,
            fn -> TraceDB.stats(:nope) end,
            fn -> TraceDB.clear(:nope) end,
            fn -> TraceDB.set_sample_rate(0.5, :nope) end
          ] do
        assert_raise RuntimeError, ~r/store :nope is not running/, fun
      end
    end
  end

  describe "set_sample_rate/2" do
    test "out of range or not a number" do
      start_named()

      for bad <- [1.5, -0.5, 2, "0.5", nil] do
        assert_raise ArgumentError, ~r/:sample_rate must be a number in 0\.0\.\.1\.0/, fn ->
          TraceDB.set_sample_rate(bad, @store)
        end
      end

      assert TraceDB.stats(@store).sample_rate == 1.0
      assert :ok = TraceDB.set_sample_rate(0.3, @store)
      assert TraceDB.stats(@store).sample_rate == 0.3
    end
  end
end
