defmodule ElixirScope.UI.API.Exports do
  @moduledoc false
  # GET /api/export/chrome and /api/export/mermaid: the files `ElixirScope.export/2`
  # writes, for a selection (processes, a time window), handed to the browser as
  # downloads. The export is written by C to a private temporary file, read back and
  # removed.

  alias ElixirScope.UI.Params
  alias ElixirScope.UI.Source

  # The most events one download holds.
  @max_events 500_000

  @doc false
  def chrome(params, _ctx) do
    opts = selection(params) ++ [format: :chrome_trace]
    download(opts, "elixir_scope_trace.json", "application/json")
  end

  @doc false
  def mermaid(params, _ctx) do
    opts = selection(params) ++ [format: :mermaid]

    # The messages of two processes are one indexed query (the pair's chain); more
    # walk every :send of the window until the query engine takes lists of pids.
    opts =
      case opts[:pids] do
        [a, b] -> [between: {a, b}] ++ opts
        _ -> opts
      end

    download(opts, "elixir_scope_messages.mmd", "text/plain; charset=utf-8")
  end

  defp selection(params) do
    pids = if params["pids"] not in [nil, ""], do: Params.pids!(params, "pids", 64)
    limit = Params.integer(params, "limit", @max_events, 1, @max_events)

    [
      pids: pids,
      timestamp_start: Params.timestamp(params, "from"),
      timestamp_end: Params.timestamp(params, "to"),
      limit: limit
    ]
    |> Enum.reject(&(elem(&1, 1) == nil))
  end

  defp download(opts, filename, type) do
    dir = System.tmp_dir!()
    path = Path.join(dir, "elixir_scope_ui_#{System.unique_integer([:positive])}.export")

    try do
      case Source.export(path, opts) do
        {:ok, _counts} -> {:download, filename, type, File.read!(path)}
        {:error, reason} -> {500, %{"error" => "the export failed: #{inspect(reason)}"}}
      end
    after
      File.rm(path)
    end
  end
end
