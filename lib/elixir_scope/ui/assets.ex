defmodule ElixirScope.UI.Assets do
  @moduledoc false
  # The page's static files, from `priv/ui`: hand-written ES modules, the stylesheet,
  # and the vendored libraries of `priv/ui/vendor` (see its MANIFEST.json). No build
  # step: the files are served as they are, gzipped once when first asked for.
  #
  # Only files found under priv/ui when the table is built can be served (a path is a
  # key of that table, never joined to a directory), so no request can reach anything
  # else. The table is rebuilt when a file changes (while developing the UI).

  @types %{
    ".html" => "text/html; charset=utf-8",
    ".js" => "text/javascript; charset=utf-8",
    ".css" => "text/css; charset=utf-8",
    ".svg" => "image/svg+xml",
    ".png" => "image/png",
    ".json" => "application/json",
    ".txt" => "text/plain; charset=utf-8"
  }

  @doc false
  def root, do: Path.join(:code.priv_dir(:elixir_scope), "ui")

  @doc false
  # {content_type, body, gzipped body or nil} of the file at `path` (segments below
  # priv/ui), or nil.
  def fetch(path) when is_list(path) do
    table = table()

    case Map.fetch(table.files, Enum.join(path, "/")) do
      {:ok, file} -> file
      :error -> nil
    end
  end

  @doc false
  # Every servable file, with its size and gzipped size: [{path, bytes, gzip_bytes}].
  def sizes do
    for {path, {_type, body, gz}} <- table().files,
        do: {path, byte_size(body), byte_size(gz || body)}
  end

  defp table do
    stamp = stamp()

    case :persistent_term.get(__MODULE__, nil) do
      %{stamp: ^stamp} = table ->
        table

      _ ->
        table = %{stamp: stamp, files: load()}
        :persistent_term.put(__MODULE__, table)
        table
    end
  end

  # The newest modification time and the count of the files: what changes when a
  # file is edited, added or removed.
  defp stamp do
    files = files()

    {length(files),
     files |> Enum.map(&File.stat!(&1, time: :posix).mtime) |> Enum.max(fn -> 0 end)}
  end

  defp files do
    Path.wildcard(Path.join(root(), "**/*"))
    |> Enum.filter(&(File.regular?(&1) and Map.has_key?(@types, Path.extname(&1))))
  end

  defp load do
    root = root()

    Map.new(files(), fn file ->
      body = File.read!(file)
      type = Map.fetch!(@types, Path.extname(file))
      gz = if type =~ ~r/text|json|svg/, do: :zlib.gzip(body)
      {Path.relative_to(file, root), {type, body, gz}}
    end)
  end
end
