defmodule ElixirScope.MCP.Args do
  @moduledoc false
  # Tool arguments come from an untrusted client: every reader here is strict, raises
  # `ElixirScope.MCP.Args.Error` with a message for the assistant (it becomes an
  # `isError` result), and never creates an atom — names resolve only to atoms that
  # exist already.

  alias ElixirScope.Web.Names

  defmodule Error do
    @moduledoc false
    defexception [:message]
  end

  @doc false
  # Refuses arguments the tool does not take, naming the ones it does.
  def only!(args, allowed) do
    case Map.keys(args) -- allowed do
      [] ->
        :ok

      unknown ->
        fail(
          "unknown argument#{if length(unknown) > 1, do: "s"} #{Enum.join(unknown, ", ")}; " <>
            "this tool takes: #{if allowed == [], do: "nothing", else: Enum.join(allowed, ", ")}"
        )
    end
  end

  @doc false
  # A pid from "#PID<0.123.0>", "<0.123.0>", or the registered name of a live process.
  def pid!(args, key) do
    text = string!(args, key)

    case Names.pid(text) do
      {:ok, pid} ->
        pid

      :error ->
        if Regex.match?(~r/\A(#PID)?<[\d.]*>\z/, text),
          do: fail("#{key}: #{inspect(text)} is not a valid pid"),
          else: registered!(text, key)
    end
  end

  defp registered!(text, key) do
    Names.registered(text) ||
      fail(
        "#{key}: #{inspect(text)} is neither a pid (write it \"#PID<0.123.0>\") nor the " <>
          "name of a running process; elixir_scope_list_processes shows both"
      )
  end

  @doc false
  # The live process registered under `text`, or nil.
  defdelegate registered(text), to: Names

  @doc false
  # A loaded module from "MyApp.Worker", "Elixir.MyApp.Worker", ":ets" or "ets".
  def module!(args, key) do
    text = string!(args, key)

    Names.module(text) ||
      fail(
        "#{key}: no module named #{inspect(text)} is loaded in this node (names are " <>
          "case-sensitive: \"MyApp.Worker\", or \":ets\" for an Erlang module)"
      )
  end

  @doc false
  def module(args, key), do: if(Map.has_key?(args, key), do: module!(args, key))

  @doc false
  def string!(args, key) do
    case Map.fetch(args, key) do
      {:ok, value} when is_binary(value) and value != "" -> value
      {:ok, value} -> fail("#{key} must be a non-empty string, got: #{short(value)}")
      :error -> fail("missing argument #{key}")
    end
  end

  @doc false
  # An integer in min..max, or `default` when absent.
  def integer(args, key, default, min, max) do
    case Map.get(args, key) do
      nil -> default
      value when is_integer(value) and value >= min and value <= max -> value
      value -> fail("#{key} must be an integer in #{min}..#{max}, got: #{short(value)}")
    end
  end

  @doc false
  # A timestamp (native monotonic units) as listings show it after t=. JSON numbers
  # lose precision beyond 2^53 and these do not fit, so a string of digits is the usual
  # form; small integers are accepted too, and an ISO 8601 wall-clock time
  # ("2026-01-05T12:03:07.123456Z", as listings show it) is turned into the timestamp
  # of that moment by the recording's clock.
  defp integer(value) do
    case Integer.parse(String.trim(value)) do
      {ts, ""} -> {:ok, ts}
      _ -> {:error, :not_an_integer}
    end
  end

  def timestamp(args, key) do
    case Map.get(args, key) do
      nil ->
        nil

      value when is_integer(value) ->
        value

      value when is_binary(value) ->
        with {:error, _} <- integer(value),
             {:ok, at, _} <- DateTime.from_iso8601(String.trim(value)) do
          try do
            ElixirScope.WallClock.timestamp(at)
          rescue
            ArgumentError -> fail("#{key}: #{short(value)} — this recording has no wall clock")
          end
        else
          {:ok, ts} ->
            ts

          _ ->
            fail(
              "#{key} must be a timestamp as shown in listings (after t=) or an ISO 8601 " <>
                "time, got: #{short(value)}"
            )
        end

      value ->
        fail("#{key} must be a timestamp string, got: #{short(value)}")
    end
  end

  @doc false
  # One of `choices` (a map from the string a client sends to our value).
  def choice(args, key, choices, default) do
    case Map.fetch(args, key) do
      :error ->
        default

      {:ok, value} ->
        Map.get(choices, value) ||
          fail(
            "#{key} must be one of #{Enum.join(Map.keys(choices), ", ")}, got: #{short(value)}"
          )
    end
  end

  @doc false
  def fail(message), do: raise(Error, message: message)

  defp short(value), do: inspect(value, limit: 5, printable_limit: 60)
end
