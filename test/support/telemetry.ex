defmodule :telemetry do
  @moduledoc """
  A stand-in for the `:telemetry` library, compiled only in the test environment:
  hex packages cannot be fetched here. It follows telemetry's documented contract for
  the functions ElixirScope uses and the tests call:

    * `attach/4`, `attach_many/4` — `:ok`, or `{:error, :already_exists}` when a
      handler with that id is attached; the handler is a 4-arity function called as
      `handler.(event_name, measurements, metadata, config)`;
    * `detach/1` — `:ok`, or `{:error, :not_found}`;
    * `execute/3` — calls, in the emitting process, each handler attached to the
      event; measurements and metadata must be maps. A handler that raises, throws
      or exits is detached and the failure is logged, as the real one does;
    * `list_handlers/1` — the handlers whose event names start with a prefix, as
      maps with `:id`, `:event_name`, `:function` and `:config`.

  Like the real one it keeps handlers in a global table (here `:persistent_term`).
  ElixirScope's code never refers to this module: it calls whatever `:telemetry` is
  loaded, so it runs unchanged against the real library.
  """

  require Logger

  @key {__MODULE__, :handlers}

  def attach(id, event_name, function, config),
    do: attach_many(id, [event_name], function, config)

  def attach_many(id, event_names, function, config)
      when is_list(event_names) and is_function(function, 4) do
    for name <- event_names do
      unless is_list(name) and name != [] and Enum.all?(name, &is_atom/1),
        do:
          raise(ArgumentError, "expected event name to be a list of atoms, got: #{inspect(name)}")
    end

    if Function.info(function, :type) == {:type, :local} do
      # the real library says so too: local functions are slower and break on reloads
      Logger.info("The function passed as a handler with ID #{inspect(id)} is a local function.")
    end

    :global.trans({__MODULE__, self()}, fn ->
      handlers = handlers()

      if Enum.any?(handlers, &(&1.id == id)) do
        {:error, :already_exists}
      else
        new =
          for name <- event_names,
              do: %{id: id, event_name: name, function: function, config: config}

        :persistent_term.put(@key, handlers ++ new)
        :ok
      end
    end)
  end

  def detach(id) do
    :global.trans({__MODULE__, self()}, fn ->
      handlers = handlers()

      case Enum.reject(handlers, &(&1.id == id)) do
        ^handlers ->
          {:error, :not_found}

        rest ->
          :persistent_term.put(@key, rest)
          :ok
      end
    end)
  end

  def execute(event_name, measurements, metadata)
      when is_list(event_name) and is_map(measurements) and is_map(metadata) do
    for %{event_name: ^event_name} = h <- handlers() do
      try do
        h.function.(event_name, measurements, metadata, h.config)
      catch
        kind, reason ->
          detach(h.id)

          Logger.error(
            "Handler #{inspect(h.id)} has failed and has been detached. " <>
              Exception.format(kind, reason, __STACKTRACE__)
          )
      end
    end

    :ok
  end

  def list_handlers(prefix) when is_list(prefix) do
    Enum.filter(handlers(), &List.starts_with?(&1.event_name, prefix))
  end

  defp handlers, do: :persistent_term.get(@key, [])
end
