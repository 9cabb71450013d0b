defmodule ElixirScope.GovernorTest.Pong do
  @moduledoc false
  # An untraced GenServer that answers :ping, to measure the test process's latency.
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, nil)
  @impl true
  def init(nil), do: {:ok, nil}
  @impl true
  def handle_call(:ping, _from, s), do: {:reply, :pong, s}
end

defmodule ElixirScope.GovernorTest.Flood do
  @moduledoc false

  # Sends `n` messages to itself, receiving each one.
  def self_messages(0), do: :done

  def self_messages(n) do
    send(self(), {:flood, n})

    receive do
      {:flood, ^n} -> :ok
    end

    self_messages(n - 1)
  end

  # Calls the traced Hot.inc/1 `n` times.
  def hot_calls(0, acc), do: acc
  def hot_calls(n, acc), do: hot_calls(n - 1, ElixirScope.GovernorTest.Hot.inc(acc))
end

defmodule ElixirScope.GovernorTest.Hot do
  @moduledoc false
  def inc(x), do: x + 1
end

defmodule ElixirScope.GovernorTest do
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait

  alias ElixirScope.{Governor, TraceDB}
  alias ElixirScope.GovernorTest.{Flood, Hot}

  @moduletag :capture_log

  @max_events 200_000
  @flood_opts [max_events_per_sec: 5_000, governor_interval: 50, max_events: @max_events]
  @flood_size 1_000_000
  @flood_deadline_ms 30_000
  @max_latency_us 1_000_000
  @max_growth_bytes 500 * 1024 * 1024

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  ## Helpers

  # Resident memory of this OS process (it includes the C store, which
  # :erlang.memory/1 does not see), or nil where /proc is not available.
  defp rss_bytes do
    case File.read("/proc/#{System.pid()}/status") do
      {:ok, status} ->
        case Regex.run(~r/VmRSS:\s+(\d+) kB/, status) do
          [_, kb] -> String.to_integer(kb) * 1024
          _ -> nil
        end

      _ ->
        nil
    end
  end

  # While the flood runs (until {:flood_done, pid} arrives), measures every ~10 ms how
  # long a GenServer.call to an untraced process takes, the VM's memory, the resident
  # memory and the number of stored events.
  defp watch_flood(responder, flooder) do
    deadline = System.monotonic_time(:millisecond) + @flood_deadline_ms
    do_watch(responder, flooder, deadline, [])
  end

  defp do_watch(responder, flooder, deadline, samples) do
    receive do
      {:flood_done, ^flooder} -> {:done, Enum.reverse(samples)}
    after
      10 ->
        if System.monotonic_time(:millisecond) > deadline do
          {:timeout, Enum.reverse(samples)}
        else
          {us, answer} =
            :timer.tc(fn ->
              try do
                GenServer.call(responder, :ping, 5_000)
              catch
                :exit, reason -> {:exit, reason}
              end
            end)

          sample = %{
            latency_us: us,
            answer: answer,
            memory: :erlang.memory(:total),
            rss: rss_bytes(),
            stored: TraceDB.stats().stored
          }

          do_watch(responder, flooder, deadline, [sample | samples])
        end
    end
  end

  defp assert_flood_contained(result, mem0, rss0, governed_type) do
    assert match?({:done, _}, result),
           "the flood did not finish within #{@flood_deadline_ms} ms"

    {:done, samples} = result

    assert samples != [], "no measurement was taken during the flood"

    for %{answer: answer} <- samples, do: assert(answer == :pong)
    max_latency = samples |> Enum.map(& &1.latency_us) |> Enum.max()

    assert max_latency < @max_latency_us,
           "a GenServer.call took #{div(max_latency, 1000)} ms during the flood"

    max_stored = samples |> Enum.map(& &1.stored) |> Enum.max()
    assert max_stored <= @max_events
    stats = TraceDB.stats()
    assert stats.stored <= @max_events
    assert stats.max_events == @max_events

    growth = (samples |> Enum.map(& &1.memory) |> Enum.max()) - mem0

    assert growth < @max_growth_bytes,
           "VM memory grew by #{div(growth, 1024 * 1024)} MB during the flood"

    if rss0 do
      rss_growth = (samples |> Enum.map(& &1.rss) |> Enum.max()) - rss0

      assert rss_growth < @max_growth_bytes,
             "resident memory grew by #{div(rss_growth, 1024 * 1024)} MB during the flood"
    end

    governor = TraceDB.query_events(type: :governor)
    assert governor != [], "no :governor event was recorded"
    over = Enum.filter(governor, &(&1.reason == :over_cap))
    assert over != []

    for event <- over do
      assert event.step in Governor.steps()
      assert event.step != :full
      assert event.level in 1..4
      assert Enum.at(Governor.steps(), event.level) == event.step
      assert event.events_per_sec > 5_000
      assert is_integer(event.bytes_per_sec)
    end

    assert_one_step_at_a_time(governor)

    # without the governor every one of the flood's events would have been appended
    appended = Map.get(stats.by_type, governed_type, 0)

    assert appended < @flood_size,
           "#{appended} #{inspect(governed_type)} events of #{@flood_size} were appended"

    stats
  end

  # Each change moves one step: up when over the caps, down when recovered.
  defp assert_one_step_at_a_time(governor_events) do
    for [a, b] <- Enum.chunk_every(governor_events, 2, 1, :discard) do
      case b.reason do
        :over_cap -> assert b.level == a.level + 1, inspect([a, b])
        :recovered -> assert b.level == a.level - 1, inspect([a, b])
      end
    end
  end

  @tag timeout: 120_000
  test "a traced process sending itself 1,000,000 messages is governed" do
    :ok = ElixirScope.setup(@flood_opts)
    responder = start_supervised!({ElixirScope.GovernorTest.Pong, nil})
    test_pid = self()

    flooder =
      spawn(fn ->
        receive do
          :go -> :ok
        end

        Flood.self_messages(@flood_size)
        send(test_pid, {:flood_done, self()})

        receive do
          :stop -> :ok
        end
      end)

    :ok = ElixirScope.trace_process(flooder)
    :erlang.garbage_collect()
    mem0 = :erlang.memory(:total)
    rss0 = rss_bytes()
    send(flooder, :go)
    result = watch_flood(responder, flooder)

    stats = assert_flood_contained(result, mem0, rss0, :send)
    assert stats.by_type.receive < @flood_size
    # it was recorded at first, before the governor stepped in
    assert stats.by_type.send > 0
    assert Governor.status().step != :full

    # the flooder is still traced and alive; once the load stops the governor
    # recovers one step per calm second, back to :full
    assert wait_until(fn -> Governor.status().step == :full end, 10_000),
           "the governor did not recover: #{inspect(Governor.status())}"

    governor = TraceDB.query_events(type: :governor)
    assert_one_step_at_a_time(governor)
    assert %{step: :full, level: 0, reason: :recovered} = List.last(governor)

    # and messages are recorded in full again
    send(flooder, {:flood, :after})

    assert wait_until(
             fn ->
               TraceDB.query_events(type: :receive, pid: flooder, order: :desc, limit: 5)
               |> Enum.any?(&(&1[:message] == {:flood, :after}))
             end,
             2_000
           )

    send(flooder, :stop)
  end

  @tag timeout: 120_000
  test "a traced function called 1,000,000 times is governed" do
    :ok = ElixirScope.setup(@flood_opts)
    responder = start_supervised!({ElixirScope.GovernorTest.Pong, nil})
    :ok = ElixirScope.trace_function({Hot, :inc, 1})
    test_pid = self()
    :erlang.garbage_collect()
    mem0 = :erlang.memory(:total)
    rss0 = rss_bytes()

    {:ok, flooder} =
      Task.start(fn ->
        receive do
          :go -> :ok
        end

        @flood_size = Flood.hot_calls(@flood_size, 0)
        send(test_pid, {:flood_done, self()})
      end)

    send(flooder, :go)
    result = watch_flood(responder, flooder)

    stats = assert_flood_contained(result, mem0, rss0, :call)
    assert stats.by_type.return < @flood_size
    assert stats.by_type.call > 0

    # calls and returns still pair up where both were kept
    calls = TraceDB.query_events(type: :call, module: Hot, limit: 1_000)
    returns = TraceDB.query_events(type: :return, module: Hot, limit: 5_000)
    call_ids = MapSet.new(calls, & &1.id)

    for ret <- returns, MapSet.member?(call_ids, ret[:call_id]) do
      call = Enum.find(calls, &(&1.id == ret.call_id))
      assert ret.pid == call.pid
      assert ret.timestamp >= call.timestamp
    end
  end
end
