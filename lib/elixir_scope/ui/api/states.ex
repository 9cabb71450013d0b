defmodule ElixirScope.UI.API.States do
  @moduledoc false
  # GET /api/states and /api/state: a GenServer's state timeline. The slider needs
  # only the ids of the states (nothing decoded, so a window of thousands costs
  # little); each step is read whole when the page shows it (or prefetches it): the
  # state, the callback and message that produced it, and the diff from the state
  # before, computed in C.

  alias ElixirScope.UI.API.Shape
  alias ElixirScope.UI.{Params, Source}

  @doc false
  def ids(params, _ctx) do
    pid = Params.pid!(params, "pid")
    limit = Params.integer(params, "limit", 2_000, 1, 10_000)
    after_id = Params.id(params, "after")
    before_id = Params.id(params, "before")
    base = [type: :state, pid: pid, limit: limit + 1]

    {ids, more_before, more_after} =
      case {after_id, before_id} do
        {nil, nil} ->
          # The latest states, where a debugging session usually starts.
          ids = Source.ids(base ++ [order: :desc]) |> Enum.reverse()
          {drop_first(ids, limit), length(ids) > limit, false}

        {after_id, nil} ->
          ids = Source.ids(base ++ [after_id: after_id])
          {Enum.take(ids, limit), true, length(ids) > limit}

        {nil, before_id} ->
          ids = Source.ids(base ++ [before_id: before_id, order: :desc]) |> Enum.reverse()
          {drop_first(ids, limit), length(ids) > limit, true}

        _ ->
          Params.fail("give after or before, not both")
      end

    %{
      "pid" => Shape.pid(pid),
      "ids" => ids,
      "more_before" => more_before,
      "more_after" => more_after,
      "total" => Map.get(Source.history(pid).by_type, :state, 0)
    }
  end

  defp drop_first(ids, limit) when length(ids) > limit, do: tl(ids)
  defp drop_first(ids, _limit), do: ids

  @doc false
  def step(params, _ctx) do
    pid = Params.pid!(params, "pid")
    id = Params.id!(params, "id")

    case Source.state_step(pid, id) do
      nil ->
        {404, %{"error" => "no state ##{id} of #{Shape.pid(pid)} in the recording (pruned?)"}}

      e ->
        %{
          "id" => e.id,
          "ts" => Shape.ts(e.timestamp),
          "pid" => Shape.pid(pid),
          "module" => Shape.atom(e[:module]),
          "callback" => e[:callback] && Atom.to_string(e[:callback]),
          "cause" => Shape.term(e[:cause], 20_000),
          "state" => Shape.term(e[:state]),
          "truncated" => e[:truncated] == true,
          "size" => :erlang.external_size(e[:state]),
          "diff" => e.diff && Enum.map(e.diff, &Shape.change(&1, 5_000))
        }
    end
  end
end
