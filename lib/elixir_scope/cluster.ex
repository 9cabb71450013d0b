defmodule ElixirScope.Cluster do
  @moduledoc """
  Recording and queries over a cluster of nodes connected with Erlang distribution.

  Recording stays on each node: every node runs its own C store and tracer and enforces
  its own caps. `ElixirScope.setup(nodes: [...])` (or `nodes: :all`, the nodes connected
  now, with `join: true` also those that connect later) starts ElixirScope on those
  nodes with the same options (the MCP server and the web UI only on the node that
  called it; persistence and flight-recorder folders get a subfolder named after each
  node) and keeps a heartbeat to them: a node's recording stops within a second when
  the coordinator's node goes down, disconnects or stops beating (see
  `ElixirScope.Cluster.Watchdog`), unless that node was set up locally. ElixirScope's
  code must be loaded on every node (a dependency of the application, or `-pa`): no
  code is ever sent over the wire, and a node running another version of ElixirScope is
  refused with a message naming both versions.

  Queries travel as plain data (`ElixirScope.Query` specs) over `:erpc`, each node
  answering within `timeout:` (default #{2_000} ms). `page/2` merges the nodes'
  answers into one listing on the cluster's time line (`ElixirScope.Cluster.Clock`):
  each event carries its `:node` and `:cluster_time`, and a receive matched to its send
  on another node (`ElixirScope.Cluster.Matching`) is never placed before it. A node
  that does not answer in time, or fails, is named in the result's `missing`
  (`ElixirScope.Cluster.Result`). The cursor holds a position per node, in that node's
  own order, so a changing skew estimate never makes a page skip or repeat an event.

  ## Node selection

  `nodes:` is `:all` (this node and every node set up from it), `:local`, a node, or a
  list of nodes. The default is `:all` once `setup(nodes: ...)` ran here, `:local`
  otherwise.
  """

  alias ElixirScope.Cluster.{Clock, Coordinator, Merge, Remote, Result}
  alias ElixirScope.Query

  @timeout 2_000
  @page 500
  @cursor_tag "escl1."

  ## Setup (ElixirScope.setup/1 with nodes:)

  @doc false
  # Starts the coordinator and, through it, ElixirScope on `nodes` with `opts` (the
  # options given to setup/1 minus the cluster's own, servers left out). [] when all
  # started, else [{node, reason}].
  def setup(nodes, opts, join) do
    nodes = resolve_setup(nodes)
    remote_opts = Keyword.drop(opts, [:ai_integration, :mcp, :ui])
    {:ok, _} = Coordinator.start(nodes, remote_opts, join)
    Coordinator.result().refused
  end

  defp resolve_setup(:all), do: Node.list()

  defp resolve_setup(nodes) when is_list(nodes) do
    unless nodes != [] and Enum.all?(nodes, &is_atom/1),
      do:
        raise(
          ArgumentError,
          "nodes: must be :all or a non-empty list of nodes, got: #{inspect(nodes)}"
        )

    Enum.uniq(nodes)
  end

  defp resolve_setup(other),
    do: raise(ArgumentError, "nodes: must be :all or a list of nodes, got: #{inspect(other)}")

  @doc false
  def stop, do: Coordinator.stop()

  @doc "The nodes whose recording this node started (`setup(nodes: ...)`)."
  @spec members() :: [node()]
  def members, do: Coordinator.members()

  @doc """
  The node of the cluster named `name` (a string, as an MCP client or a web page
  gives it): `nil` for this node (or no name), the member node otherwise. Raises
  `ArgumentError` naming the cluster's nodes when no member has that name; no atom is
  created from the name.
  """
  @spec member_named(String.t() | nil) :: node() | nil
  def member_named(nil), do: nil

  def member_named(name) when is_binary(name) do
    cond do
      name == Atom.to_string(node()) ->
        nil

      member = Enum.find(members(), &(Atom.to_string(&1) == name)) ->
        member

      true ->
        raise ArgumentError,
              "node #{inspect(name)} is not in this cluster; nodes: " <>
                Enum.map_join(nodes(:all), ", ", &Atom.to_string/1)
    end
  end

  def member_named(other),
    do: raise(ArgumentError, "a node is named by a string, got: #{inspect(other)}")

  @doc "True when this node coordinates a cluster recording."
  @spec clustered?() :: boolean()
  def clustered?, do: Coordinator.running?()

  @doc """
  The nodes a selection names (see "Node selection").

      iex> ElixirScope.Cluster.nodes(:local)
      [node()]
  """
  @spec nodes(:all | :local | node() | [node()] | nil) :: [node()]
  def nodes(selection \\ nil)
  def nodes(nil), do: if(clustered?(), do: nodes(:all), else: [node()])
  def nodes(:all), do: [node() | members() -- [node()]]
  def nodes(:local), do: [node()]

  def nodes(list) when is_list(list) and list != [] do
    if Enum.all?(list, &is_atom/1), do: Enum.uniq(list), else: bad_nodes(list)
  end

  def nodes(node) when is_atom(node), do: [node]
  def nodes(other), do: bad_nodes(other)

  defp bad_nodes(v),
    do:
      raise(
        ArgumentError,
        "nodes: must be :all, :local, a node or a list of nodes, got: #{inspect(v)}"
      )

  ## Queries

  @doc """
  A page of the events a query spec selects on the selected nodes, merged on the
  cluster's time line (ascending), with the cursor after it. Options:

    * `:nodes` — the node selection;
    * `:timeout` — ms each node has to answer (default #{@timeout});
    * `:inject_skew` — `%{node => native units}` added to a node's skew estimate, to test
      how the order copes with a wrong one.

  The spec's `:limit` is the page's size (default #{@page}); `after:` takes a cursor of
  a previous page. `DateTime` bounds are read by each node's own wall clock. `select:`
  `:events` or a list of fields; counts, aggregates and `order: :desc` are single-node
  (`ElixirScope.Query`).
  """
  @spec page(Query.spec(), keyword()) :: Result.t()
  def page(spec, opts \\ []) do
    {spec, limit, positions} = cluster_spec!(spec)
    nodes = nodes(Keyword.get(opts, :nodes))
    timeout = timeout!(opts)
    inject = Keyword.get(opts, :inject_skew, %{})

    unless is_map(inject) and Enum.all?(inject, fn {n, v} -> is_atom(n) and is_integer(v) end),
      do:
        raise(
          ArgumentError,
          "inject_skew: must be a map of node => integer, got: #{inspect(inject)}"
        )

    {answers, missing} =
      ask(nodes, timeout, fn node ->
        {Remote, :page, [ElixirScope.version(), spec, Map.get(positions, node), limit]}
      end)

    {pages, missing} =
      Enum.reduce(answers, {%{}, missing}, fn {node, {events, truncated}}, {pages, missing} ->
        case Clock.skew(node, timeout: timeout) do
          %{skew: skew} ->
            add = Map.get(inject, node, 0)

            events =
              Enum.map(events, fn e ->
                e
                |> Map.put(:node, node)
                |> Map.put(:cluster_time, Clock.cluster_time(e, skew, add))
              end)

            {Map.put(pages, node, {events, truncated}), missing}

          {:error, reason} ->
            {pages, missing ++ [{node, reason}]}
        end
      end)

    {events, taken, more} = Merge.merge(pages, limit)
    positions = Map.merge(positions, taken)
    cursor = if more, do: encode_cursor(positions)
    %Result{events: Enum.map(events, &Map.delete(&1, :wall)), cursor: cursor, missing: missing}
  end

  @doc """
  Every event (up to the spec's `:limit`, default 10,000) a query spec selects on the
  selected nodes, merged as `page/2` merges them. Options as for `page/2`.
  """
  @spec query(Query.spec(), keyword()) :: Result.t()
  def query(spec, opts \\ []) do
    spec = to_map!(spec)
    page(Map.put_new(spec, :limit, 10_000), opts)
  end

  # Sends `request.(node)` to every node at once; the answers within `timeout` ms, and
  # the nodes that gave none, with why.
  defp ask(nodes, timeout, request) do
    deadline = System.monotonic_time(:millisecond) + timeout

    nodes
    |> Enum.map(fn node ->
      {m, f, a} = request.(node)
      {node, :erpc.send_request(node, m, f, a)}
    end)
    |> Enum.reduce({[], []}, fn {node, req}, {ok, missing} ->
      left = max(deadline - System.monotonic_time(:millisecond), 0)

      case receive_answer(req, left) do
        {:ok, events, truncated} -> {ok ++ [{node, {events, truncated}}], missing}
        {:ok, value} -> {ok ++ [{node, value}], missing}
        {:error, reason} -> {ok, missing ++ [{node, reason}]}
      end
    end)
  end

  defp receive_answer(req, timeout) do
    :erpc.receive_response(req, timeout)
  catch
    :error, {:erpc, reason} -> {:error, reason}
    :error, {:exception, :undef, [{Remote, _, _, _} | _]} -> {:error, :elixir_scope_not_loaded}
    :error, {:exception, e, _} when is_exception(e) -> {:error, {:error, Exception.message(e)}}
    :error, {:exception, e, _} -> {:error, {:error, inspect(e)}}
    :exit, {:exception, reason} -> {:error, {:exit, reason}}
    :exit, reason -> {:error, {:exit, reason}}
    :throw, value -> {:error, {:throw, value}}
  end

  defp timeout!(opts) do
    case Keyword.get(opts, :timeout, @timeout) do
      t when is_integer(t) and t > 0 -> t
      t -> raise ArgumentError, "timeout: must be a positive integer (ms), got: #{inspect(t)}"
    end
  end

  defp to_map!(spec) when is_map(spec), do: spec

  defp to_map!(spec) when is_list(spec) do
    if Keyword.keyword?(spec),
      do: Map.new(spec),
      else:
        raise(
          ArgumentError,
          "a query spec must be a keyword list or a map, got: #{inspect(spec)}"
        )
  end

  defp to_map!(spec),
    do:
      raise(ArgumentError, "a query spec must be a keyword list or a map, got: #{inspect(spec)}")

  # The spec each node runs (checked here first, so a malformed one raises here), the
  # page size and the positions of the cursor.
  defp cluster_spec!(spec) do
    spec = to_map!(spec)
    {cursor, spec} = Map.pop(spec, :after)
    {limit, spec} = Map.pop(spec, :limit, @page)

    for key <- [:before, :group_by, :measure],
        Map.has_key?(spec, key),
        do:
          raise(
            ArgumentError,
            "cluster pages list events: #{inspect(key)} is single-node (ElixirScope.Query)"
          )

    if Map.get(spec, :order, :asc) != :asc,
      do:
        raise(
          ArgumentError,
          "cluster pages list in ascending order (order: :desc is single-node)"
        )

    if Map.get(spec, :select, :events) in [:count, :ids],
      do:
        raise(
          ArgumentError,
          "cluster pages list events or fields: select: :count and :ids are single-node"
        )

    unless is_integer(limit) and limit > 0,
      do: raise(ArgumentError, "limit: must be a positive integer, got: #{inspect(limit)}")

    # Validated as the nodes will read it. DateTime bounds stay DateTimes: each node
    # turns them into its own timestamps, by its own wall clock.
    spec
    |> Map.reject(fn {key, v} ->
      key in [:timestamp_start, :timestamp_end] and is_struct(v, DateTime)
    end)
    |> Query.normalize!()

    {spec, limit, decode_cursor!(cursor)}
  end

  defp encode_cursor(positions),
    do: @cursor_tag <> Base.url_encode64(:erlang.term_to_binary(positions), padding: false)

  defp decode_cursor!(nil), do: %{}

  defp decode_cursor!(@cursor_tag <> data = cursor) do
    with {:ok, bin} <- Base.url_decode64(data, padding: false),
         %{} = map <- safe_term(bin),
         true <-
           Enum.all?(map, fn
             {n, {ts, id}} -> is_atom(n) and is_integer(ts) and is_integer(id)
             _ -> false
           end) do
      map
    else
      _ ->
        raise ArgumentError, "after: must be a cursor of a cluster page, got: #{inspect(cursor)}"
    end
  end

  defp decode_cursor!(other),
    do: raise(ArgumentError, "after: must be a cursor of a cluster page, got: #{inspect(other)}")

  defp safe_term(bin) do
    :erlang.binary_to_term(bin, [:safe])
  rescue
    ArgumentError -> nil
  end

  ## Facade queries on other nodes

  @doc """
  `ElixirScope.fun(args...)` on each selected node (`nodes:`, `timeout:` as for
  `page/2`): `{%{node => answer}, missing}`. The facade's listings given to it take
  `nodes: :local` in their own options, so that each node answers for itself (on a
  coordinator they ask every node by default).

      iex> {answers, []} = ElixirScope.Cluster.call(:version, [], nodes: :local)
      iex> answers[node()] == ElixirScope.version()
      true
  """
  @spec call(atom(), list(), keyword()) :: {%{node() => term()}, [{node(), term()}]}
  def call(fun, args, opts \\ []) when is_atom(fun) and is_list(args) do
    nodes = nodes(Keyword.get(opts, :nodes))
    timeout = timeout!(opts)

    unless Code.ensure_loaded?(ElixirScope) and
             function_exported?(ElixirScope, fun, length(args)),
           do:
             raise(
               ArgumentError,
               "ElixirScope.#{fun}/#{length(args)} is no function of ElixirScope"
             )

    {answers, missing} =
      ask(nodes, timeout, fn _ -> {Remote, :apply, [ElixirScope.version(), fun, args]} end)

    {Map.new(answers), missing}
  end

  @doc """
  The live supervision trees of the selected nodes (see
  `ElixirScope.get_supervision_tree/1`): `{%{node => trees}, missing}`.
  """
  @spec supervision_trees(keyword()) :: {%{node() => [map()]}, [{node(), term()}]}
  def supervision_trees(opts \\ []) do
    {tree_opts, opts} = Keyword.split(opts, [:depth, :application])
    call(:get_supervision_tree, [tree_opts ++ [nodes: :local]], opts)
  end

  @doc """
  The processes alive on each selected node at a wall-clock time (a `DateTime`, on this
  node's clock: each node's skew estimate is applied), as `ElixirScope.system_snapshot_at/2`
  gives them: `{%{node => snapshot}, missing}`.
  """
  @spec system_snapshots_at(DateTime.t(), keyword()) :: {%{node() => map()}, [{node(), term()}]}
  def system_snapshots_at(%DateTime{} = at, opts \\ []) do
    {snap_opts, opts} = Keyword.split(opts, [:include_state, :limit])
    nodes = nodes(Keyword.get(opts, :nodes))

    Enum.reduce(nodes, {%{}, []}, fn node, {answers, missing} ->
      with %{skew: skew} <- Clock.skew(node, timeout: timeout!(opts)),
           there =
             DateTime.add(at, System.convert_time_unit(skew, :native, :microsecond), :microsecond),
           {%{^node => snap}, []} <-
             call(
               :system_snapshot_at,
               [there, snap_opts ++ [nodes: :local]],
               Keyword.put(opts, :nodes, node)
             ) do
        {Map.put(answers, node, snap), missing}
      else
        {:error, reason} -> {answers, missing ++ [{node, reason}]}
        {_, [{^node, reason}]} -> {answers, missing ++ [{node, reason}]}
      end
    end)
  end

  ## Messages across nodes

  @doc """
  The messages between two processes, on any nodes: each send (from the sender's node)
  and its receive (from the receiver's node), matched (`:received_by` on a send,
  `:sent_by` on a receive: `{node, id}`) and ordered on the cluster's time line, a
  receive never before its send. Options: `:limit` per node (default 10,000),
  `:timeout`, `:inject_skew` as for `page/2`. `{events, missing}`.
  """
  @spec message_flow(pid(), pid(), keyword()) :: {[map()], [{node(), term()}]}
  def message_flow(a, b, opts \\ []) do
    unless is_pid(a) and is_pid(b),
      do:
        raise(ArgumentError, "message_flow/3 expects two pids, got: #{inspect(a)}, #{inspect(b)}")

    {limit, opts} = Keyword.pop(opts, :limit, 10_000)
    opts = Keyword.put(opts, :nodes, Enum.uniq([node(a), node(b)]))
    result = query([type: [:send, :receive], pid: [a, b], limit: limit], opts)
    pair = [a, b]

    sends =
      for %{type: :send} = e <- result.events,
          e.from_pid in pair and (e[:to_pid] in pair or e.received_by != nil),
          into: MapSet.new(),
          do: {e.node, e.id}

    flow =
      Enum.filter(result.events, fn
        %{type: :send} = e ->
          MapSet.member?(sends, {e.node, e.id}) and other_end?(e, result.events, pair)

        %{type: :receive} = e ->
          MapSet.member?(sends, e.sent_by) or (e[:from_pid] in pair and e[:from_pid] != e.pid)

        _ ->
          false
      end)

    {flow, result.missing}
  end

  # A send of the pair goes to the other one (or, to an alias, was received by it).
  defp other_end?(%{to_pid: to} = e, _events, pair) when is_pid(to),
    do: to in pair and to != e.from_pid

  defp other_end?(%{received_by: {_, _}}, _events, _pair), do: true
  defp other_end?(_, _, _), do: false
end
