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

  test "an event is still a map: field access, Access, pattern matching" do
    e = Event.wrap(%{id: 1, type: :state, timestamp: 3, pid: self(), state: %{n: 1}, cause: :inc})
    assert e.state == %{n: 1}
    assert e[:cause] == :inc
    assert e[:missing] == nil
    assert %{type: :state, state: %{n: 1}} = e
    assert Map.from_struct(e).cause == :inc
    assert Event.wrap(e) == e
  end
end
