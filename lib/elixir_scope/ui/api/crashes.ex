defmodule ElixirScope.UI.API.Crashes do
  @moduledoc false
  # GET /api/crashes: crashes (abnormal exits), newest first, each with its reason and
  # stacktrace, the process's last recorded states and the last messages it received.

  alias ElixirScope.UI.API.Shape
  alias ElixirScope.UI.{Params, Source}

  @doc false
  def list(params, _ctx) do
    limit = Params.integer(params, "limit", 10, 1, 50)
    before = Params.id(params, "before")
    bound = if before, do: [before_id: before], else: []
    crashes = Source.events([type: :crash, order: :desc, limit: limit + 1] ++ bound)
    page = Enum.take(crashes, limit)

    Shape.page(
      Enum.map(page, &crash/1),
      if(length(crashes) > limit, do: List.last(page).id)
    )
  end

  defp crash(e) do
    pid = e.pid
    {what, stack} = explain(e[:reason])
    before = [pid: pid, timestamp_end: e.timestamp, order: :desc]

    %{
      "id" => e.id,
      "ts" => Shape.ts(e.timestamp),
      "pid" => Shape.pid(pid),
      "name" => name(pid),
      "reason" => what,
      "stacktrace" => stack,
      "reason_term" => Shape.term(e[:reason], 20_000),
      "last_states" =>
        for s <- Source.events([type: :state, limit: 3] ++ before) do
          %{
            "id" => s.id,
            "ts" => Shape.ts(s.timestamp),
            "callback" => s[:callback] && Atom.to_string(s[:callback]),
            "state" => Shape.text(s[:state], 600)
          }
        end,
      # Replies of the code server come from loading what the crash itself needed
      # (formatting the error): not what the process was doing.
      "last_messages" =>
        Source.events([type: :receive, limit: 20] ++ before)
        |> Enum.reject(&match?({:code_server, _}, &1[:message]))
        |> Enum.take(5)
        |> Enum.map(&Shape.event/1)
    }
  end

  # The reason as one readable line, and the stacktrace as lines when there is one.
  defp explain({exception, stack}) when is_list(stack) do
    if stacktrace?(stack) do
      {Exception.format_banner(:error, exception, stack),
       Enum.map(stack, &Exception.format_stacktrace_entry/1)}
    else
      {Exception.format_exit({exception, stack}), nil}
    end
  rescue
    _ -> {Shape.text({exception, stack}, 2_000), nil}
  end

  defp explain(reason) do
    {Exception.format_exit(reason), nil}
  rescue
    _ -> {Shape.text(reason, 2_000), nil}
  end

  defp stacktrace?([_ | _] = stack) do
    Enum.all?(stack, fn
      {m, f, a, loc}
      when is_atom(m) and is_atom(f) and (is_integer(a) or is_list(a)) and
             is_list(loc) ->
        true

      {f, a, loc} when is_function(f) and (is_integer(a) or is_list(a)) and is_list(loc) ->
        true

      _ ->
        false
    end)
  end

  defp stacktrace?(_), do: false

  defp name(pid) do
    case Source.birth(pid) do
      %{name: name} when is_atom(name) and name != nil -> Shape.atom(name)
      _ -> nil
    end
  end
end
