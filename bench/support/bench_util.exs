defmodule Bench.Util do
  @moduledoc false
  # Timing, memory and table-printing helpers (no Benchee: plain monotonic clocks,
  # medians of several samples).

  def now_ns, do: System.monotonic_time(:nanosecond)

  @doc "Starts the clock that `progress/1` reports against."
  def start_clock,
    do: :persistent_term.put({__MODULE__, :t0}, System.monotonic_time(:millisecond))

  @doc "A progress line on stderr (the tables go to stdout), with seconds since `start_clock/0`."
  def progress(msg) do
    t0 = :persistent_term.get({__MODULE__, :t0})
    IO.puts(:stderr, "[bench #{div(System.monotonic_time(:millisecond) - t0, 1000)}s] #{msg}")
  end

  @doc "The list rotated left by k (mod its length): each round of alternatives starts elsewhere."
  def rotate(list, k) do
    k = rem(k, length(list))
    Enum.drop(list, k) ++ Enum.take(list, k)
  end

  @doc "Runs fun once; returns {nanoseconds, result}."
  def time_ns(fun) do
    t0 = now_ns()
    result = fun.()
    {now_ns() - t0, result}
  end

  def median([]), do: nil

  def median(list) do
    sorted = Enum.sort(list)
    n = length(sorted)
    mid = div(n, 2)

    if rem(n, 2) == 1,
      do: Enum.at(sorted, mid),
      else: (Enum.at(sorted, mid - 1) + Enum.at(sorted, mid)) / 2
  end

  @doc "Nanoseconds per call of fun over `iters` calls (after a garbage collection)."
  def sample_ns(fun, iters) do
    :erlang.garbage_collect()
    t0 = now_ns()
    loop(fun, iters)
    (now_ns() - t0) / iters
  end

  defp loop(_fun, 0), do: :ok

  defp loop(fun, n) do
    fun.()
    loop(fun, n - 1)
  end

  @doc "Calls per sample so that one sample lasts about target_ns (at least 1)."
  def iterations(single_ns, target_ns),
    do: max(1, min(100_000, div(target_ns, max(single_ns, 1))))

  @doc "Resident set size of this OS process, in bytes (from /proc/self/status)."
  def rss_bytes do
    "/proc/self/status"
    |> File.read!()
    |> String.split("\n")
    |> Enum.find_value(fn
      "VmRSS:" <> rest ->
        rest |> String.trim() |> String.trim_trailing(" kB") |> String.to_integer()

      _ ->
        nil
    end)
    |> Kernel.*(1024)
  end

  def gc_all, do: Enum.each(Process.list(), &:erlang.garbage_collect/1)

  ## formatting

  def f(x, decimals) when is_number(x), do: :erlang.float_to_binary(x / 1, decimals: decimals)

  @doc "A time in µs with 3 significant-ish digits."
  def us(ns) do
    us = ns / 1000

    cond do
      us >= 1000 -> f(us, 0)
      us >= 100 -> f(us, 1)
      us >= 10 -> f(us, 2)
      true -> f(us, 3)
    end
  end

  def ratio(x) do
    cond do
      x >= 100 -> f(x, 0) <> "x"
      x >= 10 -> f(x, 1) <> "x"
      true -> f(x, 2) <> "x"
    end
  end

  def int(n) when is_integer(n) do
    n
    |> Integer.to_string()
    |> String.reverse()
    |> String.graphemes()
    |> Enum.chunk_every(3)
    |> Enum.map_join(",", &Enum.join/1)
    |> String.reverse()
  end

  def int(n) when is_float(n), do: int(round(n))

  def mib(bytes), do: f(bytes / 1_048_576, 1) <> " MiB"

  @doc """
  Times implementations of one operation against each other, interleaved. Each runs
  once or twice to warm up (giving its result), then up to 7 samples each (5 when one
  call takes over 100 ms) of enough iterations to last about 20 ms; `order` is the
  order within a round. Returns `{results, samples_ns}`, maps keyed like `funs`.
  """
  def measure_interleaved(funs, order) do
    slow_ns = 100_000_000

    first =
      Map.new(funs, fn {k, fun} ->
        {t1, r} = time_ns(fun)
        {t2, _} = if t1 < slow_ns, do: time_ns(fun), else: {t1, r}
        {k, {min(t1, t2), r}}
      end)

    plan =
      Map.new(first, fn {k, {t, _}} ->
        {k, {iterations(t, 20_000_000), if(t > slow_ns, do: 5, else: 7)}}
      end)

    samples =
      for s <- 1..7, k <- order, {iters, n} = plan[k], s <= n, reduce: %{} do
        acc ->
          ns = sample_ns(funs[k], iters)
          Map.update(acc, k, [ns], &[ns | &1])
      end

    {Map.new(first, fn {k, {_t, r}} -> {k, r} end), samples}
  end

  @doc "Prints rows (lists of strings) under headers; column 0 left-aligned, the rest right."
  def table(title, headers, rows) do
    all = [headers | rows]
    ncols = length(headers)

    widths =
      for c <- 0..(ncols - 1),
          do: all |> Enum.map(&String.length(Enum.at(&1, c, ""))) |> Enum.max()

    line = fn row ->
      row
      |> Enum.with_index()
      |> Enum.map_join("  ", fn {cell, c} ->
        w = Enum.at(widths, c)
        if c == 0, do: String.pad_trailing(cell, w), else: String.pad_leading(cell, w)
      end)
      |> String.trim_trailing()
    end

    rule = String.duplicate("-", Enum.sum(widths) + 2 * (ncols - 1))
    IO.puts("\n" <> title)
    IO.puts(rule)
    IO.puts(line.(headers))
    IO.puts(rule)
    Enum.each(rows, &IO.puts(line.(&1)))
    IO.puts(rule)
  end

  @doc """
  Prints query timings, ElixirScope against the original and the best plain-ETS
  designs: rows are maps with :label, :size, :hits, :same and :ns (each with :es,
  :orig, :best).
  """
  def query_table(title, rows) do
    table_rows =
      for r <- rows do
        h = r.hits

        hits =
          if h.es == h.orig and h.es == h.best,
            do: Integer.to_string(h.es),
            else: "#{h.es}/#{h.orig}/#{h.best}"

        [
          r.label,
          int(r.size),
          hits,
          if(r.same, do: "yes", else: "NO"),
          us(r.ns.es),
          us(r.ns.orig),
          us(r.ns.best),
          ratio(r.ns.orig / r.ns.es),
          ratio(r.ns.best / r.ns.es)
        ]
      end

    headers = ~w(query events hits same ElixirScope original bestETS orig/ES best/ES)
    table(title, headers, table_rows)
  end
end
