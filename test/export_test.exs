defmodule ElixirScope.ExportTest do
  use ExUnit.Case, async: false

  import ElixirScope.Test.Wait
  alias ElixirScope.Test.JSON
  alias ElixirScope.TraceDB

  defmodule Work do
    def fib(n) when n < 2, do: n
    def fib(n), do: fib(n - 1) + fib(n - 2)
    def boom, do: raise("boom")
  end

  @moduletag :tmp_dir

  setup do
    ElixirScope.stop(keep_data: false)
    :ok = ElixirScope.setup()
    on_exit(fn -> ElixirScope.stop(keep_data: false) end)
  end

  # A traced client calling a traced server, calls of a traced module, a crash.
  defp workload do
    :ok = ElixirScope.trace_module(Work)
    {:ok, server} = Agent.start(fn -> 0 end)
    :ok = ElixirScope.trace_genserver(server)
    parent = self()

    client =
      spawn(fn ->
        receive do
          :go ->
            Work.fib(4)
            Agent.update(server, &(&1 + 1))
            send(parent, :done)
        end
      end)

    :ok = ElixirScope.trace_process(client)
    send(client, :go)
    assert_receive :done
    catch_error(Work.boom())
    assert wait_until(fn -> TraceDB.query_events(type: :send, from_pid: client) != [] end)
    {client, server}
  end

  test "a Chrome trace parses as JSON and counts what the store holds", %{tmp_dir: dir} do
    {client, server} = workload()
    path = Path.join(dir, "trace.json")
    assert {:ok, counts} = ElixirScope.export(path)

    trace = path |> File.read!() |> JSON.decode!()
    events = trace["traceEvents"]
    by_phase = Enum.group_by(events, & &1["ph"])

    returns =
      length(TraceDB.query_events(type: :return)) + length(TraceDB.query_events(type: :exception))

    slices = Enum.filter(by_phase["X"], &(&1["cat"] == "call"))
    assert length(slices) == returns and counts.slices == returns

    sends = TraceDB.query_events(type: :send) |> Enum.filter(&Map.has_key?(&1, :to_pid))
    assert counts.flows == length(sends)
    assert length(by_phase["s"]) == length(sends) and length(by_phase["f"]) == length(sends)

    assert Enum.sort(Enum.map(by_phase["s"], & &1["id"])) ==
             Enum.sort(Enum.map(by_phase["f"], & &1["id"]))

    # one named track per process (named in Erlang syntax), the client's and the server's among them
    names = for %{"name" => "thread_name", "args" => %{"name" => n}} <- events, do: n
    erl = &to_string(:erlang.pid_to_list(&1))
    assert erl.(client) in names and erl.(server) in names
    assert length(names) == counts.tracks

    # calls: name, duration, arguments and result
    fib4 =
      Enum.find(
        slices,
        &(&1["name"] == "ElixirScope.ExportTest.Work.fib/1" and &1["args"]["args"] == "[4]")
      )

    assert fib4["args"]["result"] == "3"
    assert fib4["dur"] > 0

    assert Enum.any?(
             slices,
             &(&1["name"] == "ElixirScope.ExportTest.Work.boom/0" and
                 &1["args"]["class"] == "error")
           )

    # state changes as instants with their data
    assert Enum.any?(by_phase["i"], &(&1["name"] == "state" and &1["args"]["state"] == "1"))
    assert counts.events == length(TraceDB.query_events([]))
  end

  test "filters narrow a Chrome trace", %{tmp_dir: dir} do
    {client, _server} = workload()
    path = Path.join(dir, "client.json")
    assert {:ok, counts} = ElixirScope.export(path, pid: client)
    assert counts.events == length(TraceDB.query_events(pid: client))
    events = path |> File.read!() |> JSON.decode!() |> Map.fetch!("traceEvents")
    assert Enum.any?(events, &(&1["cat"] == "call"))
    assert {:ok, %{events: 1}} = ElixirScope.export(path, limit: 1)
  end

  test "pids: and types: lists select the events of any of them", %{tmp_dir: dir} do
    {client, server} = workload()
    path = Path.join(dir, "some.json")

    assert {:ok, counts} =
             ElixirScope.export(path, pids: [client, server], types: [:send, :state])

    expected =
      for p <- [client, server],
          t <- [:send, :state],
          e <- TraceDB.query_events(pid: p, type: t),
          uniq: true,
          do: e.id

    assert counts.events == length(expected) and counts.events > 0
    events = path |> File.read!() |> JSON.decode!() |> Map.fetch!("traceEvents")
    refute Enum.any?(events, &(&1["cat"] == "call"))
    assert_raise ArgumentError, ~r/:pids/, fn -> ElixirScope.export(path, pids: []) end
  end

  test "a Mermaid diagram has one arrow per message between the chosen processes", %{tmp_dir: dir} do
    {client, server} = workload()
    path = Path.join(dir, "flow.mmd")

    assert {:ok, %{participants: 2, arrows: arrows}} =
             ElixirScope.export(path, format: :mermaid, pids: [client, server])

    between = ElixirScope.message_flow(client, server)
    assert arrows == length(between) and arrows >= 2

    ["sequenceDiagram" | lines] = path |> File.read!() |> String.split("\n", trim: true)
    assert Enum.count(lines, &String.contains?(&1, "participant")) == 2
    assert Enum.count(lines, &String.contains?(&1, "->>")) == arrows

    # the busiest processes when none are named
    assert {:ok, %{participants: n}} = ElixirScope.export(path, format: :mermaid, busiest: 2)
    assert n == 2
  end

  test "bad arguments and unwritable paths", %{tmp_dir: dir} do
    assert_raise ArgumentError, ~r/format/, fn ->
      ElixirScope.export(Path.join(dir, "x"), format: :svg)
    end

    assert_raise ArgumentError, ~r/file path/, fn -> ElixirScope.export(:nope) end

    assert_raise ArgumentError, ~r/pids/, fn ->
      ElixirScope.export(Path.join(dir, "x"), format: :mermaid, pids: [:a])
    end

    assert_raise ArgumentError, ~r/unknown filter/, fn ->
      ElixirScope.export(Path.join(dir, "x"), bogus: 1)
    end

    assert {:error, reason} = ElixirScope.export(Path.join([dir, "missing", "dir", "x.json"]))
    assert reason =~ "No such file"
  end
end
