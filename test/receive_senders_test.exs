defmodule ElixirScope.ReceiveSendersTest.Bank do
  @moduledoc false
  use GenServer

  def start_link(balance), do: GenServer.start_link(__MODULE__, balance)

  @impl true
  def init(balance), do: {:ok, balance}

  @impl true
  def handle_call({:deposit, n}, _from, balance), do: {:reply, {:ok, balance + n}, balance + n}
end

defmodule ElixirScope.ReceiveSendersTest do
  # A received message that names its sender — a GenServer call names its caller, and
  # the reply to a call is from the process called — is indexed with that sender when
  # the sender's own :send is not recorded, so flows show both directions when only
  # one side is traced (issue 13, point 5).
  use ExUnit.Case, async: false

  alias ElixirScope.ReceiveSendersTest.Bank
  alias ElixirScope.TraceDB
  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  @moduletag :capture_log
  setup :clean_slate

  setup do
    :ok = ElixirScope.setup(tracing_level: :full, lifecycle: :traced)
    bank = start_supervised!({Bank, 100})
    %{bank: bank}
  end

  # A process that makes one call when told to, and waits to be told to stop.
  defp client(bank) do
    test = self()

    spawn_link(fn ->
      receive do
        :go -> send(test, {:called, GenServer.call(bank, {:deposit, 30})})
      end

      receive do
        :stop -> :ok
      end
    end)
  end

  defp call(client) do
    send(client, :go)
    assert_receive {:called, {:ok, 130}}
  end

  defp flow(a, b, count) do
    wait_until(fn ->
      flow = ElixirScope.message_flow(a, b)
      length(flow) >= count && flow
    end) || ElixirScope.message_flow(a, b)
  end

  test "only the server traced: the call shows as its receive from the caller, then the reply",
       %{bank: bank} do
    caller = client(bank)
    :ok = ElixirScope.trace_genserver(bank)
    call(caller)

    assert [request, reply] = flow(caller, bank, 2)
    assert %{type: :receive, pid: ^bank, from_pid: ^caller} = request
    assert {:"$gen_call", {^caller, _tag}, {:deposit, 30}} = request.message
    assert %{type: :send, from_pid: ^bank, to_pid: ^caller} = reply
    assert {_tag, {:ok, 130}} = reply.message
    assert ElixirScope.message_flow(bank, caller) == [request, reply]

    # the receive is the server's own event, and the caller is its peer
    assert request in ElixirScope.execution_path(bank)
    assert [%{id: id}] = TraceDB.query_events(type: :receive, to_pid: caller)
    assert id == request.id
    assert {caller, 2} in ElixirScope.process_relationships(bank).peers
    assert inspect(request) =~ "#{inspect(caller)} → #{inspect(bank)} (received)"
  end

  test "only the caller traced: its call, then the reply as its receive from the server",
       %{bank: bank} do
    caller = client(bank)
    :ok = ElixirScope.trace_process(caller)
    call(caller)

    assert [request, reply] = flow(caller, bank, 2)
    assert %{type: :send, from_pid: ^caller, to_pid: ^bank} = request
    assert {:"$gen_call", {^caller, _}, {:deposit, 30}} = request.message
    assert %{type: :receive, pid: ^caller, from_pid: ^bank} = reply
    assert {_tag, {:ok, 130}} = reply.message
  end

  test "both sides traced: each message once, as its send", %{bank: bank} do
    caller = client(bank)
    :ok = ElixirScope.trace_process(caller)
    :ok = ElixirScope.trace_genserver(bank)
    call(caller)

    flow = flow(caller, bank, 2)
    Process.sleep(50)
    assert [%{type: :send, from_pid: ^caller}, %{type: :send, from_pid: ^bank}] = flow
    assert ElixirScope.message_flow(caller, bank) == flow

    # the receives are there, naming no sender: the sends are the record
    receives = TraceDB.query_events(type: :receive, pid: [caller, bank])
    assert length(receives) >= 2
    refute Enum.any?(receives, &Map.has_key?(&1, :from_pid))
  end

  test "a receive naming its sender round-trips through store_event/2" do
    [a, b] = for _ <- 1..2, do: spawn(fn -> :ok end)
    :ok = TraceDB.store_event(:receive, %{pid: a, from_pid: b, message: :hi})
    :ok = TraceDB.store_event(:receive, %{from_pid: a, to_pid: b, message: :old_style})

    # both have the actor a and the peer b, under the names they were stored with
    assert [%{pid: ^a, from_pid: ^b, message: :hi}, %{message: :old_style}] =
             TraceDB.query_events(type: :receive, pid: a, to_pid: b)

    assert [%{from_pid: ^a, to_pid: ^b, message: :old_style}] =
             TraceDB.query_events(type: :receive, where: [message: :old_style])

    assert [:hi, :old_style] = ElixirScope.message_flow(a, b) |> Enum.map(& &1.message)
  end
end
