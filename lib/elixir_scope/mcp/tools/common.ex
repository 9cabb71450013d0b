defmodule ElixirScope.MCP.Tools.Common do
  @moduledoc false
  # What the tool modules share: listings of events paged with the query engine's
  # cursors, listings of computed lines paged by offset, the answers to "nothing
  # recorded" and to tracing requests, and lookups of what is traced.

  alias ElixirScope.{Event, Query, TraceDB}
  alias ElixirScope.MCP.{Args, Text}

  # limit and the cursor to continue from, for listings of events.
  def window(args, default \\ 50),
    do: {Args.integer(args, "limit", default, 1, 500), cursor(args)}

  # A cursor of the query engine, checked: one of another listing's kind, or a
  # damaged one, is refused with what to do.
  defp cursor(args) do
    case Map.get(args, "cursor") do
      nil ->
        nil

      "esq1." <> _ = cursor ->
        try do
          Query.normalize!(after: cursor)
          cursor
        rescue
          ArgumentError ->
            Args.fail("cursor is malformed; pass back the cursor an answer ended with")
        end

      other ->
        Args.fail("cursor #{inspect(other)} does not continue this listing")
    end
  end

  @doc false
  # A page of events: `spec` (a query spec without limit or cursor) run from the cursor
  # of `window`, in its order (`after:` the cursor, or `before:` it with order: :desc),
  # rendered one entry each (`:line`, Text.event/1 by default), with the cursor after
  # each and after the last. Options: `:diff` (:state events with their :diff), `:none`
  # (the answer when the first page is empty), `:heading`.
  def event_page(spec, {limit, cursor}, config, opts) do
    bound = if spec[:order] == :desc, do: :before, else: :after

    {events, next} =
      TraceDB.query_structs([{bound, cursor}, limit: limit] ++ spec, Event,
        page: true,
        diff: opts[:diff]
      )

    if events == [] and cursor == nil and opts[:none] do
      opts[:none].()
    else
      render = Keyword.get(opts, :line, &Text.event/1)
      lines = Enum.map(events, &{render.(&1), Query.cursor(&1)})
      Text.page(opts[:heading], lines, next, config)
    end
  end

  # limit and offset, for listings of computed lines (live processes, trees).
  def offset_window(args, default) do
    limit = Args.integer(args, "limit", default, 1, 500)

    case Map.get(args, "cursor") do
      nil ->
        {limit, 0}

      "o" <> digits ->
        case Integer.parse(digits) do
          {n, ""} when n >= 0 -> {limit, n}
          _ -> Args.fail("cursor is malformed; pass back the cursor an answer ended with")
        end

      other ->
        Args.fail("cursor #{inspect(other)} does not continue this listing")
    end
  end

  def offset_page(heading, lines, limit, offset, config) do
    shown = lines |> Enum.drop(offset) |> Enum.take(limit)
    paired = Enum.with_index(shown, fn line, i -> {line, "o#{offset + i + 1}"} end)

    Text.page(
      heading,
      paired,
      if(offset + limit < length(lines), do: "o#{offset + limit}"),
      config
    )
  end

  def blank_list([], text), do: [text]
  def blank_list(lines, _text), do: lines

  # What ElixirScope traces now (nil when it is stopped).
  def info(key, default) do
    case ElixirScope.tracing_info() do
      %{^key => value} -> value
      _ -> default
    end
  end

  def nothing_recorded(pid, what, kind) do
    alive = Process.alive?(pid)

    traced =
      case kind do
        :genserver -> pid in info(:genservers, [])
        :process -> false
      end

    {:error,
     cond do
       not alive and kind == :genserver ->
         "No #{what} recorded for #{Text.pid(pid)}, and it is not running."

       not alive ->
         "Nothing recorded for #{Text.pid(pid)}, and it is not running: check the pid with elixir_scope_list_processes."

       traced ->
         "#{Text.pid(pid)} is traced, but no #{what} happened since; let the application work and ask again."

       true ->
         "No #{what} recorded for #{Text.pid(pid)}: trace it first with elixir_scope_trace_process, then let the application work."
     end}
  end

  # A path of a diff, as the state listings show it.
  def path_text([]), do: "(whole state)"
  def path_text(path), do: Text.term(path, 120)
end
