defmodule ElixirScope.Tracing do
  @moduledoc false
  # Owns the C tracer and everything ElixirScope sets in the runtime's tracing state:
  # trace flags on processes and trace patterns on functions. It records what it set so
  # that stop/0 removes exactly that, and nothing another tool set.

  use GenServer

  alias ElixirScope.{Config, Native, TraceDB}

  @match_spec [{:_, [], [{:return_trace}, {:exception_trace}]}]
  @gen_server_callbacks [handle_call: 3, handle_cast: 2, handle_info: 2, handle_continue: 2]
  @timeout 10_000

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  def call(request) do
    case Process.whereis(__MODULE__) do
      nil -> {:error, :not_running}
      pid -> GenServer.call(pid, request, @timeout)
    end
  end

  @doc false
  def tracer, do: :persistent_term.get({__MODULE__, :tracer}, nil)

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)
    tracer = Native.tracer_new(TraceDB.store!(TraceDB), Config.mask(config.tracing_level))
    :persistent_term.put({__MODULE__, :tracer}, tracer)

    state = %{
      tracer: tracer,
      pids: MapSet.new(),
      level: config.tracing_level,
      trace_all: config.trace_all,
      all_processes: false,
      genservers: %{},
      modules: MapSet.new(),
      functions: MapSet.new(),
      patterns: MapSet.new()
    }

    state =
      if config.trace_all,
        do: trace_all_processes(state, flags(config.tracing_level)),
        else: state

    if config.tracing_level != :off, do: record_alive_processes()
    {:ok, state}
  end

  @impl true
  def handle_call({:trace_process, pid}, _from, state) do
    with :ok <- check_traceable(pid, state) do
      state = set_flags(pid, state)

      case gen_server_module(pid) do
        {:ok, module} -> reply_with(watch_gen_server(pid, module, state))
        :error -> {:reply, :ok, state}
      end
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:trace_genserver, pid}, _from, state) do
    with :ok <- check_traceable(pid, state),
         {:ok, module} <- gen_server_module(pid) |> or_error(:not_a_gen_server) do
      state = set_flags(pid, state)
      reply_with(watch_gen_server(pid, module, state))
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:untrace_process, pid}, _from, state) do
    if ours?(pid, state), do: :erlang.trace(pid, false, [:all])

    if Map.has_key?(state.genservers, pid),
      do: Native.tracer_watch(state.tracer, {:genserver, pid, nil, nil})

    {:reply, :ok,
     %{
       state
       | genservers: Map.delete(state.genservers, pid),
         pids: MapSet.delete(state.pids, pid)
     }}
  end

  def handle_call({:trace_module, module}, _from, state) do
    with :ok <- loaded(module) do
      Native.tracer_watch(state.tracer, {:module, module, true})
      :erlang.trace_pattern({module, :_, :_}, @match_spec, [:local])
      state = state |> calls_everywhere() |> add_pattern({module, :_, :_})
      {:reply, :ok, %{state | modules: MapSet.put(state.modules, module)}}
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:stop_trace_module, module}, _from, state) do
    Native.tracer_watch(state.tracer, {:module, module, false})
    :erlang.trace_pattern({module, :_, :_}, false, [:local])
    patterns = MapSet.reject(state.patterns, &match?({^module, _, _}, &1))
    state = %{state | modules: MapSet.delete(state.modules, module), patterns: patterns}
    # Functions of this module traced one by one, and watched GenServers of it, still
    # need their patterns.
    for {^module, _, _} = mfa <- state.functions do
      :erlang.trace_pattern(mfa, @match_spec, [:local])
    end

    state = Enum.reduce(state.functions, state, fn mfa, acc -> add_pattern(acc, mfa) end)

    state =
      if module in Map.values(state.genservers),
        do: gen_server_patterns(module, state),
        else: state

    {:reply, :ok, state}
  end

  def handle_call({:trace_function, {m, f, a} = mfa}, _from, state) do
    with :ok <- loaded(m),
         true <- {f, a} in m.module_info(:functions) or {:error, {:undefined_function, mfa}} do
      Native.tracer_watch(state.tracer, {:function, m, f, true})
      :erlang.trace_pattern(mfa, @match_spec, [:local])
      state = state |> calls_everywhere() |> add_pattern(mfa)
      {:reply, :ok, %{state | functions: MapSet.put(state.functions, mfa)}}
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:set_level, level}, _from, state) do
    Native.tracer_set(state.tracer, :mask, Config.mask(level))
    old = flags(state.level)
    new = flags(level)

    pids = if state.trace_all, do: Process.list(), else: state.pids

    for pid <- pids, ours?(pid, state) do
      retrace(pid, false, old -- new)
      retrace(pid, true, [tracer_spec(state) | new -- old])
    end

    {:reply, :ok, %{state | level: level}}
  end

  def handle_call(:info, _from, state) do
    info = %{
      level: state.level,
      trace_all: state.trace_all,
      genservers: Map.keys(state.genservers),
      modules: MapSet.to_list(state.modules),
      functions: MapSet.to_list(state.functions)
    }

    {:reply, info, state}
  end

  @impl true
  def terminate(_reason, state) do
    clean_up(state)
    :persistent_term.erase({__MODULE__, :tracer})
    :ok
  end

  ## Helpers

  # Trace flags a traced process gets at a level, from the categories of events the
  # level records (the vocabulary's): a probe the level does not record would still
  # cost a call into the tracer, so it is not set at all. :procs always: process
  # lifecycle and crashes.
  defp flags(level) do
    categories = Config.categories(level)

    [:procs] ++
      if(:messages in categories, do: [:send, :receive], else: []) ++
      if(Enum.any?([:calls, :states], &(&1 in categories)), do: [:call], else: [])
  end

  @doc false
  # The tracer's controls the governor uses: rates since the last read, and its step.
  def counts(tracer), do: Native.tracer_counts(tracer)
  def set_step(tracer, step), do: Native.tracer_set(tracer, :step, step)

  defp reply_with(state), do: {:reply, :ok, state}

  defp or_error({:ok, _} = ok, _reason), do: ok
  defp or_error(:error, reason), do: {:error, reason}

  defp tracer_spec(state), do: {:tracer, Native, state.tracer}

  defp ours?(pid, state) do
    match?({:tracer, {Native, t}} when t == state.tracer, safe_trace_info(pid, :tracer))
  end

  defp safe_trace_info(pid, item) do
    :erlang.trace_info(pid, item)
  rescue
    ArgumentError -> :undefined
  end

  # A process can have one tracer (OTP < 27): refuse to take one another tool holds.
  defp check_traceable(pid, state) do
    case safe_trace_info(pid, :tracer) do
      :undefined -> {:error, :not_alive}
      {:tracer, []} -> :ok
      {:tracer, {Native, t}} when t == state.tracer -> :ok
      {:tracer, other} -> {:error, {:traced_by_another_tool, other}}
    end
  end

  defp set_flags(pid, state) do
    retrace(pid, true, [tracer_spec(state) | flags(state.level)])
    %{state | pids: MapSet.put(state.pids, pid)}
  end

  defp retrace(_pid, _on, []), do: :ok
  defp retrace(_pid, true, [_tracer]), do: :ok

  defp retrace(pid, on, flags) do
    :erlang.trace(pid, on, flags)
  rescue
    ArgumentError -> :ok
  end

  # The callback module of a :gen_server process. Only processes started by proc_lib
  # with an init/1 initial call are asked (a plain process would never answer the
  # system message, and it would sit in its mailbox).
  defp gen_server_module(pid) do
    with {:dictionary, dict} <- Process.info(pid, :dictionary),
         {module, _, _} <- dict[:"$initial_call"],
         {:status, ^pid, {:module, :gen_server}, _} <- :sys.get_status(pid, 1000) do
      {:ok, callback_module(module)}
    else
      _ -> :error
    end
  catch
    :exit, _ -> :error
  end

  # proc_lib's initial call names the callback module ({Mod, :init, 1}), except for
  # Agents: Agent.Server puts the agent's own function there.
  defp callback_module(module) do
    if function_exported?(module, :handle_call, 3), do: module, else: Agent.Server
  end

  # The starting state is recorded from inside the GenServer, between two callbacks,
  # so no state change falls between it and the first traced callback.
  defp watch_gen_server(pid, module, state) do
    state = gen_server_patterns(module, state)
    tracer = state.tracer

    try do
      :sys.replace_state(pid, fn s ->
        Native.tracer_watch(tracer, {:genserver, pid, module, s})
        s
      end)
    catch
      :exit, _ -> :ok
    end

    %{state | genservers: Map.put(state.genservers, pid, module)}
  end

  defp gen_server_patterns(module, state) do
    Enum.reduce(@gen_server_callbacks, state, fn {f, a}, acc ->
      :erlang.trace_pattern({module, f, a}, @match_spec, [:local])
      add_pattern(acc, {module, f, a})
    end)
  end

  defp add_pattern(state, mfa), do: %{state | patterns: MapSet.put(state.patterns, mfa)}

  defp loaded(module) do
    case Code.ensure_loaded(module) do
      {:module, _} -> :ok
      _ -> {:error, {:module_not_loaded, module}}
    end
  end

  # Traced functions report calls from every process, present and future, whose tracer
  # is free (processes another tool traces are left alone).
  defp calls_everywhere(%{all_processes: true} = state), do: state
  defp calls_everywhere(state), do: trace_all_processes(state, [:call])

  defp trace_all_processes(state, flags) do
    :erlang.trace(:all, true, [tracer_spec(state) | flags])
    for pid <- own_processes(), do: :erlang.trace(pid, false, [:all])
    %{state | all_processes: true}
  end

  # One :alive event per process running when tracing starts, so "what was alive at
  # time T" also knows the processes that were never seen spawning.
  defp record_alive_processes do
    for pid <- Process.list(), pid != self() do
      case Process.info(pid, [:registered_name, :dictionary]) do
        [registered_name: name, dictionary: dict] ->
          TraceDB.store_event(:alive, %{
            pid: pid,
            name: if(name == [], do: nil, else: name),
            initial_call: dict[:"$initial_call"],
            parent: parent(dict[:"$ancestors"])
          })

        nil ->
          :ok
      end
    end
  end

  defp parent([first | _]) when is_pid(first), do: first
  defp parent([first | _]) when is_atom(first), do: Process.whereis(first)
  defp parent(_), do: nil

  defp own_processes do
    [self(), Process.whereis(ElixirScope.Governor), Process.whereis(TraceDB)]
    |> Enum.filter(&is_pid/1)
  end

  defp clean_up(state) do
    Native.tracer_set(state.tracer, :stopped, true)

    if state.all_processes and match?({:tracer, {Native, _}}, :erlang.trace_info(:new, :tracer)),
      do: :erlang.trace(:new, false, [:all])

    for pid <- Process.list(), ours?(pid, state) do
      try do
        :erlang.trace(pid, false, [:all])
      rescue
        ArgumentError -> :ok
      end
    end

    for mfa <- state.patterns, do: :erlang.trace_pattern(mfa, false, [:local])
    :ok
  end
end
