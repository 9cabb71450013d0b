defmodule ElixirScope.Cluster.Select do
  @moduledoc false
  # Node selection of the facade's queries (ElixirScope): a query about a process runs
  # on the process's node (only that node recorded it); one about two processes on
  # different nodes merges both (ElixirScope.Cluster.message_flow/3); a listing given
  # `nodes:` runs on each selected node and answers %{node => answer}, or
  # {:partial, %{node => answer}, [{node, reason}]} when some did not answer. Without
  # `nodes:` a listing is the local node's, as it always was.

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

  # The last argument holds the options (a keyword list): with `nodes:` the call goes
  # to every selected node.
  def on_nodes(fun, args, local) do
    {opts, args} = List.pop_at(args, -1)

    case Keyword.keyword?(opts) && Keyword.pop(opts, :nodes) do
      {selection, rest} when selection != nil ->
        {timeout, rest} = Keyword.pop(rest, :node_timeout, 2_000)
        nodes = Cluster.nodes(selection)

        case Cluster.call(fun, args ++ [rest], nodes: nodes, timeout: timeout) do
          {answers, []} -> answers
          {answers, missing} -> {:partial, answers, missing}
        end

      _ ->
        local.()
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
