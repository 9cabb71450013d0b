defmodule ElixirScope.OriginalVocabularyTest do
  # The original ElixirScope's documented vocabulary: :process events whose `event:`
  # is :spawn, :existing, :exit or :crash are lifecycle events and critical, like
  # :spawn, :alive, :exit and :crash, through every query; `test_mode:` is accepted
  # (issue 13, point 3).
  use ExUnit.Case, async: false

  alias ElixirScope.{Processes, TraceDB}
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  @moduletag :capture_log
  setup :clean_slate

  defp dead_pid do
    pid = spawn(fn -> :ok end)
    ref = Process.monitor(pid)
    assert_receive {:DOWN, ^ref, _, _, _}
    pid
  end

  test "test_mode: is accepted by TraceDB.start_link/1 and setup/1, and checked" do
    assert {:ok, _} = TraceDB.start_link(name: :vocab_test_mode, test_mode: true)
    TraceDB.stop(:vocab_test_mode)
    assert :ok = ElixirScope.setup(test_mode: true)
    ElixirScope.stop()

    assert_raise ArgumentError, ~r/:test_mode must be a boolean/, fn ->
      TraceDB.start_link(name: :vocab_test_mode, test_mode: :yes)
    end

    assert_raise ArgumentError, ~r/test_mode/, fn -> ElixirScope.setup(test_mode: 1) end
  end

  test ":process events of a lifecycle are critical; other :process events are sampled" do
    start_supervised!({TraceDB, sample_rate: 0.0})
    pid = dead_pid()

    for event <- [:spawn, :existing, :exit, :crash, :something_else] do
      TraceDB.store_event(:process, %{pid: pid, event: event})
    end

    assert [:spawn, :existing, :exit, :crash] =
             TraceDB.query_events(type: :process) |> Enum.map(& &1.event)

    assert %{variants: %{field: :event, values: values}} =
             Enum.find(TraceDB.vocabulary().types, &(&1.type == :process))

    assert %{value: :crash, as: :crash} in values
  end

  test "through every lifecycle query" do
    start_supervised!(TraceDB)
    [sup, worker, child, late] = for _ <- 1..4, do: dead_pid()

    events = [
      {:process,
       %{
         pid: sup,
         event: :existing,
         name: :vocab_sup,
         initial_call: {:supervisor, Supervisor.Default, 1},
         timestamp: 100
       }},
      {:process,
       %{
         pid: worker,
         event: :spawn,
         parent: sup,
         initial_call: {ElixirScope.OriginalVocabularyTest.Worker, :init, 1},
         timestamp: 110
       }},
      {:process, %{pid: child, event: :spawn, parent: worker, timestamp: 120}},
      {:link, %{pid: worker, to_pid: child, timestamp: 130}},
      {:state, %{pid: worker, module: Worker, state: %{n: 1}, timestamp: 140}},
      {:process, %{pid: child, event: :exit, reason: :normal, timestamp: 200}},
      {:process, %{pid: worker, event: :crash, reason: :boom, timestamp: 300}},
      # a process known only from a message it sent, with no lifecycle of its own
      {:send, %{from_pid: late, to_pid: sup, message: :hi, timestamp: 150}}
    ]

    for {type, event} <- events, do: :ok = TraceDB.store_event(type, event)

    # alive at a time: born by :spawn/:existing, gone by :exit/:crash
    assert TraceDB.get_processes_at(50) == []
    assert TraceDB.get_processes_at(150) == Enum.sort([sup, worker, child])
    assert TraceDB.get_processes_at(250) == Enum.sort([sup, worker])
    assert TraceDB.get_processes_at(350) == [sup]

    # the snapshot: parents, names, states, links; `late` seen by its send
    snapshot = Map.new(Processes.system_snapshot_at(150), &{&1.pid, &1})
    assert Map.keys(snapshot) |> Enum.sort() == Enum.sort([sup, worker, child, late])
    assert %{parent: ^sup, state: %{n: 1}, links: [^child], exit: nil} = snapshot[worker]
    assert %{name: :vocab_sup, exit: :unknown} = snapshot[sup]
    assert %{parent: ^worker, exit: nil} = snapshot[child]
    assert %{exit: :unknown, parent: nil} = snapshot[late]

    assert Processes.system_snapshot_at(250) |> Enum.map(& &1.pid) |> Enum.sort() ==
             Enum.sort([sup, worker, late])

    # process_info's crash, relationships' parent and children, links when it died
    assert %{crash: %{type: :process, event: :crash, reason: :boom}} =
             Processes.process_info(worker)

    relations = Processes.process_relationships(worker)
    assert relations.parent == sup
    assert relations.children == [child]
    assert relations.links == [], "the child exited before the worker"
    assert worker in Processes.process_relationships(sup).children

    # processes running a module, by the born event's initial call
    assert [%{pid: ^worker, source: [:recorded]}] =
             Processes.find_processes(module: ElixirScope.OriginalVocabularyTest.Worker)
  end

  test "a :process crash makes the flight recorder dump", %{} = _ctx do
    dir = Path.join(System.tmp_dir!(), "es_vocab_flight_#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf!(dir) end)
    :ok = ElixirScope.setup(flight_recorder: [window: 5, dir: dir])
    TraceDB.store_event(:process, %{pid: self(), event: :crash, reason: :boom})

    assert ElixirScope.Test.Wait.wait_until(fn -> File.ls!(dir) != [] end, 3_000),
           "no flight recorder dump for a :process crash"
  end
end
