defmodule ElixirScope.WallClock do
  @moduledoc """
  Wall-clock times of events. An event's `:timestamp` is `System.monotonic_time/0`
  (native units): exact and ordered, but no time of day. Its wall-clock time is that
  timestamp plus the runtime's time offset as it was when the event was recorded: each
  store notes the offset when it starts and every time the runtime changes it (under
  `+C multi_time_warp`, when the system clock is set; `:erlang.monitor(:time_offset,
  :clock_service)`), apart from the events, so pruning never loses it; dumps and
  persisted files keep the offsets their events read (`docs/FORMAT.md`), so a loaded
  recording tells the wall-clock times of the VM that made it.

      iex> {:ok, _} = ElixirScope.TraceDB.start_link(name: :wall_doc)
      iex> :ok = ElixirScope.TraceDB.store_event(:note, %{text: "hi"}, store: :wall_doc)
      iex> [event] = ElixirScope.TraceDB.query_events(type: :note, store: :wall_doc)
      iex> %DateTime{} = at = ElixirScope.WallClock.wall_time(event, store: :wall_doc)
      iex> abs(DateTime.diff(at, DateTime.utc_now(), :second)) < 5
      true
      iex> ElixirScope.WallClock.timestamp(at, store: :wall_doc) - event.timestamp < 1_000
      true
      iex> ElixirScope.TraceDB.stop(:wall_doc)
      :ok

  Every function of ElixirScope that takes a timestamp also takes a `DateTime`,
  turned into a timestamp by `timestamp/2` through the same offsets. IEx shows events
  with their wall-clock time (UTC, with microseconds), the MCP server beside the raw
  timestamp a client passes back, exports as the trace's clock.
  """

  alias ElixirScope.TraceDB

  @doc """
  The wall-clock time (UTC, microseconds) of a timestamp or an event, from the offsets
  of the store (`store:`, default `ElixirScope.TraceDB`); `nil` when that store is not
  running or knows no offset (a recording of format version 1 without them).
  """
  @spec wall_time(integer() | %{timestamp: integer()}, keyword()) :: DateTime.t() | nil
  def wall_time(ts_or_event, opts \\ [])
  def wall_time(%{timestamp: ts}, opts), do: wall_time(ts, opts)

  def wall_time(ts, opts) when is_integer(ts) do
    name = Keyword.get(opts, :store, TraceDB)

    with store when store != nil <- TraceDB.lookup(name),
         offset when is_integer(offset) <- TraceDB.wall_offset(ts, name) do
      from_native(ts + offset)
    else
      _ -> nil
    end
  end

  def wall_time(other, _opts),
    do:
      raise(ArgumentError, "wall_time/2 expects a timestamp or an event, got: #{inspect(other)}")

  @doc """
  The timestamp (`System.monotonic_time/0` units) of a `DateTime` in the store's
  recording; an integer is returned as it is. Raises `ArgumentError` for anything else,
  or for a `DateTime` when the store knows no offset.
  """
  @spec timestamp(integer() | DateTime.t(), keyword()) :: integer()
  def timestamp(ts, opts \\ [])
  def timestamp(ts, _opts) when is_integer(ts), do: ts

  def timestamp(%DateTime{} = at, opts) do
    name = Keyword.get(opts, :store, TraceDB)
    wall = DateTime.to_unix(at, :native)

    case TraceDB.lookup(name) && TraceDB.wall_timestamp(wall, name) do
      ts when is_integer(ts) ->
        ts

      _ ->
        raise ArgumentError,
              "no wall clock is known for store #{inspect(name)} (not running, or a " <>
                "recording without time offsets): give a timestamp instead of #{inspect(at)}"
    end
  end

  def timestamp(other, _opts),
    do:
      raise(
        ArgumentError,
        "expected a timestamp (an integer, System.monotonic_time/0 units) or a DateTime, " <>
          "got: #{inspect(other)}"
      )

  @doc """
  A timestamp's wall-clock time as text, ISO 8601 with microseconds
  (`"2026-01-05T12:03:07.123456Z"`), or `nil` (see `wall_time/2`).
  """
  @spec format(integer(), keyword()) :: String.t() | nil
  def format(ts, opts \\ []) do
    case wall_time(ts, opts) do
      nil -> nil
      at -> DateTime.to_iso8601(at)
    end
  end

  @doc false
  # The DateTime of native units since the epoch, with microseconds.
  def from_native(native) do
    native
    |> System.convert_time_unit(:native, :microsecond)
    |> DateTime.from_unix!(:microsecond)
  end
end
