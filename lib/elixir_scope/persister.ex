defmodule ElixirScope.Persister do
  @moduledoc """
  Continuous persistence: with `persist: true, persist_path: dir`, the events the
  store receives are appended to zstd-compressed segment files in `dir` every
  `:persist_interval` ms (1000 by default) and when ElixirScope stops, by a dirty I/O
  NIF — never on a normal scheduler, in segments of `:persist_segment_bytes`
  uncompressed (1 MiB by default). `ElixirScope.load(dir)` opens them all.

  `erlang:halt/0,1` runs no `terminate` callback (unlike `System.stop/0`, `init:stop/0`
  or SIGTERM): on OTP 26 and later the NIF's on-halt callback still appends the events
  recorded since the last write (`halt(status, flush: false)` skips it, as it skips all
  flushing); on OTP 25 what came after the last interval is lost.

  Files are `scope-000001.esd`, `scope-000002.esd`, ... (format in `docs/FORMAT.md`),
  created 0600 in a directory created 0700. A file is closed at
  `:persist_max_file_bytes` (64 MiB); the oldest files are removed past
  `:persist_max_files` (10) or `:persist_max_disk_bytes` (1 GiB). A VM killed while
  writing leaves at most the last segment cut short: loading skips it and says so.

  A directory that cannot be written (or a full disk) is reported once with a
  `:persist_error` event and one log line; tracing goes on, and writing is retried at
  every interval.

  The same options work on a store of its own:
  `ElixirScope.TraceDB.start_link(name: :jobs, persist: true, persist_path: dir)`
  persists that store for as long as it runs, with a last write when it stops.
  """
  use GenServer
  require Logger

  alias ElixirScope.TraceDB

  @defaults [
    persist: false,
    persist_path: nil,
    persist_interval: 1000,
    persist_segment_bytes: 1_048_576,
    persist_max_file_bytes: 64 * 1024 * 1024,
    persist_max_files: 10,
    persist_max_disk_bytes: 1024 * 1024 * 1024
  ]

  @limits [
    :persist_interval,
    :persist_max_file_bytes,
    :persist_max_files,
    :persist_max_disk_bytes
  ]

  @doc false
  def defaults, do: @defaults

  @doc false
  # Validates persistence options over the defaults; returns them as a map.
  def validate!(opts) do
    merged = Keyword.merge(@defaults, opts)
    Enum.each(merged, &check_option!/1)

    if merged[:persist] and
         not (is_binary(merged[:persist_path]) and merged[:persist_path] != ""),
       do: raise(ArgumentError, "persist: true needs :persist_path, a directory")

    Map.new(merged)
  end

  defp check_option!({:persist, v}) when is_boolean(v), do: :ok
  defp check_option!({:persist_path, v}) when is_nil(v) or is_binary(v), do: :ok

  defp check_option!({:persist_segment_bytes, v}),
    do: ElixirScope.PostMortem.check_segment_bytes!(:persist_segment_bytes, v)

  defp check_option!({key, v}) when key in @limits and is_integer(v) and v > 0, do: :ok

  defp check_option!({key, v}) do
    what =
      case key do
        :persist -> "a boolean"
        :persist_path -> "a directory path"
        _ -> "a positive integer"
      end

    raise ArgumentError, "#{inspect(key)} must be #{what}, got: #{inspect(v)}"
  end

  @doc false
  # Started by ElixirScope.setup/1 under its name (persisting the default store), or
  # linked to the TraceDB it persists (`config.store`) without one.
  def start_link(config, opts \\ [name: __MODULE__]),
    do: GenServer.start_link(__MODULE__, config, opts)

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)
    dir = config.persist_path

    state = %{
      dir: dir,
      store: Map.get(config, :store, TraceDB),
      interval: config.persist_interval,
      segment_bytes: config.persist_segment_bytes,
      max_file: config.persist_max_file_bytes,
      max_files: config.persist_max_files,
      max_disk: config.persist_max_disk_bytes,
      last_id: 0,
      file: nil,
      file_bytes: 0,
      failing: nil
    }

    state = prepare(state)
    Process.send_after(self(), :flush, state.interval)
    {:ok, state}
  end

  @impl true
  def handle_info(:flush, state) do
    state = flush(state)
    Process.send_after(self(), :flush, state.interval)
    {:noreply, state}
  end

  @impl true
  def terminate(_reason, state) do
    flush(state)
    on_halt(state, nil)
    :ok
  end

  # The directory, created 0700 when it is ours, and the next file number.
  defp prepare(state) do
    created = not File.dir?(state.dir)

    with :ok <- File.mkdir_p(state.dir),
         :ok <- if(created, do: File.chmod(state.dir, 0o700), else: :ok) do
      on_halt(%{state | file: next_file(state.dir)})
    else
      {:error, reason} -> failed(state, reason)
    end
  end

  defp next_file(dir) do
    n =
      dir
      |> files()
      |> Enum.map(fn f -> f |> Path.basename(".esd") |> String.replace_prefix("scope-", "") end)
      |> Enum.flat_map(fn n ->
        case Integer.parse(n),
          do:
            (
              {i, ""} -> [i]
              _ -> []
            )
      end)
      |> Enum.max(fn -> 0 end)

    Path.join(dir, "scope-" <> String.pad_leading(Integer.to_string(n + 1), 6, "0") <> ".esd")
  end

  @doc false
  def files(dir) do
    case File.ls(dir) do
      {:ok, names} ->
        names
        |> Enum.filter(&String.match?(&1, ~r/^scope-\d+\.esd$/))
        |> Enum.sort()
        |> Enum.map(&Path.join(dir, &1))

      _ ->
        []
    end
  end

  defp flush(%{file: nil} = state), do: prepare(state)

  defp flush(state) do
    case TraceDB.lookup(state.store) do
      nil ->
        state

      _store ->
        case TraceDB.dump(state.file, state.last_id, :append, state.segment_bytes, state.store) do
          {:ok, %{last_id: last_id, bytes: bytes}} ->
            state = %{
              state
              | last_id: last_id,
                file_bytes: state.file_bytes + bytes,
                failing: nil
            }

            state |> rotate() |> retain()

          {:error, reason} ->
            failed(state, reason)
        end
    end
  end

  defp rotate(%{file_bytes: bytes, max_file: max} = state) when bytes >= max,
    do: on_halt(%{state | file: next_file(state.dir), file_bytes: 0})

  defp rotate(state), do: state

  # Where erlang:halt/0,1, which runs no terminate callback, writes the events after
  # the last one written (OTP 26+; c_src/nif/persist.h): the current file. nil forgets it.
  defp on_halt(state, file \\ :current) do
    path = if file == :current, do: state.file, else: file
    TraceDB.persist_on_halt(path, state.last_id, state.segment_bytes, state.store)
    state
  end

  # Oldest files go first, never the one being written.
  defp retain(state) do
    old = files(state.dir) -- [state.file]
    sizes = Map.new(old, fn f -> {f, file_size(f)} end)
    total = Enum.sum(Map.values(sizes)) + file_size(state.file)
    drop(old, sizes, total, length(old) + 1, state)
    state
  end

  defp drop([oldest | rest], sizes, total, count, state)
       when count > state.max_files or total > state.max_disk do
    File.rm(oldest)
    drop(rest, sizes, total - sizes[oldest], count - 1, state)
  end

  defp drop(_files, _sizes, _total, _count, _state), do: :ok

  defp file_size(path) do
    case File.stat(path) do
      {:ok, %{size: size}} -> size
      _ -> 0
    end
  end

  # Reported once per distinct reason; tracing goes on.
  defp failed(%{failing: reason} = state, reason), do: state

  defp failed(state, reason) do
    text = if is_binary(reason), do: reason, else: inspect(reason)

    Logger.error(
      "ElixirScope could not persist to #{state.dir}: #{text}; tracing continues, retrying"
    )

    TraceDB.store_event(:persist_error, %{path: state.dir, reason: text}, store: state.store)
    %{state | failing: reason}
  end
end
