defmodule ElixirScope.CrashSafetyTest do
  @moduledoc """
  A VM killed with SIGKILL while it persists: its files must load, losing at most the
  segment being written when it died. The recording VM is a real separate OS process.
  """
  use ExUnit.Case, async: false

  alias ElixirScope.TraceDB
  alias ElixirScope.Test.Stores

  @moduletag :tmp_dir
  @moduletag timeout: 60_000

  setup do
    on_exit(fn -> Stores.stop_all([:survivor]) end)
  end

  test "kill -9 in the middle of writing loses at most the unflushed tail", %{tmp_dir: dir} do
    script = """
    :ok = ElixirScope.setup(tracing_level: :off, persist: true, persist_path: #{inspect(dir)}, persist_interval: 10)
    IO.puts("ready")
    Stream.iterate(1, &(&1 + 1))
    |> Enum.each(fn i ->
      ElixirScope.TraceDB.store_event(:tick, %{i: i, pad: :binary.copy("x", 200)})
      if rem(i, 500) == 0, do: Process.sleep(1)
    end)
    """

    elixir = System.find_executable("elixir")

    ebins =
      Enum.flat_map([:elixir_scope, :logger], &["-pa", Path.join(:code.lib_dir(&1), "ebin")])

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        args: ebins ++ ["-e", script]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    # whatever happens to this test, the recording VM does not outlive it
    on_exit(fn ->
      System.cmd("kill", ["-9", Integer.to_string(os_pid)], stderr_to_stdout: true)
    end)

    assert_receive {^port, {:data, "ready" <> _}}, 20_000
    # let it write many segments, then kill it without warning, mid-stream
    Process.sleep(800)
    System.cmd("kill", ["-9", Integer.to_string(os_pid)])
    assert_receive {^port, {:exit_status, _}}, 10_000

    assert {:ok, summary} = ElixirScope.load(dir, name: :survivor, max_events: 2_000_000)
    assert summary.events > 1_000

    # at most the last segment of the last file is damaged
    case summary.skipped do
      [] ->
        :ok

      [{file, _segment, why}] ->
        assert file == List.last(ElixirScope.Persister.files(dir)) and
                 why in [:truncated_data, :truncated_header]
    end

    # what loaded is one gap-free run of the recorded ticks, from the first
    ticks = TraceDB.query_events(store: :survivor, type: :tick) |> Enum.map(& &1.i)
    assert ticks == Enum.to_list(1..length(ticks))
  end
end
