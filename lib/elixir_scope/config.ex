defmodule ElixirScope.Config do
  @moduledoc false
  # Validation of ElixirScope.setup/1 options, merged over `config :elixir_scope, ...`.

  # The levels, and the categories of events each records (the C tracer's mask), are
  # the vocabulary's (c_src/core/vocab.c, ElixirScope.TraceDB.vocabulary/0). The store's
  # options and defaults are the store's (TraceDB.defaults/0), the persister's its own
  # (ElixirScope.Persister). The default of :lifecycle depends on the OTP release
  # (lifecycle_default/0).
  @own_defaults [
    storage: :ets,
    phoenix: false,
    trace_all: false,
    ai_integration: false,
    mcp: [],
    ui: false,
    tracing_level: :full,
    max_events_per_sec: 500_000,
    max_bytes_per_sec: 64 * 1024 * 1024,
    governor_interval: 100,
    flight_recorder: nil,
    redact: ["password", "token", "secret"],
    lifecycle: nil,
    rearm: true,
    test_mode: false,
    system_monitor: []
  ]

  def levels, do: Enum.map(ElixirScope.TraceDB.vocabulary().levels, & &1.level)

  def mask(level),
    do: Enum.find(ElixirScope.TraceDB.vocabulary().levels, &(&1.level == level)).mask

  # The bit of a category (the vocabulary's: lifecycle, messages, ...) in a level's mask;
  # 0 for :reported. Levels list their categories in bit order, :full all of them.
  def category_bit(category) do
    full = Enum.max_by(ElixirScope.TraceDB.vocabulary().levels, & &1.mask)

    case Enum.find_index(full.categories, &(&1 == category)) do
      nil -> 0
      i -> Bitwise.bsl(1, i)
    end
  end

  # The categories of events a level records.
  def categories(level),
    do: Enum.find(ElixirScope.TraceDB.vocabulary().levels, &(&1.level == level)).categories

  def defaults,
    do: @own_defaults ++ ElixirScope.TraceDB.defaults() ++ ElixirScope.Persister.defaults()

  defp store_keys, do: Keyword.keys(ElixirScope.TraceDB.defaults())

  @doc false
  def validate!(opts) do
    unless Keyword.keyword?(opts),
      do:
        raise(ArgumentError, "ElixirScope options must be a keyword list, got: #{inspect(opts)}")

    defaults = defaults()
    app_env = Application.get_all_env(:elixir_scope) |> Keyword.take(Keyword.keys(defaults))
    merged = defaults |> Keyword.merge(app_env) |> Keyword.merge(opts)
    {persist, merged} = Keyword.split(merged, Keyword.keys(ElixirScope.Persister.defaults()))
    Enum.each(merged, &check!/1)
    # The store and the persister check their own options.
    ElixirScope.TraceDB.validate_options!(Keyword.take(merged, store_keys()))

    merged
    |> Map.new()
    |> Map.update!(:lifecycle, &(&1 || lifecycle_default()))
    |> Map.update!(:system_monitor, &ElixirScope.SystemMonitor.validate!/1)
    |> Map.merge(ElixirScope.Persister.validate!(persist))
  end

  # Lifecycle of every process: on OTP 27+ it runs in ElixirScope's own trace session and
  # costs nobody else anything; before, it would take every process's one tracer slot
  # from tools that come later, so it is asked for.
  @doc false
  def lifecycle_default,
    do: if(ElixirScope.Tracing.backend() == ElixirScope.Tracing.Session, do: :all, else: :traced)

  def store_options(config), do: config |> Map.take(store_keys()) |> Map.to_list()

  @doc false
  # What is redacted, from `redact:` and the application's own
  # `config :phoenix, :filter_parameters` (read when ElixirScope starts): `patterns`,
  # lowercase, the key names whose values are never stored (redact: plus Phoenix's list,
  # or its {:discard, list}); `keep`, with Phoenix's {:keep, keys}, the only params keys
  # whose values are stored (nil otherwise). Malformed filter_parameters are ignored,
  # as Phoenix would fail on them itself.
  def redaction(config) do
    {phoenix, keep} =
      case Application.get_env(:phoenix, :filter_parameters, []) do
        {:keep, keys} -> {[], strings(keys)}
        {:discard, keys} -> {strings(keys), nil}
        keys -> {strings(keys), nil}
      end

    patterns = (config.redact ++ phoenix) |> Enum.map(&String.downcase/1) |> Enum.uniq()
    %{patterns: patterns, keep: keep}
  end

  defp strings(keys) when is_list(keys), do: Enum.filter(keys, &(is_binary(&1) and &1 != ""))
  defp strings(_), do: []

  defp check!({:storage, v}) when v in [:ets, :c], do: :ok
  defp check!({:storage, v}), do: bad(:storage, ":ets or :c (both use the C store)", v)

  defp check!({key, v})
       when key in [:phoenix, :trace_all, :ai_integration, :rearm, :test_mode] and
              is_boolean(v),
       do: :ok

  defp check!({key, v}) when key in [:phoenix, :trace_all, :ai_integration, :rearm, :test_mode],
    do: bad(key, "a boolean", v)

  defp check!({:lifecycle, v}) when v in [nil, :all, :traced], do: :ok

  defp check!({:lifecycle, v}),
    do: bad(:lifecycle, ":all (every process) or :traced (processes ElixirScope traces)", v)

  defp check!({:mcp, opts}), do: ElixirScope.MCP.validate!(opts) && :ok
  defp check!({:ui, false}), do: :ok
  defp check!({:ui, opts}), do: ElixirScope.UI.validate!(opts) && :ok

  defp check!({:system_monitor, v}), do: ElixirScope.SystemMonitor.validate!(v) && :ok

  defp check!({:flight_recorder, nil}), do: :ok
  defp check!({:flight_recorder, opts}), do: ElixirScope.FlightRecorder.validate!(opts) && :ok

  defp check!({:redact, v}) do
    if non_empty_strings?(v),
      do: :ok,
      else: bad(:redact, "a list of non-empty strings (key names to redact)", v)
  end

  defp check!({:tracing_level, v}) do
    if v in levels(), do: :ok, else: bad(:tracing_level, "one of #{inspect(levels())}", v)
  end

  defp check!({:sample_rate, v}) when is_number(v) and v >= 0 and v <= 1, do: :ok
  defp check!({:sample_rate, v}), do: bad(:sample_rate, "a number in 0.0..1.0", v)

  defp check!({key, v})
       when key in [:max_events, :max_bytes, :max_payload_bytes, :max_keys] and is_integer(v) and
              v > 0,
       do: :ok

  defp check!({key, v})
       when key in [:max_events_per_sec, :max_bytes_per_sec] and is_integer(v) and v > 0,
       do: :ok

  defp check!({:governor_interval, v}) when is_integer(v) and v >= 10 and v <= 10_000, do: :ok

  defp check!({:governor_interval, v}),
    do: bad(:governor_interval, "milliseconds in 10..10000", v)

  defp check!({key, v})
       when key in [
              :max_events,
              :max_bytes,
              :max_payload_bytes,
              :max_keys,
              :max_events_per_sec,
              :max_bytes_per_sec
            ],
       do: bad(key, "a positive integer", v)

  defp check!({key, _}) do
    raise ArgumentError,
          "unknown ElixirScope option #{inspect(key)}; allowed: " <>
            Enum.map_join(Keyword.keys(defaults()), ", ", &inspect/1)
  end

  defp non_empty_strings?([]), do: true
  defp non_empty_strings?([s | rest]) when is_binary(s) and s != "", do: non_empty_strings?(rest)
  defp non_empty_strings?(_), do: false

  defp bad(key, expected, v),
    do:
      raise(
        ArgumentError,
        "ElixirScope option #{inspect(key)} must be #{expected}, got: #{inspect(v)}"
      )
end
