defmodule ElixirScope.FlightRecorder do
  @moduledoc """
  A black box: with `flight_recorder: [window: seconds, dir: path]`, the in-memory ring
  stays on at its usual cost, and when a process crashes the events of the last
  `window` seconds — plus the crashed process's last recorded state and its last
  messages, however old — are written to `dir/flight-<crash event id>.esd` (the dump
  format, `ElixirScope.load/1` opens it).

  Dumps are rate-limited so a crash loop cannot fill the disk: at most one every
  `min_interval` ms (default 10_000) and at most `max_files` (default 20) files in
  `dir`; crashes in between are covered by the next dump's window or skipped.
  `dump/0` writes the last window on demand.

  It watches the store for `:crash` events every 100 ms; the write itself runs on a
  dirty I/O scheduler.
  """
  use GenServer
  require Logger

  alias ElixirScope.TraceDB

  @poll 100
  @last_messages 20

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc false
  def validate!(opts) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, ":flight_recorder must be a keyword list, got: #{inspect(opts)}")

    Enum.each(opts, fn
      {:window, v} when is_number(v) and v > 0 ->
        :ok

      {:dir, v} when is_binary(v) and v != "" ->
        :ok

      {:min_interval, v} when is_integer(v) and v >= 0 ->
        :ok

      {:max_files, v} when is_integer(v) and v > 0 ->
        :ok

      {key, v} ->
        raise ArgumentError,
              "flight_recorder option #{inspect(key)} has a bad value: #{inspect(v)}"
    end)

    unless Keyword.has_key?(opts, :dir), do: raise(ArgumentError, "flight_recorder needs :dir")
    opts
  end

  @doc """
  Writes the events of the last `window` seconds now, as a crash would, to
  `dir/flight-now-<newest event id>.esd`, and returns `{:ok, path}` (or
  `{:error, reason}`). Not rate-limited. Raises when the flight recorder is not running.
  """
  @spec dump() :: {:ok, Path.t()} | {:error, term()}
  def dump do
    unless Process.whereis(__MODULE__),
      do:
        raise(
          RuntimeError,
          "the flight recorder is not running: start it with " <>
            "ElixirScope.setup(flight_recorder: [window: seconds, dir: path])"
        )

    GenServer.call(__MODULE__, :dump, :infinity)
  end

  @impl true
  def handle_call(:dump, _from, state) do
    newest = TraceDB.stats().newest_id
    path = Path.join(state.dir, "flight-now-#{newest}.esd")
    until = System.monotonic_time()

    {:reply, with({:ok, _n} <- write(path, until, nil, state.window), do: {:ok, path}), state}
  end

  @impl true
  def init(opts) do
    state = %{
      dir: Keyword.fetch!(opts, :dir),
      window: Keyword.get(opts, :window, 10),
      min_interval: Keyword.get(opts, :min_interval, 10_000),
      max_files: Keyword.get(opts, :max_files, 20),
      seen: TraceDB.stats().newest_id,
      last_dump: nil
    }

    File.mkdir_p(state.dir)
    Process.send_after(self(), :poll, @poll)
    {:ok, state}
  end

  @impl true
  def handle_info(:poll, state) do
    crashes =
      :crash
      |> TraceDB.type_specs()
      |> Enum.map(&Map.new(&1 ++ [after_id: state.seen]))
      |> TraceDB.select_ids()

    state = Enum.reduce(crashes, state, &maybe_dump(&1, &2))
    Process.send_after(self(), :poll, @poll)
    {:noreply, %{state | seen: Enum.max([state.seen | crashes])}}
  end

  defp maybe_dump(crash_id, state) do
    now = System.monotonic_time(:millisecond)
    files = Path.wildcard(Path.join(state.dir, "flight-*.esd"))

    cond do
      state.last_dump && now - state.last_dump < state.min_interval -> state
      length(files) >= state.max_files -> state
      true -> dump(crash_id, state, now)
    end
  end

  defp dump(crash_id, state, now) do
    crash = TraceDB.get(crash_id)
    pid = crash[:pid]
    path = Path.join(state.dir, "flight-#{crash_id}.esd")

    case write(path, crash.timestamp, pid, state.window) do
      {:ok, n} ->
        Logger.info(
          "ElixirScope flight recorder: #{inspect(pid)} crashed; #{n} events written to #{path}"
        )

      {:error, reason} ->
        Logger.error("ElixirScope flight recorder could not write #{path}: #{inspect(reason)}")
    end

    %{state | last_dump: now}
  end

  # The events of the window ending at `until`, and, for a crash, the process's last
  # state and messages however old: one selection, the union of these specs, in C.
  defp write(path, until, pid, window) do
    from = until - System.convert_time_unit(round(window * 1000), :millisecond, :native)

    of_pid =
      if is_pid(pid),
        do: [
          %{type: :state, pid: pid, order: :desc, limit: 1},
          %{type: :receive, pid: pid, order: :desc, limit: @last_messages},
          %{type: :send, from_pid: pid, order: :desc, limit: @last_messages}
        ],
        else: []

    selection = [%{timestamp_start: from, timestamp_end: until} | of_pid]
    segment_bytes = ElixirScope.PostMortem.default_segment_bytes()

    with {:ok, %{events: n}} <- TraceDB.dump(path, selection, :write, segment_bytes, TraceDB),
         do: {:ok, n}
  end
end
