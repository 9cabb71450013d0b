defmodule ElixirScope.EventTest do
  use ExUnit.Case, async: true

  alias ElixirScope.Event

  test "an event prints on one line with its id, type and a summary" do
    me = self()

    send =
      Event.wrap(%{id: 7, type: :send, timestamp: 1, from_pid: me, to_pid: me, message: {:hi, 1}})

    assert inspect(send) == "#Event<7 send #{inspect(me)} → #{inspect(me)} {:hi, 1}>"

    ret =
      Event.wrap(%{
        id: 9,
        type: :return,
        timestamp: 2,
        pid: me,
        module: Enum,
        function: :map,
        arity: 2,
        result: [1],
        duration: System.convert_time_unit(12, :microsecond, :native)
      })

    assert inspect(ret) == "#Event<9 return #{inspect(me)} Enum.map/2 → [1] in 12µs>"

    long = Event.wrap(%{id: 1, type: :note, timestamp: 0, text: String.duplicate("x", 500)})
    refute inspect(long) =~ "\n"
    assert String.length(inspect(long)) < 100
  end

  test "a :phoenix event prints what it is about" do
    me = self()

    req =
      Event.wrap(%{
        id: 3,
        type: :phoenix,
        timestamp: 1,
        pid: me,
        kind: :endpoint,
        phase: :stop,
        method: "GET",
        path: "/cart/1",
        route: "/cart/:id",
        status: 200,
        duration: System.convert_time_unit(40, :microsecond, :native)
      })

    assert inspect(req) ==
             "#Event<3 phoenix #{inspect(me)} endpoint stop GET /cart/1 (/cart/:id) 200 in 40µs>"

    lv =
      Event.wrap(%{
        id: 4,
        type: :phoenix,
        timestamp: 2,
        pid: me,
        kind: :live_view,
        callback: :handle_event,
        phase: :start,
        view: MyApp.CounterLive,
        event: "inc"
      })

    assert inspect(lv) ==
             "#Event<4 phoenix #{inspect(me)} live_view handle_event start MyApp.CounterLive \"inc\">"
  end

  test "an event is still a map: field access, Access, pattern matching" do
    e = Event.wrap(%{id: 1, type: :state, timestamp: 3, pid: self(), state: %{n: 1}, cause: :inc})
    assert e.state == %{n: 1}
    assert e[:cause] == :inc
    assert e[:missing] == nil
    assert %{type: :state, state: %{n: 1}} = e
    assert Map.from_struct(e).cause == :inc
    assert Event.wrap(e) == e
  end

  test "every event type of the vocabulary has a summary of its own" do
    for %{type: type} <- ElixirScope.TraceDB.vocabulary().types do
      generic = Event.summary(%{type: :some_type_of_yours, pid: self()})
      assert generic =~ ~r/^%\{/, "fields, for types outside the vocabulary"
      text = Event.summary(%{type: type, pid: self(), from_pid: self()})
      refute text =~ ~r/^%\{/, "#{type} has no summary clause in ElixirScope.Event"
    end
  end
end
