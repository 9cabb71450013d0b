defmodule ElixirScope.Export do
  @moduledoc """
  Recorded timelines as files other tools open.

    * `format: :chrome_trace` — Chrome trace-event JSON. Open it in Perfetto
      (https://ui.perfetto.dev, "Open trace file") or `chrome://tracing`: one track per
      process, completed calls as duration slices (arguments and result in their
      details), messages as arrows from sender to receiver, state changes, crashes and
      other events as instants with their fields.
    * `format: :mermaid` — a Mermaid sequence diagram of the messages between chosen
      processes (`pids:`), or between the `busiest:` N (default 8) processes by
      messages sent and received. Paste it into any Markdown that renders Mermaid.

  The file is written from C, event by event, on a dirty I/O scheduler: memory stays
  flat however long the recording. The events can be narrowed with the filters of
  `ElixirScope.TraceDB.query_events/1` (`:timestamp_start`, `:timestamp_end`, `:pid`,
  `:type`, `:module`, `:limit`, `:where`, ...: `ElixirScope.Query`), and for Chrome
  traces with `pids:` and `types:` lists (events of any of them).

      {:ok, %{slices: 120, flows: 40, ...}} = ElixirScope.export("trace.json")
      {:ok, %{arrows: 40}} = ElixirScope.export("flow.mmd", format: :mermaid, pids: [a, b])
  """

  alias ElixirScope.TraceDB

  @doc """
  Writes the recording (or the part the filters select) to `path`. Returns
  `{:ok, counts}` with what was written, or `{:error, reason}` when the file cannot be
  written. Raises `ArgumentError` for an unknown format or bad options.
  """
  @spec export(Path.t(), keyword()) :: {:ok, map()} | {:error, term()}
  def export(path, opts \\ []) do
    unless is_binary(path) and path != "",
      do: raise(ArgumentError, "export/2 expects a file path, got: #{inspect(path)}")

    {format, opts} = Keyword.pop(opts, :format, :chrome_trace)
    {pids, opts} = Keyword.pop(opts, :pids)
    {busiest, opts} = Keyword.pop(opts, :busiest, 8)
    {types, opts} = Keyword.pop(opts, :types)
    {name, opts} = Keyword.pop(opts, :store, TraceDB)

    case format do
      :chrome_trace ->
        # pids: and types: lists select the events of any of them: one query.
        spec =
          opts
          |> put_list(:pid, pids, :pids, &is_pid/1)
          |> put_list(:type, types, :types, &is_atom/1)

        TraceDB.export_chrome(path, Map.new(spec), name)

      :mermaid ->
        unless is_nil(pids) or (is_list(pids) and Enum.all?(pids, &is_pid/1)),
          do: raise(ArgumentError, ":pids must be a list of pids, got: #{inspect(pids)}")

        unless is_integer(busiest) and busiest in 1..1000,
          do:
            raise(
              ArgumentError,
              ":busiest must be an integer in 1..1000, got: #{inspect(busiest)}"
            )

        TraceDB.export_mermaid(
          path,
          opts |> Map.new() |> Map.put(:type, :send),
          pids,
          busiest,
          name
        )

      other ->
        raise ArgumentError,
              "unknown export format #{inspect(other)}; use :chrome_trace or :mermaid"
    end
  end

  defp put_list(spec, _key, nil, _name, _kind?), do: spec

  defp put_list(spec, key, list, name, kind?) do
    unless is_list(list) and list != [] and Enum.all?(list, kind?),
      do: raise(ArgumentError, "#{inspect(name)} must be a non-empty list, got: #{inspect(list)}")

    if Keyword.has_key?(spec, key),
      do: raise(ArgumentError, "give #{inspect(key)} or #{inspect(name)}, not both")

    Keyword.put(spec, key, list)
  end
end
