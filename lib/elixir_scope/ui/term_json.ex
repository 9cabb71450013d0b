defmodule ElixirScope.UI.TermJSON do
  @moduledoc false
  # Erlang terms as JSON the page can draw as Elixir (a collapsible tree, or one line),
  # with nothing lost that the page shows. JSON has no tuples, atoms or pids, and its
  # numbers are doubles, so each kind gets a tag:
  #
  # | term | JSON |
  # |---|---|
  # | `nil`, `true`, `false` | `null`, `true`, `false` |
  # | integer within ±2^53 / beyond | number / `{"i": "digits"}` |
  # | float | number |
  # | UTF-8 binary / other binary | string / `{"b": "<<1, 2, ...>>"}` |
  # | other atom | `{"a": "name"}` (`"Elixir.Foo"` for modules) |
  # | proper list / improper list | array / `{"il": [...], "tl": tail}` |
  # | tuple | `{"t": [...]}` |
  # | map / struct | `{"m": [[k, v], ...]}` / `{"s": "Elixir.Foo", "m": [...]}` |
  # | pid | `{"p": "<0.123.0>"}` |
  # | port, reference, fun | `{"o": "#Reference<...>"}` (its inspect text) |
  #
  # A budget of nodes bounds the answer: past it, what is left of a list, map or tuple
  # is `{"cut": n}` (n elements left out), and strings longer than `@max_string` bytes
  # are cut with `{"str": prefix, "size": bytes}`.

  @max_safe 9_007_199_254_740_991
  @max_string 16_384

  @doc false
  def encode(term, budget \\ 200_000) do
    {json, _left} = enc(term, budget)
    json
  end

  @doc false
  # A timestamp or other integer that may pass 2^53, always as a string.
  def int(nil), do: nil
  def int(n) when is_integer(n), do: Integer.to_string(n)

  @doc false
  def pid(pid) when is_pid(pid), do: pid |> :erlang.pid_to_list() |> List.to_string()
  def pid(_), do: nil

  @doc false
  # A module or other atom as the page writes it ("MyApp.Cart", ":ets").
  def atom(nil), do: nil
  def atom(a) when is_atom(a), do: inspect(a)
  def atom(_), do: nil

  defp enc(_term, budget) when budget <= 0, do: {%{"cut" => 1}, 0}
  defp enc(nil, b), do: {nil, b - 1}
  defp enc(bool, b) when is_boolean(bool), do: {bool, b - 1}
  defp enc(a, b) when is_atom(a), do: {%{"a" => Atom.to_string(a)}, b - 1}

  defp enc(n, b) when is_integer(n) do
    if n >= -@max_safe and n <= @max_safe,
      do: {n, b - 1},
      else: {%{"i" => Integer.to_string(n)}, b - 1}
  end

  defp enc(f, b) when is_float(f), do: {f, b - 1}

  defp enc(bin, b) when is_binary(bin) do
    cond do
      not String.valid?(bin) ->
        {%{"b" => inspect(bin, limit: 64, printable_limit: 256)}, b - 1}

      byte_size(bin) > @max_string ->
        {%{"str" => valid_prefix(bin, @max_string), "size" => byte_size(bin)}, b - 1}

      true ->
        {bin, b - 1}
    end
  end

  defp enc(pid, b) when is_pid(pid), do: {%{"p" => pid(pid)}, b - 1}

  defp enc(list, b) when is_list(list) do
    case elements(list, b - 1, []) do
      {items, left, []} -> {items, left}
      {items, left, tail} -> enc_tail(items, tail, left)
    end
  end

  defp enc(tuple, b) when is_tuple(tuple) do
    {items, left, []} = elements(Tuple.to_list(tuple), b - 1, [])
    {%{"t" => items}, left}
  end

  defp enc(%{__struct__: module} = struct, b) when is_atom(module) do
    {pairs, left} = pairs(Map.delete(struct, :__struct__), b - 1)
    {%{"s" => Atom.to_string(module), "m" => pairs}, left}
  end

  defp enc(map, b) when is_map(map) do
    {pairs, left} = pairs(map, b - 1)
    {%{"m" => pairs}, left}
  end

  defp enc(bits, b) when is_bitstring(bits), do: {%{"b" => inspect(bits, limit: 64)}, b - 1}
  defp enc(other, b), do: {%{"o" => inspect(other)}, b - 1}

  defp enc_tail(items, tail, b) do
    {tl, left} = enc(tail, b)
    {%{"il" => items, "tl" => tl}, left}
  end

  # Elements of a list until the budget runs out; the improper tail, if any, apart.
  defp elements([], b, acc), do: {Enum.reverse(acc), b, []}

  defp elements([_ | _] = rest, b, acc) when b <= 0,
    do: {Enum.reverse([%{"cut" => count(rest)} | acc]), 0, []}

  defp elements([h | t], b, acc) do
    {json, left} = enc(h, b)
    elements(t, left, [json | acc])
  end

  defp elements(tail, b, acc), do: {Enum.reverse(acc), b, tail}

  defp count(list), do: count(list, 0)
  defp count([_ | t], n), do: count(t, n + 1)
  defp count(_, n), do: n

  # Map entries sorted by key (term order), as IEx shows them.
  defp pairs(map, b) do
    {pairs, left} =
      map
      |> Map.to_list()
      |> Enum.sort()
      |> Enum.reduce_while({[], b}, fn
        _, {acc, left} when left <= 0 ->
          {:halt, {[[%{"cut" => map_size(map) - length(acc)}, nil] | acc], 0}}

        {k, v}, {acc, left} ->
          {kj, left} = enc(k, left)
          {vj, left} = enc(v, left)
          {:cont, {[[kj, vj] | acc], left}}
      end)

    {Enum.reverse(pairs), left}
  end

  defp valid_prefix(bin, bytes) do
    part = binary_part(bin, 0, bytes)

    case :unicode.characters_to_binary(part) do
      {_error_or_incomplete, good, _rest} -> good
      good -> good
    end
  end
end
