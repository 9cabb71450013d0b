defmodule ElixirScope.UI.API.Shape do
  @moduledoc false
  # How the API writes what every view shows: events (one line, or whole), pids,
  # timestamps, durations. Timestamps and anything else that may pass 2^53 travel as
  # strings of digits (raw monotonic native units, which the page turns into
  # wall-clock times with the offset `/api/meta` gives); terms as `TermJSON`.

  alias ElixirScope.Event
  alias ElixirScope.UI.TermJSON

  @doc false
  def ts(nil), do: nil
  def ts(timestamp), do: TermJSON.int(timestamp)

  @doc false
  def pid(pid), do: TermJSON.pid(pid)

  @doc false
  def atom(a), do: TermJSON.atom(a)

  @doc false
  def term(term, budget \\ 200_000), do: TermJSON.encode(term, budget)

  @doc false
  # `term` inspected on one line, in at most `width` characters.
  def text(term, width \\ 160), do: Event.short(term, width)

  @doc false
  # A duration in native units, as a string (it may pass 2^53 in theory; never in
  # practice, but one rule for every native integer).
  def duration(nil), do: nil
  def duration(native) when is_integer(native), do: Integer.to_string(native)
  def duration(_), do: nil

  @doc false
  # One event on one line: the columns every listing shows.
  def event(e) do
    %{
      "id" => e.id,
      "type" => Atom.to_string(e.type),
      "ts" => ts(e.timestamp),
      "pid" => pid(e[:pid] || e[:from_pid]),
      "to" => pid(e[:to_pid]),
      "summary" => what(e)
    }
  end

  @doc false
  # One event whole: its columns and every field as a term.
  def event_whole(e) do
    fields =
      e
      |> Map.drop([:__struct__, :id, :type, :timestamp])
      |> Enum.sort()
      |> Enum.map(fn {k, v} -> [Atom.to_string(k), term(v)] end)

    Map.put(event(e), "fields", fields)
  end

  # Event.summary without the pid it starts with (the listings show it in a column).
  defp what(e) do
    summary = Event.summary(e, 120)
    prefix = inspect(e[:pid] || e[:from_pid]) <> " "

    if String.starts_with?(summary, prefix),
      do: binary_part(summary, byte_size(prefix), byte_size(summary) - byte_size(prefix)),
      else: summary
  end

  @doc false
  # One entry of a C diff, {path, kind, old, new}, as [[path keys], kind, old, new].
  def change({path, kind, old, new}, budget) do
    [Enum.map(path, &term(&1, 100)), Atom.to_string(kind), term(old, budget), term(new, budget)]
  end

  @doc false
  # A page of a listing: `items`, and the cursor that continues it (nil at the end).
  def page(items, next), do: %{"items" => items, "next" => next}
end
