defmodule ElixirScope.Lifecycle do
  @moduledoc false
  # Starting and stopping ElixirScope (ElixirScope.setup/1, start_link/1, stop/1,
  # stop_tracing/0, documented there): its supervisor, the children the configuration
  # asks for, the order they stop in, and the cluster (ElixirScope.Cluster) setup/1
  # starts with nodes:.

  alias ElixirScope.{Config, Tracing, TraceDB}

  @supervisor ElixirScope.Supervisor

  # In stopping order: the MCP server and the UI first (they read the others), the
  # persister before the tracer (it writes what is left when it stops).
  @stoppable [
    ElixirScope.UI,
    ElixirScope.MCP,
    ElixirScope.Phoenix.Capture,
    ElixirScope.SystemMonitor,
    ElixirScope.Crashes.Collector,
    ElixirScope.FlightRecorder,
    ElixirScope.Persister,
    ElixirScope.Governor,
    Tracing
  ]

  def setup(opts \\ []) do
    {cluster, opts} = cluster_options!(opts)
    # In a cluster every node, this one too, writes under a folder named after it.
    config =
      Config.validate!(if cluster, do: ElixirScope.Cluster.Remote.node_paths(opts), else: opts)

    ElixirScope.Optional.forget()

    result =
      case Process.whereis(@supervisor) do
        nil ->
          start_unlinked(config)

        sup ->
          if Process.whereis(Tracing),
            do: {:error, {:already_started, sup}},
            else: restart(sup, config)
      end

    refused =
      case {result, cluster} do
        {:ok, {nodes, join}} -> ElixirScope.Cluster.setup(nodes, opts, join)
        _ -> []
      end

    not_started = ElixirScope.Optional.not_started()
    not_started = if refused == [], do: not_started, else: not_started ++ [nodes: refused]

    case {result, not_started} do
      {:ok, []} -> :ok
      {:ok, not_started} -> {:partial, not_started}
      {error, _} -> error
    end
  end

  # nodes: and join: (see ElixirScope.Cluster) are the cluster's, not the node's.
  defp cluster_options!(opts) do
    if Keyword.keyword?(opts) do
      {cluster, opts} = Keyword.split(opts, [:nodes, :join])

      case {cluster[:nodes], Keyword.get(cluster, :join, false)} do
        {_, join} when not is_boolean(join) ->
          raise ArgumentError, "join: must be a boolean, got: #{inspect(join)}"

        {nil, true} ->
          raise ArgumentError, "join: true needs nodes: (:all or a list of nodes)"

        {nil, false} ->
          {nil, opts}

        {nodes, join} when nodes == :all or (is_list(nodes) and nodes != []) ->
          if is_list(nodes) and not Enum.all?(nodes, &is_atom/1),
            do:
              raise(
                ArgumentError,
                "nodes: must be :all or a list of nodes, got: #{inspect(nodes)}"
              )

          {{nodes, join}, opts}

        {nodes, _} ->
          raise ArgumentError, "nodes: must be :all or a list of nodes, got: #{inspect(nodes)}"
      end
    else
      {nil, opts}
    end
  end

  # A stopped ElixirScope (its supervisor kept, maybe in the caller's own tree) starts
  # afresh with the new configuration.
  defp restart(sup, config) do
    # Whatever the previous configuration started goes, in stopping order.
    ids = for {id, _, _, _} <- Supervisor.which_children(sup), do: id
    ordered = Enum.filter(@stoppable ++ [TraceDB], &(&1 in ids))

    for id <- ordered ++ (ids -- ordered) do
      Supervisor.terminate_child(sup, id)
      Supervisor.delete_child(sup, id)
    end

    specs = Enum.map(children(config), &Supervisor.child_spec(&1, []))

    Enum.reduce_while(specs, :ok, fn spec, :ok ->
      case Supervisor.start_child(sup, spec) do
        {:ok, _} -> {:cont, :ok}
        {:error, reason} -> {:halt, {:error, reason}}
      end
    end)
  end

  def start_link(opts \\ []) do
    config = Config.validate!(opts)
    ElixirScope.Optional.forget()
    Supervisor.start_link(children(config), strategy: :rest_for_one, name: @supervisor)
  end

  defp start_unlinked(config) do
    case Supervisor.start_link(children(config), strategy: :rest_for_one, name: @supervisor) do
      {:ok, sup} ->
        Process.unlink(sup)
        :persistent_term.put({ElixirScope, :started_by_setup}, sup)
        :ok

      {:error, reason} ->
        {:error, reason}
    end
  end

  defp children(config) do
    [
      {TraceDB, Config.store_options(config)},
      {Tracing, config},
      {ElixirScope.Governor, config},
      {ElixirScope.Crashes.Collector, config}
    ] ++
      if(config.system_monitor != [],
        do: [{ElixirScope.SystemMonitor, config.system_monitor}],
        else: []
      ) ++
      if(config.persist, do: [{ElixirScope.Persister, config}], else: []) ++
      if(config.flight_recorder,
        do: [{ElixirScope.FlightRecorder, config.flight_recorder}],
        else: []
      ) ++
      if(config.phoenix, do: [{ElixirScope.Phoenix.Capture, config}], else: []) ++
      if(config.ai_integration,
        do: [ElixirScope.Optional.child_spec(:mcp, ElixirScope.MCP.child_spec(config.mcp))],
        else: []
      ) ++
      if(config.ui,
        do: [
          ElixirScope.Optional.child_spec(:ui, ElixirScope.UI.child_spec(ui_options(config.ui)))
        ],
        else: []
      ) ++
      [%{id: :arm_tracing, start: {Tracing, :arm, []}, restart: :transient}]
  end

  defp ui_options(true), do: []
  defp ui_options(opts), do: opts

  def stop(opts \\ []) do
    keep_data =
      case opts do
        [] -> true
        [keep_data: keep] when is_boolean(keep) -> keep
        _ -> raise ArgumentError, "stop/1 takes keep_data: boolean, got: #{inspect(opts)}"
      end

    # The members' recordings stop with the coordinator's.
    ElixirScope.Cluster.stop()

    case Process.whereis(@supervisor) do
      nil ->
        :ok

      sup ->
        cond do
          keep_data ->
            terminate_children(sup, @stoppable)

          :persistent_term.get({ElixirScope, :started_by_setup}, nil) == sup ->
            Supervisor.stop(sup)

          true ->
            # Under the caller's own supervisor, which would restart ours if it stopped:
            # stop every child instead.
            terminate_children(sup, @stoppable ++ [TraceDB])
        end
    end
  end

  defp terminate_children(sup, ids) do
    Enum.each(ids, &Supervisor.terminate_child(sup, &1))
  end

  def stop_tracing do
    case Process.whereis(@supervisor) do
      nil ->
        :ok

      sup ->
        terminate_children(sup, [
          ElixirScope.Phoenix.Capture,
          ElixirScope.SystemMonitor,
          ElixirScope.Crashes.Collector,
          ElixirScope.Governor,
          Tracing
        ])
    end
  end
end
