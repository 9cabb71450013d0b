defmodule ElixirScope.Cluster.Select do
  @moduledoc false
  # Node selection of the facade's queries (ElixirScope): a query about a process runs
  # on the process's node (only that node recorded it); one about two processes on
  # different nodes merges both (ElixirScope.Cluster.message_flow/3); a listing runs on
  # each selected node and answers %{node => answer}, or {:partial, %{node => answer},
  # [{node, reason}]} when some did not answer. The default selection is every node on
  # a cluster's coordinator, the local node elsewhere; `nodes: :local` keeps a listing
  # this node's own (its plain answer).

  alias ElixirScope.Cluster
  alias ElixirScope.Cluster.Remote

  @pid_timeout 15_000

  # `local.()` here, or ElixirScope.fun(args...) on the pid's node.
  def on_pid(pid, fun, args, local) when is_pid(pid) do
    if node(pid) == node() do
      local.()
    else
      case :erpc.call(node(pid), Remote, :apply, [ElixirScope.version(), fun, args], @pid_timeout) do
        {:ok, answer} -> answer
        {:error, reason} -> raise ArgumentError, "#{node(pid)} refused: #{inspect(reason)}"
      end
    end
  catch
    :error, {:erpc, reason} ->
      raise ArgumentError,
            "#{inspect(pid)} is on #{node(pid)}, which did not answer: #{inspect(reason)}"

    :error, {:exception, e, stack} ->
      reraise e, stack
  end

  def on_pid(_other, _fun, _args, local), do: local.()

  # The last argument holds the options (a keyword list). `nodes:` selects the nodes;
  # without it, every node when this node coordinates a cluster (Cluster.clustered?/0),
  # else this one. `:local` is `local` applied here to the arguments without `nodes:`;
  # any other selection asks ElixirScope.fun on each node for its own answer (with
  # `nodes: :local` there). Options that are no keyword list go to `local`, to reject.
  def on_nodes(fun, args, local) do
    {opts, front} = List.pop_at(args, -1)

    if Keyword.keyword?(opts) do
      {selection, rest} = Keyword.pop(opts, :nodes)
      {timeout, rest} = Keyword.pop(rest, :node_timeout, 2_000)

      case selection || if(Cluster.clustered?(), do: :all, else: :local) do
        :local -> apply(local, front ++ [rest])
        selection -> across(fun, front ++ [rest ++ [nodes: :local]], selection, timeout)
      end
    else
      apply(local, args)
    end
  end

  defp across(fun, args, selection, timeout) do
    case Cluster.call(fun, args, nodes: Cluster.nodes(selection), timeout: timeout) do
      {answers, []} -> answers
      {answers, missing} -> {:partial, answers, missing}
    end
  end

  def message_flow(a, b, opts, local) do
    if is_pid(a) and is_pid(b) and (node(a) != node() or node(b) != node()) do
      case Cluster.message_flow(a, b, opts) do
        {events, []} -> events
        {events, missing} -> {:partial, events, missing}
      end
    else
      local.()
    end
  end
end
