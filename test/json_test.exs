defmodule ElixirScope.JSONTest do
  @moduledoc """
  ElixirScope.JSON against hand-written cases, against the strict Elixir parser in
  test/support/json.ex (the oracle), and against ~100k malformed inputs: decoding
  must answer `{:ok, _}` or `{:error, binary}`, agree with the oracle when it says ok,
  and never create an atom.
  """
  # async: false: the fuzz test compares the VM's atom count before and after.
  use ExUnit.Case, async: false

  alias ElixirScope.JSON
  alias ElixirScope.Test.JSON, as: Oracle
  alias ElixirScope.Test.LongSchedule

  doctest ElixirScope.JSON

  # ---- helpers -----------------------------------------------------------------

  # Same value, numbers compared as numbers: we give integers for integral values
  # within 2^53 (the oracle floats for "1.0") and floats beyond (the oracle integers).
  defp same?(a, b) when is_number(a) and is_number(b) do
    a == b or abs(a - b) <= 1.0e-15 * max(abs(a), abs(b))
  end

  defp same?(a, b) when is_list(a) and is_list(b),
    do: length(a) == length(b) and Enum.all?(Enum.zip(a, b), fn {x, y} -> same?(x, y) end)

  defp same?(a, b) when is_map(a) and is_map(b),
    do: Map.keys(a) == Map.keys(b) and Enum.all?(a, fn {k, v} -> same?(v, Map.fetch!(b, k)) end)

  defp same?(a, b), do: a === b

  defp oracle(text) do
    {:ok, Oracle.decode!(text)}
  rescue
    _ -> :rejected
  end

  defp error!(text) do
    assert {:error, msg} = JSON.decode(text), "expected an error for #{inspect(text)}"
    assert is_binary(msg) and String.valid?(msg)
    msg
  end

  defp roundtrip(term) do
    assert {:ok, json} = JSON.encode(term)
    assert String.valid?(json)
    assert {:ok, back} = JSON.decode(json)
    assert same?(Oracle.decode!(json), back)
    back
  end

  # ---- decoding ----------------------------------------------------------------

  test "maps JSON values to terms" do
    assert JSON.decode(~s({"a": {"b": [1, -2, 3.5, "x", true, false, null, {}, []]}})) ==
             {:ok, %{"a" => %{"b" => [1, -2, 3.5, "x", true, false, nil, %{}, []]}}}

    assert JSON.decode(" \t\r\n[ 1 , 2 ]\n ") == {:ok, [1, 2]}
    assert JSON.decode("\"top-level string\"") == {:ok, "top-level string"}
    assert JSON.decode("42") == {:ok, 42}
    assert JSON.decode("null") == {:ok, nil}
  end

  test "repeated keys: the last one wins" do
    assert JSON.decode(~s({"a": 1, "b": 2, "a": 3})) == {:ok, %{"a" => 3, "b" => 2}}
    keys = Enum.map_join(1..40, ",", &~s("k#{rem(&1, 5)}": #{&1}))
    assert {:ok, map} = JSON.decode("{" <> keys <> "}")
    assert map == Map.new(36..40, &{"k#{rem(&1, 5)}", &1})
  end

  test "numbers: integers when integral within 2^53, floats otherwise" do
    two53 = 9_007_199_254_740_992

    assert JSON.decode("[0, -0, 7, -7, 1.0, -0.0, 1e3, 1.5e3, 2E-1, 1e+2]") ==
             {:ok, [0, 0, 7, -7, 1, 0, 1000, 1500, 0.2, 100]}

    assert JSON.decode("#{two53}") == {:ok, two53}
    assert JSON.decode("-#{two53}") == {:ok, -two53}
    # beyond 2^53 a double is no longer exact: a float, like the double it is
    assert {:ok, f} = JSON.decode("#{two53 + 2}")
    assert is_float(f) and f == 9_007_199_254_740_994.0
    assert {:ok, f} = JSON.decode("9223372036854775807")
    assert is_float(f) and f == 9.223372036854776e18
    assert JSON.decode("123456789012345678901234567890") == {:ok, 1.2345678901234568e29}
    assert JSON.decode("1.7976931348623157e308") == {:ok, 1.7976931348623157e308}
    assert JSON.decode("5e-324") == {:ok, 5.0e-324}
    assert JSON.decode("1e-400") == {:ok, 0}
    assert JSON.decode("0.1") == {:ok, 0.1}
    assert JSON.decode("-1.25e-7") == {:ok, -1.25e-7}
  end

  test "strings: escapes, unicode, astral-plane characters and surrogate pairs" do
    assert JSON.decode(~S("\"\\\/\b\f\n\r\t")) == {:ok, "\"\\/\b\f\n\r\t"}
    assert JSON.decode(~S("\u00e9\u00E9\u65e5\u0041\u001f")) == {:ok, "éé日A\x1F"}
    assert JSON.decode(~s("é日本😀𝄞")) == {:ok, "é日本😀𝄞"}

    assert JSON.decode(~S("\ud83d\ude00 \uD834\uDD1E \udbff\udfff")) ==
             {:ok, "😀 𝄞 " <> <<0x10FFFF::utf8>>}

    assert JSON.decode(~s({"ключ": "значение"})) == {:ok, %{"ключ" => "значение"}}
    long = String.duplicate("abc😀", 10_000)
    assert JSON.decode(~s("#{long}")) == {:ok, long}
  end

  test "never creates atoms, whatever the keys and values say" do
    keys = for i <- 1..500, do: "json_test_key_never_an_atom_#{i}_#{System.unique_integer()}"

    doc =
      "{" <> Enum.map_join(keys, ",", &~s("#{&1}": "#{&1}")) <> ~s(, "__struct__": "Elixir.URI"})

    # loading the modules on a first call adds atoms of their own: do that first
    assert {:ok, _} = JSON.decode(~s({"warm": "up"}))
    before = :erlang.system_info(:atom_count)
    assert {:ok, map} = JSON.decode(doc)
    assert map["__struct__"] == "Elixir.URI"
    assert map_size(map) == 501
    assert :erlang.system_info(:atom_count) == before
  end

  test "rejects what is not JSON, naming the byte" do
    cases = [
      {"", "invalid JSON at byte 0: no value (empty input)"},
      {"   ", "invalid JSON at byte 3: no value (empty input)"},
      {"[1] x", "invalid JSON at byte 4: unexpected data after the value"},
      {"{} {}", "invalid JSON at byte 3: unexpected data after the value"},
      {"1 2", "invalid JSON at byte 2: unexpected data after the value"},
      {"[1]\0", "invalid JSON at byte 3: unexpected data after the value"},
      {"[1,]", "invalid JSON at byte 3: expected a value"},
      {~s({"a":1,}), "invalid JSON at byte 7: expected a string key"},
      {~s({"a" 1}), "invalid JSON at byte 5: expected ':'"},
      {~s({a: 1}), "invalid JSON at byte 1: expected a string key"},
      {"[1 2]", "invalid JSON at byte 3: expected ',' or ']'"},
      {~s({"a":1 "b":2}), "invalid JSON at byte 7: expected ',' or '}'"},
      {~s("abc), "invalid JSON at byte 0: unterminated string"},
      {~s(["abc\\"]), "invalid JSON at byte 1: unterminated string"},
      {~s("a\\), "invalid JSON at byte 0: unterminated string"},
      {"[", "invalid JSON at byte 1: unexpected end of input"},
      {~s({"a":), "invalid JSON at byte 5: unexpected end of input"},
      {"nul", "invalid JSON at byte 0: expected a value"},
      {"True", "invalid JSON at byte 0: expected a value"},
      {"'a'", "invalid JSON at byte 0: expected a value"},
      {"01", "invalid JSON at byte 1: leading zero in a number"},
      {"-01", "invalid JSON at byte 2: leading zero in a number"},
      {"1.", "invalid JSON at byte 2: expected a digit after '.'"},
      {".5", "invalid JSON at byte 0: expected a value"},
      {"-.5", "invalid JSON at byte 1: expected a digit"},
      {"+1", "invalid JSON at byte 0: expected a value"},
      {"1e", "invalid JSON at byte 2: expected a digit in the exponent"},
      {"1e+", "invalid JSON at byte 3: expected a digit in the exponent"},
      {"NaN", "invalid JSON at byte 0: expected a value"},
      {"Infinity", "invalid JSON at byte 0: expected a value"},
      {"0x10", "invalid JSON at byte 1: unexpected data after the value"},
      {~s("a\nb"), "invalid JSON at byte 2: control character in a string (must be escaped)"},
      {~s("a\tb"), "invalid JSON at byte 2: control character in a string (must be escaped)"},
      {~s("\\x"), "invalid JSON at byte 1: invalid escape in a string"},
      {~s("\\U0041"), "invalid JSON at byte 1: invalid escape in a string"},
      {~s("\\u12"), "invalid JSON at byte 1: \\u needs four hex digits"},
      {~s("\\u12G4"), "invalid JSON at byte 1: \\u needs four hex digits"},
      # what cJSON alone would let through
      {"\x01[1]", "invalid JSON at byte 0: expected a value"},
      {"[1,\x0B2]", "invalid JSON at byte 3: expected a value"},
      {"\uFEFF[1]", "invalid JSON at byte 0: expected a value"},
      {"\0", "invalid JSON at byte 0: expected a value"}
    ]

    for {text, msg} <- cases, do: assert({text, JSON.decode(text)} == {text, {:error, msg}})
  end

  test "rejects text that is not UTF-8" do
    for {text, at} <- [
          {<<?", 0xFF, ?">>, 1},
          {<<"[\"ok\", \"", 0xC3, 0x28, "\"]">>, 8},
          # overlong "/", an encoded surrogate, past U+10FFFF, truncated
          {<<?", 0xC0, 0xAF, ?">>, 1},
          {<<?", 0xED, 0xA0, 0x80, ?">>, 1},
          {<<?", 0xF4, 0x90, 0x80, 0x80, ?">>, 1},
          {<<"\"abc", 0xE6, 0x97>>, 4},
          {<<0x80>>, 0},
          {<<"{\"k\":1}", 0xFE>>, 7}
        ] do
      assert JSON.decode(text) == {:error, "not UTF-8: invalid byte sequence at byte #{at}"}
    end
  end

  test "limits: lone surrogates, \\u0000, nesting, number length and range, size" do
    # cJSON rejects unpaired surrogates too; we say why
    for text <- [
          ~S("\ud800"),
          ~S("\udc00"),
          ~S("\ud83d x"),
          ~S("\ud83d\u0041"),
          ~S("\ude00\ud83d")
        ] do
      assert error!(text) == "unpaired UTF-16 surrogate in a \\u escape at byte 1"
    end

    # cJSON would cut the string short at the NUL
    assert error!(~S("a\u0000b")) == "\\u0000 in a string is not supported at byte 2"
    assert error!(~S({"k\u0000": 1})) == "\\u0000 in a string is not supported at byte 3"

    deep = fn n -> String.duplicate("[", n) <> String.duplicate("]", n) end
    assert {:ok, _} = JSON.decode(deep.(128))
    assert error!(deep.(129)) == "nesting deeper than 128 levels at byte 128"

    assert error!(String.duplicate(~s({"a":), 129) <> "1" <> String.duplicate("}", 129)) ==
             "nesting deeper than 128 levels at byte 640"

    assert error!(String.duplicate("[", 100_000)) == "nesting deeper than 128 levels at byte 128"

    digits = String.duplicate("1", 63)
    assert {:ok, f} = JSON.decode(digits)
    assert is_float(f)
    assert error!("[" <> digits <> "1]") == "number longer than 63 characters at byte 1"

    assert error!("[1, 1e400]") ==
             "number out of range (beyond a double's +/-1.8e308) at byte 4"

    assert error!("-1.8e308") == "number out of range (beyond a double's +/-1.8e308) at byte 0"

    assert error!("[1,2]", max_bytes: 4) == "input is 5 bytes, more than the maximum of 4"
    assert JSON.decode("[1,2]", max_bytes: 5) == {:ok, [1, 2]}
    big = "[" <> String.duplicate("0,", 4 * 1024 * 1024) <> "0]"

    assert error!(big) ==
             "input is #{byte_size(big)} bytes, more than the maximum of 8388608"
  end

  defp error!(text, opts) do
    assert {:error, msg} = JSON.decode(text, opts)
    msg
  end

  test "arguments: a binary and known options, or ArgumentError" do
    assert_raise ArgumentError, ~r/expects a binary, got: 123/, fn -> JSON.decode(123) end
    assert_raise ArgumentError, ~r/expects a binary/, fn -> JSON.decode(~c"[1]") end
    assert_raise ArgumentError, ~r/expects a binary/, fn -> JSON.decode(<<1::3>>) end
    assert_raise ArgumentError, ~r/max_bytes must be/, fn -> JSON.decode("1", max_bytes: -1) end
    assert_raise ArgumentError, ~r/unknown option/, fn -> JSON.decode("1", limit: 3) end
    assert_raise ArgumentError, ~r/keyword list/, fn -> JSON.decode("1", %{}) end
    assert JSON.decode("1", max_bytes: 2 ** 70) == {:ok, 1}

    assert_raise ArgumentError, "invalid JSON at byte 1: unexpected end of input", fn ->
      JSON.decode!("[")
    end

    assert JSON.decode!(~s({"a":[]})) == %{"a" => []}
    # a sub-binary of a larger one
    <<_::binary-3, part::binary-5, _::binary>> = "xx [1,2] yy"
    assert JSON.decode(part) == {:ok, [1, 2]}
  end

  # ---- the oracle ----------------------------------------------------------------

  @corpus [
    ~s({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"trace","arguments":{"pid":"<0.1.0>"}}}),
    ~s({"jsonrpc": "2.0", "id": "abc-1", "result": {"content": [{"type": "text", "text": "hello"}], "isError": false}}),
    ~s({"jsonrpc":"2.0","method":"notifications/initialized"}),
    ~s([1, 2.5, -3, -4.25e-3, 6E+2, 0, -0, 0.0, 1e0, 123456789, 9007199254740993, 1.5e300]),
    ~s({"empty": {}, "list": [], "nested": [[[[[]]]]], "objs": [{}, {"a": {}}]}),
    ~s({"unicode": "é日本😀𝄞", "escaped": "\\u00e9\\u65e5\\n\\t\\"\\\\\\/", "ctrl": "\\u0001\\u001f"}),
    ~s("just a string"),
    ~s(3.14159),
    ~s(true),
    ~s(null),
    ~s(  \n\t [ true , false , null ] \r\n  ),
    ~s({"a": {"b": {"c": {"d": {"e": [1, {"f": "g"}]}}}}}),
    ~s({"dup": 1, "dup": 2, "other": [1, 2, 3]}),
    ~s([{"id": 1, "tags": ["x", "y"]}, {"id": 2, "tags": []}, {"id": 3, "tags": ["z"]}]),
    ~s({"numbers": [1.0, 10.0, 1e21, 1e-7, 0.1, 0.30000000000000004, -1.7976931348623157e308]}),
    ~s({"keys with spaces": 1, "": 2, "ключ": 3, "🔑": 4}),
    ~s(["a\\u0062c", "\\ud7ff", "\\ue000", "\\uffff"]),
    ~s({"long": "#{String.duplicate("lorem ipsum ", 200)}"}),
    ~s([#{Enum.join(1..300, ",")}]),
    ~s({"capabilities":{"tools":{"listChanged":true}},"protocolVersion":"2025-06-18","serverInfo":{"name":"elixir_scope","version":"0.1.0"}})
  ]

  test "agrees with the oracle on a corpus of valid documents" do
    for text <- @corpus do
      assert {:ok, ours} = JSON.decode(text), "rejected #{text}"
      assert same?(ours, Oracle.decode!(text)), "disagrees on #{text}"
      assert same?(roundtrip(ours), ours)
    end
  end

  # ---- the fuzz ------------------------------------------------------------------

  @interesting ~c"{}[]\":,\\/ \t\n\r0123456789-+.eEtrufalsn" ++
                 [0, 1, 0x1F, 0x7F, 0x80, 0xC3, 0xFF]

  defp rand_byte do
    if :rand.uniform(3) == 1, do: :rand.uniform(256) - 1, else: Enum.random(@interesting)
  end

  defp rand_bytes(n), do: for(_ <- 1..n//1, into: <<>>, do: <<rand_byte()>>)

  defp mutate(text, 0), do: text

  defp mutate(text, k) do
    size = byte_size(text)
    at = if size == 0, do: 0, else: :rand.uniform(size) - 1
    <<pre::binary-size(at), rest::binary>> = text

    text =
      case {:rand.uniform(6), rest} do
        {1, <<_, post::binary>>} ->
          pre <> <<rand_byte()>> <> post

        {2, _} ->
          pre <> <<rand_byte()>> <> rest

        {3, <<_, post::binary>>} ->
          pre <> post

        {4, _} ->
          pre <>
            Enum.random(["\\u0000", "\\ud800", "\\", "\"", "1e999", "[", "{", ",", "]"]) <> rest

        {5, _} ->
          pre <> binary_part(text, at, min(8, size - at)) <> rest

        _ ->
          pre <> rand_bytes(:rand.uniform(3)) <> rest
      end

    mutate(text, k - 1)
  end

  defp rand_number do
    digits = fn n -> Enum.map_join(1..n, fn _ -> Integer.to_string(:rand.uniform(10) - 1) end) end
    sign = Enum.random(["", "-", "+", "--"])
    int = Enum.random([digits.(:rand.uniform(80)), "0", "00", ""])
    frac = Enum.random(["", "", "." <> digits.(:rand.uniform(30)), "."])

    exp =
      Enum.random([
        "",
        "",
        "e" <> digits.(:rand.uniform(4)),
        "E-#{:rand.uniform(999)}",
        "e+",
        "e400"
      ])

    sign <> int <> frac <> exp
  end

  defp fuzz_input do
    case :rand.uniform(10) do
      1 ->
        rand_bytes(:rand.uniform(40))

      2 ->
        doc = Enum.random(@corpus)
        binary_part(doc, 0, :rand.uniform(byte_size(doc)) - 1)

      n when n in 3..6 ->
        mutate(Enum.random(@corpus), :rand.uniform(4))

      7 ->
        n = 100 + :rand.uniform(100)
        open = Enum.random(["[", ~s({"a":), "[{\"k\":"])
        close = String.duplicate(Enum.random(["]", "}", "}]", ""]), n)
        String.duplicate(open, n) <> "1" <> close

      8 ->
        Enum.random(["", "[", ~s({"n":)]) <> rand_number() <> Enum.random(["", "]", "}", " "])

      9 ->
        a = Enum.random(@corpus)
        b = Enum.random(@corpus)
        cut = :rand.uniform(byte_size(b)) - 1
        binary_part(a, 0, :rand.uniform(byte_size(a))) <> binary_part(b, cut, byte_size(b) - cut)

      _ ->
        # a fresh key on every input: if decoding made atoms, the count would show it
        ~s({"fuzz_#{:rand.uniform(1_000_000_000)}": ) <> mutate(Enum.random(@corpus), 1) <> "}"
    end
  end

  # Where we reject on purpose what the oracle accepts (see ElixirScope.JSON's limits),
  # and the oracle's laxities: a trailing comma in an object ({"a":1,}) and a sign in a
  # \u escape ("\u+123": String.to_integer/2 takes one).
  defp known_stricter?(msg, text) do
    msg =~ ~r/^(number longer than 63|\\u0000 in a string|nesting deeper than 128)/ or
      text =~ ~r/\\u[+-]/ or
      case Regex.run(~r/^invalid JSON at byte (\d+): expected a string key$/, msg) do
        [_, at] -> :binary.at(text, String.to_integer(at)) == ?}
        nil -> false
      end
  end

  # :ok or :error, after checking the answer
  defp fuzz_one(text, seed) do
    case JSON.decode(text) do
      {:ok, ours} ->
        case oracle(text) do
          {:ok, theirs} ->
            assert same?(ours, theirs),
                   "seed #{seed}: #{inspect(text)} decoded as #{inspect(ours)}, oracle #{inspect(theirs)}"

            assert same?(JSON.decode!(JSON.encode!(ours)), ours)
            :ok

          :rejected ->
            flunk(
              "seed #{seed}: accepted #{inspect(text)} (as #{inspect(ours)}); the oracle rejects it"
            )
        end

      {:error, msg} when is_binary(msg) ->
        assert String.valid?(msg)

        if oracle(text) != :rejected and not known_stricter?(msg, text),
          do: flunk("seed #{seed}: rejected #{inspect(text)} (#{msg}); the oracle accepts it")

        :error

      other ->
        flunk("seed #{seed}: #{inspect(text)} gave #{inspect(other)}")
    end
  end

  @tag timeout: 120_000
  test "fuzz: 100k malformed inputs never crash, never make atoms, agree with the oracle" do
    seed = String.to_integer(System.get_env("JSON_FUZZ_SEED", "20250611"))
    n = String.to_integer(System.get_env("JSON_FUZZ_N", "100000"))
    :rand.seed(:exsss, {seed, seed, seed})

    # warm up, so that loading code (which adds atoms) is done before we count
    for _ <- 1..2000, do: fuzz_one(fuzz_input(), seed)
    atoms = :erlang.system_info(:atom_count)

    {accepted, rejected} =
      Enum.reduce(1..n, {0, 0}, fn _, {ok, err} ->
        if fuzz_one(fuzz_input(), seed) == :ok, do: {ok + 1, err}, else: {ok, err + 1}
      end)

    assert :erlang.system_info(:atom_count) == atoms
    # the generator must exercise both sides
    assert accepted > n / 20 and rejected > n / 2, "accepted #{accepted}, rejected #{rejected}"
  end

  # ---- encoding ----------------------------------------------------------------

  test "encodes terms as JSON" do
    assert JSON.encode(%{}) == {:ok, "{}"}
    assert JSON.encode([]) == {:ok, "[]"}
    assert JSON.encode([1, -2, 0]) == {:ok, "[1,-2,0]"}

    assert JSON.encode([true, false, nil, :atom, :"with space", :é, :日本]) ==
             {:ok, ~s([true,false,null,"atom","with space","é","日本"])}

    assert JSON.encode(%{a: 1, b: %{"c" => [%{}]}}) == {:ok, ~s({"a":1,"b":{"c":[{}]}})}

    assert JSON.encode(%{1 => "one", -5 => "minus five"}) ==
             {:ok, ~s({"-5":"minus five","1":"one"})}

    assert JSON.encode(%{日本: 1, é: 2}) |> elem(1) |> JSON.decode!() == %{"日本" => 1, "é" => 2}
    assert JSON.encode(9_223_372_036_854_775_807) == {:ok, "9223372036854775807"}
    assert JSON.encode(-9_223_372_036_854_775_808) == {:ok, "-9223372036854775808"}
    assert JSON.encode(~c"abc") == {:ok, "[97,98,99]"}
    big_map = Map.new(1..100, &{"k#{&1}", &1})
    assert JSON.decode!(JSON.encode!(big_map)) == big_map
  end

  test "object keys in Erlang term order, whatever order the runtime iterates the map in" do
    # Atoms made in reverse order: OTP 26+ iterates a small map of atom keys in the
    # order its atoms were made.
    [z, m, a] =
      for s <- ~w(z m a),
          do: String.to_atom("json_key_order_#{s}_#{System.unique_integer([:positive])}")

    {:ok, json} = JSON.encode(%{z => 1, m => 2, a => 3})
    assert json == ~s({"#{a}":3,"#{m}":2,"#{z}":1})

    # More than 32 keys: a hash map, iterated in hash order on every OTP.
    keys = Enum.map(1..100, &"k#{&1}")
    {:ok, json} = JSON.encode(Map.new(keys, &{&1, 0}))
    assert json == "{" <> Enum.map_join(Enum.sort(keys), ",", &~s("#{&1}":0)) <> "}"

    # Integers (by value), then atoms, then strings.
    assert JSON.encode(%{"a" => 1, :b => 2, 10 => 3, 9 => 4}) ==
             {:ok, ~s({"9":4,"10":3,"b":2,"a":1})}
  end

  test "encodes floats in the shortest form that reads back the same, always as floats" do
    for {f, text} <- [
          {1.0, "1.0"},
          {-0.0, "-0.0"},
          {0.1, "0.1"},
          {0.30000000000000004, "0.30000000000000004"},
          {100.0, "100.0"},
          {1.5, "1.5"},
          {1.0e21, "1.0e21"},
          {1.0e-7, "1.0e-7"},
          {1.7976931348623157e308, "1.7976931348623157e308"},
          {2.2250738585072014e-308, "2.2250738585072014e-308"},
          {-123.456, "-123.456"},
          {1 / 3, "0.3333333333333333"}
        ] do
      assert JSON.encode(f) == {:ok, text}
      assert Oracle.decode!(text) === f or (f == 0 and Oracle.decode!(text) == 0)
    end

    :rand.seed(:exsss, {1, 2, 3})

    for _ <- 1..5000 do
      f = (:rand.uniform() - 0.5) * :math.pow(10, :rand.uniform(600) - 300)
      assert {:ok, text} = JSON.encode(f)
      assert String.to_float(String.replace(text, ~r/^(-?\d+)e/, "\\1.0e")) === f
      assert same?(JSON.decode!(text), f)
    end
  end

  test "escapes quotes, backslashes and control characters; keeps other UTF-8 as is" do
    assert JSON.encode(~s(a"b\\c/d)) == {:ok, ~S("a\"b\\c/d")}
    assert JSON.encode("\b\f\n\r\t") == {:ok, ~S("\b\f\n\r\t")}
    assert JSON.encode(<<0, 1, 0x1F, 0x7F>>) == {:ok, ~s("\\u0000\\u0001\\u001f\x7F")}
    assert JSON.encode("é日本😀\u2028") == {:ok, ~s("é日本😀\u2028")}
    all = for b <- 1..127, into: <<>>, do: <<b>>
    assert {:ok, json} = JSON.encode(all)
    assert JSON.decode!(json) == all
    assert Oracle.decode!(json) == all
    # NUL is written as \u0000, valid JSON that decode/1 refuses (see the limits)
    assert {:ok, ~S("a\u0000b")} = JSON.encode("a\0b")
    assert Oracle.decode!(~S("a\u0000b")) == "a\0b"
    # long runs go through the word-at-a-time path, with escapes at every offset
    for at <- 0..20 do
      s = String.duplicate("x", at) <> "\"" <> String.duplicate("y", 20 - at) <> "é\n"
      assert JSON.decode!(JSON.encode!(s)) == s
    end
  end

  test "every kind of unencodable term is an error naming it and where it is" do
    port = Port.open({:spawn, "cat"}, [])

    cases = [
      {{1, 2}, "cannot encode a tuple"},
      {self(), "cannot encode a pid"},
      {port, "cannot encode a port"},
      {make_ref(), "cannot encode a reference"},
      {fn -> :ok end, "cannot encode a function"},
      {[1 | 2], "cannot encode an improper list (its tail is an integer)"},
      {[1, 2 | :tail], "cannot encode an improper list (its tail is an atom)"},
      {<<1::3>>, "cannot encode a bitstring that is not a binary"},
      {<<0xFF>>, "cannot encode a binary that is not UTF-8 (invalid byte at 0)"},
      {<<"ok", 0xED, 0xA0, 0x80>>,
       "cannot encode a binary that is not UTF-8 (invalid byte at 2)"},
      {2 ** 64, "cannot encode an integer beyond 64 bits"},
      {-(2 ** 63) - 1, "cannot encode an integer beyond 64 bits"},
      {%{{:a} => 1}, "cannot encode a map key that is a tuple"},
      {%{1.5 => 1}, "cannot encode a map key that is a float"},
      {%{[] => 1}, "cannot encode a map key that is a list"},
      {%{<<0xFF>> => 1}, "cannot encode a map key that is not UTF-8 (invalid byte at 0)"},
      {%{(2 ** 70) => 1}, "cannot encode a map key that is an integer beyond 64 bits"},
      {%{:a => 1, "a" => 2}, ~s(cannot encode a map with two keys written as "a")},
      {%{1 => 1, "1" => 2}, ~s(cannot encode a map with two keys written as "1")},
      {URI.parse("http://x"), "cannot encode a struct (URI); convert it to a map first"},
      {%{result: %{content: [%{text: "ok"}, %{text: {:error, 1}}]}},
       "cannot encode a tuple at $.result.content[1].text"},
      {%{"a b" => [%{"é" => self()}]}, ~s(cannot encode a pid at $["a b"][0]["??"])},
      {%{1 => [nil, %{at: DateTime.from_unix!(0)}]},
       ~s(cannot encode a struct (DateTime\); convert it to a map first at $["1"][1].at)}
    ]

    for {term, msg} <- cases do
      assert JSON.encode(term) == {:error, msg}
      assert_raise ArgumentError, msg, fn -> JSON.encode!(term) end
    end

    Port.close(port)

    deep = Enum.reduce(1..128, 1, fn _, acc -> [acc] end)
    assert {:ok, _} = JSON.encode(deep)

    assert {:error, "nesting deeper than 128 levels at $...[0][0][0][0][0][0][0][0]"} =
             JSON.encode([deep])

    deep_map = Enum.reduce(1..200, 1, fn _, acc -> %{a: acc} end)

    assert {:error, "nesting deeper than 128 levels at $....a.a.a.a.a.a.a.a"} =
             JSON.encode(deep_map)
  end

  test "encode -> decode round trips" do
    terms = [
      %{
        "jsonrpc" => "2.0",
        "id" => 7,
        "result" => %{"tools" => [%{"name" => "t", "inputSchema" => %{"type" => "object"}}]}
      },
      [1, -1, 0, 9_007_199_254_740_992, -9_007_199_254_740_992, 0.5, -2.5e-10, 1.0e100],
      %{"nested" => [[[%{"x" => [[], %{}]}]]]},
      ["é", "日本", "😀", "\u0001\u001f\"\\/", String.duplicate("long ", 5000)],
      %{"" => "", "k" => nil, "t" => true, "f" => false},
      Map.new(1..2000, &{"key #{&1}", [&1, &1 / 3, "v#{&1}"]})
    ]

    for t <- terms, do: assert(same?(roundtrip(t), t))
    # atoms come back as strings, integer keys as string keys
    assert roundtrip(%{a: :b, c: [:d, nil]}) == %{"a" => "b", "c" => ["d", nil]}
    assert roundtrip(%{1 => 2}) == %{"1" => 2}
  end

  # ---- scheduling ----------------------------------------------------------------

  test "big inputs and outputs run dirty: no normal scheduler is held over 1 ms" do
    big_term = %{
      "jsonrpc" => "2.0",
      "id" => 1,
      "result" => %{
        "content" =>
          for i <- 1..3000 do
            %{
              "type" => "text",
              "text" => "event #{i} é " <> String.duplicate("x", 300),
              "n" => i / 7
            }
          end
      }
    }

    floats = for i <- 1..50_000, do: i * 1.2345678901
    unicode = String.duplicate("é日本😀", 100_000)
    {:ok, big_json} = JSON.encode(big_term)
    {:ok, float_json} = JSON.encode(floats)
    assert byte_size(big_json) > 1_000_000

    long =
      LongSchedule.reports(fn ->
        for _ <- 1..3 do
          assert {:ok, ^big_json} = JSON.encode(big_term)
          assert {:ok, ^float_json} = JSON.encode(floats)
          assert {:ok, _} = JSON.encode(unicode)
          assert same?(JSON.decode!(big_json), big_term)
          assert same?(JSON.decode!(float_json), floats)
          # the largest inputs that stay on a normal scheduler
          assert {:ok, _} = JSON.decode(JSON.encode!(Enum.take(floats, 700)))
          assert {:ok, _} = JSON.decode(~s(") <> String.duplicate("é", 31_000) <> ~s("))
          assert {:ok, _} = JSON.encode(Enum.take(floats, 250))
          assert {:ok, _} = JSON.encode(Enum.to_list(1..3900))
        end
      end)

    assert long == [], "the test process held a scheduler too long: #{inspect(long)}"
  end
end
