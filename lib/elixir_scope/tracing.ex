defmodule ElixirScope.Tracing do
  @moduledoc false
  # Owns the C tracer and everything ElixirScope sets in the runtime's tracing state:
  # trace flags on processes and trace patterns on functions (meta patterns too: calls
  # of a function in every process with no process's flags, for Phoenix's broadcasts).
  # It records what it set so that stop/0 removes exactly that, and nothing another tool
  # set.
  #
  # Where that state lives depends on the OTP release, and one backend module per path
  # does the runtime calls: ElixirScope.Tracing.Session on OTP 27+ (a trace session of
  # ElixirScope's own, so other tools neither see nor clear it), ElixirScope.Tracing.Legacy
  # before (the one shared tracing state). Everything else here is the same on both:
  # which patterns each module carries (ElixirScope.Tracing.Patterns, derived from what
  # this server was asked to trace), and which processes are GenServers and how their
  # states are recorded (ElixirScope.Tracing.GenServers).
  #
  # Also here, on every tick of the governor's interval:
  # - patterns a module reload dropped are set again, and that is recorded;
  # - on OTP < 27, a watchdog (ElixirScope.Tracing.Watchdog) notices when another tool
  #   removed ElixirScope's flags or patterns, records and logs it once, and re-arms
  #   what is still free unless `rearm: false`.
  # And when the C tracer reports a process holding half the return frames it may
  # (a traced tail-recursive loop), the function is switched to calls only.

  use GenServer
  require Logger

  alias ElixirScope.{Config, Native, TraceDB}
  alias ElixirScope.Tracing.{Frames, GenServers, Legacy, Patterns, Session, Watchdog}

  # The most stack a traced process may hold in ElixirScope's return frames.
  @max_frame_words 100_000
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

  @doc false
  # The backend of this OTP release.
  def backend do
    if String.to_integer(System.otp_release()) >= 27, do: Session, else: Legacy
  end

  @doc false
  def max_frame_words, do: @max_frame_words

  @doc false
  # Stops recording the calling process, once (ElixirScope's own HTTP request handlers
  # call it on every request, so that looking at a recording does not add to it):
  # only what ElixirScope set goes, in its own trace session on OTP 27+.
  def untrace_self do
    unless Process.get({__MODULE__, :untraced}) do
      Process.put({__MODULE__, :untraced}, true)
      call({:untrace_process, self()})
    end

    :ok
  end

  @doc false
  # Runs `fun` with the calling process not recorded, then traced again as it was: for
  # ElixirScope.UI.Plug, which answers in the application's request processes (a
  # connection's process serves the application's requests too).
  def untraced(fun) do
    case call({:pause, self()}) do
      {:ok, [_ | _] = flags} ->
        try do
          fun.()
        after
          call({:resume, self(), flags})
        end

      _ ->
        fun.()
    end
  end

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)
    backend = backend()
    tracer = Native.tracer_new(TraceDB.store!(TraceDB), Config.mask(config.tracing_level))
    frame_words = Frames.words(backend)
    Native.tracer_set(tracer, :max_frames, div(@max_frame_words, frame_words))
    Native.tracer_set(tracer, :owner, self())
    # what a redacting view (a LiveView's assigns) leaves out: c_src/nif/redact.h
    Native.tracer_set(tracer, :redact, Config.redaction(config).patterns)
    :persistent_term.put({__MODULE__, :tracer}, tracer)

    state = %{
      backend: backend,
      handle: backend.open({Native, tracer}),
      tracer: tracer,
      frame_words: frame_words,
      interval: config.governor_interval,
      pids: MapSet.new(),
      level: config.tracing_level,
      trace_all: config.trace_all,
      lifecycle: config.lifecycle,
      # flags every process (and every new one) has from us
      all_flags: [],
      genservers: %{},
      # watched GenServers whose messages are not traced (LiveViews: see view/1)
      quiet: MapSet.new(),
      # module or {m, f, a} => whether calls return-trace
      modules: %{},
      functions: %{},
      # functions whose calls are recorded with meta patterns (no process flags):
      # Phoenix.PubSub's broadcasts
      meta: MapSet.new(),
      # functions switched to calls only by the return-frame bound
      calls_only: MapSet.new(),
      # traced module => the md5 of its code when its patterns were set
      loaded: %{},
      watchdog: Watchdog.new(config.rearm),
      # ElixirScope's supervisor and its children: never traced
      own: [self()]
    }

    schedule_tick(state)
    {:ok, state}
  end

  @doc false
  # The last step of ElixirScope's start (a child of its supervisor after all the
  # others, starting no process): every process is traced from now on where the
  # configuration says so (trace_all, lifecycle: :all) — ElixirScope's own processes,
  # started by then, excepted — and the processes running now are recorded.
  def arm do
    # Run by the supervisor itself, linked to its children; proc_lib names a parent in
    # their ancestors by its registered name when it has one.
    me = [self() | List.wrap(Process.info(self(), :registered_name) |> elem(1))]
    {:links, links} = Process.info(self(), :links)
    own = [self() | Enum.filter(links, &(is_pid(&1) and hd(ancestors(&1) ++ [nil]) in me))]

    case call({:arm, own}) do
      :ok -> :ignore
      {:error, :not_running} -> {:error, :tracing_not_running}
    end
  end

  defp ancestors(pid) do
    case Process.info(pid, :dictionary) do
      {:dictionary, dict} -> Keyword.get(dict, :"$ancestors", [])
      nil -> []
    end
  end

  @impl true
  def handle_call({:arm, own}, _from, state) do
    state = %{state | own: Enum.uniq([self() | own])}
    state = if state.trace_all, do: all_processes(state, flags(state.level)), else: state
    state = if state.lifecycle == :all, do: all_processes(state, [:procs]), else: state
    if state.level != :off, do: record_starting_point()
    {:reply, :ok, state}
  end

  def handle_call({:trace_process, pid}, _from, state) do
    with :ok <- check_traceable(pid, state) do
      case GenServers.callback_module(pid) do
        {:ok, module} -> reply_with(watch_gen_server(pid, module, state))
        _ -> {:reply, :ok, set_flags(pid, state)}
      end
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:trace_genserver, pid}, _from, state) do
    with :ok <- check_traceable(pid, state),
         {:ok, module} <- GenServers.callback_module(pid) do
      reply_with(watch_gen_server(pid, module, state))
    else
      error -> {:reply, error, state}
    end
  end

  # ElixirScope.UI.Plug's answer in a process of the application: the flags it had
  # from ElixirScope (its own, or every process's) are taken off, then put back.
  def handle_call({:pause, pid}, _from, state) do
    flags =
      if ours?(pid, state) do
        own = if MapSet.member?(state.pids, pid), do: process_flags(state, pid), else: []
        flags = Enum.uniq(own ++ state.all_flags)
        state.backend.process(state.handle, pid, false, [:all])
        flags
      else
        []
      end

    {:reply, {:ok, flags}, state}
  end

  def handle_call({:resume, pid, flags}, _from, state) do
    state.backend.process(state.handle, pid, true, flags)
    {:reply, :ok, state}
  end

  def handle_call({:untrace_process, pid}, _from, state) do
    if ours?(pid, state), do: state.backend.process(state.handle, pid, false, [:all])

    if Map.has_key?(state.genservers, pid),
      do: Native.tracer_watch(state.tracer, {:genserver, pid, nil, nil})

    {:reply, :ok,
     %{
       state
       | genservers: Map.delete(state.genservers, pid),
         pids: MapSet.delete(state.pids, pid),
         quiet: MapSet.delete(state.quiet, pid)
     }}
  end

  def handle_call({:trace_module, module, returns}, _from, state) do
    with :ok <- loaded(module) do
      Native.tracer_watch(state.tracer, {:module, module, true})
      state = %{state | modules: Map.put(state.modules, module, returns)}
      {:reply, :ok, state |> calls_everywhere() |> Patterns.set(module)}
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:stop_trace_module, module}, _from, state) do
    Native.tracer_watch(state.tracer, {:module, module, false})

    state =
      if Map.has_key?(state.modules, module) do
        state.backend.function(state.handle, {module, :_, :_}, false)
        # Functions of this module traced one by one, and watched GenServers of it,
        # keep their patterns.
        Patterns.set(%{state | modules: Map.delete(state.modules, module)}, module)
      else
        state
      end

    {:reply, :ok, state}
  end

  def handle_call({:trace_function, {m, f, a} = mfa, returns}, _from, state) do
    with :ok <- loaded(m),
         true <- {f, a} in m.module_info(:functions) or {:error, {:undefined_function, mfa}} do
      Native.tracer_watch(state.tracer, {:function, m, f, true})
      state = %{state | functions: Map.put(state.functions, mfa, returns)}
      {:reply, :ok, state |> calls_everywhere() |> Patterns.set(m)}
    else
      error -> {:reply, error, state}
    end
  end

  # Calls of a function in every process, recorded with a meta pattern: no process's
  # trace flags are set, so no process's one tracer (OTP < 27) is taken. A function that
  # is also traced by trace_module/trace_function has only that pattern meanwhile
  # (Patterns.set/2): one call is never recorded twice.
  def handle_call({:trace_meta, {m, f, a} = mfa}, _from, state) do
    with :ok <- loaded(m),
         true <- {f, a} in m.module_info(:functions) or {:error, {:undefined_function, mfa}} do
      Native.tracer_watch(state.tracer, {:function, m, f, true})
      {:reply, :ok, Patterns.set(%{state | meta: MapSet.put(state.meta, mfa)}, m)}
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:set_level, level}, _from, state) do
    Native.tracer_set(state.tracer, :mask, Config.mask(level))
    old = flags(state.level)
    new = flags(level)
    pids = if state.trace_all, do: [:new | Process.list()], else: state.pids

    for pid <- pids, ours?(pid, state) do
      {old, new} = if pid in state.quiet, do: {quiet(old), quiet(new)}, else: {old, new}
      state.backend.process(state.handle, pid, false, old -- new)
      state.backend.process(state.handle, pid, true, new -- old)
    end

    {:reply, :ok, %{state | level: level}}
  end

  def handle_call(:info, _from, state) do
    info = %{
      level: state.level,
      trace_all: state.trace_all,
      lifecycle: state.lifecycle,
      session: state.backend == Session,
      processes: MapSet.to_list(state.pids),
      genservers: Map.keys(state.genservers),
      modules: Map.keys(state.modules),
      functions: Map.keys(state.functions),
      meta: Enum.sort(MapSet.to_list(state.meta)),
      calls_only: Enum.sort(MapSet.to_list(state.calls_only)),
      discarded_calls: Native.tracer_discarded(state.tracer),
      watchdog: Watchdog.report(state.watchdog)
    }

    {:reply, info, state}
  end

  @impl true
  def handle_info(:tick, state) do
    state = state |> reapply_reloaded() |> watchdog()
    schedule_tick(state)
    {:noreply, state}
  end

  # From the C tracer: `pid` holds `depth` of ElixirScope's return frames, the last
  # pushed by a call of `mfa`: most likely a tail-recursive loop. mfa goes to calls only
  # (the first time: with a :governor event and a log line), then the tracer hears that
  # the process's calls may go on (it discards them from its soft bound until then).
  def handle_info({:elixir_scope_frames, pid, {m, f, a} = mfa, depth}, state) do
    state =
      if mfa in state.calls_only or not Patterns.returns_traced?(state, mfa) do
        state
      else
        state.backend.function(state.handle, mfa, Patterns.calls_only_ms())

        TraceDB.store_event(:governor, %{
          reason: :return_frames,
          pid: pid,
          mfa: mfa,
          frames: depth,
          max_frames: div(@max_frame_words, state.frame_words),
          words_per_frame: state.frame_words
        })

        Logger.warning(
          "ElixirScope: #{inspect(pid)} holds #{depth} return frames of " <>
            "#{inspect(m)}.#{f}/#{a} (a tail-recursive loop?): it is now traced calls only " <>
            "(no returns or durations), so that no process's stack holds more than " <>
            "#{@max_frame_words} words of ElixirScope's return frames"
        )

        %{state | calls_only: MapSet.put(state.calls_only, mfa)}
      end

    Native.tracer_watch(state.tracer, {:frames_ok, pid})
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    Native.tracer_set(state.tracer, :stopped, true)

    state.backend.close(
      state.handle,
      Enum.flat_map(Patterns.modules(state), &Patterns.keys(state, &1))
    )

    :persistent_term.erase({__MODULE__, :tracer})
    :ok
  end

  ## Processes

  # Trace flags a traced process gets at a level, from the categories of events the
  # level records (the vocabulary's): a probe the level does not record would still
  # cost a call into the tracer, so it is not set at all. :procs always: process
  # lifecycle and crashes. Never garbage_collection (see ElixirScope.Tracing.Session).
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

  @doc false
  # The tracer's controls the crash collector uses (ElixirScope.Crashes): where exits
  # go (a pid, or nil), how many of them it took, and the level's mask now.
  def set_exit_sink(tracer, pid), do: Native.tracer_set(tracer, :exit_sink, pid)
  def exits_taken(tracer, n), do: Native.tracer_set(tracer, :exits_taken, n)
  def mask(tracer), do: Native.tracer_mask(tracer)
  # The flags of a process whose messages are not traced.
  defp quiet(flags), do: flags -- [:send, :receive]

  # The flags a traced process has at the current level.
  defp process_flags(state, pid),
    do: if(pid in state.quiet, do: quiet(flags(state.level)), else: flags(state.level))

  defp reply_with(state), do: {:reply, :ok, state}

  defp ours?(pid, state), do: holder(pid, state) == :ours

  defp holder(pid, state), do: state.backend.holder(state.handle, pid)

  # On OTP < 27 a process has one tracer: one another tool holds is not taken.
  defp check_traceable(pid, state) do
    case holder(pid, state) do
      :dead -> {:error, :not_alive}
      {:other, tracer} -> {:error, {:traced_by_another_tool, tracer}}
      _ -> :ok
    end
  end

  defp set_flags(pid, state) do
    state = %{state | pids: MapSet.put(state.pids, pid)}
    state.backend.process(state.handle, pid, true, process_flags(state, pid))
    state
  end

  # Traced functions report calls from every process, present and future (on OTP < 27,
  # those whose tracer is free: processes another tool traces are left alone).
  defp calls_everywhere(state), do: all_processes(state, [:call])

  defp all_processes(state, flags) do
    case flags -- state.all_flags do
      [] ->
        state

      more ->
        state.backend.process(state.handle, :all, true, more)
        for pid <- state.own, do: state.backend.process(state.handle, pid, false, [:all])
        %{state | all_flags: state.all_flags ++ more}
    end
  end

  # One :alive event per process running when tracing starts, so "what was alive at
  # time T" also knows the processes that were never seen spawning. (Wall-clock times
  # need no event: the store notes the time offset itself, ElixirScope.WallClock.)
  defp record_starting_point do
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

  defp loaded(module) do
    case Code.ensure_loaded(module) do
      {:module, _} -> :ok
      _ -> {:error, {:module_not_loaded, module}}
    end
  end

  ## GenServers (which ones, and how their states are read: ElixirScope.Tracing.GenServers)

  # The starting state is recorded from inside the GenServer, between two callbacks,
  # so no state change falls between it and the first traced callback.
  defp watch_gen_server(pid, module, state) do
    {view, messages} = GenServers.view(module)
    quiet = if messages == :quiet, do: MapSet.put(state.quiet, pid), else: state.quiet
    state = set_flags(pid, %{state | quiet: quiet})
    state = Patterns.set(%{state | genservers: Map.put(state.genservers, pid, module)}, module)
    tracer = state.tracer

    watch =
      if view, do: &{:genserver, pid, module, &1, view}, else: &{:genserver, pid, module, &1}

    try do
      :sys.replace_state(pid, fn s ->
        Native.tracer_watch(tracer, watch.(s))
        s
      end)
    catch
      :exit, _ -> :ok
    end

    state
  end

  ## Every tick: reloads and, on OTP < 27, the watchdog

  defp schedule_tick(state), do: Process.send_after(self(), :tick, state.interval)

  # A module loaded anew (Phoenix's code reloader, IEx's recompile) comes without the
  # patterns of the old code: they are set again on the new one, and that is recorded.
  # A reload shows in the module's md5, or, for the same code loaded again, in its
  # patterns gone: in ElixirScope's own session (OTP 27+) nothing else removes them;
  # before, the watchdog takes that case as another tool's doing.
  defp reapply_reloaded(state) do
    Enum.reduce(state.loaded, state, fn {m, md5}, acc ->
      case Patterns.md5(m) do
        nil ->
          acc

        ^md5 ->
          if acc.backend == Session and not in_place?(acc, m), do: reloaded(acc, m), else: acc

        _new ->
          reloaded(acc, m)
      end
    end)
  end

  defp in_place?(state, m) do
    ctx = %{
      backend: state.backend,
      handle: state.handle,
      expected_ms: &Patterns.expected_match_spec(state, &1)
    }

    Watchdog.in_place?(ctx, m, Patterns.of(state, m))
  end

  defp reloaded(state, m) do
    state = Patterns.set(state, m)
    Logger.info("ElixirScope: #{inspect(m)} was reloaded; its trace patterns are set again")
    TraceDB.store_event(:governor, %{reason: :module_reloaded, module: m})
    state
  end

  defp watchdog(%{backend: Session} = state), do: state

  defp watchdog(state) do
    {watchdog, actions} = Watchdog.check(state.watchdog, watchdog_context(state))
    state = %{state | watchdog: watchdog}
    Enum.reduce(actions, state, &rearm/2)
  end

  defp watchdog_context(state) do
    %{
      backend: state.backend,
      handle: state.handle,
      patterns: Map.new(Patterns.modules(state), &{&1, Patterns.of(state, &1)}),
      metas:
        for(
          m <- Patterns.modules(state),
          {mfa, ms} <- Patterns.metas(state, m),
          ms != nil,
          do: {mfa, ms}
        ),
      expected_ms: &Patterns.expected_match_spec(state, &1),
      all_flags: state.all_flags,
      pids: MapSet.to_list(state.pids)
    }
  end

  # Re-arming: only what is still free (Watchdog decided which).
  defp rearm({:all_processes, who, flags}, state) do
    state.backend.process(state.handle, who, true, flags)
    for pid <- state.own, do: state.backend.process(state.handle, pid, false, [:all])
    state
  end

  defp rearm({:process, pid}, state) do
    state.backend.process(state.handle, pid, true, process_flags(state, pid))
    state
  end

  defp rearm({:function, mfa, ms}, state) do
    state.backend.function(state.handle, mfa, ms)
    state
  end

  defp rearm({:meta, mfa, ms}, state) do
    state.backend.meta(state.handle, mfa, ms)
    state
  end
end
