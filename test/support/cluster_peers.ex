defmodule ElixirScope.Test.ClusterPeers do
  @moduledoc """
  Distributed peer nodes (OTP's `:peer`) for the cluster tests and bench. Each node runs
  this VM's code paths (Elixir, and ElixirScope's build with its test helpers: the code
  under test, loaded with `-pa`, never sent over the wire) and is controlled over
  standard I/O, so that the test keeps control of a node whose distribution connection
  it cuts and the test VM itself never starts distribution. The nodes are named
  `<prefix>@127.0.0.1` (long names; `epmd -daemon` is started first) and share a
  cookie; each dies with the process that started it. `global`'s prevention of
  overlapping partitions is off: a test that cuts one node off would otherwise see
  `global` disconnect healthy ones too.
  """

  @cookie "elixir_scope_cluster_test"

  @doc "Starts `epmd -daemon` (a no-op when one runs)."
  def epmd! do
    erts_epmd =
      Path.join([:code.root_dir(), "erts-#{:erlang.system_info(:version)}", "bin", "epmd"])

    epmd = if File.exists?(erts_epmd), do: erts_epmd, else: System.find_executable("epmd")
    {_, 0} = System.cmd(epmd, ["-daemon"])
    :ok
  end

  @doc """
  Starts a peer named `name` (an atom or string; made unique per run). Options:
  `elixir_scope: false` leaves ElixirScope's code out of its code path.
  Returns `{peer, node}`.
  """
  def start!(name, opts \\ []) do
    epmd!()

    apps =
      [:elixir, :logger] ++
        if(Keyword.get(opts, :elixir_scope, true), do: [:elixir_scope], else: [])

    paths =
      Enum.flat_map(apps, fn app ->
        case :code.lib_dir(app) do
          dir when is_list(dir) -> [~c"-pa", to_charlist(Path.join(dir, "ebin"))]
          _ -> []
        end
      end)

    unique = "#{name}_#{System.pid()}_#{System.unique_integer([:positive])}"

    {:ok, peer, node} =
      :peer.start_link(%{
        name: String.to_atom(unique),
        host: ~c"127.0.0.1",
        longnames: true,
        connection: :standard_io,
        args:
          paths ++
            [~c"-setcookie", to_charlist(@cookie), ~c"-kernel", ~c"logger_level", ~c"critical"] ++
            [~c"-kernel", ~c"prevent_overlapping_partitions", ~c"false"],
        wait_boot: 60_000
      })

    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:elixir])
    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:logger])
    {peer, node}
  end

  @doc "Calls `m.f(a...)` on the peer (over standard I/O)."
  def call({peer, _node}, m, f, a \\ [], timeout \\ 30_000),
    do: :peer.call(peer, m, f, a, timeout)

  @doc "Connects `from` to each of `nodes` over distribution."
  def connect!(from, nodes) do
    for {_, node} <- nodes, do: true = call(from, Node, :connect, [node])
    :ok
  end

  @doc "The peer's OS process id, to stop (SIGSTOP), resume or kill it."
  def os_pid(peer), do: call(peer, :os, :getpid, []) |> List.to_string()

  @doc "Sends a signal (`\"STOP\"`, `\"CONT\"`, `\"KILL\"`) to the peer's OS process."
  def signal(os_pid, sig) do
    {_, 0} = System.cmd("kill", ["-#{sig}", os_pid])
    :ok
  end

  @doc """
  Kills the peer's OS process if it is still there (a test that stopped one with
  SIGSTOP kills it on exit: a stopped peer would outlive the test VM).
  """
  def kill(os_pid) do
    System.cmd("kill", ["-KILL", os_pid], stderr_to_stdout: true)
    :ok
  end

  @doc "Waits (polling, at most `ms`) until `fun` returns true; its last value."
  def eventually(fun, ms \\ 10_000) do
    deadline = System.monotonic_time(:millisecond) + ms

    Stream.repeatedly(fn ->
      v = fun.()
      unless v, do: Process.sleep(20)
      v
    end)
    |> Enum.find(fn v -> v || System.monotonic_time(:millisecond) > deadline end)
  end

  @doc "Stops a peer (no error when it is gone already)."
  def stop({peer, _}) do
    :peer.stop(peer)
  catch
    :exit, _ -> :ok
  end
end
