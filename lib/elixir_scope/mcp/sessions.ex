defmodule ElixirScope.MCP.Sessions do
  @moduledoc false
  # The MCP sessions of one server: a public ETS table owned by the server process and
  # read and written by httpd's request processes. A session holds the protocol
  # version agreed at `initialize`; its id is 128 random bits, so it cannot be guessed.

  @doc false
  def new, do: :ets.new(__MODULE__, [:set, :public, read_concurrency: true])

  @doc false
  # A new session; the least recently used one goes when there are `max` already.
  def create(table, protocol_version, max) do
    if :ets.info(table, :size) >= max do
      {id, _, _} = :ets.foldl(&older/2, nil, table)
      :ets.delete(table, id)
    end

    id = Base.encode16(:crypto.strong_rand_bytes(16), case: :lower)
    :ets.insert(table, {id, protocol_version, now()})
    id
  end

  defp older(entry, nil), do: entry
  defp older({_, _, seen} = entry, {_, _, best}) when seen < best, do: entry
  defp older(_, best), do: best

  @doc false
  # {:ok, protocol_version} and marks the session used, or :error.
  def touch(table, id) do
    case :ets.lookup(table, id) do
      [{^id, version, _}] ->
        :ets.update_element(table, id, {3, now()})
        {:ok, version}

      [] ->
        :error
    end
  end

  @doc false
  def delete(table, id) do
    case :ets.take(table, id) do
      [_] -> :ok
      [] -> :error
    end
  end

  @doc false
  def sweep(table, idle_ms) do
    limit = now() - idle_ms
    :ets.select_delete(table, [{{:_, :_, :"$1"}, [{:<, :"$1", limit}], [true]}])
  end

  defp now, do: System.monotonic_time(:millisecond)
end
