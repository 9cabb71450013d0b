defmodule ElixirScope.Native do
  @moduledoc false
  # The NIF library (c_src/nif/es_nif.c, over the C core of c_src/core). Every function
  # here is replaced by a NIF when the module loads; the bodies only run when the
  # library could not be loaded. Only ElixirScope.TraceDB (the store) and
  # ElixirScope.Tracing (the tracer) call it, and ElixirScope.JSON its JSON codec.

  @on_load :load_nif

  @doc false
  def load_nif do
    # Built against this OTP's own headers (see Mix.Tasks.Compile.ElixirScopeNif).
    dir = ~c"otp" ++ :erlang.system_info(:otp_release)
    path = :filename.join([:code.priv_dir(:elixir_scope), dir, ~c"elixir_scope_nif"])

    case :erlang.load_nif(path, 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        require Logger

        Logger.error(
          "ElixirScope could not load its NIF from #{path}: #{reason} #{text}. " <>
            "Run `make setup` and `mix compile` in the elixir_scope directory."
        )

        :ok
    end
  end

  defp not_loaded, do: :erlang.nif_error(:elixir_scope_nif_not_loaded)

  def store_options, do: not_loaded()
  def vocabulary, do: not_loaded()
  def store_new(_opts), do: not_loaded()
  def set_sample_rate(_store, _rate), do: not_loaded()
  def append(_store, _type, _event), do: not_loaded()
  def query(_store, _spec), do: not_loaded()
  def query_ids(_store, _selection), do: not_loaded()
  def aggregate(_store, _spec), do: not_loaded()
  def state_stats(_store, _spec), do: not_loaded()
  def live_pids(_store, _timestamp), do: not_loaded()
  def snapshot(_store, _timestamp, _opts), do: not_loaded()
  def links(_store, _pid, _timestamp), do: not_loaded()
  def call_tree(_store, _pid, _spec), do: not_loaded()
  def state_change(_store, _pid, _before, _after), do: not_loaded()
  def request_timeline(_store, _pid, _window, _page), do: not_loaded()
  def get(_store, _id), do: not_loaded()
  def clear(_store), do: not_loaded()
  def stats(_store), do: not_loaded()
  def diff(_old, _new), do: not_loaded()
  def redact(_term, _patterns), do: not_loaded()
  def calibrate_clock, do: not_loaded()
  def export_chrome(_store, _path, _filters), do: not_loaded()
  def dump(_store, _path, _selection, _mode, _segment_bytes), do: not_loaded()
  def load(_store, _path, _offset, _index), do: not_loaded()
  def persist_on_halt(_store, _path, _last_id, _segment_bytes), do: not_loaded()
  def export_mermaid(_store, _path, _selection, _pids, _busiest), do: not_loaded()
  def perf(_store, _module), do: not_loaded()
  def slowest(_store, _limit, _module), do: not_loaded()
  def top(_store, _spec, _field), do: not_loaded()
  def traffic(_store, _from, _to), do: not_loaded()
  def peers(_store, _pid), do: not_loaded()
  def actor_summary(_store, _pid), do: not_loaded()
  def actors(_store), do: not_loaded()
  def wall_note(_store, _ts, _offset), do: not_loaded()
  def wall_offset(_store, _ts), do: not_loaded()
  def wall_timestamp(_store, _wall), do: not_loaded()
  def wall_offsets(_store), do: not_loaded()
  def json_decode(_json, _max_bytes), do: not_loaded()
  def json_encode(_term), do: not_loaded()

  def tracer_new(_store, _mask), do: not_loaded()
  def tracer_set(_tracer, _key, _value), do: not_loaded()
  def tracer_watch(_tracer, _what), do: not_loaded()
  def tracer_counts(_tracer), do: not_loaded()
  def tracer_discarded(_tracer), do: not_loaded()
  def tracer_mask(_tracer), do: not_loaded()

  # The erl_tracer behaviour: this module is the tracer module of ElixirScope.
  def enabled(_tag, _tracer, _tracee), do: not_loaded()
  def trace(_tag, _tracer, _tracee, _term, _opts), do: not_loaded()
end
