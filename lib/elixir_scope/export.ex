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
  `:type`, `:module`, `:limit`, ...), and for Chrome traces with `pids:` and `types:`
  lists (events of any of them).

      {:ok, %{slices: 120, flows: 40, ...}} = ElixirScope.export("trace.json")
      {:ok, %{arrows: 40}} = ElixirScope.export("flow.mmd", format: :mermaid, pids: [a, b])
  """

  alias ElixirScope.{Native, TraceDB}

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
    {store, filters} = TraceDB.native_filters(opts)

    case format do
      :chrome_trace ->
        Native.export_chrome(store, path, selection(store, filters, pids, types))

      :mermaid ->
        unless is_nil(pids) or (is_list(pids) and Enum.all?(pids, &is_pid/1)),
          do: raise(ArgumentError, ":pids must be a list of pids, got: #{inspect(pids)}")

        unless is_integer(busiest) and busiest in 1..1000,
          do:
            raise(
              ArgumentError,
              ":busiest must be an integer in 1..1000, got: #{inspect(busiest)}"
            )

        Native.export_mermaid(store, path, Map.put(filters, :type, :send), pids, busiest)

      other ->
        raise ArgumentError,
              "unknown export format #{inspect(other)}; use :chrome_trace or :mermaid"
    end
  end

  # Lists of pids or types select the events of any of them: the union of one id query
  # per combination (ids only, nothing decoded), handed to C as the selection.
  defp selection(_store, filters, nil, nil), do: filters

  defp selection(store, filters, pids, types) do
    pids = list_of!(pids, :pids, &is_pid/1)
    types = list_of!(types, :types, &is_atom/1)

    for pid <- pids, type <- types do
      filters |> put_some(:pid, pid) |> put_some(:type, type)
    end
    |> Enum.flat_map(&Native.query_ids(store, &1))
    |> Enum.uniq()
  end

  defp list_of!(nil, _key, _kind?), do: [nil]

  defp list_of!(list, key, kind?) do
    unless is_list(list) and list != [] and Enum.all?(list, kind?),
      do: raise(ArgumentError, "#{inspect(key)} must be a non-empty list, got: #{inspect(list)}")

    list
  end

  defp put_some(filters, _key, nil), do: filters
  defp put_some(filters, key, value), do: Map.put(filters, key, value)
end
