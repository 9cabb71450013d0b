defmodule ElixirScope.CrashesTest.Account do
  @moduledoc false
  use GenServer

  def start(balance, opts \\ []), do: GenServer.start(__MODULE__, balance, opts)
  def start_link(balance), do: GenServer.start_link(__MODULE__, balance)

  @impl true
  def init(balance), do: {:ok, balance}

  @impl true
  def handle_call({:withdraw, n}, _from, balance) when n > balance,
    do: raise(ArgumentError, "overdrawn by #{n - balance}")

  def handle_call({:withdraw, n}, _from, balance), do: {:reply, :ok, balance - n}
  def handle_call({:stop, reason}, _from, balance), do: {:stop, reason, :ok, balance}
end

defmodule ElixirScope.CrashesTest.Slow do
  @moduledoc false
  # A worker that ignores its supervisor's shutdown: it is killed when the timeout ends.
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, nil)

  @impl true
  def init(nil) do
    Process.flag(:trap_exit, true)
    {:ok, nil}
  end

  @impl true
  def terminate(_reason, _state), do: Process.sleep(:infinity)
end

defmodule ElixirScope.CrashesTest do
  # Crashes of processes ElixirScope does not trace, from the runtime's own reports,
  # one event per exit whatever saw it, and what counts as a crash (issue 13 point 1,
  # issue 14 point 5).
  use ExUnit.Case, async: false

  alias ElixirScope.{Crashes, TraceDB}
  alias ElixirScope.CrashesTest.{Account, Slow}
  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  @moduletag :capture_log
  setup :clean_slate

  doctest ElixirScope.Crashes

  defp ends(pid) do
    TraceDB.query_events(type: [:crash, :exit], pid: pid) ++
      TraceDB.query_events(type: :process, pid: pid)
  end

  # The one event of pid's end, once it is there (and, a moment later, still alone).
  defp the_end(pid) do
    assert wait_until(fn -> ends(pid) != [] end), "no end recorded for #{inspect(pid)}"
    Process.sleep(150)
    assert [event] = ends(pid), "one event per exit: #{inspect(ends(pid))}"
    event
  end

  defp dead(pid) do
    ref = Process.monitor(pid)
    assert_receive {:DOWN, ^ref, :process, ^pid, reason}, 2_000
    reason
  end

  defp sup!(children) do
    start_supervised!(%{
      id: :sup,
      start: {Supervisor, :start_link, [children, [strategy: :one_for_one]]},
      type: :supervisor
    })
  end

  # Lifecycle of traced processes only: nothing here is traced, so reports alone tell.
  defp setup_untraced(opts \\ []),
    do: :ok = ElixirScope.setup([lifecycle: :traced, tracing_level: :full] ++ opts)

  test "an untraced GenServer raising in handle_call: one :crash with last message, state, stacktrace and caller" do
    setup_untraced()
    {:ok, account} = Account.start(100)
    catch_exit(GenServer.call(account, {:withdraw, 500}))
    dead(account)

    crash = the_end(account)

    assert %{type: :crash, behaviour: :gen_server, last_message: {:withdraw, 500}, state: 100} =
             crash

    assert {%ArgumentError{message: "overdrawn by 400"}, [_ | _]} = crash.reason
    assert [{Account, :handle_call, 3, _} | _] = crash.stacktrace
    assert crash.client == self()
    assert {Account, :init, 1} = crash.initial_call
    assert :terminate_report in crash.sources and :crash_report in crash.sources
    refute :trace in crash.sources

    assert [%{kind: :process, pid: ^account, last_state: {:ok, 100}} = listed | _] =
             ElixirScope.recent_crashes()

    assert listed.stacktrace == crash.stacktrace
  end

  test "an untraced Task that raises" do
    setup_untraced()
    {:ok, task} = Task.start(fn -> raise "task failed" end)
    dead(task)

    crash = the_end(task)
    assert %{type: :crash, behaviour: :task, starter: starter, args: []} = crash
    assert starter == self()
    assert {%RuntimeError{message: "task failed"}, _} = crash.reason
    assert [_ | _] = crash.stacktrace
  end

  test "a supervisor restarting a killed child: the crash with the supervisor's report, once" do
    setup_untraced()
    sup = sup!([{Account, 10}])
    [{Account, child, _, _}] = Supervisor.which_children(sup)
    Process.exit(child, :kill)
    dead(child)

    crash = the_end(child)

    assert %{
             type: :crash,
             reason: :killed,
             supervisor: ^sup,
             child_id: Account,
             restart: :permanent,
             supervisor_context: :child_terminated
           } = crash

    assert :supervisor_report in crash.sources
    # restarted: a new child runs
    assert wait_until(fn ->
             match?([{Account, p, _, _}] when p != child, Supervisor.which_children(sup))
           end)
  end

  test "a supervised child that raises: the reports and the supervisor's, one event" do
    setup_untraced()
    sup = sup!([{Account, 10}])
    [{Account, child, _, _}] = Supervisor.which_children(sup)
    catch_exit(GenServer.call(child, {:withdraw, 11}))
    dead(child)

    crash = the_end(child)
    assert %{type: :crash, state: 10, supervisor: ^sup, restart: :permanent} = crash

    # (and :monitor when the collector learnt of the exit before the supervisor's report)
    assert [:terminate_report, :crash_report, :supervisor_report] -- crash.sources == []
  end

  test "a child killed by its supervisor at shutdown is an :exit, not a crash" do
    setup_untraced()

    sup = sup!([Supervisor.child_spec(Slow, shutdown: 50)])

    [{Slow, child, _, _}] = Supervisor.which_children(sup)
    :ok = Supervisor.terminate_child(sup, Slow)

    assert %{type: :exit, reason: :killed, supervisor_context: :shutdown_error} = the_end(child)
    assert ElixirScope.recent_crashes() == []
  end

  test "a server's closed connection is recorded as an :exit, not listed as a crash" do
    setup_untraced()
    {:ok, conn} = Account.start(0)
    :ok = GenServer.call(conn, {:stop, :econnreset})
    dead(conn)

    assert %{type: :exit, reason: :econnreset, behaviour: :gen_server} = the_end(conn)
    assert ElixirScope.recent_crashes() == []
  end

  test "crashes are recorded at every level but :off" do
    for level <- [:minimal, :messages_only, :states_only] do
      setup_untraced(tracing_level: level)
      {:ok, account} = Account.start(0)
      catch_exit(GenServer.call(account, {:withdraw, 1}))
      dead(account)
      assert %{type: :crash} = the_end(account), "at #{level}"
      ElixirScope.stop(keep_data: false)
    end

    setup_untraced(tracing_level: :off)
    {:ok, account} = Account.start(0)
    catch_exit(GenServer.call(account, {:withdraw, 1}))
    dead(account)
    Process.sleep(200)
    assert ends(account) == []
  end

  test "whatever the application's log level: reports are taken, and what the level drops stays dropped" do
    %{level: level} = :logger.get_primary_config()
    on_exit(fn -> :logger.set_primary_config(:level, level) end)
    :ok = :logger.set_primary_config(:level, :critical)
    setup_untraced()
    assert :logger.get_primary_config().level == :error

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        {:ok, account} = Account.start(5)
        catch_exit(GenServer.call(account, {:withdraw, 6}))
        dead(account)
        assert %{type: :crash, state: 5} = the_end(account)
      end)

    refute log =~ "overdrawn", "the application's :critical level still holds: #{log}"
    ElixirScope.stop()
    assert :logger.get_primary_config().level == :critical
  end

  test "the filter is first and passes every log event on unchanged" do
    setup_untraced()
    [{id, _} | _] = :logger.get_primary_config().filters
    assert id == :elixir_scope_crashes

    assert ExUnit.CaptureLog.capture_log(fn ->
             require Logger
             Logger.error("plain text")
           end) =~ "plain text"

    ElixirScope.stop()

    refute Enum.any?(
             :logger.get_primary_config().filters,
             &(elem(&1, 0) == :elixir_scope_crashes)
           )
  end

  test "a plain spawn under lifecycle: :all: its crash from the tracer alone" do
    :ok = ElixirScope.setup(lifecycle: :all)
    pid = spawn(fn -> exit(:kaboom) end)
    dead(pid)
    assert %{type: :crash, reason: :kaboom, sources: [:trace]} = the_end(pid)
  end

  test "a traced GenServer's crash: the tracer's exit joins the reports in one event" do
    :ok = ElixirScope.setup(lifecycle: :all)
    {:ok, account} = Account.start(1)
    :ok = ElixirScope.trace_genserver(account)
    catch_exit(GenServer.call(account, {:withdraw, 2}))
    dead(account)

    crash = the_end(account)
    assert %{type: :crash, state: 1, last_message: {:withdraw, 2}} = crash
    assert :trace in crash.sources and :terminate_report in crash.sources
  end

  test "status/0 and the crash rule" do
    setup_untraced()
    status = ElixirScope.status()
    assert %{running: true, tracing: %{level: :full}, store: %{stored: _}} = status
    assert %{recorded: 0, reports_dropped: 0} = status.crashes
    assert %DateTime{} = status.wall_time
    assert :econnreset in Crashes.closed_connection_reasons()
    ElixirScope.stop_tracing()
    assert %{running: false, tracing: nil, crashes: nil} = ElixirScope.status()
  end
end
