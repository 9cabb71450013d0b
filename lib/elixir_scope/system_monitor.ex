defmodule ElixirScope.SystemMonitor do
  @moduledoc """
  The runtime's system monitor as events, opt-in: `ElixirScope.setup(system_monitor:
  [long_gc: 50, long_schedule: 20, large_heap: 10_000_000, busy_port: true,
  busy_dist_port: true])` records each report of `:erlang.system_monitor/2` as a
  `:system_monitor` event:

  | field | what |
  |---|---|
  | `kind` | `:long_gc`, `:long_schedule`, `:large_heap`, `:busy_port` or `:busy_dist_port` |
  | `pid` (or `port`) | the process (or port) it is about |
  | `info` | what the runtime says: a keyword list (`timeout`, `heap_size`, ...) or, for the busy ones, the port |

  Thresholds are those of `:erlang.system_monitor/2`: milliseconds for `long_gc` and
  `long_schedule`, words for `large_heap`; `busy_port` and `busy_dist_port` are `true`
  to watch them (the plain atoms are accepted too).

  A node has one system monitor. ElixirScope never displaces one that is set already
  (by the application, recon, observer_cli...): it then logs one warning, records a
  `:governor` event with reason `:system_monitor_taken`, and records nothing;
  `ElixirScope.status/0` says so. It clears the system monitor on `stop/0` only if it
  is still its own. At most 1,000 events a second are recorded; the others are counted
  (`ElixirScope.status/0`).
  """
  use GenServer
  require Logger

  alias ElixirScope.TraceDB

  @thresholds [:long_gc, :long_schedule, :large_heap]
  @flags [:busy_port, :busy_dist_port]
  @per_second 1_000

  @doc false
  # The option in the form :erlang.system_monitor/2 takes; raises ArgumentError.
  def validate!(opts) when is_list(opts) do
    Enum.map(opts, fn
      {key, n} when key in @thresholds and is_integer(n) and n > 0 -> {key, n}
      {key, true} when key in @flags -> key
      key when key in @flags -> key
      other -> bad!(other)
    end)
    |> Enum.uniq()
  end

  def validate!(other), do: bad!(other)

  defp bad!(value) do
    raise ArgumentError,
          "ElixirScope option :system_monitor must be a list of long_gc: ms, " <>
            "long_schedule: ms, large_heap: words (positive integers), busy_port: true, " <>
            "busy_dist_port: true; got: #{inspect(value)}"
  end

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc """
  What the system monitor does for ElixirScope: `%{active: true, options: [...],
  dropped: n}` when it is ElixirScope's, `%{active: false, held_by: pid}` when another
  holder kept it, `nil` when `system_monitor:` was not given.
  """
  @spec info() :: map() | nil
  def info do
    case Process.whereis(__MODULE__) do
      nil -> nil
      pid -> GenServer.call(pid, :info)
    end
  end

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)

    state =
      case :erlang.system_monitor() do
        :undefined ->
          :erlang.system_monitor(self(), opts)
          %{active: true, options: opts, held_by: self()}

        {holder, _} ->
          Logger.warning(
            "ElixirScope: the system monitor is held by #{inspect(holder)}; " <>
              "ElixirScope leaves it there and records no system monitor events"
          )

          TraceDB.store_event(:governor, %{reason: :system_monitor_taken, held_by: holder})
          %{active: false, options: opts, held_by: holder}
      end

    {:ok, Map.merge(state, %{second: nil, count: 0, dropped: 0})}
  end

  @impl true
  def handle_call(:info, _from, state) do
    info =
      if state.active,
        do: %{active: true, options: state.options, dropped: state.dropped},
        else: %{active: false, held_by: state.held_by}

    {:reply, info, state}
  end

  @impl true
  def handle_info({:monitor, who, kind, info}, state) do
    second = System.monotonic_time(:second)
    state = if second == state.second, do: state, else: %{state | second: second, count: 0}

    if state.count < @per_second do
      who_field = if is_port(who), do: :port, else: :pid
      TraceDB.store_event(:system_monitor, %{who_field => who, kind: kind, info: info})
      {:noreply, %{state | count: state.count + 1}}
    else
      {:noreply, %{state | dropped: state.dropped + 1}}
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    me = self()

    if state.active and match?({^me, _}, :erlang.system_monitor()),
      do: :erlang.system_monitor(:undefined)

    :ok
  end
end
