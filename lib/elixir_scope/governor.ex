defmodule ElixirScope.Governor do
  @moduledoc """
  Keeps tracing from overwhelming the application it observes.

  Every `:governor_interval` milliseconds (100 by default) the governor reads how many
  events and bytes the tracer recorded and compares the rates with
  `:max_events_per_sec` and `:max_bytes_per_sec`. Over a cap it degrades one step;
  after a second well under the caps it recovers one step:

  | step | name | what the tracer records |
  |---|---|---|
  | 0 | `:full` | everything the tracing level asks for |
  | 1 | `:truncated_payloads` | payloads over 256 bytes become `truncated: true` markers |
  | 2 | `:metadata_only` | who, what and when; no messages, arguments or states |
  | 3 | `:sampling` | also keeps only one in ten non-critical events |
  | 4 | `:critical_only` | only spawns, exits and crashes |

  The steps are enforced in C, inside the trace callbacks, before any encoding work.
  Each change is recorded as a `:governor` event (critical, never sampled out) and
  logged once with `Logger`. Store memory is bounded by `:max_events` and `:max_bytes`
  whatever the step.

  The tracer's other safeguards record `:governor` events too, told apart by `:reason`:
  `:return_frames` (a function switched to calls only, so that no process's stack
  holds more than 100,000 words of return frames), `:module_reloaded` (trace patterns
  set again on reloaded code) and `:tracing_removed` (OTP < 27: another tool removed
  ElixirScope's flags or patterns). See `ElixirScope.trace_module/2` and
  `ElixirScope.tracing_info/0`.
  """
  use GenServer
  require Logger

  alias ElixirScope.{TraceDB, Tracing}

  @steps [:full, :truncated_payloads, :metadata_only, :sampling, :critical_only]
  @calm_seconds 1

  @doc false
  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @doc "The governor's current step and the last measured rates."
  @spec status() :: %{step: atom(), events_per_sec: number(), bytes_per_sec: number()} | nil
  def status do
    case Process.whereis(__MODULE__) do
      nil -> nil
      pid -> GenServer.call(pid, :status)
    end
  end

  @doc "The names of the steps, in order."
  @spec steps() :: [atom()]
  def steps, do: @steps

  @impl true
  def init(config) do
    state = %{
      tracer: Tracing.tracer(),
      interval: config.governor_interval,
      max_eps: config.max_events_per_sec,
      max_bps: config.max_bytes_per_sec,
      step: 0,
      calm: 0,
      eps: 0,
      bps: 0
    }

    Tracing.counts(state.tracer)
    # Event timestamps read the TSC only while its line is fresh (see c_src/core/clock.h):
    # re-anchor it now rather than at the first tick.
    TraceDB.calibrate_clock()
    schedule(state)
    {:ok, state}
  end

  @impl true
  def handle_info(:tick, state) do
    TraceDB.calibrate_clock()
    {events, bytes} = Tracing.counts(state.tracer)
    eps = events * 1000 / state.interval
    bps = bytes * 1000 / state.interval
    state = %{state | eps: eps, bps: bps}
    over = eps > state.max_eps or bps > state.max_bps
    calm = eps < state.max_eps / 2 and bps < state.max_bps / 2
    calm_ticks = div(@calm_seconds * 1000, state.interval)

    state =
      cond do
        over and state.step < 4 ->
          change(state, state.step + 1, :over_cap)

        calm and state.step > 0 and state.calm + 1 >= calm_ticks ->
          change(state, state.step - 1, :recovered)

        calm ->
          %{state | calm: state.calm + 1}

        true ->
          %{state | calm: 0}
      end

    schedule(state)
    {:noreply, state}
  end

  @impl true
  def handle_call(:status, _from, state) do
    {:reply,
     %{step: Enum.at(@steps, state.step), events_per_sec: state.eps, bytes_per_sec: state.bps},
     state}
  end

  defp change(state, step, reason) do
    Tracing.set_step(state.tracer, step)
    name = Enum.at(@steps, step)

    TraceDB.store_event(:governor, %{
      step: name,
      level: step,
      reason: reason,
      events_per_sec: round(state.eps),
      bytes_per_sec: round(state.bps)
    })

    Logger.warning(
      "ElixirScope governor: #{reason_text(reason)} " <>
        "(#{round(state.eps)} events/s, #{round(state.bps)} bytes/s); tracing now at step #{step} (#{name})"
    )

    %{state | step: step, calm: 0}
  end

  defp reason_text(:over_cap), do: "trace load over the configured caps"
  defp reason_text(:recovered), do: "trace load back under the caps"

  defp schedule(state), do: Process.send_after(self(), :tick, state.interval)
end
