defmodule ElixirScope.MCPTextTest do
  @moduledoc "How tool answers are cut to the budget (`ElixirScope.MCP.Text`)."
  use ExUnit.Case, async: true

  alias ElixirScope.MCP.Text

  # 1,000 tokens: 3,000 bytes.
  @config %{max_tokens: 1_000}

  defp lines(n, size),
    do: for(i <- 1..n, do: {String.duplicate("x", size - 1) <> "#{rem(i, 10)}", "e#{i}"})

  test "everything fits: no footer" do
    assert Text.page("h:", lines(3, 10), nil, @config) ==
             Enum.join(["h:" | Enum.map(lines(3, 10), &elem(&1, 0))], "\n")
  end

  test "more than the budget: cut after whole lines, continued by the last shown line's cursor" do
    text = Text.page("h:", lines(100, 100), nil, @config)
    assert byte_size(text) <= 3_000
    shown = text |> String.split("\n") |> Enum.count(&(byte_size(&1) == 100))
    assert shown > 20
    assert text =~ ~s(More: call again with "cursor": "e#{shown}")
  end

  test "all lines fit but the source has more: its cursor" do
    assert Text.page("h:", lines(2, 10), "e2", @config) =~ ~s("cursor": "e2")
  end

  test "a listing without cursors says it was cut" do
    text = Text.page("h:", Enum.map(lines(100, 100), &{elem(&1, 0), nil}), nil, @config)
    assert text =~ ~r/\[\d+ more cut to fit the answer budget/
  end

  test "a single line longer than the budget is cut at a character boundary" do
    line = String.duplicate("é", 5_000)
    text = Text.page("h:", [{line, "e1"}], nil, @config)
    assert byte_size(text) <= 3_000
    assert String.valid?(text)
    refute text =~ "More:"
    assert String.ends_with?(text, "…")
  end

  test "fit_text cuts any text to the budget, validly" do
    text = Text.fit_text(String.duplicate("日本", 3_000), @config)
    assert byte_size(text) <= 3_000
    assert String.valid?(text)
    assert text =~ "[cut to fit]"
  end
end
