defmodule ElixirScope.Test.JSON do
  @moduledoc """
  A strict JSON parser (RFC 8259) for checking exported files in tests: OTP 25 has no
  `:json` and hex packages cannot be fetched here. Raises on anything that is not
  valid JSON, so a test that parses a file also checks it is valid.
  """

  def decode!(text) when is_binary(text) do
    {value, rest} = value(skip(text))

    case skip(rest) do
      "" -> value
      other -> raise ArgumentError, "trailing data: #{String.slice(other, 0, 40)}"
    end
  end

  defp skip(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip(rest)
  defp skip(rest), do: rest

  defp value("{" <> rest), do: object(skip(rest), %{})
  defp value("[" <> rest), do: array(skip(rest), [])
  defp value("\"" <> rest), do: string(rest, [])
  defp value("true" <> rest), do: {true, rest}
  defp value("false" <> rest), do: {false, rest}
  defp value("null" <> rest), do: {nil, rest}
  defp value(<<c, _::binary>> = text) when c == ?- or c in ?0..?9, do: number(text)
  defp value(other), do: raise(ArgumentError, "unexpected: #{String.slice(other, 0, 40)}")

  defp object("}" <> rest, acc), do: {acc, rest}

  defp object("\"" <> rest, acc) do
    {key, rest} = string(rest, [])
    ":" <> rest = skip(rest)
    {val, rest} = value(skip(rest))

    case skip(rest) do
      "," <> rest -> object(skip(rest), Map.put(acc, key, val))
      "}" <> rest -> {Map.put(acc, key, val), rest}
    end
  end

  defp array("]" <> rest, []), do: {[], rest}

  defp array(text, acc) do
    {val, rest} = value(text)

    case skip(rest) do
      "," <> rest -> array(skip(rest), [val | acc])
      "]" <> rest -> {Enum.reverse([val | acc]), rest}
    end
  end

  defp string("\"" <> rest, acc), do: {acc |> Enum.reverse() |> IO.iodata_to_binary(), rest}

  defp string("\\u" <> <<hex::binary-4, rest::binary>>, acc),
    do: string(rest, [<<String.to_integer(hex, 16)::utf8>> | acc])

  defp string("\\" <> <<c, rest::binary>>, acc) do
    char =
      case c do
        ?" -> "\""
        ?\\ -> "\\"
        ?/ -> "/"
        ?b -> "\b"
        ?f -> "\f"
        ?n -> "\n"
        ?r -> "\r"
        ?t -> "\t"
      end

    string(rest, [char | acc])
  end

  defp string(<<c, _::binary>>, _acc) when c < 0x20,
    do: raise(ArgumentError, "control character in string")

  defp string(<<c::utf8, rest::binary>>, acc), do: string(rest, [<<c::utf8>> | acc])

  defp number(text) do
    [num] = Regex.run(~r/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/, text, capture: :first)
    rest = binary_part(text, byte_size(num), byte_size(text) - byte_size(num))

    value =
      if String.contains?(num, [".", "e", "E"]),
        do: String.to_float(normalize(num)),
        else: String.to_integer(num)

    {value, rest}
  end

  defp normalize(num),
    do: if(String.contains?(num, "."), do: num, else: String.replace(num, ~r/[eE]/, ".0e"))
end
