defmodule ElixirScope.Test.Browser do
  @moduledoc """
  Runs a script of `test/ui_browser` (Node.js + `playwright-core`, pinned by its
  lockfile, driving Debian's `chromium`; `make test` runs `npm ci` there) step by step:
  the script prints one JSON object per step on stdout and waits for `go` on stdin;
  `steps/4` calls `on_step` with each (decoded, string keys) before answering, so a test
  can act on the application between two steps of the browser (trace a process it just
  started, look at the recording).
  """

  @dir Path.expand("../ui_browser", __DIR__)

  @doc "Why the browser cannot run here, or nil."
  def missing do
    cond do
      System.find_executable("node") == nil ->
        "Node.js is not installed (make setup)"

      not File.dir?(Path.join(@dir, "node_modules/playwright-core")) ->
        "playwright-core is not installed: run `npm ci` in test/ui_browser (make test does)"

      not (File.exists?("/usr/bin/chromium") or System.get_env("CHROMIUM") != nil) ->
        "Debian's chromium is not installed (make setup)"

      true ->
        nil
    end
  end

  @doc """
  Runs `script` with `args`; returns the steps seen, in order, once it exits with status
  0 (raises with its output otherwise).
  """
  def steps(script, args, on_step, timeout \\ 120_000) do
    port =
      Port.open({:spawn_executable, System.find_executable("node")}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        {:line, 1_048_576},
        args: [Path.join(@dir, script) | args],
        cd: @dir
      ])

    loop(port, on_step, timeout, [], [])
  end

  defp loop(port, on_step, timeout, steps, output) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        case decode(line) do
          %{"step" => _} = step ->
            on_step.(step)
            Port.command(port, "go\n")
            loop(port, on_step, timeout, [step | steps], [line | output])

          nil ->
            loop(port, on_step, timeout, steps, [line | output])
        end

      {^port, {:data, {:noeol, part}}} ->
        loop(port, on_step, timeout, steps, [part | output])

      {^port, {:exit_status, 0}} ->
        Enum.reverse(steps)

      {^port, {:exit_status, status}} ->
        raise "the browser script exited with #{status}:\n" <>
                Enum.join(Enum.reverse(output), "\n")
    after
      timeout ->
        Port.close(port)

        raise "the browser script did not finish in #{timeout} ms:\n" <>
                Enum.join(Enum.reverse(output), "\n")
    end
  end

  defp decode("{" <> _ = line) do
    ElixirScope.Test.JSON.decode!(line)
  rescue
    ArgumentError -> nil
  end

  defp decode(_line), do: nil
end
