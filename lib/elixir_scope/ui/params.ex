defmodule ElixirScope.UI.Params do
  @moduledoc false
  # Query parameters and POST bodies of UI requests come from whoever can reach the
  # server: every reader is strict, raises `ElixirScope.UI.Params.Error` (a 400 with
  # its message) and never creates an atom — names resolve only to atoms that exist
  # already, choices are looked up in fixed tables.

  alias ElixirScope.Web.Names

  defmodule Error do
    @moduledoc false
    defexception [:message]
  end

  # Query strings longer than this are refused before being parsed.
  @max_query 4_096

  @doc false
  # "a=1&b=x" -> %{"a" => "1", "b" => "x"} (the last of repeated keys wins).
  def parse_query(query) when byte_size(query) > @max_query,
    do: fail("the query string is longer than #{@max_query} bytes")

  def parse_query(query) do
    URI.decode_query(query)
  rescue
    ArgumentError -> fail("malformed query string")
  end

  @doc false
  def pid!(params, key) do
    case Names.pid(string!(params, key)) do
      {:ok, pid} -> pid
      :error -> fail("#{key} must be a pid written <0.123.0>, got: #{short(params[key])}")
    end
  end

  @doc false
  def pid(params, key), do: if(present?(params, key), do: pid!(params, key))

  @doc false
  # A comma-separated list of pids: at least one, at most `max`.
  def pids!(params, key, max) do
    texts = params |> string!(key) |> String.split(",", trim: true)

    if texts == [] or length(texts) > max,
      do: fail("#{key} must list 1 to #{max} pids, separated by commas")

    texts
    |> Enum.map(fn text -> pid!(%{key => String.trim(text)}, key) end)
    |> Enum.uniq()
  end

  @doc false
  # A loaded module ("MyApp.Cart", ":ets").
  def module!(params, key) do
    text = string!(params, key)
    Names.module(text) || fail("#{key}: no module named #{inspect(text)} is loaded")
  end

  @doc false
  def integer(params, key, default, min, max) do
    if present?(params, key) do
      case Integer.parse(params[key]) do
        {n, ""} when n >= min and n <= max -> n
        _ -> fail("#{key} must be an integer in #{min}..#{max}, got: #{short(params[key])}")
      end
    else
      default
    end
  end

  @doc false
  # An event id (a cursor), or nil.
  def id(params, key), do: integer(params, key, nil, 1, 2 ** 63)

  @doc false
  def id!(params, key), do: id(params, key) || fail("missing parameter #{key}")

  @doc false
  # A raw timestamp (native monotonic units, as the API writes them: a string of
  # digits), or nil.
  def timestamp(params, key), do: integer(params, key, nil, -(2 ** 63), 2 ** 63 - 1)

  @doc false
  # One of `choices` (a map from the text sent to our value), or `default` when absent.
  def choice(params, key, choices, default) do
    with true <- present?(params, key),
         {:ok, value} <- Map.fetch(choices, params[key]) do
      value
    else
      false ->
        default

      :error ->
        fail(
          "#{key} must be one of #{Enum.join(Enum.sort(Map.keys(choices)), ", ")}, " <>
            "got: #{short(params[key])}"
        )
    end
  end

  @doc false
  # A comma-separated subset of `choices`' keys, as their values ([] when absent).
  def choices(params, key, choices) do
    if present?(params, key) do
      params[key]
      |> String.split(",", trim: true)
      |> Enum.map(&choice(%{key => &1}, key, choices, nil))
      |> Enum.uniq()
    else
      []
    end
  end

  @doc false
  def text(params, key, max \\ 200) do
    case params[key] do
      nil -> nil
      "" -> nil
      text when byte_size(text) <= max -> text
      _ -> fail("#{key} is longer than #{max} bytes")
    end
  end

  @doc false
  def string!(params, key) do
    case params[key] do
      text when is_binary(text) and text != "" -> text
      nil -> fail("missing parameter #{key}")
      other -> fail("#{key} must be a non-empty string, got: #{short(other)}")
    end
  end

  defp present?(params, key), do: params[key] not in [nil, ""]

  @doc false
  def fail(message), do: raise(Error, message: message)

  defp short(value), do: inspect(value, limit: 5, printable_limit: 60)
end
