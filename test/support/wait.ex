defmodule ElixirScope.Test.Wait do
  @moduledoc """
  Waiting for asynchronous trace events in tests: poll instead of sleeping a fixed time.
  """

  @doc """
  Polls `fun` every 5 ms until it returns something other than `nil` or `false` (which
  is returned), or `timeout` ms pass (then that last `nil` or `false`, so the assertion
  that follows fails).
  """
  def wait_until(fun, timeout \\ 2_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    poll(fun, deadline)
  end

  defp poll(fun, deadline) do
    case fun.() do
      result when result in [nil, false] ->
        if System.monotonic_time(:millisecond) >= deadline do
          result
        else
          Process.sleep(5)
          poll(fun, deadline)
        end

      result ->
        result
    end
  end
end
