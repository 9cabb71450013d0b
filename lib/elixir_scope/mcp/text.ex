defmodule ElixirScope.MCP.Text do
  @moduledoc false
  # How tool answers read: compact, deterministic lines of text (the same question
  # over the same recording gives the same answer), and never longer than the
  # server's budget. Assistants cap what a tool may return (Claude Code at 25,000
  # tokens); a listing that would pass the budget stops early and names the cursor
  # that continues it.

  alias ElixirScope.Event

  # Tokens are counted as 3 bytes each: a cautious estimate for text full of pids,
  # punctuation and code, which tokenizes denser than prose.
  @bytes_per_token 3

  @doc false
  def budget(config), do: config.max_tokens * @bytes_per_token

  @doc false
  # `term` inspected in at most `width` characters, on one line.
  def term(term, width \\ 300), do: Event.short(term, width)

  @doc false
  def pid(pid), do: inspect(pid)

  @doc false
  # One event on one line: id, timestamp (what the tools taking a timestamp expect),
  # type and what happened.
  def event(e), do: "##{e.id} #{time(e.timestamp)} #{e.type} #{Event.summary(e, 200)}"

  @doc false
  # A timestamp as the tools show it: its wall-clock time (UTC, microseconds) for
  # people, then the raw value after t= that tools taking a timestamp expect back.
  def time(nil), do: "t=?"

  def time(ts) do
    case ElixirScope.WallClock.format(ts) do
      nil -> "t=#{ts}"
      at -> "#{at} t=#{ts}"
    end
  end

  @doc false
  def duration(nil), do: "?"

  def duration(native) do
    us = System.convert_time_unit(native, :native, :microsecond)

    cond do
      us >= 10_000_000 -> "#{div(us, 1_000_000)} s"
      us >= 10_000 -> "#{div(us, 1_000)} ms"
      true -> "#{us} µs"
    end
  end

  @doc false
  def mfa({m, f, a}), do: "#{inspect(m)}.#{f}/#{a}"
  def mfa(other), do: term(other, 80)

  @doc """
  Lines under a heading, cut to fit the budget.

    * `lines` — the lines to show, each paired with the cursor that continues the
      listing *after* it: `[{line, cursor}]`;
    * `more` — the cursor after the last line when the source has more than `lines`
      (nil when `lines` is all there is).

  Returns the text. When lines are left out (by the budget or by `more`), its last
  line names the cursor to pass back.
  """
  def page(heading, lines, more, config) do
    budget = budget(config) - byte_size(heading) - 200
    {shown, next} = fit(lines, budget, [], nil)
    left_out = length(lines) - length(shown)

    footer =
      cond do
        next == :all and more -> [continue(more)]
        next == :all -> []
        next -> [continue(next)]
        # A listing without cursors (a top-n): say that it was cut.
        true -> ["[#{left_out} more cut to fit the answer budget: ask for a smaller limit]"]
      end

    Enum.join([heading | shown] ++ footer, "\n")
  end

  defp continue(cursor), do: "More: call again with \"cursor\": \"#{cursor}\""

  defp fit([], _budget, acc, _cursor), do: {Enum.reverse(acc), :all}

  defp fit([{line, after_it} | rest], budget, acc, cursor) do
    size = byte_size(line) + 1

    cond do
      size <= budget -> fit(rest, budget - size, [line | acc], after_it)
      # The first line alone is too long: cut it rather than show nothing.
      acc == [] -> {[cut(line, budget)], if(rest == [], do: :all, else: after_it)}
      true -> {Enum.reverse(acc), cursor}
    end
  end

  @doc false
  # Text cut to fit the budget, at a character boundary.
  def fit_text(text, config) do
    budget = budget(config)
    if byte_size(text) <= budget, do: text, else: cut(text, budget - 40) <> "\n[cut to fit]"
  end

  defp cut(text, bytes) do
    if byte_size(text) <= bytes do
      text
    else
      part = binary_part(text, 0, max(bytes, 0))

      # A cut inside a multi-byte character would leave invalid UTF-8.
      valid =
        case :unicode.characters_to_binary(part) do
          {_incomplete_or_error, good, _rest} -> good
          good -> good
        end

      valid <> "…"
    end
  end
end
