defmodule ElixirScope.MCP.Tools.Phoenix do
  @moduledoc false
  # The tools that tell what a Phoenix application served (setup(phoenix: true)): its
  # requests — newest first, by path and status, or the slowest —, what one request
  # caused, and one LiveView's life. Listings page with the query engine's cursors
  # (the slowest requests, a top-n, by offset), each answer within the server's budget.

  import ElixirScope.MCP.Tools.Common

  alias ElixirScope.{Query, TraceDB}
  alias ElixirScope.MCP.{Args, Text}
  alias ElixirScope.Phoenix, as: PX

  @doc false
  def requests(args, config) do
    where = request_filters(args)
    slowest = Map.get(args, "slowest", false)
    unless is_boolean(slowest), do: Args.fail("slowest must be true or false")
    what = describe(args)

    if slowest do
      {limit, offset} = offset_window(args, 20)
      # one more than shown: it says whether more follow
      requests = PX.slowest_requests(where ++ [limit: min(offset + limit + 1, 10_000)])

      if requests == [] and offset == 0,
        do: none(what),
        else:
          offset_page(
            "The slowest requests#{what}, slowest first:",
            Enum.map(requests, &request_line/1),
            limit,
            offset,
            config
          )
    else
      event_page(
        [type: :phoenix, where: [kind: :endpoint, phase: :stop] ++ where, order: :desc],
        window(args, 20),
        config,
        heading: "Requests#{what}, newest first:",
        line: &request_line/1,
        none: fn -> none(what) end
      )
    end
  end

  # path: a prefix; status: 500, or "5xx" for a class.
  defp request_filters(args) do
    path = if Map.has_key?(args, "path"), do: [path: {:prefix, Args.string!(args, "path")}]

    status =
      case Map.get(args, "status") do
        nil ->
          nil

        n when is_integer(n) and n in 100..599 ->
          [status: n]

        <<d, "xx">> when d in ?1..?5 ->
          class = (d - ?0) * 100
          [status: {:between, class, class + 99}]

        other ->
          Args.fail(
            "status must be an HTTP status (500) or a class (\"5xx\"), got: #{inspect(other)}"
          )
      end

    List.wrap(path) ++ List.wrap(status)
  end

  defp describe(args) do
    [
      args["path"] && " under #{args["path"]}",
      args["status"] && " with status #{args["status"]}"
    ]
    |> Enum.filter(& &1)
    |> Enum.join()
  end

  defp none(what) do
    {:error,
     "No request#{what} recorded. Requests are recorded with ElixirScope.setup(phoenix: true) " <>
       "(elixir_scope_status shows what runs); let the application serve some."}
  end

  defp request_line(e) do
    "##{e.id} t=#{e.timestamp} #{e[:method]} #{e[:path]} → #{e[:status]} in " <>
      "#{Text.duration(e[:duration])}#{route(e)} served by #{Text.pid(e.pid)}"
  end

  defp route(%{route: route}) when is_binary(route), do: " (#{route})"
  defp route(_), do: ""

  @doc false
  def request_timeline(args, config) do
    id =
      Args.integer(args, "request_id", nil, 1, 2 ** 62) ||
        Args.fail("missing argument request_id")

    request =
      case TraceDB.get(id) do
        %{type: :phoenix, kind: :endpoint} = e ->
          e

        nil ->
          Args.fail("no event ##{id} in the recording (it may have been pruned)")

        _ ->
          Args.fail(
            "event ##{id} is not a request: elixir_scope_phoenix_requests lists them, " <>
              "with the ids to pass here"
          )
      end

    {limit, cursor} = window(args)
    events = PX.request_timeline(request, after: cursor, limit: limit + 1)

    heading =
      "What request ##{id} (#{request[:method]} #{request[:path]}) caused, in order: its " <>
        "Phoenix events, the messages traced processes sent its process " <>
        "#{Text.pid(request.pid)}, and what its calls to traced GenServers did there:"

    paged(heading, events, limit, &Text.event/1, config)
  end

  @doc false
  def live_view_timeline(args, config) do
    if Map.has_key?(args, "pid_string") do
      pid = Args.pid!(args, "pid_string")
      {limit, cursor} = window(args)
      events = PX.live_view_timeline(pid, after: cursor, limit: limit + 1)

      if events == [] and cursor == nil do
        {:error,
         "Nothing recorded for #{Text.pid(pid)} as a LiveView. Call this tool without " <>
           "pid_string to list the LiveViews recorded."}
      else
        heading =
          "The life of LiveView #{Text.pid(pid)}, oldest first (its states are its " <>
            "assigns once traced with elixir_scope_trace_process):"

        paged(heading, events, limit, &live_view_line/1, config)
      end
    else
      live_views(args, config)
    end
  end

  # The connected LiveViews recorded: their connected mounts, newest first.
  defp live_views(args, config) do
    event_page(
      [
        type: :phoenix,
        where: [kind: :live_view, callback: :mount, phase: :stop, connected: true],
        order: :desc
      ],
      window(args, 20),
      config,
      heading: "LiveViews recorded (connected mounts), newest first:",
      line: fn e ->
        "##{e.id} t=#{e.timestamp} #{Text.pid(e.pid)} #{inspect(e[:view])}" <>
          if(Process.alive?(e.pid), do: " (running)", else: " (ended)")
      end,
      none: fn ->
        {:error,
         "No LiveView recorded. LiveViews are recorded with ElixirScope.setup(phoenix: true)."}
      end
    )
  end

  defp live_view_line(%{diff: diff} = e) when is_list(diff) and diff != [] do
    changes =
      Enum.map_join(diff, "\n", fn
        {path, :changed, old, new} ->
          "  #{path_text(path)}: #{Text.term(old, 120)} → #{Text.term(new, 120)}"

        {path, :added, _, new} ->
          "  #{path_text(path)}: added #{Text.term(new, 120)}"

        {path, :removed, old, _} ->
          "  #{path_text(path)}: removed #{Text.term(old, 120)}"
      end)

    Text.event(e) <> cause(e) <> "\n" <> changes
  end

  defp live_view_line(e), do: Text.event(e) <> cause(e)

  defp cause(%{type: :state, cause: cause}), do: "\n  cause: #{Text.term(cause, 300)}"
  defp cause(_), do: ""

  # A page of events fetched one past the limit: the extra one says that more follow.
  defp paged(heading, events, limit, render, config) do
    {shown, rest} = Enum.split(events, limit)
    lines = Enum.map(shown, &{render.(&1), Query.cursor(&1)})
    more = if rest != [] and shown != [], do: Query.cursor(List.last(shown))
    Text.page(heading, blank_lines(lines), more, config)
  end

  defp blank_lines([]), do: [{"(nothing more)", nil}]
  defp blank_lines(lines), do: lines
end
