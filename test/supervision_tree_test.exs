defmodule ElixirScope.SupervisionTreeTest do
  # Starts and stops a real application (a node-wide thing): not async.
  use ExUnit.Case, async: false

  # Application start/stop notices.
  @moduletag :capture_log

  alias ElixirScope.SupervisionTree

  @app :elixir_scope_tree_test

  defmodule Top do
    use Supervisor

    def start_link(arg), do: Supervisor.start_link(__MODULE__, arg, name: __MODULE__)

    @impl true
    def init(_arg) do
      inner = %{
        id: :inner,
        type: :supervisor,
        start:
          {Supervisor, :start_link,
           [
             [
               %{id: :w1, start: {Agent, :start_link, [fn -> 1 end]}},
               %{id: :w2, start: {Agent, :start_link, [fn -> 2 end]}},
               %{
                 id: :deep,
                 type: :supervisor,
                 start:
                   {Supervisor, :start_link,
                    [
                      [%{id: :leaf, start: {Agent, :start_link, [fn -> :leaf end]}}],
                      [strategy: :rest_for_one, name: ElixirScope.SupervisionTreeTest.Deep]
                    ]}
               }
             ],
             [
               strategy: :one_for_all,
               max_restarts: 2,
               max_seconds: 7,
               name: ElixirScope.SupervisionTreeTest.Inner
             ]
           ]}
      }

      children = [
        %{
          id: :crashy,
          start:
            {Agent, :start_link, [fn -> 0 end, [name: ElixirScope.SupervisionTreeTest.Crashy]]}
        },
        inner,
        {DynamicSupervisor,
         strategy: :one_for_one,
         max_restarts: 5,
         max_seconds: 9,
         name: ElixirScope.SupervisionTreeTest.Dyn}
      ]

      Supervisor.init(children, strategy: :one_for_one, max_restarts: 10, max_seconds: 60)
    end
  end

  defmodule App do
    use Application

    @impl true
    def start(_type, _args), do: Top.start_link([])
  end

  # A process that passes for a supervisor (its initial call says so) and exits as
  # soon as it is asked for its state: a supervisor dying in the middle of the walk.
  defmodule DiesWhenAsked do
    def start_link do
      {:ok, :proc_lib.spawn_link(__MODULE__, :loop, [])}
    end

    def loop do
      Process.put(:"$initial_call", {:supervisor, __MODULE__, 1})

      receive do
        {:system, _from, _request} -> exit(:asked)
      end
    end
  end

  setup do
    spec =
      {:application, @app,
       [
         description: ~c"ElixirScope supervision tree test",
         vsn: ~c"0.0.1",
         modules: [],
         registered: [],
         applications: [:kernel, :stdlib],
         mod: {App, []}
       ]}

    :ok = :application.load(spec)
    :ok = Application.start(@app)

    on_exit(fn ->
      Application.stop(@app)
      :application.unload(@app)
    end)

    :ok
  end

  defp app_entry(opts \\ []) do
    [entry] = Enum.filter(SupervisionTree.get(opts), &(&1.application == @app))
    entry
  end

  defp child(%{children: children}, id), do: Enum.find(children, &(&1.id == id))

  defp eventually(fun, tries \\ 100) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition never became true")
      true -> Process.sleep(10) && eventually(fun, tries - 1)
    end
  end

  test "an application's top supervisor, with its configuration and callback module" do
    top = app_entry()

    assert top.pid == Process.whereis(Top)
    assert top.name == Top
    assert top.module == Top
    assert top.strategy == :one_for_one
    assert top.intensity == 10
    assert top.period == 60
    assert top.restarts == 0

    assert Enum.map(top.children, & &1.id) |> Enum.sort() ==
             [ElixirScope.SupervisionTreeTest.Dyn, :crashy, :inner]

    refute Map.has_key?(top, :error)
  end

  test "workers carry id, pid, type, modules and registered name" do
    crashy = child(app_entry(), :crashy)

    assert crashy == %{
             id: :crashy,
             pid: Process.whereis(ElixirScope.SupervisionTreeTest.Crashy),
             type: :worker,
             modules: [Agent],
             name: ElixirScope.SupervisionTreeTest.Crashy
           }
  end

  test "nested supervisors (one_for_all, rest_for_one) are walked recursively" do
    inner = child(app_entry(), :inner)

    assert inner.type == :supervisor
    assert inner.pid == Process.whereis(ElixirScope.SupervisionTreeTest.Inner)
    assert inner.name == ElixirScope.SupervisionTreeTest.Inner
    assert inner.module == Supervisor.Default
    assert inner.strategy == :one_for_all
    assert inner.intensity == 2
    assert inner.period == 7
    assert inner.restarts == 0

    expected =
      for {id, pid, type, modules} <- Supervisor.which_children(inner.pid),
          do: {id, pid, type, modules}

    assert Enum.sort(for c <- inner.children, do: {c.id, c.pid, c.type, c.modules}) ==
             Enum.sort(expected)

    w1 = child(inner, :w1)
    assert w1.name == nil
    refute Map.has_key?(w1, :children)

    deep = child(inner, :deep)
    assert deep.strategy == :rest_for_one
    assert deep.name == ElixirScope.SupervisionTreeTest.Deep
    assert [%{id: :leaf, type: :worker, modules: [Agent], pid: leaf}] = deep.children
    assert Agent.get(leaf, & &1) == :leaf
  end

  test "a DynamicSupervisor reports strategy, limits and its dynamic children" do
    dyn_pid = Process.whereis(ElixirScope.SupervisionTreeTest.Dyn)
    {:ok, a} = DynamicSupervisor.start_child(dyn_pid, {Agent, fn -> :a end})
    {:ok, b} = DynamicSupervisor.start_child(dyn_pid, {Agent, fn -> :b end})

    dyn = child(app_entry(), ElixirScope.SupervisionTreeTest.Dyn)

    assert dyn.pid == dyn_pid
    assert dyn.type == :supervisor
    assert dyn.name == ElixirScope.SupervisionTreeTest.Dyn
    assert dyn.strategy == :one_for_one
    assert dyn.intensity == 5
    assert dyn.period == 9
    assert dyn.restarts == 0

    assert Enum.sort(Enum.map(dyn.children, & &1.pid)) == Enum.sort([a, b])
    assert Enum.all?(dyn.children, &(&1.id == :undefined and &1.type == :worker))
  end

  test "restarts within the period are counted, for supervisors and DynamicSupervisors" do
    old = Process.whereis(ElixirScope.SupervisionTreeTest.Crashy)
    Process.exit(old, :kill)

    eventually(fn ->
      new = Process.whereis(ElixirScope.SupervisionTreeTest.Crashy)
      is_pid(new) and new != old
    end)

    top = app_entry()
    assert top.restarts == 1
    crashy = child(top, :crashy)
    assert crashy.pid != old
    assert Process.alive?(crashy.pid)

    dyn_pid = Process.whereis(ElixirScope.SupervisionTreeTest.Dyn)
    {:ok, agent} = DynamicSupervisor.start_child(dyn_pid, {Agent, fn -> :a end})
    Process.exit(agent, :kill)

    eventually(fn ->
      match?(
        [{_, pid, _, _}] when is_pid(pid) and pid != agent,
        Supervisor.which_children(dyn_pid)
      )
    end)

    top = app_entry()
    assert child(top, ElixirScope.SupervisionTreeTest.Dyn).restarts == 1
    # the other supervisors are untouched
    assert top.restarts == 1
    assert child(top, :inner).restarts == 0
  end

  test "the kernel's tree is included and library applications are skipped" do
    tree = SupervisionTree.get()
    apps = Enum.map(tree, & &1.application)

    assert :kernel in apps
    refute :stdlib in apps
    refute :compiler in apps

    kernel = Enum.find(tree, &(&1.application == :kernel))
    assert kernel.name == :kernel_sup
    assert kernel.module == :kernel
    assert kernel.strategy == :one_for_all
    assert Enum.any?(kernel.children, &(&1.type == :supervisor and is_list(&1[:children])))

    for entry <- tree do
      assert is_pid(entry.pid)
      assert Map.has_key?(entry, :children) or Map.has_key?(entry, :error)
    end
  end

  test "a supervisor that does not answer in time becomes an error, the rest is walked" do
    inner = Process.whereis(ElixirScope.SupervisionTreeTest.Inner)
    :ok = :sys.suspend(inner)

    try do
      top = app_entry(timeout: 100)
      inner_entry = child(top, :inner)

      assert inner_entry.pid == inner
      assert inner_entry.error == :timeout
      assert inner_entry.type == :supervisor
      refute Map.has_key?(inner_entry, :children)

      assert child(top, :crashy).type == :worker
      assert child(top, ElixirScope.SupervisionTreeTest.Dyn).strategy == :one_for_one
    after
      :sys.resume(inner)
    end

    assert child(app_entry(), :inner).strategy == :one_for_all
  end

  test "a supervisor that dies while it is walked becomes an error" do
    dyn_pid = Process.whereis(ElixirScope.SupervisionTreeTest.Dyn)

    {:ok, fake} =
      DynamicSupervisor.start_child(dyn_pid, %{
        id: :fake,
        start: {DiesWhenAsked, :start_link, []},
        type: :supervisor,
        restart: :temporary
      })

    dyn = child(app_entry(), ElixirScope.SupervisionTreeTest.Dyn)
    assert [entry] = dyn.children
    assert entry.pid == fake
    assert entry.error == :asked
    refute Process.alive?(fake)
  end

  test "never raises, even with no time at all" do
    assert is_list(SupervisionTree.get(timeout: 0))
  end

  test "rejects a bad timeout" do
    assert_raise ArgumentError, ~r/:timeout/, fn -> SupervisionTree.get(timeout: -1) end
    assert_raise ArgumentError, ~r/:timeout/, fn -> SupervisionTree.get(timeout: :infinity) end
  end
end
