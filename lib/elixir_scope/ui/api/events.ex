defmodule ElixirScope.UI.API.Events do
  @moduledoc false
  # GET /api/messages, /api/peers, /api/tail and /api/event: the message sequence
  # diagram, the live tail, and any one event whole.

  alias ElixirScope.UI.API.Shape
  alias ElixirScope.UI.{Params, Source}

  @max_lanes 12
  # Messages read in all for the density strip above the diagram.
  @overview_budget 4_000
  @buckets 120

  @types ~w(spawn exit crash link unlink register unregister send receive call return
            exception state alive governor phoenix clock)

  @doc false
  # The event types the tail can filter on, as the API writes them.
  def types, do: @types

  ## Messages among chosen processes

  @doc false
  def messages(params, _ctx) do
    pids = Params.pids!(params, "pids", @max_lanes)
    limit = Params.integer(params, "limit", 500, 1, 2_000)
    from = Params.timestamp(params, "from")
    to = Params.timestamp(params, "to")
    window = Enum.reject([timestamp_start: from, timestamp_end: to], &(elem(&1, 1) == nil))

    {sends, more} =
      if window == [] do
        # No window yet: the latest messages.
        latest = queries(pids) |> read(order: :desc, limit: limit + 1) |> Enum.reverse()
        {drop_first(latest, limit), length(latest) > limit}
      else
        sends = queries(pids) |> read(window ++ [limit: limit + 1])
        {Enum.take(sends, limit), length(sends) > limit}
      end

    lanes = lanes(pids, sends)
    in_lanes = MapSet.new(lanes)
    start = sends |> List.first() |> then(&((&1 && &1.timestamp) || from))
    stop = sends |> List.last() |> then(&((&1 && &1.timestamp) || to))

    %{
      "lanes" => Enum.map(lanes, &lane/1),
      "messages" => sends |> with_receives(in_lanes, stop) |> Enum.map(&message/1),
      "marks" => marks(lanes, start, stop),
      "more" => more,
      "from" => Shape.ts(from || start),
      "to" => Shape.ts(to || stop),
      "overview" => if(params["overview"] == "1", do: overview(pids))
    }
  end

  # One query per pair of chosen pids (both directions); with one pid, its messages
  # both ways with anyone.
  defp queries([pid]), do: [[type: :send, pid: pid], [type: :send, to_pid: pid]]

  defp queries(pids) do
    for {a, i} <- Enum.with_index(pids),
        b <- Enum.drop(pids, i + 1),
        do: [type: :send, between: {a, b}]
  end

  # Messages to a pid (not to a name, an alias or a port), in (timestamp, id) order.
  defp read(queries, extra) do
    desc? = Keyword.get(extra, :order) == :desc

    queries
    |> Enum.flat_map(&Source.events(&1 ++ extra))
    |> Enum.filter(&(is_pid(&1[:from_pid]) and is_pid(&1[:to_pid])))
    |> Enum.uniq_by(& &1.id)
    |> Enum.sort_by(&{&1.timestamp, &1.id}, if(desc?, do: :desc, else: :asc))
    |> Enum.take(Keyword.fetch!(extra, :limit))
  end

  defp drop_first(list, limit) when length(list) > limit, do: tl(list)
  defp drop_first(list, _limit), do: list

  # The chosen pids, then (for one pid) the processes it talked with, busiest first.
  defp lanes([pid], sends) do
    others =
      sends
      |> Enum.flat_map(&[&1.from_pid, &1.to_pid])
      |> Enum.reject(&(&1 == pid or not is_pid(&1)))
      |> Enum.frequencies()
      |> Enum.sort_by(fn {p, n} -> {-n, p} end)
      |> Enum.take(@max_lanes - 1)
      |> Enum.map(&elem(&1, 0))

    [pid | others]
  end

  defp lanes(pids, _sends), do: pids

  # A lane's label: the registered name, else the module a process runs (its initial
  # call), live or recorded.
  defp lane(pid) do
    live = if Source.local?(pid), do: Process.info(pid, [:registered_name, :dictionary])
    birth = if live == nil, do: Source.birth(pid)

    name =
      case {live, birth} do
        {[registered_name: name, dictionary: _], _} when name != [] -> name
        {nil, %{name: name}} when is_atom(name) -> name
        _ -> nil
      end

    initial =
      case {live, birth} do
        {[registered_name: _, dictionary: dict], _} -> dict[:"$initial_call"]
        {nil, %{initial_call: call}} -> call
        _ -> nil
      end

    %{
      "pid" => Shape.pid(pid),
      "name" => name && Shape.atom(name),
      "module" => module_of(initial)
    }
  end

  defp module_of({m, _f, _a}) when is_atom(m), do: Shape.atom(m)
  defp module_of(_), do: nil

  # Each send with the :receive that took it in (the receiver's first event after the
  # send with the same message not already matched), when the receiver is traced.
  defp with_receives(sends, lanes, stop) do
    receivers = sends |> Enum.map(& &1.to_pid) |> Enum.uniq() |> Enum.filter(&(&1 in lanes))
    start = sends |> List.first() |> then(&(&1 && &1.timestamp))

    receives =
      Map.new(receivers, fn pid ->
        bound = Enum.reject([timestamp_start: start], &(elem(&1, 1) == nil))
        # A message is taken in after it was sent: look a little past the last send.
        later =
          if stop,
            do: [timestamp_end: stop + System.convert_time_unit(1, :second, :native)],
            else: []

        {pid,
         Source.events(
           [type: :receive, pid: pid, limit: 4 * length(sends) + 16] ++ bound ++ later
         )}
      end)

    {matched, _left} =
      Enum.map_reduce(sends, receives, fn send, left ->
        queue = Map.get(left, send.to_pid, [])

        case Enum.split_while(
               queue,
               &(&1.timestamp < send.timestamp or &1.message !== send.message)
             ) do
          {skipped, [recv | rest]} -> {{send, recv}, Map.put(left, send.to_pid, skipped ++ rest)}
          {_, []} -> {{send, nil}, left}
        end
      end)

    matched
  end

  defp message({send, recv}) do
    send
    |> Shape.event()
    |> Map.merge(%{
      "label" => label(send[:message]),
      "from" => Shape.pid(send.from_pid),
      "to" => Shape.pid(send.to_pid),
      "recv_id" => recv && recv.id,
      "recv_ts" => recv && Shape.ts(recv.timestamp)
    })
  end

  # What a message says, with OTP's envelopes named: a call, a cast, a reply.
  defp label({:"$gen_call", _from, request}), do: "call " <> Shape.text(request, 60)
  defp label({:"$gen_cast", request}), do: "cast " <> Shape.text(request, 60)

  defp label({[:alias | ref], reply}) when is_reference(ref),
    do: "reply " <> Shape.text(reply, 60)

  defp label({ref, reply}) when is_reference(ref), do: "reply " <> Shape.text(reply, 60)
  defp label(message), do: Shape.text(message, 60)

  defp marks(lanes, start, stop) do
    window = Enum.reject([timestamp_start: start, timestamp_end: stop], &(elem(&1, 1) == nil))

    for pid <- lanes,
        type <- [:exit, :crash],
        e <- Source.events([type: type, pid: pid, limit: 1] ++ window) do
      Map.put(Shape.event(e), "reason", Shape.text(e[:reason], 300))
    end
  end

  # How many messages fell in each of @buckets slices of the time they span (the most
  # recent @overview_budget messages at most): the strip the window is brushed on.
  defp overview(pids) do
    queries = queries(pids)
    per_query = max(div(@overview_budget, length(queries)), 50)

    stamps =
      queries
      |> read(order: :desc, limit: per_query * length(queries))
      |> Enum.map(& &1.timestamp)

    case stamps do
      [] ->
        nil

      _ ->
        {low, high} = Enum.min_max(stamps)
        width = max(div(high - low, @buckets) + 1, 1)
        counts = Enum.frequencies_by(stamps, &div(&1 - low, width))

        %{
          "from" => Shape.ts(low),
          "to" => Shape.ts(high),
          "bucket" => Shape.ts(width),
          "counts" => for(i <- 0..(@buckets - 1), do: Map.get(counts, i, 0)),
          "sampled" => length(stamps) >= per_query * length(queries)
        }
    end
  end

  ## Peers of a process

  @doc false
  def peers(params, _ctx) do
    pid = Params.pid!(params, "pid")

    %{
      "pid" => Shape.pid(pid),
      "peers" =>
        for(
          {peer, n} <- Enum.take(Source.peers(pid), 20),
          do: Map.put(lane(peer), "messages", n)
        )
    }
  end

  ## The live tail

  @doc false
  # Events after the cursor `after` (an event id), matching the filters, newest kept:
  # when more arrived than `limit`, the older ones are left out and `skipped` says so
  # (the page shows that it did not keep up). Without a cursor: the latest `limit`.
  def tail(params, _ctx) do
    after_id = Params.id(params, "after")
    limit = Params.integer(params, "limit", 200, 1, 1_000)
    types = Params.choices(params, "types", Map.new(@types, &{&1, String.to_existing_atom(&1)}))
    pid = Params.pid(params, "pid")
    newest = Source.stats().newest_id

    base =
      [order: :desc, limit: limit + 1] ++
        if(after_id, do: [after_id: after_id], else: []) ++
        if(pid, do: [pid: pid], else: [])

    events = Source.events(if(types == [], do: base, else: [type: types] ++ base))

    kept = Enum.take(events, limit)

    %{
      "items" => kept |> Enum.reverse() |> Enum.map(&Shape.event/1),
      "cursor" => cursor(kept, after_id, newest),
      "newest" => newest,
      "skipped" => after_id != nil and length(events) > limit
    }
  end

  # The id to continue after: the newest event kept; with none, where the listing
  # stood (or, on a first call, the store's newest id: nothing up to it matched).
  defp cursor([], nil, newest) when is_integer(newest) and newest > 0, do: newest
  defp cursor([], after_id, _newest), do: after_id
  defp cursor(kept, _after_id, _newest), do: kept |> Enum.map(& &1.id) |> Enum.max()

  ## One event

  @doc false
  def event(params, _ctx) do
    id = Params.id!(params, "id")

    case Source.event(id) do
      nil -> {404, %{"error" => "no event ##{id} in the recording (pruned?)"}}
      e -> Shape.event_whole(ElixirScope.Event.wrap(e))
    end
  end
end
