defmodule ElixirScope.TracingValidationTest.Counter do
  @moduledoc false
  use GenServer
  def start_link(n), do: GenServer.start_link(__MODULE__, n)
  @impl true
  def init(n), do: {:ok, n}
  @impl true
  def handle_call(:get, _from, s), do: {:reply, s, s}
end

defmodule ElixirScope.TracingValidationTest do
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  alias ElixirScope.TraceDB
  alias ElixirScope.TracingValidationTest.Counter

  @moduletag :capture_log

  import ElixirScope.Test.Stores, only: [clean_slate: 1]
  setup :clean_slate

  defp sleeper, do: spawn(fn -> Process.sleep(:infinity) end)

  defp dead_pid do
    {pid, ref} = spawn_monitor(fn -> :ok end)
    assert_receive {:DOWN, ^ref, _, _, _}
    pid
  end

  ## setup/1 options

  describe "setup/1 rejects invalid options with an ArgumentError naming the option" do
    @invalid [
      bogus: true,
      tracing_level: :loud,
      tracing_level: "full",
      tracing_level: nil,
      sample_rate: 2,
      sample_rate: 1.01,
      sample_rate: -0.1,
      sample_rate: "1.0",
      sample_rate: nil,
      max_events: 0,
      max_events: -1,
      max_events: 1.5,
      max_events: :lots,
      max_bytes: 0,
      max_bytes: "1MB",
      max_payload_bytes: -1,
      max_keys: 0,
      max_events_per_sec: 0,
      max_events_per_sec: 1.0e3,
      max_bytes_per_sec: -5,
      governor_interval: 0,
      governor_interval: 5,
      governor_interval: 20_000,
      governor_interval: 50.0,
      trace_all: "yes",
      trace_all: 1,
      phoenix: :maybe,
      redact: "password",
      redact: [:password],
      redact: [""],
      ai_integration: nil,
      storage: :redis
    ]

    for {{key, value}, i} <- Enum.with_index(@invalid) do
      test "#{i}: #{inspect(key)}: #{inspect(value)}" do
        key = unquote(key)
        value = unquote(Macro.escape(value))

        error = assert_raise ArgumentError, fn -> ElixirScope.setup([{key, value}]) end
        assert error.message =~ inspect(key)
        refute ElixirScope.running?()
        assert Process.whereis(ElixirScope.Supervisor) == nil
      end
    end

    test "options that are not a keyword list" do
      for bad <- [:full, "x", [1, 2], [{"tracing_level", :full}], %{tracing_level: :full}] do
        assert_raise ArgumentError, fn -> ElixirScope.setup(bad) end
      end

      refute ElixirScope.running?()
    end

    test "the first invalid option is reported even among valid ones" do
      error =
        assert_raise ArgumentError, fn ->
          ElixirScope.setup(tracing_level: :minimal, sample_rate: 3, max_events: 10_000)
        end

      assert error.message =~ ":sample_rate"
    end

    test "an invalid option is refused while ElixirScope runs, leaving it as it was" do
      :ok = ElixirScope.setup(tracing_level: :minimal)

      assert_raise ArgumentError, ~r/:tracing_level/, fn ->
        ElixirScope.setup(tracing_level: 1)
      end

      assert ElixirScope.running?()
      assert ElixirScope.tracing_info().level == :minimal
    end

    # Values Config accepts but the store then refuses: setup/1 must still raise an
    # ArgumentError, not return a supervisor start error or send the caller an exit.
    for {opts, i} <-
          Enum.with_index([
            [max_events: 10],
            [max_events: 2 ** 40],
            [max_bytes: 100],
            [max_keys: 2],
            [max_bytes: 1_048_576, max_payload_bytes: 1_048_576]
          ]) do
      test "store limits #{i}: #{inspect(opts)}" do
        opts = unquote(opts)
        key = opts |> List.last() |> elem(0)
        # a failed linked start would otherwise kill the test process
        Process.flag(:trap_exit, true)

        result =
          try do
            {:returned, ElixirScope.setup(opts)}
          rescue
            e in ArgumentError -> {:raised, e}
          end

        assert {:raised, %ArgumentError{message: message}} = result
        assert message =~ inspect(key)
        refute_received {:EXIT, _, _}
        refute ElixirScope.running?()
      end
    end

    test "start_link/1 (the child spec) validates its options too" do
      assert_raise ArgumentError, ~r/:bogus/, fn -> ElixirScope.start_link(bogus: 1) end

      assert_raise ArgumentError, ~r/:tracing_level/, fn ->
        ElixirScope.start_link(tracing_level: :loud)
      end

      refute ElixirScope.running?()
    end
  end

  ## Bad arguments to the tracing functions

  describe "bad arguments raise ArgumentError" do
    test "stop/1 rejects options that are not a keyword list or unknown" do
      :ok = ElixirScope.setup()
      assert_raise ArgumentError, fn -> ElixirScope.stop("x") end
      assert_raise ArgumentError, fn -> ElixirScope.stop(kep_data: false) end
      assert ElixirScope.running?()
    end

    @bad_calls [
      {:trace_process, ["x"]},
      {:trace_process, [:name]},
      {:trace_process, [nil]},
      {:trace_process, [123]},
      {:trace_named_process, ["x"]},
      {:trace_named_process, [123]},
      {:trace_named_process, [{:global, :x}]},
      {:trace_genserver, ["x"]},
      {:trace_genserver, [123]},
      {:trace_genserver, [{:via, Registry, :x}]},
      {:untrace_process, ["x"]},
      {:untrace_process, [:name]},
      {:trace_module, ["x"]},
      {:trace_module, [123]},
      {:trace_module, [{Enum, :map}]},
      {:stop_trace_module, ["x"]},
      {:stop_trace_module, [1]},
      {:trace_function, [{:m, :f}]},
      {:trace_function, [{Enum, :map, -1}]},
      {:trace_function, [{Enum, :map, 1.0}]},
      {:trace_function, [{"Enum", :map, 2}]},
      {:trace_function, [{Enum, "map", 2}]},
      {:trace_function, [:x]},
      {:trace_function, [Enum]},
      {:set_tracing_level, [:loud]},
      {:set_tracing_level, ["full"]},
      {:set_tracing_level, [nil]},
      {:set_sample_rate, [2]},
      {:set_sample_rate, [-1]},
      {:set_sample_rate, [:half]},
      {:set_sample_rate, ["0.5"]},
      {:get_supervision_tree, [:x]},
      {:get_supervision_tree, [[timeout: -1]]}
    ]

    test "while ElixirScope runs" do
      :ok = ElixirScope.setup(tracing_level: :minimal)

      for {fun, args} <- @bad_calls do
        try do
          apply(ElixirScope, fun, args)
          flunk("ElixirScope.#{fun}#{inspect(args)} did not raise")
        rescue
          ArgumentError -> :ok
        end
      end

      # nothing changed
      assert ElixirScope.running?()

      assert %{
               level: :minimal,
               trace_all: false,
               processes: [],
               genservers: [],
               modules: [],
               functions: [],
               calls_only: [],
               watchdog: %{removals: 0}
             } = ElixirScope.tracing_info()

      assert TraceDB.stats().sample_rate == 1.0
    end

    test "while ElixirScope is not running" do
      refute ElixirScope.running?()

      for {fun, args} <- @bad_calls do
        result =
          try do
            {:returned, apply(ElixirScope, fun, args)}
          rescue
            e -> {:raised, e}
          end

        assert match?({:raised, %ArgumentError{}}, result),
               "ElixirScope.#{fun}#{inspect(args)} when not running: #{inspect(result)}"
      end
    end
  end

  ## Not running

  describe "when ElixirScope is not running" do
    test "the tracing functions return {:error, :not_running}" do
      refute ElixirScope.running?()
      pid = sleeper()
      Process.register(pid, :elixir_scope_validation_registered)
      {:ok, gs} = Counter.start_link(0)

      assert {:error, :not_running} = ElixirScope.trace_process(pid)

      assert {:error, :not_running} =
               ElixirScope.trace_named_process(:elixir_scope_validation_registered)

      assert {:error, :not_running} = ElixirScope.trace_genserver(gs)
      assert {:error, :not_running} = ElixirScope.untrace_process(pid)
      assert {:error, :not_running} = ElixirScope.trace_module(Enum)
      assert {:error, :not_running} = ElixirScope.stop_trace_module(Enum)
      assert {:error, :not_running} = ElixirScope.trace_function({Enum, :map, 2})
      assert {:error, :not_running} = ElixirScope.set_tracing_level(:full)
      assert {:error, :not_running} = ElixirScope.tracing_info()
      assert :ok = ElixirScope.stop()

      # an unknown name is reported as such
      assert {:error, {:not_registered, :elixir_scope_validation_none}} =
               ElixirScope.trace_named_process(:elixir_scope_validation_none)

      assert {:error, {:not_registered, :elixir_scope_validation_none}} =
               ElixirScope.trace_genserver(:elixir_scope_validation_none)

      # nothing was traced
      assert ElixirScope.Test.TraceState.flags(pid) == []
      assert ElixirScope.Test.TraceState.flags(gs) == []
      assert ElixirScope.Test.TraceState.match_spec({Enum, :map, 2}) == false
      Process.exit(pid, :kill)
      GenServer.stop(gs)
    end

    test "after stop/0 (the store kept) they return {:error, :not_running} too" do
      :ok = ElixirScope.setup()
      :ok = ElixirScope.stop()
      pid = sleeper()
      assert {:error, :not_running} = ElixirScope.trace_process(pid)
      assert {:error, :not_running} = ElixirScope.trace_module(Enum)
      assert {:error, :not_running} = ElixirScope.tracing_info()
      assert {:error, :not_running} = ElixirScope.set_tracing_level(:off)
      assert ElixirScope.Test.TraceState.flags(pid) == []
      # the store is still up: the sample rate can be changed
      assert :ok = ElixirScope.set_sample_rate(0.5)
      assert TraceDB.stats().sample_rate == 0.5
      Process.exit(pid, :kill)
    end

    test "set_sample_rate/1 returns {:error, :not_running} rather than raising" do
      refute ElixirScope.running?()

      result =
        try do
          ElixirScope.set_sample_rate(0.5)
        rescue
          e -> {:raised, e}
        end

      assert result == {:error, :not_running}
    end
  end

  ## Errors while running

  describe "errors while running" do
    test "dead processes, unknown modules and functions, non-GenServers" do
      :ok = ElixirScope.setup()
      dead = dead_pid()
      assert {:error, :not_alive} = ElixirScope.trace_process(dead)
      assert {:error, :not_alive} = ElixirScope.trace_genserver(dead)

      assert {:error, {:module_not_loaded, ElixirScope.NoSuchModule}} =
               ElixirScope.trace_module(ElixirScope.NoSuchModule)

      assert {:error, {:module_not_loaded, ElixirScope.NoSuchModule}} =
               ElixirScope.trace_function({ElixirScope.NoSuchModule, :f, 0})

      assert {:error, {:undefined_function, {Enum, :no_such_function, 1}}} =
               ElixirScope.trace_function({Enum, :no_such_function, 1})

      assert {:error, {:undefined_function, {Enum, :map, 7}}} =
               ElixirScope.trace_function({Enum, :map, 7})

      p = sleeper()
      assert {:error, :not_a_gen_server} = ElixirScope.trace_genserver(p)

      assert %{
               level: :full,
               trace_all: false,
               processes: [],
               genservers: [],
               modules: [],
               functions: [],
               calls_only: [],
               watchdog: %{removals: 0}
             } = ElixirScope.tracing_info()

      assert ElixirScope.Test.TraceState.match_spec({Enum, :map, 2}) == false
      Process.exit(p, :kill)
    end

    test "untrace_process/1 and stop_trace_module/1 of things never traced are :ok" do
      :ok = ElixirScope.setup()
      p = sleeper()
      assert :ok = ElixirScope.untrace_process(p)
      assert :ok = ElixirScope.untrace_process(dead_pid())
      assert :ok = ElixirScope.stop_trace_module(Enum)
      assert ElixirScope.Test.TraceState.flags(p) == []
      Process.exit(p, :kill)
    end

    test "each valid level is accepted by set_tracing_level/1" do
      :ok = ElixirScope.setup()

      for level <- [:full, :messages_only, :states_only, :minimal, :off, :full] do
        assert :ok = ElixirScope.set_tracing_level(level)
        assert ElixirScope.tracing_info().level == level
      end
    end
  end
end
