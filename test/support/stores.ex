defmodule ElixirScope.Test.Stores do
  @moduledoc """
  A clean slate between tests: ElixirScope stopped with its data, and the extra
  stores a test started (loaded dumps, named stores) stopped too.
  """

  alias ElixirScope.TraceDB

  @doc """
  For `setup :clean_slate` (imported): ElixirScope stopped before the
  test and after it.
  """
  def clean_slate(_context) do
    stop_all([])
    ExUnit.Callbacks.on_exit(fn -> stop_all([]) end)
  end

  @doc "Stops ElixirScope and each running store of `names`."
  def stop_all(names) do
    ElixirScope.stop(keep_data: false)

    for name <- names, TraceDB.lookup(name) do
      try do
        TraceDB.stop(name)
      catch
        # it stopped meanwhile
        :exit, _ -> :ok
      end
    end

    :ok
  end
end
