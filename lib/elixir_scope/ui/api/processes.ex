defmodule ElixirScope.UI.API.Processes do
  @moduledoc false
  # GET /api/processes and /api/process: the processes view.
  #
  # `view=live` lists the processes running now (sorted, searched, paged by offset),
  # with the live columns (mailbox, memory, reductions) and, for the rows of the page
  # only, the events stored about each. `view=recorded` lists every process the
  # recording has events of, alive or not, by pid (the default on a loaded recording,
  # where nothing is live). `view=exited` lists the recorded exits and crashes, newest
  # first, paged by event id.

  alias ElixirScope.UI.API.Shape
  alias ElixirScope.UI.{Params, Source}

  @sorts %{
    "memory" => :memory,
    "reductions" => :reductions,
    "mailbox" => :message_queue_len,
    "pid" => :pid,
    "name" => :name
  }

  @page_items [:registered_name, :memory, :reductions, :message_queue_len, :status]

  @doc false
  def list(params, _ctx) do
    limit = Params.integer(params, "limit", 50, 1, 500)

    loaded = Source.recording() != nil
    views = %{"live" => :live, "recorded" => :recorded, "exited" => :exited}

    case Params.choice(params, "view", views, if(loaded, do: :recorded, else: :live)) do
      :live when loaded -> Params.fail("a loaded recording has no live processes: view=recorded")
      :live -> live(params, limit)
      :recorded -> recorded(params, limit, loaded)
      :exited -> exited(params, limit)
    end
  end

  ## Live processes

  defp live(params, limit) do
    sort = Params.choice(params, "sort", @sorts, :memory)
    desc? = Params.choice(params, "dir", %{"asc" => false, "desc" => true}, sort != :pid)
    offset = Params.integer(params, "offset", 0, 0, 10_000_000)
    query = params |> Params.text("q") |> downcase()

    rows =
      Process.list()
      |> keyed(sort, query)
      |> Enum.sort(if desc?, do: :desc, else: :asc)

    page = rows |> Enum.drop(offset) |> Enum.take(limit)

    %{
      "live" => true,
      "total" => length(rows),
      "offset" => offset,
      "items" => Enum.flat_map(page, fn {_key, pid} -> live_row(pid) end)
    }
  end

  # {sort key, pid} for each process (matching the search), reading only what the
  # sort and the search need from each, in one Process.info call.
  defp keyed(pids, sort, query) do
    # A search of digits and dots looks at pids only: no need to read the others.
    pid_query? = query != nil and query =~ ~r/^[<>#pid\d.]+$/

    items =
      [if(sort in [:memory, :reductions, :message_queue_len], do: sort)] ++
        if(sort == :name or (query && not pid_query?), do: [:registered_name], else: []) ++
        if(query && not pid_query?, do: [:dictionary, :initial_call], else: [])

    items = Enum.reject(items, &is_nil/1)

    for pid <- pids,
        info = info(pid, items),
        info != nil,
        matches?(pid, info, query, pid_query?) do
      key =
        case sort do
          :pid -> pid
          :name -> {name_key(info[:registered_name]), pid}
          item -> {info[item], pid}
        end

      {key, pid}
    end
  end

  defp info(_pid, []), do: %{}

  defp info(pid, items) do
    case Process.info(pid, items) do
      nil -> nil
      list -> Map.new(list)
    end
  end

  # Named processes first (by name), then the others.
  defp name_key([]), do: {1, ""}
  defp name_key(name), do: {0, Atom.to_string(name)}

  # The search: part of the pid, of the registered name, or of the module the process
  # runs (its proc_lib initial call, else its spawn call), any case.
  defp matches?(_pid, _info, nil, _pid_query?), do: true

  defp matches?(pid, _info, query, true),
    do: String.contains?(List.to_string(:erlang.pid_to_list(pid)), query)

  defp matches?(_pid, info, query, false) do
    (info.registered_name != [] and contains?(Atom.to_string(info.registered_name), query)) or
      contains?(module_name(info.dictionary[:"$initial_call"] || info.initial_call), query)
  end

  defp contains?(text, query), do: text |> String.downcase(:ascii) |> String.contains?(query)

  defp module_name({m, _f, _a}) when is_atom(m), do: Atom.to_string(m)
  defp module_name(_), do: ""

  defp live_row(pid) do
    case Process.info(pid, [:dictionary | @page_items]) do
      nil ->
        []

      info ->
        info = Map.new(info)
        history = Source.history(pid)

        [
          %{
            "pid" => Shape.pid(pid),
            "name" => name(info.registered_name),
            "module" => mfa_text(info.dictionary[:"$initial_call"] || initial_call(pid)),
            "mailbox" => info.message_queue_len,
            "memory" => info.memory,
            "reductions" => info.reductions,
            "status" => Atom.to_string(info.status),
            "events" => history.events,
            "states" => Map.get(history.by_type, :state, 0),
            "alive" => true
          }
        ]
    end
  end

  defp initial_call(pid) do
    case Process.info(pid, :dictionary) do
      {:dictionary, dict} ->
        dict[:"$initial_call"] ||
          case Process.info(pid, :initial_call) do
            {:initial_call, mfa} -> mfa
            nil -> nil
          end

      nil ->
        nil
    end
  end

  defp name([]), do: nil
  defp name(name) when is_atom(name), do: Shape.atom(name)

  defp mfa_text({m, f, a}), do: "#{inspect(m)}.#{f}/#{a}"
  defp mfa_text(_), do: nil

  defp downcase(nil), do: nil
  defp downcase(text), do: String.downcase(text)

  ## Every process recorded

  defp recorded(params, limit, loaded) do
    offset = Params.integer(params, "offset", 0, 0, 10_000_000)
    query = params |> Params.text("q") |> downcase()
    names = if query, do: recorded_names(), else: %{}

    pids =
      Enum.filter(Source.recorded_pids(), fn pid ->
        query == nil or String.contains?(Shape.pid(pid), query) or
          String.contains?(String.downcase(names[pid] || ""), query)
      end)

    # Alive: now, or for a loaded recording, at its end.
    alive? =
      if loaded do
        last = Source.recording()[:last_timestamp] || System.monotonic_time()
        alive = MapSet.new(Source.alive_at(last))
        &MapSet.member?(alive, &1)
      else
        &(Source.local?(&1) and Process.alive?(&1))
      end

    %{
      "live" => false,
      "total" => length(pids),
      "offset" => offset,
      "items" =>
        pids |> Enum.drop(offset) |> Enum.take(limit) |> Enum.map(&recorded_row(&1, alive?.(&1)))
    }
  end

  # Registered names recorded (:alive and :register events), by pid.
  defp recorded_names do
    for e <- Source.events(type: [:alive, :register], limit: 100_000),
        is_pid(e[:pid]) and is_atom(e[:name]) and e[:name] != nil,
        into: %{},
        do: {e.pid, inspect(e.name)}
  end

  defp recorded_row(pid, alive) do
    history = Source.history(pid)
    born = Source.birth(pid)

    end_ =
      if not alive,
        do:
          List.first(Source.events(type: :crash, pid: pid, limit: 1)) ||
            List.first(Source.events(type: :exit, pid: pid, limit: 1))

    %{
      "pid" => Shape.pid(pid),
      "name" => born && name(born[:name] || []),
      "module" => born && mfa_text(born[:initial_call]),
      "events" => history.events,
      "states" => Map.get(history.by_type, :state, 0),
      "alive" => alive,
      "crashed" => match?(%{type: :crash}, end_),
      "reason" => end_ && Shape.text(end_[:reason], 200)
    }
  end

  ## Exited processes

  defp exited(params, limit) do
    before = Params.id(params, "before")
    bound = if before, do: [before_id: before], else: []

    events = Source.events([type: [:crash, :exit], order: :desc, limit: limit + 1] ++ bound)

    page = Enum.take(events, limit)

    items =
      for e <- page do
        born = Source.birth(e.pid)

        %{
          "pid" => Shape.pid(e.pid),
          "name" => born && name(born[:name] || []),
          "module" => born && mfa_text(born[:initial_call]),
          "crashed" => e.type == :crash,
          "reason" => Shape.text(e[:reason], 200),
          "id" => e.id,
          "ts" => Shape.ts(e.timestamp),
          "alive" => false
        }
      end

    Shape.page(items, if(length(events) > limit, do: List.last(page).id))
  end

  ## One process

  @doc false
  def one(params, _ctx) do
    pid = Params.pid!(params, "pid")
    info = Source.process_info(pid)
    born = Source.birth(pid)
    tracing = Source.tracing()
    # On a loaded recording nothing is live: a local process with the same pid is
    # another one.
    info = if Source.local?(pid), do: info, else: %{info | alive: false, live: nil}

    if not info.alive and info.history.events == 0 do
      {404,
       %{
         "error" =>
           "nothing is known about #{Shape.pid(pid)}: it is not running and has no recorded events"
       }}
    else
      live = info.live

      %{
        "pid" => Shape.pid(pid),
        "alive" => info.alive,
        "name" => name((live && live.registered_name) || (born && born[:name]) || []),
        "module" => mfa_text((live && live.initial_call) || (born && born[:initial_call])),
        "live" => live && live_info(live),
        "history" => %{
          "events" => info.history.events,
          "first" => Shape.ts(info.history.first),
          "last" => Shape.ts(info.history.last),
          "by_type" => Map.new(info.history.by_type, fn {k, v} -> {Atom.to_string(k), v} end)
        },
        "traced" => tracing != nil and pid in tracing.processes,
        "genserver" => tracing != nil and pid in tracing.genservers,
        "tracing" => tracing != nil,
        "last_state" => info.last_state && Shape.event(info.last_state),
        "crash" =>
          info.crash &&
            Map.put(Shape.event(info.crash), "reason", Shape.text(info.crash[:reason], 2000)),
        "parent" => Shape.pid(born && born[:parent]),
        "peers" =>
          for(
            {peer, n} <- Enum.take(Source.peers(pid), 10),
            do: %{"pid" => Shape.pid(peer), "messages" => n}
          )
      }
    end
  end

  defp live_info(l) do
    %{
      "status" => Atom.to_string(l.status),
      "mailbox" => l.message_queue_len,
      "memory" => l.memory,
      "reductions" => l.reductions,
      "current" => mfa_text(l.current_function),
      "links" => for(p <- l.links, is_pid(p), do: Shape.pid(p)),
      "parent" => Shape.pid(l.parent)
    }
  end
end
