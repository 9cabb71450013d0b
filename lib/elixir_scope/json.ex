defmodule ElixirScope.JSON do
  @moduledoc """
  JSON decoding and encoding in C (`c_src/nif/json.h`), safe for untrusted input: it is
  what the MCP server reads requests and writes responses with. OTP 25 has no `:json`
  and hex packages are not assumed, so ElixirScope carries its own.

  ## Decoding

  | JSON | Elixir |
  |---|---|
  | object | map with binary keys; a repeated key: the last one wins |
  | array | list |
  | string | UTF-8 binary |
  | number | integer when its value is integral and within ±2^53 (`1.0`, `1e3` too), else float |
  | `true` / `false` / `null` | `true` / `false` / `nil` |

  No atom is ever created from the input. The text is checked in full before anything
  is built: it must be UTF-8 and strict RFC 8259 JSON (no trailing data, no leading
  zeros, no raw control characters in strings, no BOM). Limits, each an
  `{:error, message}` naming the byte offset:

    * input size: `:max_bytes`, 8 MiB by default (`decode/2`);
    * nesting: 128 levels of arrays and objects;
    * numbers: at most 63 characters, and within a float's range (`1e400` is an error;
      `1e-400` reads as `0`); integers beyond 2^53 lose precision as floats do;
    * strings: no `\\u0000` (cJSON would cut the string there; `encode/1` writes NUL
      bytes so, valid JSON that `decode/1` refuses), no unpaired UTF-16 surrogate
      escapes (`"\\ud800"`).

  Decoding builds an intermediate tree (cJSON) of about 80 bytes per value before the
  terms: a hostile 8 MiB input like `[0,0,0,...]` briefly needs several hundred MB.
  Servers facing untrusted clients should pass a `:max_bytes` that fits their messages.

  ## Encoding

  | Elixir | JSON |
  |---|---|
  | map (not a struct) | object; keys may be atoms, UTF-8 binaries or integers (written as decimal strings) |
  | list | array |
  | UTF-8 binary | string: `"`, `\\` and control characters escaped, everything else as is |
  | integer (64-bit) | number |
  | float | number: the shortest of 15, 16 or 17 significant digits that reads back the same, always with a `.` or an exponent (`1.0`) |
  | `true` / `false` / `nil` | `true` / `false` / `null` |
  | other atoms | string |

  Everything else is an `{:error, message}` naming the kind of term and where it sits,
  e.g. `"cannot encode a tuple at $.result.content[0]"`: tuples, pids, ports,
  references, functions, improper lists, bitstrings, binaries that are not UTF-8,
  integers beyond 64 bits, structs (convert them to maps first), maps whose keys would
  be written the same (`%{:a => 1, "a" => 2}`), and nesting deeper than 128 levels.
  Object keys are written in Erlang term order of the map's keys (integers, then
  atoms by name, then strings byte by byte), so the same map gives the same text on
  every OTP release, whatever order the runtime iterates it in.

  ## Arguments and scheduling

  `decode/1,2` takes a binary; anything else raises `ArgumentError`, as does a bad
  option: those are programming errors, while bad JSON is data and comes back as
  `{:error, message}`. `encode/1` takes any term.

  Small calls stay on the caller's scheduler and take at most about 0.25 ms (an MCP
  request or a 1 KB answer: a few µs); bigger ones run on a dirty CPU scheduler:
  decoding inputs over 64 KiB or with more than about 2000 values, encoding more than
  about 4000 terms, 280 floats or 64 KB of strings (an encode that finds out part-way
  that it is big starts again there).
  """

  alias ElixirScope.Native

  @default_max_bytes 8 * 1024 * 1024

  @doc """
  Decodes JSON text.

  Options: `max_bytes:` (a non-negative integer, default 8 MiB): larger input is an
  error without being looked at.

      iex> ElixirScope.JSON.decode(~s({"id": 1, "params": {"x": [1.5, true, null]}}))
      {:ok, %{"id" => 1, "params" => %{"x" => [1.5, true, nil]}}}

      iex> ElixirScope.JSON.decode(~s([1, 2.0, 1e3, 12345678901234567890]))
      {:ok, [1, 2, 1000, 1.2345678901234567e19]}

      iex> ElixirScope.JSON.decode("[1,]")
      {:error, "invalid JSON at byte 3: expected a value"}

      iex> ElixirScope.JSON.decode(~s({"a": 1} x))
      {:error, "invalid JSON at byte 9: unexpected data after the value"}

      iex> ElixirScope.JSON.decode(<<?", 0xFF, ?">>)
      {:error, "not UTF-8: invalid byte sequence at byte 1"}

      iex> ElixirScope.JSON.decode("[[[1]]]", max_bytes: 4)
      {:error, "input is 7 bytes, more than the maximum of 4"}
  """
  @spec decode(binary, keyword) :: {:ok, term} | {:error, String.t()}
  def decode(json, opts \\ [])

  def decode(json, opts) when is_binary(json) and is_list(opts) do
    Native.json_decode(json, max_bytes(opts))
  end

  def decode(json, opts) when is_list(opts) do
    raise ArgumentError, "ElixirScope.JSON.decode/2 expects a binary, got: #{inspect(json)}"
  end

  def decode(_json, opts) do
    raise ArgumentError, "options must be a keyword list, got: #{inspect(opts)}"
  end

  @doc """
  Like `decode/2`, but returns the term, or raises `ArgumentError` with the reason.

      iex> ElixirScope.JSON.decode!(~s(["a", {"b": "\\\\u00e9\\\\ud83d\\\\ude00"}]))
      ["a", %{"b" => "é😀"}]

      iex> ElixirScope.JSON.decode!("nul")
      ** (ArgumentError) invalid JSON at byte 0: expected a value
  """
  @spec decode!(binary, keyword) :: term
  def decode!(json, opts \\ []) do
    case decode(json, opts) do
      {:ok, term} -> term
      {:error, reason} -> raise ArgumentError, reason
    end
  end

  @doc """
  Encodes a term as JSON text (UTF-8, no whitespace).

      iex> ElixirScope.JSON.encode(%{jsonrpc: "2.0", id: 1, result: %{"ok" => [true, nil, 1.0]}})
      {:ok, ~s({"id":1,"jsonrpc":"2.0","result":{"ok":[true,null,1.0]}})}

      iex> ElixirScope.JSON.encode("line\\n\\"quoted\\" é")
      {:ok, ~s("line\\\\n\\\\"quoted\\\\" é")}

      iex> ElixirScope.JSON.encode(%{result: %{content: [{:text, "hi"}]}})
      {:error, "cannot encode a tuple at $.result.content[0]"}
  """
  @spec encode(term) :: {:ok, binary} | {:error, String.t()}
  def encode(term), do: Native.json_encode(term)

  @doc """
  Like `encode/1`, but returns the binary, or raises `ArgumentError` with the reason.

      iex> ElixirScope.JSON.encode!([1, "two", :three, 4.5])
      ~s([1,"two","three",4.5])

      iex> ElixirScope.JSON.encode!(%{pid: self()})
      ** (ArgumentError) cannot encode a pid at $.pid
  """
  @spec encode!(term) :: binary
  def encode!(term) do
    case encode(term) do
      {:ok, json} -> json
      {:error, reason} -> raise ArgumentError, reason
    end
  end

  defp max_bytes(opts) do
    Enum.reduce(opts, @default_max_bytes, fn
      {:max_bytes, n}, _ when is_integer(n) and n >= 0 ->
        min(n, 0xFFFF_FFFF_FFFF_FFFF)

      {:max_bytes, n}, _ ->
        raise ArgumentError, ":max_bytes must be a non-negative integer, got: #{inspect(n)}"

      other, _ ->
        raise ArgumentError, "unknown option #{inspect(other)} (allowed: max_bytes)"
    end)
  end
end
