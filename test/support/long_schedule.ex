defmodule ElixirScope.Test.LongSchedule do
  @moduledoc """
  NIF calls must not hold a normal scheduler for more than about a millisecond.
  `:erlang.system_monitor/2` with `long_schedule` reports every process that ran
  longer than 1 ms without yielding; this runs a function under it.
  """

  @doc """
  Runs `fun` with the monitor on and returns the `long_schedule` reports about the
  processes in `pids` (the caller by default): `[]` when none held a scheduler too long.
  The previous system monitor is restored afterwards.
  """
  def reports(fun, pids \\ [self()]) do
    previous = :erlang.system_monitor(self(), [{:long_schedule, 1}])

    try do
      fun.()
    after
      case previous do
        {pid, opts} -> :erlang.system_monitor(pid, opts)
        :undefined -> :erlang.system_monitor(:undefined)
      end
    end

    drain(pids, [])
  end

  defp drain(pids, acc) do
    receive do
      {:monitor, pid, :long_schedule, info} ->
        drain(pids, if(pid in pids, do: [info | acc], else: acc))
    after
      0 -> Enum.reverse(acc)
    end
  end
end
