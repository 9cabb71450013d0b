defmodule ElixirScope.UI.API.Meta do
  @moduledoc false
  # GET /api/meta: what every page needs first — which recording is shown (live, or a
  # loaded file), what is traced, how much the store holds, the clock, and the CSRF
  # token for the tracing actions.

  alias ElixirScope.UI.API.Shape
  alias ElixirScope.UI.Source

  @doc false
  def meta(_params, ctx) do
    recording = Source.recording()
    stats = if Source.running?(), do: Source.stats()
    tracing = if recording == nil, do: Source.tracing()
    offset = if stats, do: Source.time_offset()

    %{
      "version" => ElixirScope.version(),
      "node" => Atom.to_string(node()),
      "nodes" => Enum.map(ElixirScope.Cluster.nodes(:all), &Atom.to_string/1),
      "mode" => if(recording, do: "recording", else: "live"),
      "recording" => recording && recording(recording),
      "store" => stats && store(stats),
      "tracing" => tracing && tracing(tracing),
      "clock" => %{
        "offset" => offset && Integer.to_string(offset),
        "per_second" => System.convert_time_unit(1, :second, :native),
        "now" => if(recording == nil, do: Shape.ts(System.monotonic_time()))
      },
      "csrf" => ctx.csrf
    }
  end

  defp recording(r) do
    %{
      "path" => r.path,
      "events" => r.events,
      "first" => Shape.ts(r[:first_timestamp]),
      "last" => Shape.ts(r[:last_timestamp])
    }
  end

  defp store(stats) do
    %{
      "stored" => stats.stored,
      "appended" => stats.appended,
      "pruned" => stats.pruned,
      "bytes" => stats.bytes,
      "oldest_id" => stats.oldest_id,
      "newest_id" => stats.newest_id
    }
  end

  defp tracing(info) do
    %{
      "level" => Atom.to_string(info.level),
      "trace_all" => info.trace_all,
      "processes" => Enum.map(info.processes, &Shape.pid/1),
      "genservers" => Enum.map(info.genservers, &Shape.pid/1),
      "modules" => Enum.map(info.modules, &Shape.atom/1)
    }
  end
end
