defmodule ElixirScope.SupervisionTree do
  @moduledoc """
  A snapshot of the live supervision tree of the local node.

  `get/1` walks every running application's top supervisor and every supervisor
  below it, asking each one for its children (`Supervisor.which_children/1`'s
  request) and its state (`:sys.get_state/2`), each with a timeout. It needs no
  tracing and no running ElixirScope store.

      iex> [kernel | _] =
      ...>   Enum.filter(ElixirScope.SupervisionTree.get(), &(&1.application == :kernel))
      iex> kernel.name
      :kernel_sup

  ## Shape

  One entry per running application that has a top supervisor (library
  applications, which have none, are left out):

      %{
        application: :my_app,
        pid: pid,
        name: MyApp.Supervisor,      # registered name, or nil
        module: MyApp.Supervisor,    # the supervisor's callback module
        strategy: :one_for_one,
        intensity: 3,                # max restarts...
        period: 5,                   # ...in this many seconds
        restarts: 0,                 # restarts within the current period
        children: [child]
      }

  Each child is

      %{id: id, pid: pid | :restarting | :undefined, type: :worker | :supervisor,
        modules: modules, name: registered_name_or_nil}

  and a supervisor child also has `:module`, `:strategy`, `:intensity`, `:period`,
  `:restarts` and its own `:children`. `DynamicSupervisor`s (and
  `Task.Supervisor`s) are walked like any supervisor; their children have
  `id: :undefined`.

  The walk never raises. A supervisor that exits or does not answer within
  `:timeout` while it is being walked is reported as `%{pid: pid, error: reason}`
  (plus `:application`, or the child fields, where they are known), with `reason`
  such as `:noproc` or `:timeout`. Fields that cannot be read from a supervisor's
  state (an OTP release with a different state layout) are `nil`. A child whose pid
  is not running (`:restarting`, `:undefined`) has `nil` supervisor fields and
  `children: []`.
  """

  @type child :: %{
          required(:id) => term(),
          required(:pid) => pid() | :restarting | :undefined,
          required(:type) => :worker | :supervisor,
          required(:modules) => [module()] | :dynamic,
          required(:name) => atom() | nil,
          optional(atom()) => term()
        }

  @type supervisor :: %{
          required(:pid) => pid(),
          optional(:application) => atom(),
          optional(:name) => atom() | nil,
          optional(:module) => module() | nil,
          optional(:strategy) => atom() | nil,
          optional(:intensity) => non_neg_integer() | nil,
          optional(:period) => pos_integer() | nil,
          optional(:restarts) => non_neg_integer() | nil,
          optional(:children) => [child()],
          optional(:error) => term()
        }

  @doc """
  Returns the supervision tree of the local node, one entry per running application
  with a top supervisor (see the moduledoc for the shape).

  Options:

    * `:timeout` — milliseconds each process (application master or supervisor)
      has to answer before it is reported as `error: :timeout`; default `1000`.

  Raises `ArgumentError` when `:timeout` is not a non-negative integer.
  """
  @spec get(keyword()) :: [supervisor()]
  def get(opts \\ []) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "options must be a keyword list, got: #{inspect(opts)}")

    timeout = Keyword.get(opts, :timeout, 1000)

    unless is_integer(timeout) and timeout >= 0,
      do:
        raise(
          ArgumentError,
          ":timeout must be a non-negative integer, got: #{inspect(timeout)}"
        )

    for {app, _description, _version} <- which_applications(),
        {:ok, pid, app_module} <- [top_supervisor(app, timeout)] do
      %{application: app}
      |> Map.merge(walk(pid, app_module, timeout, MapSet.new()))
    end
  end

  ## Applications

  defp which_applications do
    :application.which_applications()
  catch
    # The application controller is busy (get/1 called while an application is
    # starting or stopping): there is no list to give.
    :exit, _ -> []
  end

  defp top_supervisor(app, timeout) do
    case :application_controller.get_master(app) do
      master when is_pid(master) ->
        case get_child(master, timeout) do
          {:ok, {pid, module}} when is_pid(pid) -> {:ok, pid, module}
          _ -> :none
        end

      _ ->
        :none
    end
  end

  # :application_master.get_child/1 waits for the answer without a timeout, so it
  # runs in a process of its own that is killed if the master does not answer. The
  # answer comes as a message and the process ends normally (with lifecycle tracing of
  # every process, an exit reason carrying the answer would read as a crash).
  defp get_child(master, timeout) do
    parent = self()

    {pid, ref} =
      spawn_monitor(fn -> send(parent, {self(), :application_master.get_child(master)}) end)

    receive do
      {^pid, child} ->
        Process.demonitor(ref, [:flush])
        {:ok, child}

      {:DOWN, ^ref, :process, ^pid, reason} ->
        {:error, reason}
    after
      timeout ->
        Process.exit(pid, :kill)

        receive do
          {^pid, child} ->
            Process.demonitor(ref, [:flush])
            {:ok, child}

          {:DOWN, ^ref, :process, ^pid, _reason} ->
            {:error, :timeout}
        end
    end
  end

  ## Supervisors

  # The supervisor fields and children of `pid`, or %{pid: pid, error: reason}.
  defp walk(pid, fallback_module, timeout, seen) do
    if MapSet.member?(seen, pid) do
      %{pid: pid, error: :cycle}
    else
      do_walk(pid, fallback_module, timeout, MapSet.put(seen, pid))
    end
  end

  defp do_walk(pid, fallback_module, timeout, seen) do
    with {:ok, initial_module} <- supervisor_module(pid),
         {:ok, state} <- call(pid, &:sys.get_state(&1, timeout)),
         info = state_info(state),
         supervisor? = initial_module != nil or info != nil,
         {:ok, children} <- which_children(pid, supervisor?, timeout) do
      info = info || %{module: nil, strategy: nil, intensity: nil, period: nil, restarts: nil}

      %{
        pid: pid,
        name: registered_name(pid),
        module: info.module || initial_module || fallback_module,
        strategy: info.strategy,
        intensity: info.intensity,
        period: info.period,
        restarts: info.restarts,
        children: Enum.map(children, &child(&1, timeout, seen))
      }
    else
      {:error, reason} -> %{pid: pid, error: reason}
    end
  end

  defp child({id, pid, type, modules}, timeout, seen) do
    base = %{id: id, pid: pid, type: type, modules: modules, name: registered_name(pid)}

    cond do
      type != :supervisor ->
        base

      is_pid(pid) ->
        Map.merge(base, walk(pid, nil, timeout, seen))

      true ->
        Map.merge(base, %{
          module: nil,
          strategy: nil,
          intensity: nil,
          period: nil,
          restarts: nil,
          children: []
        })
    end
  end

  # Supervisors (:supervisor, DynamicSupervisor, Task.Supervisor) record
  # {:supervisor, callback_module, 1} as their initial call, which can be read
  # without sending the process anything. nil: not known to be a supervisor.
  defp supervisor_module(pid) when node(pid) != node(), do: {:ok, nil}

  defp supervisor_module(pid) do
    case Process.info(pid, :dictionary) do
      nil ->
        {:error, :noproc}

      {:dictionary, dictionary} ->
        case List.keyfind(dictionary, :"$initial_call", 0) do
          {_, {:supervisor, module, 1}} when is_atom(module) -> {:ok, module}
          _ -> {:ok, nil}
        end
    end
  end

  # Only a process known to be a supervisor is sent :which_children: a GenServer
  # without a handle_call/3 clause for it would crash.
  defp which_children(_pid, false, _timeout), do: {:ok, []}

  defp which_children(pid, true, timeout) do
    # Supervisor.which_children/1's request, with a timeout instead of :infinity.
    case call(pid, &GenServer.call(&1, :which_children, timeout)) do
      {:ok, children} when is_list(children) ->
        {:ok, for({_, _, _, _} = child <- children, do: child)}

      {:ok, other} ->
        {:error, {:bad_which_children, other}}

      error ->
        error
    end
  end

  defp call(pid, fun) do
    {:ok, fun.(pid)}
  catch
    :exit, {reason, {_module, _function, _args}} -> {:error, reason}
    :exit, reason -> {:error, reason}
  end

  # OTP 25 supervisor.erl:
  # -record(state, {name, strategy, children, dynamics, intensity, period,
  #                 restarts = [], dynamic_restarts = 0, auto_shutdown, module, args}).
  defp state_info(
         {:state, _name, strategy, _children, _dynamics, intensity, period, restarts,
          _dynamic_restarts, _auto_shutdown, module, _args}
       ) do
    info(module, strategy, intensity, period, restarts)
  end

  defp state_info(%{
         __struct__: DynamicSupervisor,
         mod: module,
         strategy: strategy,
         max_restarts: intensity,
         max_seconds: period,
         restarts: restarts
       }) do
    info(module, strategy, intensity, period, restarts)
  end

  defp state_info(_other), do: nil

  defp info(module, strategy, intensity, period, restarts) do
    %{
      module: if(is_atom(module), do: module),
      strategy: if(is_atom(strategy), do: strategy),
      intensity: if(is_integer(intensity), do: intensity),
      period: if(is_integer(period), do: period),
      restarts: restarts_in_period(restarts, period)
    }
  end

  # Both supervisors keep the times of recent restarts (monotonic seconds, newest
  # first) and prune the ones older than `period` only when the next restart comes,
  # so the count within the current period is taken here, as they would take it.
  defp restarts_in_period(restarts, period) when is_list(restarts) and is_integer(period) do
    threshold = :erlang.monotonic_time(:second) - period
    Enum.count(restarts, &(is_integer(&1) and &1 >= threshold))
  end

  defp restarts_in_period(_restarts, _period), do: nil

  defp registered_name(pid) when is_pid(pid) and node(pid) == node() do
    case Process.info(pid, :registered_name) do
      {:registered_name, name} when is_atom(name) -> name
      _ -> nil
    end
  end

  defp registered_name(_not_a_pid), do: nil
end
