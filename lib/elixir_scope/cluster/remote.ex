defmodule ElixirScope.Cluster.Remote do
  @moduledoc false
  # What a coordinator asks of a member node over :erpc. Only plain data crosses:
  # options, query specs, positions, events; the code is the member's own (loaded
  # there, never shipped), which is why starting, querying and answering for a surface
  # first check that it is the coordinator's version of ElixirScope (stop/1 and
  # system_time/0, which read or stop nothing of another version, do not).

  alias ElixirScope.Cluster.Watchdog
  alias ElixirScope.{Query, TraceDB}

  # Starts ElixirScope here for `coordinator` with its options, each per-node path
  # given this node's name. A node that already runs ElixirScope set up locally keeps
  # its own configuration and is not stopped when the coordinator goes.
  def start(coordinator, opts, version) do
    with :ok <- compatible(version) do
      watched = Watchdog.coordinator()

      case ElixirScope.setup(node_paths(opts)) do
        :ok ->
          watch(coordinator, watched)

        {:partial, not_started} ->
          with {:ok, _} <- watch(coordinator, watched), do: {:ok, {:partial, not_started}}

        {:error, {:already_started, _}} when watched != nil ->
          Watchdog.follow(coordinator)
          {:ok, :already_member}

        {:error, {:already_started, _}} ->
          {:ok, :set_up_locally}

        {:error, reason} ->
          {:error, reason}
      end
    end
  end

  defp watch(coordinator, nil) do
    {:ok, _} = Watchdog.start(coordinator)
    {:ok, :started}
  end

  defp watch(coordinator, _watched) do
    Watchdog.follow(coordinator)
    {:ok, :started}
  end

  # Stops what `coordinator` started here (and nothing set up locally).
  def stop(coordinator) do
    if Watchdog.coordinator() == coordinator do
      Watchdog.stop()
      ElixirScope.stop()
    end

    :ok
  end

  # Persistence and crash dumps of nodes sharing a host must not collide: each node
  # writes under a folder named after it.
  @doc false
  def node_paths(opts) do
    here = Atom.to_string(node())

    opts
    |> update(:persist_path, &Path.join(&1, here))
    |> update(:flight_recorder, fn fr ->
      if Keyword.keyword?(fr), do: update(fr, :dir, &Path.join(&1, here)), else: fr
    end)
  end

  defp update(opts, key, fun) do
    case Keyword.fetch(opts, key) do
      {:ok, v} when is_binary(v) or is_list(v) -> Keyword.put(opts, key, fun.(v))
      _ -> opts
    end
  end

  @doc false
  def compatible(version) do
    if version == ElixirScope.version(),
      do: :ok,
      else:
        {:error,
         {:incompatible_version,
          "#{node()} runs ElixirScope #{ElixirScope.version()}, the coordinator " <>
            "#{version}: every node of a cluster needs the same version"}}
  end

  # A page of this node's events after `position` (its own {timestamp, id} order), each
  # with its wall-clock time in native units (`:wall`, nil when the store knows no
  # offset), and whether more follow.
  def page(version, spec, position, limit) do
    with :ok <- compatible(version) do
      cursor = if position, do: Query.cursor(position)
      spec = spec |> Map.new() |> Map.merge(%{after: cursor, limit: limit})
      store = Map.get(spec, :store, TraceDB)
      {events, next} = Query.page(spec)
      {:ok, Enum.map(events, &with_wall(&1, store)), next != nil}
    end
  end

  defp with_wall(%{timestamp: ts} = event, store) do
    case TraceDB.wall_offset(ts, store) do
      offset when is_integer(offset) -> Map.put(event, :wall, ts + offset)
      _ -> Map.put(event, :wall, nil)
    end
  end

  # Any facade function's answer on this node (node selection of ElixirScope's
  # queries): only ElixirScope's own public functions, by name.
  def apply(version, fun, args) do
    with :ok <- compatible(version), do: {:ok, Kernel.apply(ElixirScope, fun, args)}
  end

  # A request to one of this node's surfaces, answered by `node` instead (the
  # coordinator's MCP server and web UI forward a request naming a member): an MCP
  # tool call ({ElixirScope.MCP.Tools, :call}) or a web UI API request
  # ({ElixirScope.UI.API, :handle}), answered as that node's own server would.
  @surfaces [{ElixirScope.MCP.Tools, :call}, {ElixirScope.UI.API, :handle}]

  @doc false
  def forward(node, {module, fun} = surface, args) when surface in @surfaces do
    case :erpc.call(node, __MODULE__, :serve, [ElixirScope.version(), module, fun, args], 15_000) do
      {:ok, answer} -> answer
      {:error, reason} -> raise ArgumentError, "#{node} refused: #{inspect(reason)}"
    end
  catch
    :error, {:erpc, reason} ->
      raise ArgumentError, "node #{node} did not answer: #{inspect(reason)}"
  end

  def serve(version, module, fun, args) when {module, fun} in @surfaces do
    with :ok <- compatible(version), do: {:ok, Kernel.apply(module, fun, args)}
  end

  # This node's system time, for the coordinator's skew estimate.
  def system_time, do: :erlang.system_time()
end
