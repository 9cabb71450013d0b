defmodule ElixirScope.Cluster.Export do
  @moduledoc """
  A cluster recording as files other tools open, from the merged stream of
  `ElixirScope.Cluster.query/2` (so on the cluster's time line, causally corrected):

    * `format: :chrome_trace` — Chrome trace-event JSON for Perfetto or
      `chrome://tracing`: one group of tracks per node (a trace "process" named after
      the node), one track per Erlang process in it, each event an instant with its
      fields, and each message matched across nodes an arrow from its send to its
      receive;
    * `format: :mermaid` — a Mermaid sequence diagram of the messages, one box of
      participants per node.

  The merged events are held in memory while the file is written (at most `:limit`,
  default 100,000): for one node's long recording `ElixirScope.export/2` writes from C.
  """

  alias ElixirScope.Cluster

  @doc """
  Writes the events a query spec selects on the selected nodes to `path`. Options: the
  spec's keys (`ElixirScope.Query`), `:format`, `:nodes`, `:timeout` and `:limit`.
  Returns `{:ok, counts, missing}` (`%{events:, flows:, nodes:}` for a Chrome trace,
  `%{arrows:, participants:, nodes:}` for Mermaid) with the nodes that did not answer, or `{:error, reason}` when the file cannot be written.
  """
  @spec export(Path.t(), keyword()) :: {:ok, map(), [{node(), term()}]} | {:error, term()}
  def export(path, opts \\ []) do
    unless is_binary(path) and path != "",
      do: raise(ArgumentError, "export/2 expects a file path, got: #{inspect(path)}")

    {format, opts} = Keyword.pop(opts, :format, :chrome_trace)
    {cluster_opts, spec} = Keyword.split(opts, [:nodes, :timeout])

    unless format in [:chrome_trace, :mermaid],
      do:
        raise(
          ArgumentError,
          "unknown export format #{inspect(format)}; use :chrome_trace or :mermaid"
        )

    spec = if format == :mermaid, do: Keyword.put(spec, :type, [:send, :receive]), else: spec
    result = Cluster.query(Keyword.put_new(spec, :limit, 100_000), cluster_opts)
    {text, counts} = render(format, result.events)

    case File.write(path, text) do
      :ok -> {:ok, counts, result.missing}
      {:error, reason} -> {:error, reason}
    end
  end

  defp render(:chrome_trace, events) do
    nodes = events |> Enum.map(& &1.node) |> Enum.uniq() |> Enum.with_index(1) |> Map.new()

    start =
      events |> Enum.map(& &1.cluster_time) |> Enum.reject(&is_nil/1) |> Enum.min(fn -> 0 end)

    us = fn e ->
      System.convert_time_unit((e.cluster_time || start) - start, :native, :microsecond)
    end

    tracks =
      events
      |> Enum.map(&{&1.node, actor(&1)})
      |> Enum.uniq()
      |> Enum.with_index(1)
      |> Map.new()

    where = fn e -> %{"pid" => nodes[e.node], "tid" => tracks[{e.node, actor(e)}]} end

    meta =
      Enum.map(nodes, fn {node, i} ->
        %{
          "ph" => "M",
          "name" => "process_name",
          "pid" => i,
          "args" => %{"name" => Atom.to_string(node)}
        }
      end) ++
        Enum.map(tracks, fn {{node, actor}, t} ->
          %{
            "ph" => "M",
            "name" => "thread_name",
            "pid" => nodes[node],
            "tid" => t,
            "args" => %{"name" => inspect(actor)}
          }
        end)

    instants =
      Enum.map(events, fn e ->
        Map.merge(where.(e), %{
          "ph" => "i",
          "s" => "t",
          "name" => Atom.to_string(e.type),
          "ts" => us.(e),
          "args" =>
            Map.new(Map.drop(e, [:node, :cluster_time]), fn {k, v} ->
              {Atom.to_string(k), inspect(v, limit: 20)}
            end)
        })
      end)

    by_key = Map.new(events, &{{&1.node, &1.id}, &1})

    flows =
      for %{type: :receive, sent_by: {_, _} = s} = r <- events, send = by_key[s], send != nil do
        id = "#{elem(s, 0)}/#{elem(s, 1)}"

        [
          Map.merge(where.(send), %{
            "ph" => "s",
            "id" => id,
            "name" => "message",
            "cat" => "message",
            "ts" => us.(send)
          }),
          Map.merge(where.(r), %{
            "ph" => "f",
            "bp" => "e",
            "id" => id,
            "name" => "message",
            "cat" => "message",
            "ts" => us.(r)
          })
        ]
      end

    json =
      ElixirScope.JSON.encode!(%{
        "traceEvents" => meta ++ instants ++ List.flatten(flows),
        "displayTimeUnit" => "ms"
      })

    {json, %{events: length(events), flows: length(flows), nodes: map_size(nodes)}}
  end

  defp render(:mermaid, events) do
    by_key = Map.new(events, &{{&1.node, &1.id}, &1})

    arrows =
      for %{type: :receive, sent_by: {_, _} = s} = r <- events,
          send = by_key[s],
          send != nil,
          do: {send, r}

    actors = fn {s, r} -> [{s.node, s.from_pid}, {r.node, r.pid}] end
    participants = arrows |> Enum.flat_map(actors) |> Enum.uniq()
    names = participants |> Enum.with_index(1) |> Map.new(fn {p, i} -> {p, "P#{i}"} end)

    boxes =
      participants
      |> Enum.group_by(&elem(&1, 0))
      |> Enum.map(fn {node, ps} ->
        "  box #{node}\n" <>
          Enum.map_join(ps, "", fn {_, pid} = p ->
            "    participant #{names[p]} as #{inspect(pid)}\n"
          end) <>
          "  end\n"
      end)

    lines =
      Enum.map(arrows, fn {s, r} ->
        "  #{names[{s.node, s.from_pid}]}->>#{names[{r.node, r.pid}]}: #{mermaid_text(s.message)}\n"
      end)

    {"sequenceDiagram\n" <> Enum.join(boxes) <> Enum.join(lines),
     %{arrows: length(arrows), participants: length(participants), nodes: length(boxes)}}
  end

  defp actor(e), do: e[:pid] || e[:from_pid]

  # Mermaid reads ; and # in a message's text as its own syntax.
  defp mermaid_text(message),
    do: message |> inspect(limit: 5, printable_limit: 40) |> String.replace(~r/[;#]/, " ")
end
