defmodule ElixirScope.UI.API.Phoenix do
  @moduledoc false
  # GET /api/phoenix/*: requests (method, path, status, duration) and what the serving
  # process did for one; LiveView processes and their mounts, events and renders with
  # assigns diffs (recorded with `setup(phoenix: true)`, see `ElixirScope.Phoenix`).

  alias ElixirScope.UI.API.Shape
  alias ElixirScope.UI.{Params, Source}

  @doc false
  def requests(params, _ctx) do
    limit = Params.integer(params, "limit", 50, 1, 200)
    before = Params.id(params, "before")
    bound = if before, do: [before_id: before], else: []
    requests = Source.requests([order: :desc, limit: limit + 1] ++ bound)
    page = Enum.take(requests, limit)
    Shape.page(Enum.map(page, &request/1), if(length(requests) > limit, do: List.last(page).id))
  end

  defp request(e) do
    %{
      "id" => e.id,
      "ts" => Shape.ts(e.timestamp),
      "pid" => Shape.pid(e.pid),
      "method" => e[:method],
      "path" => e[:path],
      "status" => e[:status],
      "route" => e[:route],
      "view" => Shape.atom(e[:view]),
      "duration" => Shape.duration(e[:duration])
    }
  end

  @doc false
  def request(params, _ctx) do
    id = Params.id!(params, "id")

    case Source.event(id) do
      %{type: :phoenix, kind: :endpoint} = e ->
        %{
          "request" => Map.put(request(e), "params", Shape.term(e[:params], 20_000)),
          "events" => id |> Source.request_timeline(limit: 2_000) |> Enum.map(&Shape.event/1)
        }

      _ ->
        {404, %{"error" => "no request ##{id} in the recording"}}
    end
  end

  @doc false
  # LiveView processes: one row per process that mounted, newest first.
  def live_views(params, _ctx) do
    limit = Params.integer(params, "limit", 100, 1, 500)

    rows =
      [kind: :live_view, callback: :mount, phase: :stop, order: :desc, limit: 4 * limit]
      |> Source.phoenix_events()
      |> Enum.uniq_by(& &1.pid)
      |> Enum.take(limit)
      |> Enum.map(fn e ->
        %{
          "pid" => Shape.pid(e.pid),
          "view" => Shape.atom(e[:view]),
          "connected" => e[:connected] == true,
          "ts" => Shape.ts(e.timestamp),
          "id" => e.id,
          "alive" => Source.local?(e.pid) and Process.alive?(e.pid)
        }
      end)

    %{"items" => rows}
  end

  @doc false
  def live_view(params, _ctx) do
    pid = Params.pid!(params, "pid")
    limit = Params.integer(params, "limit", 500, 1, 2_000)

    %{
      "pid" => Shape.pid(pid),
      "events" =>
        for e <- Source.live_view_timeline(pid, limit: limit) do
          e
          |> Shape.event()
          |> Map.merge(%{
            "kind" => e[:kind] && Atom.to_string(e[:kind]),
            "callback" => e[:callback] && Atom.to_string(e[:callback]),
            "phase" => e[:phase] && Atom.to_string(e[:phase]),
            "event" => e[:event] && Shape.text(e[:event], 80),
            "duration" => Shape.duration(e[:duration]),
            "diff" => e[:diff] && Enum.map(e[:diff], &Shape.change(&1, 2_000))
          })
        end
    }
  end
end
