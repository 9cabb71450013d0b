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
    ".mjs" => "text/javascript; charset=utf-8",
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

  # The table, built on first use and again when a file changed; changes are looked
  # for at most once a second. Files are read with :prim_file, in this process: the
  # file server is a traced process like any other (trace_all), and looking at a
  # recording must not add to it.
  defp table do
    now = System.monotonic_time(:millisecond)

    case :persistent_term.get(__MODULE__, nil) do
      %{checked: checked} = table when now - checked < 1_000 ->
        table

      old ->
        # Paths, sizes and modification times: what changes when a file is edited,
        # added or removed.
        stamp = files(root())

        table =
          if old && old.stamp == stamp,
            do: %{old | checked: now},
            else: %{stamp: stamp, checked: now, files: load(stamp)}

        :persistent_term.put(__MODULE__, table)
        table
    end
  end

  # [{path, {size, mtime}}] of the servable files under `dir`, recursively.
  defp files(dir) do
    case :prim_file.list_dir(String.to_charlist(dir)) do
      {:ok, names} ->
        names
        |> Enum.sort()
        |> Enum.flat_map(fn name ->
          path = Path.join(dir, List.to_string(name))

          case :prim_file.read_file_info(String.to_charlist(path)) do
            {:ok, info} when elem(info, 2) == :directory ->
              files(path)

            {:ok, info} when elem(info, 2) == :regular ->
              if Map.has_key?(@types, Path.extname(path)),
                do: [{path, {elem(info, 1), elem(info, 5)}}],
                else: []

            _ ->
              []
          end
        end)

      {:error, _} ->
        []
    end
  end

  defp load(files) do
    root = root()

    Map.new(files, fn {file, _info} ->
      {:ok, body} = :prim_file.read_file(String.to_charlist(file))
      type = Map.fetch!(@types, Path.extname(file))
      gz = if type =~ ~r/text|json|svg/, do: :zlib.gzip(body)
      {Path.relative_to(file, root), {type, body, gz}}
    end)
  end
end
