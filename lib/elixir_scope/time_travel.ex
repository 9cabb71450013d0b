defmodule ElixirScope.TimeTravel do
  @moduledoc """
  Stepping through what happened: message flows, state timelines with diffs, a
  process's execution path, and moving from one event to the next.

  Every function is a query of the C store (`ElixirScope.Query`) answered through its
  indexes, so its cost follows the size of its answer, not the size of the recording.
  Functions that return lists take the filters of `ElixirScope.Query` as options —
  `:limit`, `:order`, `:timestamp_start`, `:timestamp_end`, `:where`, `:after` (a
  cursor, or an event) to continue a long listing, `:store` — and return events oldest
  first unless `order: :desc`.

  A process is given by its pid or by a name it is registered under: the process
  registered under it now, or, once it is gone (or in a loaded recording), the last one
  the recording saw with that name.

  Events come back as `ElixirScope.Event`s: maps that IEx prints on one line.

  They are also available on `ElixirScope` itself.
  """

  alias ElixirScope.{Event, TraceDB}

  @type event :: TraceDB.event()

  @typedoc "A pid, or a name a process is (or was, in the recording) registered under."
  @type process :: pid() | atom()

  @doc """
  The messages between two processes, both directions, in order: the `:send` events of
  traced senders, and for a message whose sender is not traced, the `:receive` of the
  traced receiver when the message names its sender — a GenServer call names its
  caller, and the reply to a call is from the process called — with the sender as
  `:from_pid`. So a call and its reply both show when only one side is traced, and a
  message recorded on both sides shows once (as its `:send`).

      ElixirScope.message_flow(client, server, limit: 20)
  """
  @spec message_flow(process(), process(), keyword()) :: [event()]
  def message_flow(a, b, opts \\ []) do
    a = pid!(a, "message_flow/2", opts)
    b = pid!(b, "message_flow/2", opts)
    events([type: [:send, :receive], between: {a, b}] ++ opts)
  end

  @doc """
  Every recorded state of a process, oldest first. Each entry is the `:state` event
  (`:state`, `:timestamp`, `:callback`, `:cause`, ...) plus `:diff`, the change from the
  previous recorded state as `diff/2` entries (`nil` for the first state recorded),
  whatever the order, limit or time range of the listing.
  """
  @spec state_timeline(process(), keyword()) :: [map()]
  def state_timeline(pid, opts \\ []) do
    pid = pid!(pid, "state_timeline/1", opts)
    # Each diff is against the state recorded just before, even when that one falls
    # outside this listing (a limit, a time range, a later page); C computes them
    # while it decodes the events.
    TraceDB.query_structs([type: :state, pid: pid] ++ opts, Event, diff: true)
  end

  @doc """
  What a process did, in order: its calls and returns, messages sent and received,
  state changes, lifecycle events.
  """
  @spec execution_path(process(), keyword()) :: [event()]
  def execution_path(pid, opts \\ []) do
    pid = pid!(pid, "execution_path/1", opts)
    events([pid: pid] ++ opts)
  end

  @doc "The state of `pid` at `timestamp`: `{:ok, state}` or `{:error, :not_found}`."
  @spec get_state_at(pid(), integer() | DateTime.t(), keyword()) ::
          {:ok, term()} | {:error, :not_found}
  defdelegate get_state_at(pid, timestamp, opts \\ []), to: TraceDB

  @doc "Events with timestamps from `t1` to `t2` (inclusive; integers or `DateTime`s) matching `filters`."
  @spec get_events_between(integer() | DateTime.t(), integer() | DateTime.t(), keyword()) ::
          [event()]
  def get_events_between(t1, t2, filters \\ []) do
    unless time?(t1) and time?(t2),
      do:
        raise(
          ArgumentError,
          "get_events_between/2 expects two timestamps (integers or DateTimes), " <>
            "got: #{inspect(t1)}, #{inspect(t2)}"
        )

    events([timestamp_start: t1, timestamp_end: t2] ++ filters)
  end

  defp time?(t), do: is_integer(t) or is_struct(t, DateTime)

  @doc """
  The event right after an event (or after a timestamp or a `DateTime`), matching `filters`; `nil` at
  the end of the recording.
  """
  @spec next_event(event() | integer() | DateTime.t(), keyword()) :: event() | nil
  def next_event(event_or_ts, filters \\ []), do: step(event_or_ts, filters, :asc)

  @doc """
  The event right before an event (or before a timestamp or a `DateTime`), matching `filters`; `nil`
  at the start of the recording.
  """
  @spec prev_event(event() | integer() | DateTime.t(), keyword()) :: event() | nil
  def prev_event(event_or_ts, filters \\ []), do: step(event_or_ts, filters, :desc)

  @doc """
  The events within `window_ms` milliseconds either side of the event with id
  `event_id`, oldest first; `[]` when that event is no longer stored.
  """
  @spec events_around(pos_integer(), non_neg_integer(), keyword()) :: [event()]
  def events_around(event_id, window_ms \\ 100, opts \\ []) do
    unless is_integer(event_id) and event_id > 0,
      do: raise(ArgumentError, "events_around/2 expects an event id, got: #{inspect(event_id)}")

    case TraceDB.get(event_id, Keyword.get(opts, :store, TraceDB)) do
      nil ->
        []

      event ->
        event.timestamp |> TraceDB.get_events_at(window_ms, opts) |> Enum.map(&Event.wrap/1)
    end
  end

  @doc """
  The structural difference between two terms, computed in C: a list of
  `{path, :added | :removed | :changed, old, new}`. Maps, structs and keyword lists are
  compared key by key, other lists and tuples position by position. Keys come in
  Erlang term order — the old term's (changed and removed), then those only the new
  one has (added) — so a diff is the same on every OTP release.

      iex> ElixirScope.diff(%{a: 1, b: [1, 2]}, %{a: 2, b: [1, 2, 3]})
      [{[:a], :changed, 1, 2}, {[:b, 2], :added, nil, 3}]
  """
  @spec diff(term(), term()) :: [{list(), :added | :removed | :changed, term(), term()}]
  def diff(old, new), do: TraceDB.diff(old, new)

  # The nearest event strictly after/before a point, where a point is an event (its
  # {timestamp, id} position: the engine's cursor) or a bare timestamp.
  defp step(%{timestamp: ts, id: id} = event, filters, order)
       when is_integer(ts) and is_integer(id) do
    bound = if order == :asc, do: [after: event], else: [before: event, order: :desc]
    List.first(events(bound ++ [limit: 1] ++ filters))
  end

  defp step(%DateTime{} = at, filters, order),
    do: step(ElixirScope.WallClock.timestamp(at, Keyword.take(filters, [:store])), filters, order)

  defp step(ts, filters, :asc) when is_integer(ts),
    do: List.first(events([timestamp_start: ts + 1, limit: 1] ++ filters))

  defp step(ts, filters, :desc) when is_integer(ts),
    do: List.first(events([timestamp_end: ts - 1, order: :desc, limit: 1] ++ filters))

  defp step(other, _filters, _order),
    do: raise(ArgumentError, "expected an event or a timestamp, got: #{inspect(other)}")

  defp events(filters), do: TraceDB.query_structs(filters, Event)

  # A pid, or a registered name: the process registered under it now (in a live
  # recording), else the last one the recording saw with that name (its :alive snapshot
  # or :register event) — so a name also answers for a loaded recording, or for a
  # process that has died since.
  defp pid!(pid, _what, _opts) when is_pid(pid), do: pid

  defp pid!(name, what, opts) when is_atom(name) and name not in [nil, true, false] do
    store = Keyword.get(opts, :store, TraceDB)
    live = if TraceDB.recording(store) == nil, do: Process.whereis(name)

    live || recorded_pid(name, store) ||
      raise ArgumentError,
            "#{what}: no process is registered as #{inspect(name)}, now or in the recording"
  end

  defp pid!(other, what, _opts),
    do: raise(ArgumentError, "#{what} expects a pid or a registered name, got: #{inspect(other)}")

  defp recorded_pid(name, store) do
    case TraceDB.query_events(
           type: [:register, :alive],
           where: [name: name],
           order: :desc,
           limit: 1,
           store: store,
           select: [:pid]
         ) do
      [%{pid: pid}] -> pid
      [] -> nil
    end
  end
end
