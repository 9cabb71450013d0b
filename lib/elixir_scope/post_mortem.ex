defmodule ElixirScope.PostMortem do
  @moduledoc """
  Recordings that outlive the VM that made them: `dump/2` writes the store to a file
  (zstd-compressed segments, format in `docs/FORMAT.md`), and `load/2` opens such a
  file in any IEx session — the original application need not run — into a store that
  every query function reads.

      # in production
      {:ok, %{events: 120_000}} = ElixirScope.dump("/var/tmp/scope.esd")

      # the next morning, anywhere
      {:ok, summary} = ElixirScope.load("scope.esd")
      ElixirScope.state_timeline(pid)

  Ids, timestamps and terms come back exactly. A damaged file loads everything before
  the damage: `summary.skipped` lists the segments left out and why (`:bad_checksum`,
  `:truncated_data`, `:bad_header`, ...). Files are created with mode 0600.
  """

  alias ElixirScope.TraceDB

  # Loads of files at least this big print their progress on standard error.
  @progress_bytes 32 * 1024 * 1024

  @segment_bytes 4096..268_435_456
  @default_segment_bytes 1_048_576

  @doc """
  Writes every event of the store (`store:`, default the running one) to `path`.
  Returns `{:ok, %{events: n, bytes: file_size, raw_bytes: before_compression}}` or
  `{:error, reason}`.

  `segment_bytes:` (1 MiB by default, 4 KiB to 256 MiB) is the uncompressed size of a
  segment: damage to a file costs at most the segment it hits, and bigger segments
  compress a little better.
  """
  @spec dump(Path.t(), keyword()) :: {:ok, map()} | {:error, term()}
  def dump(path, opts \\ []) do
    check_path!(path, "dump/2")
    segment_bytes = Keyword.get(opts, :segment_bytes, @default_segment_bytes)
    check_segment_bytes!(:segment_bytes, segment_bytes)
    name = Keyword.get(opts, :store, TraceDB)

    with {:ok, summary} <- TraceDB.dump(path, 0, :write, segment_bytes, name),
         do: {:ok, Map.delete(summary, :last_id)}
  end

  @doc false
  def default_segment_bytes, do: @default_segment_bytes

  @doc false
  def check_segment_bytes!(_key, v) when is_integer(v) and v in @segment_bytes, do: :ok

  def check_segment_bytes!(key, v),
    do:
      raise(
        ArgumentError,
        "#{key} must be an integer from 4096 (4 KiB) to 268435456 (256 MiB), got: #{inspect(v)}"
      )

  @doc """
  Loads the dump at `path` — a file, or a directory of files written with
  `persist: true` — into a new store and returns `{:ok, summary}` (`:events`, `:files`,
  `:segments`, `:skipped` as `{file, segment, reason}`, `:first_timestamp`,
  `:last_timestamp`). Loading a large file prints its progress on standard error.

  The store is registered as `name:` (default `ElixirScope.TraceDB`, which must not be
  running — call `ElixirScope.stop(keep_data: false)` first, or load under another
  name and pass `store: name` to the queries). Store options (`max_events`,
  `max_bytes`, ...) size it; events past them are pruned oldest first.
  """
  @spec load(Path.t(), keyword()) :: {:ok, map()} | {:error, term()}
  def load(path, opts \\ []) do
    check_path!(path, "load/2")
    name = Keyword.get(opts, :name, TraceDB)

    if TraceDB.lookup(name) do
      {:error, {:already_running, name}}
    else
      {:ok, pid} =
        TraceDB.start_link(
          opts
          |> Keyword.delete(:name)
          |> Keyword.merge(name: name, clock: false)
        )

      Process.unlink(pid)
      # A directory of persisted files loads them all, oldest first.
      files = if File.dir?(path), do: ElixirScope.Persister.files(path), else: [path]

      case load_all(name, files, %{events: 0, segments: 0, skipped: [], files: length(files)}) do
        {:ok, summary} ->
          note_clock_events(name)
          TraceDB.put_recording(name, Map.put(summary, :path, Path.expand(path)))
          {:ok, summary}

        error ->
          TraceDB.stop(name)
          error
      end
    end
  end

  # Recordings of format version 1 made by ElixirScope's web UI of that time carry
  # their time offset in :clock events (version 2 keeps offsets beside the events).
  defp note_clock_events(name) do
    for %{timestamp: ts, time_offset: offset} when is_integer(offset) <-
          TraceDB.query_events(type: :clock, store: name),
        do: TraceDB.note_wall_offset(ts, offset, name)
  end

  defp load_all(_name, [], summary),
    do: {:ok, Map.put_new(summary, :first_timestamp, nil) |> Map.put_new(:last_timestamp, nil)}

  defp load_all(name, [file | rest], acc) do
    size =
      case File.stat(file) do
        {:ok, %{size: size}} -> size
        _ -> 0
      end

    case load_file(name, file, {0, 0}, size, acc) do
      {:ok, acc} -> load_all(name, rest, acc)
      error -> error
    end
  end

  # C loads a few segments per call; between calls a large load says how far it got.
  defp load_file(name, file, {offset, index}, size, acc) do
    case TraceDB.load(file, offset, index, name) do
      {:ok, s, more} ->
        acc = merge(acc, file, s)

        case more do
          :eof ->
            {:ok, acc}

          {next, _} = position ->
            if size >= @progress_bytes do
              percent = div(next * 100, size)

              IO.puts(
                :stderr,
                "ElixirScope: loading #{Path.basename(file)}: #{percent}% (#{acc.events} events)"
              )
            end

            load_file(name, file, position, size, acc)
        end

      error ->
        error
    end
  end

  defp merge(acc, file, s) do
    acc = %{
      acc
      | events: acc.events + s.events,
        segments: acc.segments + s.segments,
        skipped: acc.skipped ++ Enum.map(s.skipped, fn {i, why} -> {file, i, why} end)
    }

    acc =
      if s.first_timestamp, do: Map.put_new(acc, :first_timestamp, s.first_timestamp), else: acc

    if s.last_timestamp, do: Map.put(acc, :last_timestamp, s.last_timestamp), else: acc
  end

  defp check_path!(path, _what) when is_binary(path) and path != "", do: :ok

  defp check_path!(path, what),
    do: raise(ArgumentError, "#{what} expects a file path, got: #{inspect(path)}")
end
